// The one place that knows both formats: image config + run options → an OCI runtime-spec
// config.json (like runc's specconv). Pure: data in, data out; the tests check it as data.
import path from 'node:path';
import { TsrunError } from '../errors.js';
import type { IdMap } from './userns.js';
import type { ImageConfig } from '../image/types.js';
import {
  ALL_CAPABILITIES,
  DEFAULT_CAPABILITIES,
  DEFAULT_NOFILE,
  DEFAULT_PATH,
  MASKED_PATHS,
  READONLY_PATHS,
} from './defaults.js';
import type { ContainerOptions, Ulimit } from './options.js';
import type { Resources } from '../cgroups/types.js';
import { deviceRules, type DeviceNode, type ResolvedDevice } from './devices.js';
import { ociSeccompFor, type OciSeccomp } from '../seccomp/index.js';

export interface OciMount {
  destination: string;
  type: string;
  source: string;
  options: string[];
}

export interface OciHook {
  path: string;
  args?: string[];
  env?: string[];
  timeout?: number;
}

export interface OciHooks {
  prestart?: OciHook[];
  createRuntime?: OciHook[];
  poststart?: OciHook[];
  poststop?: OciHook[];
}

export interface OciSpec {
  ociVersion: string;
  process: {
    terminal: boolean;
    user: { uid: number; gid: number; additionalGids: number[] };
    args: string[];
    env: string[];
    cwd: string;
    capabilities: { bounding: string[]; effective: string[]; permitted: string[]; inheritable: string[]; ambient: string[] };
    rlimits: Array<{ type: string; soft: number; hard: number }>;
    noNewPrivileges: boolean;
    /** A bundle's (tsrun-runtime): the mode the program starts with (tsrun's own: docker's 0022). */
    umask?: number;
    /** A bundle's: written to /proc/<pid>/oom_score_adj before the process runs. */
    oomScoreAdj?: number;
  };
  root: { path: string; readonly: boolean };
  hostname: string;
  mounts: OciMount[];
  /** A bundle's OCI hooks (src/runtime/hooks.ts); tsrun's own containers have none. */
  hooks?: OciHooks;
  linux: {
    /** `path`: join that namespace instead of making one (bundles only). */
    namespaces: Array<{ type: 'pid' | 'network' | 'ipc' | 'uts' | 'mount' | 'cgroup' | 'user'; path?: string }>;
    /** A bundle's: private | rprivate | slave | rslave (tsrun's own: private). */
    rootfsPropagation?: string;
    maskedPaths: string[];
    readonlyPaths: string[];
    /** --sysctl: written under /proc/sys once /proc is mounted. */
    sysctl?: Record<string, string>;
    /** With a user namespace: its maps (OCI names). */
    uidMappings?: IdMap[];
    gidMappings?: IdMap[];
    cgroupsPath: string;
    resources: Resources;
    /** --device: nodes made in the container (the device cgroup's rules are in resources.devices). */
    devices?: DeviceNode[];
    /** The seccomp profile resolved for this container's capabilities; absent: unconfined. */
    seccomp?: OciSeccomp;
  };
  annotations: Record<string, string>;
}

/** The user the process runs as, resolved from the image's /etc/passwd and /etc/group. */
export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  home: string;
}

export interface SpecContext {
  id: string;
  rootfs: string;
  user: ResolvedUser;
  /** Files tsrun writes for the container and binds in: /etc/hostname, /etc/hosts, /etc/resolv.conf. */
  etcFiles: { hostname: string; hosts: string; resolvConf: string };
  /** The host's hard limits, which the container can never exceed without CAP_SYS_RESOURCE. */
  hostHardLimits: Record<string, number>;
  /** Whether tsrun holds CAP_SYS_RESOURCE (may raise hard limits). */
  canRaiseLimits: boolean;
  /** The capabilities tsrun itself holds (its bounding set): the most a container can get. */
  hostCapabilities: readonly string[];
  /** /sys/fs/cgroup inside the container (see cgroup-mounts.ts); none when empty. */
  cgroupMounts: OciMount[];
  /** Rootless tsrun: the container is made inside tsrun's own user namespace (src/rootless.ts). */
  rootless?: boolean;
  /** --device, resolved against the host's nodes (devices.ts resolveDevices). */
  devices: ResolvedDevice[];
}

/** The argv docker would run: entrypoint + cmd, with `--entrypoint` and trailing args applied. */
export function processArgs(image: ImageConfig, opts: Pick<ContainerOptions, 'entrypoint' | 'args'>): string[] {
  const cfg = image.config ?? {};
  let entrypoint = cfg.Entrypoint ?? [];
  let cmd = cfg.Cmd ?? [];
  if (opts.entrypoint !== undefined) {
    // docker: a new entrypoint also discards the image's Cmd.
    entrypoint = opts.entrypoint === '' ? [] : [opts.entrypoint];
    cmd = [];
  }
  if (opts.args.length > 0) cmd = opts.args;
  const args = [...entrypoint, ...cmd];
  if (args.length === 0) throw new TsrunError('EINVAL_FLAG', 'no command specified: the image has no Entrypoint or Cmd; give one after the image name');
  return args;
}

/** Image Env, then HOSTNAME/PATH/HOME/TERM defaults, then `-e` (later entries win), as docker. */
export function processEnv(image: ImageConfig, opts: ContainerOptions, hostname: string, home: string): string[] {
  const env = new Map<string, string>();
  const set = (entry: string) => {
    const eq = entry.indexOf('=');
    if (eq > 0) env.set(entry.slice(0, eq), entry.slice(eq + 1));
  };
  set(`PATH=${DEFAULT_PATH}`);
  set(`HOSTNAME=${hostname}`);
  for (const e of image.config?.Env ?? []) set(e);
  if (opts.tty) set('TERM=xterm');
  for (const e of opts.env) set(e);
  if (!env.has('HOME')) env.set('HOME', home);
  return [...env].map(([k, v]) => `${k}=${v}`);
}

/**
 * The container's capabilities. "All" (--privileged, --cap-add ALL) means all that tsrun itself
 * holds: a VM or CI sandbox often lacks some (CAP_SYS_RESOURCE here), and capset(2) refuses
 * to grant what the caller does not have. Naming a missing one explicitly is an error.
 */
function capabilities(opts: ContainerOptions, host: readonly string[]): string[] {
  const all = ALL_CAPABILITIES.filter((c) => host.includes(c));
  for (const c of opts.capAdd) {
    if (c !== 'ALL' && !host.includes(c)) {
      throw new TsrunError('EINVAL_FLAG', `invalid argument "${c}" for "--cap-add" flag: tsrun itself does not hold ${c} on this host, so it cannot give it to a container`);
    }
  }
  if (opts.privileged) return all;
  let caps: string[] = opts.capAdd.includes('ALL') ? all : DEFAULT_CAPABILITIES.filter((c) => host.includes(c));
  for (const c of opts.capAdd) if (c !== 'ALL' && !caps.includes(c)) caps.push(c);
  if (opts.capDrop.includes('ALL')) caps = opts.capAdd.filter((c) => c !== 'ALL');
  caps = caps.filter((c) => !opts.capDrop.includes(c));
  return ALL_CAPABILITIES.filter((c) => caps.includes(c));
}

function rlimits(opts: ContainerOptions, ctx: SpecContext): OciSpec['process']['rlimits'] {
  const byName = new Map<string, Ulimit>();
  // Raise the open-files limit as docker and podman do, but never above what this host allows:
  // without CAP_SYS_RESOURCE the hard limit cannot be raised (podman's default fails there).
  const hostNofile = ctx.hostHardLimits.nofile ?? DEFAULT_NOFILE;
  const nofile = ctx.canRaiseLimits ? DEFAULT_NOFILE : Math.min(DEFAULT_NOFILE, hostNofile === -1 ? DEFAULT_NOFILE : hostNofile);
  byName.set('nofile', { name: 'nofile', soft: nofile, hard: nofile });
  for (const u of opts.ulimits) {
    const host = ctx.hostHardLimits[u.name];
    const above = host !== undefined && host !== -1 && (u.hard === -1 || u.hard > host);
    if (above && !ctx.canRaiseLimits) {
      throw new TsrunError(
        'EINVAL_FLAG',
        `invalid argument "${u.name}=${u.soft}:${u.hard}" for "--ulimit" flag: the hard limit is above this host's ` +
          `(${host}), and raising it needs CAP_SYS_RESOURCE; use at most ${u.name}=${host}:${host}`,
      );
    }
    byName.set(u.name, u);
  }
  return [...byName.values()].map((u) => ({ type: `RLIMIT_${u.name.toUpperCase()}`, soft: u.soft, hard: u.hard }));
}

/** Path components of a mount target: `/a/b/` and `/a//b` are 2, `/` is 0. */
function depthOf(target: string): number {
  return path.posix.normalize(target).split('/').filter(Boolean).length;
}

function mounts(opts: ContainerOptions, ctx: SpecContext): OciMount[] {
  const sysOptions = ['nosuid', 'noexec', 'nodev', opts.privileged ? 'rw' : 'ro'];
  // Root of a user namespace may mount sysfs only for a network namespace it owns: for any
  // other network it gets the host's /sys, read-only (runc does the same).
  const sys: OciMount =
    (opts.userns || ctx.rootless) && opts.network !== 'none'
      ? { destination: '/sys', type: 'bind', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] }
      : { destination: '/sys', type: 'sysfs', source: 'sysfs', options: sysOptions };
  const list: OciMount[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
    },
    sys,
    ...ctx.cgroupMounts,
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${opts.shmSize ?? 65536 * 1024}`] },
  ];
  const user: OciMount[] = opts.volumes.map((v) => ({ destination: v.target, type: 'bind', source: v.source, options: ['rbind', 'rprivate', v.readonly ? 'ro' : 'rw'] }));
  for (const t of opts.tmpfs) {
    const options = t.options.length > 0 ? t.options : [];
    // docker's tmpfs defaults: noexec,nosuid,nodev unless told otherwise.
    for (const d of ['noexec', 'nosuid', 'nodev']) {
      const opposite = d.slice(2);
      if (!options.includes(d) && !options.includes(opposite)) options.push(d);
    }
    user.push({ destination: t.target, type: 'tmpfs', source: 'tmpfs', options });
  }
  // Shallower first, as docker sorts them: `-v /a/b -v /a` must not hide /a/b under /a.
  list.push(...user.map((m, i) => ({ m, i, depth: depthOf(m.destination) })).sort((a, b) => a.depth - b.depth || a.i - b.i).map((x) => x.m));
  const etc: Array<[string, string]> = [
    ['/etc/hostname', ctx.etcFiles.hostname],
    ['/etc/hosts', ctx.etcFiles.hosts],
    ['/etc/resolv.conf', ctx.etcFiles.resolvConf],
  ];
  for (const [destination, source] of etc) {
    // A volume on the same path wins, as in docker.
    if (!opts.volumes.some((v) => v.target === destination)) {
      list.push({ destination, type: 'bind', source, options: ['rbind', 'rprivate'] });
    }
  }
  return list;
}

/** image config + options (+ host facts in ctx) → OCI runtime config.json. */
export function createSpec(image: ImageConfig, opts: ContainerOptions, ctx: SpecContext): OciSpec {
  const hostname = opts.hostname ?? ctx.id.slice(0, 12);
  const cwd = opts.workdir ?? (image.config?.WorkingDir || '/');
  if (!cwd.startsWith('/')) {
    throw new TsrunError('EINVAL_FLAG', `the working directory "${cwd}" is invalid: it needs to be an absolute path`);
  }
  const caps = capabilities(opts, ctx.hostCapabilities);
  // docker's rules: --privileged or seccomp=unconfined turn it off; the profile's `caps`
  // conditions are decided by the bounding set.
  const seccomp = ociSeccompFor(opts.seccomp, opts.privileged, caps);
  // The user namespace first: it owns every namespace made with it.
  const namespaces: OciSpec['linux']['namespaces'] = opts.userns ? [{ type: 'user' }] : [];
  namespaces.push({ type: 'mount' }, { type: 'cgroup' });
  if (opts.pid === 'private') namespaces.push({ type: 'pid' });
  if (opts.ipc === 'private') namespaces.push({ type: 'ipc' });
  if (opts.uts === 'private') namespaces.push({ type: 'uts' });
  if (opts.network !== 'host') namespaces.push({ type: 'network' });

  return withDevices({
    ociVersion: '1.2.0',
    process: {
      terminal: opts.tty,
      user: { uid: ctx.user.uid, gid: ctx.user.gid, additionalGids: ctx.user.additionalGids },
      args: processArgs(image, opts),
      env: processEnv(image, opts, hostname, ctx.user.home),
      cwd,
      capabilities: {
        bounding: caps,
        // A non-root user starts with no effective capabilities, as after a real setuid().
        effective: ctx.user.uid === 0 ? caps : [],
        permitted: ctx.user.uid === 0 ? caps : [],
        inheritable: [],
        ambient: [],
      },
      rlimits: rlimits(opts, ctx),
      noNewPrivileges: opts.privileged ? false : opts.noNewPrivileges,
    },
    root: { path: ctx.rootfs, readonly: opts.readOnly },
    hostname,
    mounts: mounts(opts, ctx),
    linux: {
      namespaces,
      maskedPaths: opts.privileged ? [] : MASKED_PATHS,
      // A v1 tmpfs at /sys/fs/cgroup is made read-only once the hierarchies are mounted in it.
      readonlyPaths: opts.privileged
        ? []
        : [...READONLY_PATHS, ...(ctx.cgroupMounts[0]?.type === 'tmpfs' ? [ctx.cgroupMounts[0].destination] : [])],
      ...(opts.userns && { uidMappings: opts.userns.uidMap, gidMappings: opts.userns.gidMap }),
      ...(opts.sysctls && { sysctl: opts.sysctls }),
      cgroupsPath: `${opts.cgroupParent}/${ctx.id}`,
      resources: opts.resources,
      ...(seccomp && { seccomp }),
    },
    annotations: { 'io.tsrun.init': String(opts.init), ...(ctx.rootless && { 'io.tsrun.rootless': 'true' }) },
  }, opts, ctx.devices);
}

/**
 * The spec with its device parts for `devices`: the nodes in linux.devices, the device
 * cgroup's rules in linux.resources.devices (none with --privileged). `start` calls it again
 * with the host's nodes as they are then: device numbers may change (a reboot, a re-plug).
 */
export function withDevices(spec: OciSpec, opts: Pick<ContainerOptions, 'privileged' | 'deviceCgroupRules'>, devices: ResolvedDevice[]): OciSpec {
  const { devices: _nodes, ...linux } = spec.linux;
  const { devices: _rules, ...resources } = spec.linux.resources;
  const rules = deviceRules(opts.privileged, devices, opts.deviceCgroupRules ?? []);
  return {
    ...spec,
    linux: {
      ...linux,
      resources: { ...resources, ...(rules && { devices: rules }) },
      ...(devices.length > 0 && { devices: devices.map(([node]) => node) }),
    },
  };
}
