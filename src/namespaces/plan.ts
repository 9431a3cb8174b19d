// The launch plan: an OCI spec compiled into the ordered, syscall-level steps that the native
// helper executes (native/README.md defines the format). Pure, so a unit test can read the
// exact sequence a container is made of, and `--trace` shows it being executed.
import type { OciMount, OciSpec } from './spec.js';
import type { OciSeccomp } from '../seccomp/types.js';
import { posix } from 'node:path';
import { DEFAULT_DEVICES } from './defaults.js';
import { allowList } from './devices.js';
import { seccompStepArg } from '../seccomp/index.js';
import { mountOptions } from '../overlay/mount-options.js';

export type Step = [op: string, ...args: string[]];

export interface Plan {
  /** Monitor settings (before `clone`). */
  monitor: Step[];
  cloneFlags: string[];
  /** What the child executes, in order. */
  steps: Step[];
}

export interface PlanContext {
  /** Store root: overlay lowerdirs are given relative to it (short `l/...` links). */
  storeRoot: string;
  /** Lower dirs, relative to storeRoot, TOP layer first (overlayfs order). */
  lowerDirs: string[];
  upperDir: string;
  workDir: string;
  name: string;
  trace: boolean;
  interactive: boolean;
  init: boolean;
  /** cgroup.procs files the monitor puts the container in before it runs a single instruction. */
  cgroupProcs: string[];
  /** What the monitor does for the container's lifetime (native/README.md, monitor lines). */
  monitor?: MonitorConfig;
  /**
   * A network namespace made beforehand (bridge networks): the container joins it instead of
   * getting a new one, so it keeps its network across restarts.
   */
  joinNetns?: string;
  /**
   * The address and default route of the joined namespace's interface, set from inside by the
   * child (the `net-up` step) instead of by `ip -n` on the host. Not with a user namespace: the
   * child has no say over a namespace the host owns.
   */
  netUp?: { ifname: string; ip: string; prefixLen: number; gateway: string };
  /** With a user namespace: idmap the store (default), or layers already copied with shifted owners. */
  usernsFiles?: 'idmap' | 'copy';
  /**
   * Where the root comes from: an overlay of the store's layers (tsrun's own containers, the
   * default), or an OCI bundle's rootfs directory as it is, bound onto itself as runc does
   * (tsrun-runtime; storeRoot, lowerDirs, upperDir and workDir are then unused).
   */
  rootfs?: 'overlay' | 'bundle';
  /** tsrun-runtime: runc's interface (native/README.md, "Runtime mode"). */
  runtime?: RuntimeMode;
}

export interface RuntimeMode {
  /** `create`: the child waits on this fifo before its program, and the helper leaves once it does. */
  execFifo?: string;
  /** The PTY master goes to this unix socket (process.terminal). */
  consoleSocket?: string;
  /** `exec -d`: the helper leaves once the program runs. */
  detachStarted?: boolean;
  /** A `hooks` step before pivot_root: prestart/createRuntime hooks run there (tsrun-runtime). */
  hooks?: boolean;
}

export interface MonitorConfig {
  /** docker json-file log of stdout/stderr, rotated at maxSize into maxFile files. */
  log?: { path: string; maxSize: number; maxFile: number };
  /** Also copy the output to the monitor's own stdout/stderr (a foreground `run`). */
  attachStdio: boolean;
  /** key=value status the monitor keeps current: running, pid, exit code, restarts. */
  statusFile?: string;
  /** no | always | unless-stopped | on-failure:N, carried out by the monitor. */
  restart?: string;
  /** If this file exists when the container exits, it is not restarted. */
  stopFile?: string;
  /** Run (exec) by the monitor once the container has exited for good: tsrun's cleanup. */
  exitCommand?: string[];
  /** With a TTY: serve the PTY on this unix socket, for `tsrun attach` (native/attach.c). */
  attachSocket?: string;
  /** A healthcheck the monitor runs inside the container (native/health.c). */
  health?: HealthPlan;
}

/** The healthcheck as the monitor takes it: durations in ns, the results' file, the probe's steps. */
export interface HealthPlan {
  file: string;
  interval: number;
  timeout: number;
  startPeriod: number;
  retries: number;
  /** What the probe does once inside the container's namespaces and cgroups, ending in exec. */
  steps: Step[];
}

const NS_FLAGS: Record<string, string> = {
  mount: 'newns',
  uts: 'newuts',
  ipc: 'newipc',
  pid: 'newpid',
  network: 'newnet',
  cgroup: 'newcgroup',
  user: 'newuser',
};

/**
 * Split OCI mount options into mount(2) flags (the helper's names) and fs data. tsrun's own
 * mounts are all private (the `propagation` step); a bundle's may ask for slave ones.
 */
export function mountFlags(options: string[], propagation = false): { flags: string[]; data: string[] } {
  const known = new Set(['ro', 'nosuid', 'nodev', 'noexec', 'relatime', 'strictatime', 'noatime']);
  const flags: string[] = [];
  const data: string[] = [];
  for (const o of options) {
    if (known.has(o)) flags.push(o);
    else if (propagation && ['rprivate', 'private', 'rslave', 'slave'].includes(o)) flags.push(o);
    else if (o === 'rbind') flags.push('bind', 'rec');
    else if (o === 'bind') flags.push('bind');
    else if (['rw', 'rprivate', 'private', 'suid', 'dev', 'exec'].includes(o)) continue;
    else data.push(o);
  }
  return { flags, data };
}

const list = (xs: string[]) => (xs.length === 0 ? '-' : xs.join(','));

function parentDirs(path: string): string {
  return path.slice(0, path.lastIndexOf('/')) || '/';
}

/**
 * Steps for one OCI mount onto a path inside the root (before pivot_root). `sourceIsFile` is
 * asked only of a bind mount (whether its host source is a file).
 */
function mountSteps(m: OciMount, sourceIsFile: () => boolean, propagation: boolean): Step[] {
  const { flags, data } = mountFlags(m.options, propagation);
  const steps: Step[] = [];
  const isBind = flags.includes('bind');
  const readonlyBind = isBind && flags.includes('ro');
  // A bind mount ignores MS_RDONLY on the first call: it takes a remount to make it read-only.
  const firstFlags = readonlyBind ? flags.filter((f) => f !== 'ro') : flags;
  if (isBind && sourceIsFile()) {
    steps.push(['mkdir', parentDirs(m.destination), '755'], ['touch', m.destination, '644']);
  } else {
    steps.push(['mkdir', m.destination, '755']);
  }
  steps.push(['mount-in', m.source, m.destination, isBind ? 'none' : m.type, list(firstFlags), data.join(',')]);
  // Recursive: a read-only -v /:/host:ro leaves no mount below /host writable.
  if (readonlyBind) steps.push(['remount-ro', m.destination, 'rec']);
  return steps;
}

/** Whether the container runs in a user namespace: its own (--userns), one a bundle joins, or
 * rootless tsrun's, which the container shares. */
export function inUserns(spec: OciSpec): boolean {
  return spec.linux.namespaces.some((n) => n.type === 'user') || spec.annotations?.['io.tsrun.rootless'] === 'true';
}

export function buildPlan(spec: OciSpec, ctx: PlanContext, sourceIsFile: (p: string) => boolean): Plan {
  const p = spec.process;
  const bundle = ctx.rootfs === 'bundle';
  // The namespaces made for the container; a bundle's may also name ones to join (`path`).
  const namespaces = spec.linux.namespaces.filter((n) => !n.path).map((n) => n.type);
  const joinPath = (type: string) => spec.linux.namespaces.find((n) => n.type === type && n.path)?.path;
  const joinNetns = ctx.joinNetns ?? joinPath('network');
  const rootless = spec.annotations?.['io.tsrun.rootless'] === 'true';
  const userns = inUserns(spec);
  const monitor: Step[] = [
    ['trace', ctx.trace ? '1' : '0'],
    ['name', ctx.name],
    ['stdin', ctx.interactive ? 'inherit' : 'null'],
    ['tty', p.terminal ? '1' : '0'],
    ...ctx.cgroupProcs.map((f): Step => ['cgroup-procs', f]),
    // The device filter goes on the container's cgroup: none without one (rootless).
    ...(spec.linux.resources.devices && ctx.cgroupProcs.length > 0 ? [['devices', ...allowList(spec.linux.resources.devices)] as Step] : []),
    ...monitorLines(ctx.monitor),
    ...(spec.linux.uidMappings ?? []).map((m): Step => ['uid-map', String(m.containerID), String(m.hostID), String(m.size)]),
    ...(spec.linux.gidMappings ?? []).map((m): Step => ['gid-map', String(m.containerID), String(m.hostID), String(m.size)]),
    ...runtimeLines(ctx.runtime),
  ];
  // A bundle's user and PID namespaces to join: the monitor joins them, the child is born there.
  const joinUser = joinPath('user');
  if (joinUser) monitor.unshift(['userns', joinUser]);
  const joinPid = joinPath('pid');
  if (joinPid) monitor.push(['pidns', joinPid]);
  const steps: Step[] = [['setsid']];
  // From inside its new user namespace the child could not join a network namespace the host
  // owns: the monitor joins it, and the child is born there.
  if (joinNetns && userns) monitor.push(['netns', joinNetns]);
  else if (joinNetns) steps.push(['setns', joinNetns, 'net']);
  if (joinNetns && !userns && ctx.netUp) {
    const { ifname, ip, prefixLen, gateway } = ctx.netUp;
    steps.push(['lo-up'], ['net-up', ifname, ip, String(prefixLen), gateway || '-']);
  }
  for (const [type, kind] of [['ipc', 'ipc'], ['uts', 'uts'], ['cgroup', 'cgroup']] as const) {
    const path = joinPath(type);
    if (path) steps.push(['setns', path, kind]);
  }
  if (namespaces.includes('uts')) steps.push(['sethostname', spec.hostname]);
  if (namespaces.includes('network') && !joinNetns) steps.push(['lo-up']);
  // Nothing mounted from here on propagates back to the host. A bundle's default is runc's:
  // slave, so that mounts the host makes later still reach the container.
  const propagation = !bundle || ['private', 'rprivate'].includes(spec.linux.rootfsPropagation ?? '') ? 'private' : 'slave';
  steps.push(['propagation', propagation]);
  if (bundle) {
    // The bundle's rootfs as it is (podman and containerd mounted it): bound onto itself, so
    // that it is a mount pivot_root can move.
    steps.push(['mount', spec.root.path, spec.root.path, '-', 'bind,rec', '-'], ['root', spec.root.path]);
  }
  // The store as the container's maps see it (native/userns.c): image files owned by 0 on
  // disk are its root's, and what its root writes is stored as 0. The step also makes it the
  // working directory, and from then on paths in the store are given relative to it: the
  // child, an unprivileged host uid, may not be allowed to walk the store's parents.
  const idmap = !bundle && namespaces.includes('user') && ctx.usernsFiles !== 'copy';
  if (idmap) steps.push(['idmap-mount', ctx.storeRoot]);
  else if (!bundle) steps.push(['chdir-host', ctx.storeRoot]);
  const inStore = (path: string) => (idmap && path.startsWith(ctx.storeRoot + '/') ? path.slice(ctx.storeRoot.length + 1) : path);
  if (!bundle) {
    // Outside the host's user namespace overlayfs keeps its own attributes in user.overlay.*.
    const overlayData = mountOptions({ lowers: ctx.lowerDirs, upper: { dir: ctx.upperDir, work: ctx.workDir }, userxattr: rootless });
    steps.push(['mount', 'overlay', inStore(spec.root.path), 'overlay', 'nosuid', overlayData]);
    steps.push(['root', inStore(spec.root.path)]);
  }

  for (const m of spec.mounts) {
    const source = m.type === 'bind' ? inStore(m.source) : m.source;
    steps.push(...mountSteps({ ...m, source }, () => sourceIsFile(m.source), bundle));
    if (m.destination === '/dev') {
      // A fresh /dev holds only the standard nodes, never the host's (but those --device names).
      const given = new Set((spec.linux.devices ?? []).map((d) => d.path));
      for (const [name, major, minor] of DEFAULT_DEVICES) {
        if (given.has(`/dev/${name}`)) continue;
        // mknod is refused in a user namespace: the host's nodes are bound in instead (runc).
        if (userns) steps.push(['touch', `/dev/${name}`, '666'], ['mount-in', `/dev/${name}`, `/dev/${name}`, 'none', 'bind', '']);
        else steps.push(['mknod', `/dev/${name}`, 'c', String(major), String(minor), '666']);
      }
      steps.push(
        ['symlink', '/proc/self/fd', '/dev/fd'],
        ['symlink', '/proc/self/fd/0', '/dev/stdin'],
        ['symlink', '/proc/self/fd/1', '/dev/stdout'],
        ['symlink', '/proc/self/fd/2', '/dev/stderr'],
      );
    }
    if (m.destination === '/dev/pts') steps.push(['symlink', 'pts/ptmx', '/dev/ptmx']);
  }
  // --device: the host's node, made where the container asked for it (after the mounts, so a
  // fresh /dev holds it), with the host's mode and owner.
  const dirs = new Set<string>();
  for (const d of spec.linux.devices ?? []) {
    const dir = posix.dirname(d.path);
    if (!dirs.has(dir)) steps.push(['mkdir', dir, '755']);
    dirs.add(dir);
    if (userns) steps.push(['touch', d.path, '600'], ['mount-in', d.hostPath, d.path, 'none', 'bind', '']);
    else steps.push(['mknod', d.path, d.type, String(d.major), String(d.minor), d.fileMode.toString(8)], ['chown', d.path, String(d.uid), String(d.gid)]);
  }
  if (p.cwd !== '/') steps.push(['mkdir', p.cwd, '755']);

  // The runtime spec's moment for createRuntime hooks: namespaces made, mounts done, root not
  // yet changed (tsrun-runtime runs them while the child waits here).
  if (ctx.runtime?.hooks) steps.push(['hooks']);
  steps.push(['pivot-root']);
  // Before /proc/sys becomes read-only (readonlyPaths).
  for (const [name, value] of Object.entries(spec.linux.sysctl ?? {})) steps.push(['sysctl', name, value]);
  for (const path of spec.linux.maskedPaths) steps.push(['mask', path]);
  for (const path of spec.linux.readonlyPaths) steps.push(['readonly', path]);
  if (spec.root.readonly) steps.push(['remount-ro', '/']);
  steps.push(...processSteps(p, spec.linux.seccomp, { waitStart: ctx.runtime?.execFifo !== undefined, init: ctx.init }));

  const cloneFlags = namespaces.filter((n) => !(n === 'network' && joinNetns)).map((n) => NS_FLAGS[n]!);
  return withoutOmitted({ monitor, cloneFlags, steps });
}

// For tests only, as src/sys/crash.ts's TSRUN_CRASH_AT: TSRUN_TEST_OMIT_STEPS=op1,op2 leaves out
// of the plan every step and monitor line whose op is named, and a namespace flag so named from
// the clone line (`newcgroup`). The lab's test (test/integration/lab.test.ts) runs each lesson
// again with what a check is about taken out, and expects the check to fail. It gives nothing
// away: whoever sets it runs tsrun as themselves, and could hand the helper any plan they like.
const omitted = new Set((process.env.TSRUN_TEST_OMIT_STEPS ?? '').split(',').filter(Boolean));

function withoutOmitted(plan: Plan): Plan {
  if (omitted.size === 0) return plan;
  const kept = (step: Step) => !omitted.has(step[0]);
  return { monitor: plan.monitor.filter(kept), cloneFlags: plan.cloneFlags.filter((f) => !omitted.has(f)), steps: plan.steps.filter(kept) };
}

/**
 * From the terminal to execve: who the process is and what it may do, in the order that works
 * (native/README.md, "Step order"). A new container's and a process exec'd into one
 * (tsrun-runtime exec) end alike. `waitStart`: `create` — made, the program waits for `start`
 * (runc's exec fifo). `init`: a reaping PID 1 forks it.
 */
export function processSteps(p: OciSpec['process'], filter: OciSeccomp | undefined, opts: { waitStart?: boolean; init?: boolean } = {}): Step[] {
  const steps: Step[] = [];
  if (p.terminal) steps.push(['console']);
  if (p.umask !== undefined) steps.push(['umask', p.umask.toString(8)]);
  for (const r of p.rlimits) {
    const name = r.type.replace(/^RLIMIT_/, '').toLowerCase();
    const fmt = (n: number) => (n === -1 ? 'unlimited' : String(n));
    steps.push(['rlimit', name, fmt(r.soft), fmt(r.hard)]);
  }
  if (p.noNewPrivileges) steps.push(['no-new-privs']);
  const seccomp: Step | undefined = filter && ['seccomp', seccompStepArg(filter)];
  // Without no_new_privs the kernel only takes a filter from a CAP_SYS_ADMIN holder: load it
  // before `user`/`caps` drop that (as runc does). With it, load it last, so that the filter
  // sees as little of the helper as possible.
  if (seccomp && !p.noNewPrivileges) steps.push(seccomp);
  steps.push(['user', String(p.user.uid), String(p.user.gid), list(p.user.additionalGids.map(String))]);
  steps.push(capsStep(p.capabilities));
  steps.push(['chdir', p.cwd]);
  for (const e of p.env) steps.push(['env', e]);
  if (opts.waitStart) steps.push(['wait-start', p.args[0]!]);
  if (seccomp && p.noNewPrivileges) steps.push(seccomp);
  if (opts.init) steps.push(['init']);
  steps.push(['exec', p.args[0]!, ...p.args]);
  return steps;
}

const capNames = (caps: string[]) => list(caps.map((c) => c.replace(/^CAP_/, '').toLowerCase()));

/** bounding and effective, and the other three sets only when they are not docker's (permitted = effective, no inheritable or ambient). */
function capsStep(c: OciSpec['process']['capabilities']): Step {
  const step: Step = ['caps', capNames(c.bounding), capNames(c.effective)];
  const docker = c.inheritable.length === 0 && c.ambient.length === 0 && c.permitted.length === c.effective.length && c.permitted.every((x) => c.effective.includes(x));
  if (!docker) step.push(capNames(c.permitted), capNames(c.inheritable), capNames(c.ambient));
  return step;
}

function runtimeLines(r: RuntimeMode | undefined): Step[] {
  if (!r) return [];
  const lines: Step[] = [['stdio', 'pass']];
  if (r.consoleSocket) lines.push(['console-socket', r.consoleSocket]);
  if (r.execFifo) lines.push(['exec-fifo', r.execFifo], ['detach', 'created']);
  else if (r.detachStarted) lines.push(['detach', 'started']);
  return lines;
}

function monitorLines(m: MonitorConfig | undefined): Step[] {
  if (!m) return [];
  const lines: Step[] = [['attach-stdio', m.attachStdio ? '1' : '0']];
  if (m.log) lines.push(['log', m.log.path, String(m.log.maxSize), String(m.log.maxFile)]);
  if (m.statusFile) lines.push(['status-file', m.statusFile]);
  if (m.restart) lines.push(['restart', m.restart]);
  if (m.stopFile) lines.push(['stop-file', m.stopFile]);
  if (m.exitCommand) lines.push(['exit-command', ...m.exitCommand]);
  if (m.attachSocket) lines.push(['attach-socket', m.attachSocket]);
  if (m.health) {
    const h = m.health;
    lines.push(['health', h.file, String(h.interval), String(h.timeout), String(h.startPeriod), String(h.retries)]);
    for (const step of h.steps) lines.push(['health-step', ...step]);
  }
  return lines;
}

/** Percent-encode one field: `%`, space and bytes outside 0x21..0x7e; the empty string is `%`. */
export function encodeField(s: string): string {
  if (s === '') return '%';
  // Most fields (paths, the seccomp filter's hex) need no escaping at all.
  if (/^[\x21-\x24\x26-\x7e]+$/.test(s)) return s;
  let out = '';
  for (const byte of Buffer.from(s, 'utf8')) {
    out += byte === 0x25 || byte < 0x21 || byte > 0x7e ? `%${byte.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(byte);
  }
  return out;
}

export function decodeField(s: string): string {
  if (s === '%') return '';
  return Buffer.from(s.replace(/%([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1').toString('utf8');
}

export function serializePlan(plan: Plan): string {
  const line = (step: Step) => step.map(encodeField).join(' ');
  return [
    'tsrun-plan 1',
    ...plan.monitor.map(line),
    line(['clone', list(plan.cloneFlags)]),
    ...plan.steps.map(line),
    'end',
    '',
  ].join('\n');
}
