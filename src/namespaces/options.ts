// The container options `run` accepts, parsed and validated from docker-style flag strings.
// Every parser throws a TsrunError naming the flag, so the CLI can exit 125 as docker does.
import { flagError } from '../errors.js';
import { ALL_CAPABILITIES, inKernelTree } from './defaults.js';
import type { Resources } from '../cgroups/types.js';
import type { AddHost, DnsOptions, PortMapping } from '../netns/index.js';
import { parseSeccompOpt, type SeccompOption } from '../seccomp/index.js';
import type { UsernsOption } from './userns.js';
import type { DeviceMapping, DeviceRule } from './devices.js';
import type { ImageRunConfig } from '../oci/types.js';

export type NamespaceMode = 'private' | 'host';
/** none, host, bridge (the default network), container:<name|id>, or a user-defined network's name. */
export type NetworkMode = string;

export interface VolumeMount {
  /** The host path; for a named or anonymous volume, its _data directory (set when the container is created). */
  source: string;
  target: string;
  readonly: boolean;
  /** A named volume (`-v NAME:/path`), made in the store if missing (src/container/volumes.ts). */
  volume?: string;
  /**
   * An anonymous volume (`-v /path`, or a path of the image's VOLUME): a volume of its own,
   * named (`volume`) with 64 random hex digits when the container is created, and removed with
   * the container by `rm -v` and `run --rm`, as docker does.
   */
  anonymous?: true;
  /** `nocopy`: an empty named volume is not filled with the image's content at its target. */
  noCopy?: boolean;
}

export interface TmpfsMount {
  target: string;
  options: string[];
}

export interface Ulimit {
  name: string;
  soft: number; // -1: unlimited
  hard: number;
}

export interface ContainerOptions {
  name?: string;
  hostname?: string;
  /** undefined: the image's; '' clears it (docker's `--entrypoint ''`). */
  entrypoint?: string;
  /** Trailing arguments; empty means the image's Cmd. */
  args: string[];
  /** KEY=value entries, in order (later wins). */
  env: string[];
  workdir?: string;
  user?: string;
  volumes: VolumeMount[];
  tmpfs: TmpfsMount[];
  readOnly: boolean;
  tty: boolean;
  interactive: boolean;
  init: boolean;
  ulimits: Ulimit[];
  capAdd: string[];
  capDrop: string[];
  privileged: boolean;
  noNewPrivileges: boolean;
  /** `--security-opt seccomp=...`; absent (older records): the default profile. */
  seccomp?: SeccompOption;
  network: NetworkMode;
  pid: NamespaceMode;
  ipc: NamespaceMode;
  uts: NamespaceMode;
  /** Absent: the host's user namespace (docker's default). */
  userns?: UsernsOption;
  trace: boolean;
  remove: boolean;
  /** cgroup limits (OCI linux.resources). */
  resources: Resources;
  /** Parent of the container's cgroup (`tsrun` by default). */
  cgroupParent: string;
  /** -p, plus -P's image ports (host port 0 = random). */
  publish: PortMapping[];
  publishAll: boolean;
  dns: DnsOptions;
  addHosts: AddHost[];
  networkAliases: string[];
  /** --ip: a fixed address on a user-defined network (else the lowest free one). */
  ip?: string;
  /** -l/--label, --label-file (the image's labels are merged in at create). */
  labels?: Record<string, string>;
  /** --sysctl: namespaced kernel parameters, written in /proc/sys before the process runs. */
  sysctls?: Record<string, string>;
  /** --shm-size in bytes (default 64 MiB). */
  shmSize?: number;
  /** --stop-signal (default: the image's StopSignal, else SIGTERM) and --stop-timeout in seconds. */
  stopSignal?: string;
  stopTimeout?: number;
  /** --group-add: more supplementary groups, names or numbers. */
  groupAdd?: string[];
  /** --device: host device nodes made in the container and allowed in its device cgroup. */
  devices?: DeviceMapping[];
  /** --device-cgroup-rule: more devices the container may use (it makes their nodes itself). */
  deviceCgroupRules?: DeviceRule[];
  /** --health-* (--no-healthcheck: Test ["NONE"]); after create, merged over the image's HEALTHCHECK (container/healthcheck.ts). */
  healthcheck?: ImageRunConfig['Healthcheck'];
}


/** docker's rule for a volume name: two or more of [a-zA-Z0-9_.-], starting with a letter or digit. */
export const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/** `-v /host:/ctr[:ro|rw]`, `-v NAME:/ctr[:ro|rw]` (a named volume) or `-v /ctr` (an anonymous one). */
export function parseVolume(spec: string): VolumeMount {
  const parts = spec.split(':');
  // As docker: a container path alone, which takes no mode (`/data:ro` is refused below).
  if (parts.length === 1 && spec.startsWith('/')) return anonymousVolume(mountTarget('--volume', spec, spec), false);
  if (parts.length < 2 || parts.length > 3) throw flagError('--volume', spec, 'expected /host/path:/container/path[:ro], NAME:/container/path[:ro] or /container/path');
  const [source, target, mode = 'rw'] = parts as [string, string, string?];
  const named = !source.startsWith('/');
  if (named && !VOLUME_NAME.test(source)) {
    throw flagError('--volume', spec, `"${source}" is neither an absolute host path nor a volume name (letters, digits, _ . -, two or more)`);
  }
  const where = mountTarget('--volume', spec, target);
  const opts = mode.split(',');
  for (const o of opts) {
    const known = ['ro', 'rw', 'z', 'Z', 'rprivate', 'private', ...(named ? ['nocopy'] : [])];
    if (!known.includes(o)) throw flagError('--volume', spec, `unknown mode "${o}"`);
  }
  return named
    ? namedVolume(source, where, opts.includes('ro'), opts.includes('nocopy'))
    : { source: normalizePath(source), target: where, readonly: opts.includes('ro') };
}

/**
 * Where a -v, --mount or --tmpfs mount goes in the container, normalized: an absolute path, not
 * `/`, and not in /proc or /sys. runc lets a few /proc files be covered (for lxcfs); tsrun
 * none: a volume at /proc/self once redirected every mask of the container (issue 13).
 */
export function mountTarget(flag: string, spec: string, target: string): string {
  if (!target.startsWith('/')) throw flagError(flag, spec, `the container path "${target}" must be absolute`);
  const where = normalizePath(target);
  if (where === '/') throw flagError(flag, spec, 'cannot mount over the container root');
  const tree = inKernelTree(where);
  if (tree) throw flagError(flag, spec, `cannot mount on ${where}: ${tree} belongs to the kernel, and nothing may be mounted in it`);
  return where;
}

/** A named volume's mount; its source (the volume's directory) is set when the container is created. */
export function namedVolume(name: string, target: string, readonly: boolean, noCopy: boolean): VolumeMount {
  return { source: '', target, readonly, volume: name, ...(noCopy && { noCopy }) };
}

/** An anonymous volume's mount; its name and source are set when the container is created. */
export function anonymousVolume(target: string, readonly: boolean): VolumeMount {
  return { source: '', target, readonly, anonymous: true };
}

/** `--tmpfs /path[:opt,opt]` (size=64m, mode=1777, noexec ...); `flag` names it in errors. */
export function parseTmpfs(spec: string, flag = '--tmpfs'): TmpfsMount {
  const colon = spec.indexOf(':');
  const target = colon < 0 ? spec : spec.slice(0, colon);
  const options = colon < 0 ? [] : spec.slice(colon + 1).split(',').filter(Boolean);
  const where = mountTarget(flag, spec, target);
  for (const o of options) {
    if (!/^(size=\d+[kmg%]?|mode=[0-7]{3,4}|uid=\d+|gid=\d+|nr_inodes=\d+[kmg]?|noexec|exec|nosuid|suid|nodev|dev|ro|rw)$/.test(o)) {
      throw flagError(flag, spec, `unknown option "${o}"`);
    }
  }
  return { target: where, options };
}

const RLIMITS = new Set([
  'core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss',
  'rtprio', 'rttime', 'sigpending', 'stack', 'as',
]);

/** `--ulimit nofile=1024[:2048]` (docker's syntax; -1 is unlimited). */
export function parseUlimit(spec: string): Ulimit {
  const m = /^([a-z]+)=(-?\d+)(?::(-?\d+))?$/.exec(spec);
  if (!m) throw flagError('--ulimit', spec, 'expected name=soft[:hard]');
  const [, name, softStr, hardStr] = m as unknown as [string, string, string, string | undefined];
  if (!RLIMITS.has(name)) throw flagError('--ulimit', spec, `unknown limit "${name}" (one of ${[...RLIMITS].join(', ')})`);
  const soft = Number(softStr);
  const hard = hardStr === undefined ? soft : Number(hardStr);
  if (soft < -1 || hard < -1) throw flagError('--ulimit', spec, 'values must be >= -1 (-1 is unlimited)');
  if (hard !== -1 && (soft === -1 || soft > hard)) throw flagError('--ulimit', spec, `soft limit ${soft} is above hard limit ${hard}`);
  return { name, soft, hard };
}

/** `--cap-add NET_ADMIN` / `cap_net_admin` / `ALL`: normalized to CAP_NET_ADMIN. */
export function parseCapability(flag: string, value: string): string {
  const upper = value.toUpperCase();
  if (upper === 'ALL') return 'ALL';
  const name = upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
  if (!(ALL_CAPABILITIES as readonly string[]).includes(name)) throw flagError(flag, value, 'unknown capability');
  return name;
}

export function parseNamespaceMode(flag: string, value: string): NamespaceMode {
  if (value === 'host') return 'host';
  if (value === '' || value === 'private') return 'private';
  throw flagError(flag, value, 'expected "host" or "private"');
}

export function parseNetworkMode(value: string): NetworkMode {
  if (value.startsWith('container:')) {
    if (value.length === 'container:'.length) throw flagError('--network', value, 'expected container:<name|id>');
    return value;
  }
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(value)) {
    throw flagError('--network', value, 'expected bridge, none, host or the name of a network');
  }
  return value;
}

/**
 * `--security-opt no-new-privileges[=true|false]` and `seccomp=unconfined|<profile.json>` (docker's
 * `key:value` spelling too). A profile file is read and checked here, with `readFile`.
 */
export function parseSecurityOpts(
  opts: string[],
  readFile: (path: string) => string,
): { noNewPrivileges: boolean; seccomp: SeccompOption } {
  let noNewPrivileges = true; // tsrun's default, stricter than docker's
  let seccomp: SeccompOption = { mode: 'default' };
  for (const opt of opts) {
    const sep = opt.search(/[=:]/);
    const key = sep < 0 ? opt : opt.slice(0, sep);
    const value = sep < 0 ? 'true' : opt.slice(sep + 1); // a path may hold ':' or '='
    if (key === 'no-new-privileges') {
      if (value !== 'true' && value !== 'false') throw flagError('--security-opt', opt, 'expected no-new-privileges=true|false');
      noNewPrivileges = value === 'true';
    } else if (key === 'seccomp' && sep >= 0) {
      seccomp = parseSeccompOpt(value, readFile);
    } else {
      throw flagError('--security-opt', opt, 'supported: no-new-privileges=true|false, seccomp=unconfined|<profile.json>');
    }
  }
  return { noNewPrivileges, seccomp };
}

/** `--env-file` contents: KEY=value lines, `#` comments, bare KEY taken from `hostEnv`. */
export function parseEnvFile(text: string, file: string, hostEnv: NodeJS.ProcessEnv): string[] {
  const out: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '').trimStart();
    if (line === '' || line.startsWith('#')) return;
    out.push(...expandEnv(line, hostEnv, `--env-file ${file}:${i + 1}`));
  });
  return out;
}

/** `-e KEY=value` is taken as is; `-e KEY` takes the host's value, or nothing if unset (docker). */
export function expandEnv(entry: string, hostEnv: NodeJS.ProcessEnv, flag = '--env'): string[] {
  const eq = entry.indexOf('=');
  const key = eq < 0 ? entry : entry.slice(0, eq);
  if (key === '' || /\s/.test(key)) throw flagError(flag, entry, 'variable name is empty or contains whitespace');
  if (eq >= 0) return [entry];
  const value = hostEnv[key];
  return value === undefined ? [] : [`${key}=${value}`];
}

export function normalizePath(p: string): string {
  const parts: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return '/' + parts.join('/');
}
