// `run`'s flags (as commander hands them over) → validated ContainerOptions.
import { flagError, TsrunError } from '../errors.js';
import {
  expandEnv,
  parseCapability,
  parseEnvFile,
  parseNamespaceMode,
  parseNetworkMode,
  parseSecurityOpts,
  parseTmpfs,
  parseUlimit,
  parseVolume,
  type ContainerOptions,
} from '../namespaces/options.js';
import { DEFAULT_CGROUP_PARENT, parseResources, type ResourceFlags } from '../cgroups/index.js';
import { parseAddHost, parseDnsOptions, parseNetworkAlias } from '../netns/dns.js';
import { parseIp } from '../netns/ipv4.js';
import { parseUserns } from '../namespaces/userns.js';
import { parseDevice, parseDeviceCgroupRule } from '../namespaces/devices.js';
import { isRootless } from '../rootless.js';
import { checkGroupAdd, parseLabels, parseMount, parseShmSize, parseStopTimeout, parseSysctl } from '../namespaces/more-options.js';
import { parseSignal } from './signals.js';
import { parsePublish } from '../netns/publish.js';
import { DEFAULT_LOG_CONFIG, type LogConfig, type RestartPolicy } from './record.js';
import { parseHealthFlags, type HealthFlagValues } from './healthcheck.js';

export interface RunFlagValues extends ResourceFlags, HealthFlagValues {
  cgroupParent?: string;
  publish?: string[];
  publishAll?: boolean;
  dns?: string[];
  dnsSearch?: string[];
  dnsOption?: string[];
  addHost?: string[];
  networkAlias?: string[];
  ip?: string;
  name?: string;
  hostname?: string;
  entrypoint?: string;
  env?: string[];
  envFile?: string[];
  workdir?: string;
  user?: string;
  volume?: string[];
  tmpfs?: string[];
  readOnly?: boolean;
  rm?: boolean;
  interactive?: boolean;
  tty?: boolean;
  init?: boolean;
  ulimit?: string[];
  capAdd?: string[];
  capDrop?: string[];
  privileged?: boolean;
  securityOpt?: string[];
  /** Absent: bridge (rootless: host). */
  network?: string;
  pid: string;
  ipc: string;
  uts: string;
  label?: string[];
  labelFile?: string[];
  mount?: string[];
  sysctl?: string[];
  shmSize?: string;
  stopSignal?: string;
  stopTimeout?: string;
  groupAdd?: string[];
  device?: string[];
  deviceCgroupRule?: string[];
  userns?: string;
  uidmap?: string[];
  gidmap?: string[];
  trace?: boolean;
  /** --cidfile: handled by the CLI (written once the container exists). */
  cidfile?: string;
}

export interface HostAccess {
  readFile(path: string): string;
  env: NodeJS.ProcessEnv;
  stdinIsTty: boolean;
}

/** Commander leaves unset flags undefined: every list empty, every switch off. */
function withDefaults(f: RunFlagValues): Required<Pick<RunFlagValues, ListFlag | SwitchFlag>> & RunFlagValues {
  const lists = Object.fromEntries(LIST_FLAGS.map((k) => [k, f[k] ?? []]));
  const switches = Object.fromEntries(SWITCH_FLAGS.map((k) => [k, f[k] ?? false]));
  return { ...f, ...lists, ...switches } as Required<Pick<RunFlagValues, ListFlag | SwitchFlag>> & RunFlagValues;
}

const LIST_FLAGS = ['device', 'deviceCgroupRule', 'label', 'labelFile', 'mount', 'sysctl', 'groupAdd', 'uidmap', 'gidmap', 'env', 'envFile', 'volume', 'tmpfs', 'ulimit', 'capAdd', 'capDrop', 'securityOpt', 'publish', 'dns', 'dnsSearch', 'dnsOption', 'addHost', 'networkAlias'] as const;
const SWITCH_FLAGS = ['readOnly', 'rm', 'interactive', 'tty', 'init', 'privileged', 'trace', 'publishAll'] as const;
type ListFlag = (typeof LIST_FLAGS)[number];
type SwitchFlag = (typeof SWITCH_FLAGS)[number];

export function parseRunOptions(flags: RunFlagValues, args: string[], host: HostAccess): ContainerOptions {
  const f = withDefaults(flags);
  const env: string[] = [];
  for (const file of f.envFile) {
    let text: string;
    try {
      text = host.readFile(file);
    } catch (err) {
      throw new TsrunError('EINVAL_FLAG', `invalid argument "${file}" for "--env-file" flag: cannot read it`, { cause: err });
    }
    env.push(...parseEnvFile(text, file, host.env));
  }
  for (const e of f.env) env.push(...expandEnv(e, host.env));

  const uts = parseNamespaceMode('--uts', f.uts);
  const rootless = isRootless();
  const network = parseNetworkMode(f.network ?? (rootless ? 'host' : 'bridge'));
  if (rootless && network !== 'none' && network !== 'host' && !network.startsWith('container:')) {
    throw new TsrunError('EINVAL_FLAG', `rootless tsrun cannot attach to the network "${network}": bridges need root; use --network host or none`);
  }
  if ((network === 'none' || network === 'host' || network.startsWith('container:')) && (f.publish.length > 0 || f.publishAll)) {
    throw new TsrunError('EINVAL_FLAG', `conflicting options: port publishing and --network ${network}`);
  }
  if (f.ip !== undefined) {
    if (parseIp(f.ip) === undefined) throw flagError('--ip', f.ip, 'not an IPv4 address');
    // As docker: the default network's addresses are handed out, never chosen.
    if (network === 'bridge' || network === 'none' || network === 'host' || network.startsWith('container:')) {
      throw new TsrunError('EINVAL_FLAG', `--ip needs a user-defined network (tsrun network create), not --network ${network}`);
    }
  }
  if (uts === 'host' && f.hostname !== undefined) {
    throw new TsrunError('EINVAL_FLAG', 'conflicting options: --hostname and --uts host (the host\'s name would change)');
  }
  if (f.interactive && f.tty && !host.stdinIsTty) {
    throw new TsrunError('EINVAL_FLAG', 'the input device is not a TTY; drop -t, or run from a terminal');
  }
  if (f.workdir !== undefined && !f.workdir.startsWith('/')) {
    throw new TsrunError('EINVAL_FLAG', `invalid argument "${f.workdir}" for "--workdir" flag: it needs to be an absolute path`);
  }
  if (f.hostname !== undefined && !/^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,62})$/.test(f.hostname)) {
    throw new TsrunError('EINVAL_FLAG', `invalid argument "${f.hostname}" for "--hostname" flag: not a valid host name`);
  }

  const userns = parseUserns(f.userns, f.uidmap, f.gidmap, f.privileged);
  const labelFiles = f.labelFile.map((name) => {
    try {
      return { name, text: host.readFile(name) };
    } catch (err) {
      throw new TsrunError('EINVAL_FLAG', `invalid argument "${name}" for "--label-file" flag: cannot read it`, { cause: err });
    }
  });
  const labels = parseLabels(f.label, labelFiles);
  const mounts = f.mount.map(parseMount);
  const sysctls = Object.fromEntries(
    f.sysctl.map((s) => parseSysctl(s, { hostNetwork: network === 'host', hostIpc: f.ipc === 'host', hostUts: uts === 'host' })),
  );
  const resources = parseResources(f);
  if (rootless && Object.values(resources).some((r) => r !== undefined && Object.keys(r as object).length > 0)) {
    throw new TsrunError('EINVAL_FLAG', 'rootless tsrun cannot set cgroup limits (memory, cpus, pids, blkio): they need root');
  }
  const devices = f.device.map(parseDevice);
  if (rootless && f.deviceCgroupRule.length > 0) throw new TsrunError('EINVAL_FLAG', 'rootless tsrun has no device cgroup: --device-cgroup-rule needs root');
  if (rootless && devices.some((d) => d.permissions !== 'rwm')) {
    throw new TsrunError('EINVAL_FLAG', 'rootless tsrun has no device cgroup to limit a --device to some permissions: give rwm, or run as root');
  }
  if (rootless && userns) throw new TsrunError('EINVAL_FLAG', 'rootless tsrun already runs containers in a user namespace: --userns and --uidmap need root');
  if (userns && (f.pid === 'host' || f.ipc === 'host' || uts === 'host')) {
    throw new TsrunError('EINVAL_FLAG', 'conflicting options: a user namespace and --pid/--ipc/--uts host (their owner would be the host\'s)');
  }
  const healthcheck = parseHealthFlags(f);

  return {
    ...(f.name !== undefined && { name: f.name }),
    ...(f.hostname !== undefined && { hostname: f.hostname }),
    ...(f.entrypoint !== undefined && { entrypoint: f.entrypoint }),
    ...(f.workdir !== undefined && { workdir: f.workdir }),
    ...(f.user !== undefined && { user: f.user }),
    args,
    env,
    volumes: [...f.volume.map(parseVolume), ...mounts.flatMap((m) => (m.volume ? [m.volume] : []))],
    tmpfs: [...f.tmpfs.map((t) => parseTmpfs(t)), ...mounts.flatMap((m) => (m.tmpfs ? [m.tmpfs] : []))],
    ...(Object.keys(labels).length > 0 && { labels }),
    ...(Object.keys(sysctls).length > 0 && { sysctls }),
    ...(f.shmSize !== undefined && { shmSize: parseShmSize(f.shmSize) }),
    ...(f.stopSignal !== undefined && { stopSignal: parseSignalName(f.stopSignal) }),
    ...(f.stopTimeout !== undefined && { stopTimeout: parseStopTimeout(f.stopTimeout) }),
    ...(f.groupAdd.length > 0 && { groupAdd: f.groupAdd.map(checkGroupAdd) }),
    ...(devices.length > 0 && { devices }),
    ...(f.deviceCgroupRule.length > 0 && { deviceCgroupRules: f.deviceCgroupRule.map(parseDeviceCgroupRule) }),
    readOnly: f.readOnly,
    tty: f.tty,
    interactive: f.interactive,
    init: f.init,
    ulimits: f.ulimit.map(parseUlimit),
    capAdd: f.capAdd.map((c) => parseCapability('--cap-add', c)),
    capDrop: f.capDrop.map((c) => parseCapability('--cap-drop', c)),
    privileged: f.privileged,
    ...parseSecurityOpts(f.securityOpt, host.readFile),
    network,
    pid: parseNamespaceMode('--pid', f.pid),
    ipc: parseNamespaceMode('--ipc', f.ipc),
    uts,
    ...(userns && { userns }),
    trace: f.trace,
    remove: f.rm,
    resources,
    publish: f.publish.flatMap(parsePublish),
    publishAll: f.publishAll,
    dns: parseDnsOptions(f),
    addHosts: f.addHost.map(parseAddHost),
    networkAliases: f.networkAlias.map(parseNetworkAlias),
    ...(f.ip !== undefined && { ip: f.ip }),
    cgroupParent: parseCgroupParent(f.cgroupParent),
    ...(healthcheck && { healthcheck }),
  };
}

/** A relative path below the cgroup root; `..` and absolute escapes are refused. */
function parseCgroupParent(value: string | undefined): string {
  if (value === undefined) return DEFAULT_CGROUP_PARENT;
  const trimmed = value.replace(/^\/+|\/+$/g, '');
  if (trimmed === '' || trimmed.split('/').some((c) => c === '..' || c === '.' || c === '')) {
    throw new TsrunError('EINVAL_FLAG', `invalid argument "${value}" for "--cgroup-parent" flag: expected a path like tsrun or ci/jobs`);
  }
  return trimmed;
}

const DECIMAL_UNITS: Record<string, number> = { '': 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12 };

/** `--log-driver json-file|none` and its `--log-opt max-size=10m`, `max-file=3`, as docker reads them. */
export function parseLogConfig(driver: string | undefined, opts: string[]): LogConfig {
  if (driver !== undefined && driver !== 'json-file' && driver !== 'none') {
    throw new TsrunError('EINVAL_FLAG', `invalid argument "${driver}" for "--log-driver" flag: tsrun has the json-file and none drivers`);
  }
  if (driver === 'none') {
    if (opts.length > 0) throw new TsrunError('EINVAL_FLAG', 'the none log driver takes no --log-opt');
    return { ...DEFAULT_LOG_CONFIG, driver: 'none' };
  }
  const config = { ...DEFAULT_LOG_CONFIG };
  for (const opt of opts) {
    const eq = opt.indexOf('=');
    const [key, value] = eq < 0 ? [opt, ''] : [opt.slice(0, eq), opt.slice(eq + 1)];
    if (key === 'max-size') {
      // docker's units here are decimal (go-units FromHumanSize: 10m = 10,000,000); -1: no limit.
      const m = /^(\d+(?:\.\d+)?) ?([kmgt]?)b?$/i.exec(value.trim());
      if (value.trim() === '-1') config.maxSize = Number.MAX_SAFE_INTEGER;
      else if (!m) throw flagError('--log-opt', opt, 'max-size is a size such as 10m (k, m, g: powers of 1000), or -1 for no limit');
      else config.maxSize = Math.floor(Number(m[1]) * DECIMAL_UNITS[m[2]!.toLowerCase()]!);
      if (m && (config.maxSize < 1 || config.maxSize > Number.MAX_SAFE_INTEGER)) throw flagError('--log-opt', opt, 'max-size must be between 1 byte and 8 PB');
    } else if (key === 'max-file') {
      if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 1000) throw flagError('--log-opt', opt, 'max-file must be a whole number from 1 to 1000');
      config.maxFile = Number(value);
    } else {
      throw flagError('--log-opt', opt, `unknown log opt "${key}" for the json-file log driver (tsrun knows max-size and max-file)`);
    }
  }
  return config;
}

/** `--restart no|always|unless-stopped|on-failure[:N]`, as docker validates it. */
export function parseRestartPolicy(value: string, autoRemove: boolean): RestartPolicy {
  const m = /^(no|always|unless-stopped|on-failure)(?::(\d+))?$/.exec(value);
  if (!m || (m[2] !== undefined && m[1] !== 'on-failure')) {
    throw new TsrunError('EINVAL_FLAG', `invalid argument "${value}" for "--restart" flag: expected no, always, unless-stopped or on-failure[:max-retries]`);
  }
  const name = m[1] as RestartPolicy['name'];
  if (name !== 'no' && autoRemove) {
    throw new TsrunError('EINVAL_FLAG', 'conflicting options: --restart and --rm (a removed container cannot restart)');
  }
  return { name, maximumRetryCount: m[2] === undefined ? 0 : Number(m[2]) };
}

/** --stop-signal: a name or number, kept as docker shows it (SIGTERM). */
function parseSignalName(value: string): string {
  try {
    return parseSignal(value);
  } catch {
    throw new TsrunError('EINVAL_FLAG', `invalid argument "${value}" for "--stop-signal" flag: not a signal`);
  }
}
