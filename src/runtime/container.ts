// The runtime half: an OCI bundle to a container and back, with runc's lifecycle
// (create → start → kill → delete). The native helper makes the container as it does for
// tsrun's own ones; in runtime mode (native/README.md) it passes the caller's stdio on, sends a
// terminal to the console socket, and leaves once the process waits on the exec fifo — so the
// container's first process becomes the child of whoever reaps for the caller (conmon,
// containerd's shim), as runc's init does. Nothing here imports image, registry or network code.
import { closeSync, constants, existsSync, lstatSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { constants as osConstants } from 'node:os';
import { TsrunError, errnoOf } from '../errors.js';
import { detectCgroups, openDriver, type CgroupHandle, type CgroupLayout, type Resources } from '../cgroups/index.js';
import { StepError, type HelperProcess, type TraceLine } from '../namespaces/helper.js';
import { makeCgroup, startHelper, waitForwarding } from './launch.js';
import type { OciMount, OciSpec } from '../namespaces/spec.js';
import { cgroupMounts } from '../namespaces/cgroup-mounts.js';
import { processStartTime } from '../sys/proc.js';
import { loadBundle } from './bundle.js';
import { runHooks, runHooksWarn } from './hooks.js';
import { RuntimeDir, processAlive, stateDocument, statusOf, writePidFile, type RuntimeState, type RuntimeStatus } from './state.js';

export interface RuntimeContext {
  root: string;
  /** Warnings (a failed poststart hook): to --log, as runc does. */
  warn: (msg: string) => void;
  onTrace?: (line: TraceLine) => void;
}

export interface CreateOptions {
  bundle: string;
  /** --preserve-fds: our fds 3..3+N-1 become the container process's. */
  preserveFds?: number;
  pidFile?: string;
  consoleSocket?: string;
}

/** cgroupsPath → the driver's parent and name. */
export function cgroupOf(spec: OciSpec, id: string): { parent: string; name: string } {
  const path = spec.linux.cgroupsPath;
  if (path.includes(':')) {
    throw new TsrunError('ESPEC', `config.json: linux.cgroupsPath: "${path}" is systemd's slice:prefix:name form; tsrun-runtime drives cgroupfs only (no --systemd-cgroup)`);
  }
  const parts = path.split('/').filter((p) => p !== '');
  if (parts.length === 0) return { parent: 'tsrun-runtime', name: id };
  if (parts.length === 1) return { parent: 'tsrun-runtime', name: parts[0]! };
  if (parts.some((p) => p === '.' || p === '..')) throw new TsrunError('ESPEC', `config.json: linux.cgroupsPath: "${path}" has . or .. in it`);
  return { parent: parts.slice(0, -1).join('/'), name: parts.at(-1)! };
}

/**
 * What the spec says, made concrete for this host. A `cgroup` mount becomes this host's layout:
 * with a cgroup namespace, fresh mounts of each hierarchy (the kernel shows the container's
 * own cgroup as their root); without one, as runc does, the container's own cgroup directories
 * bound in, so that it never sees the host's tree. On v1 both under a tmpfs, read-only after.
 */
export function forHost(spec: OciSpec, layout: CgroupLayout, cgroupPaths: Record<string, string>): OciSpec {
  const mounts: OciMount[] = [];
  const readonlyPaths = [...spec.linux.readonlyPaths];
  const cgroupns = spec.linux.namespaces.some((n) => n.type === 'cgroup');
  for (const m of spec.mounts) {
    if (m.options.includes('tmpcopyup')) {
      mounts.push(tmpCopyUp(spec.root.path, m));
      continue;
    }
    if (m.type !== 'cgroup') {
      mounts.push(m);
      continue;
    }
    const ro = m.options.includes('ro');
    const host = cgroupMounts(layout, ro).map((c): OciMount => {
      const destination = m.destination + c.destination.slice('/sys/fs/cgroup'.length);
      // (pure v2: the helper mounts nothing but cgroup2 over sysfs; the tree is read-only anyway)
      if (cgroupns || c.type === 'tmpfs' || layout.mode === 'v2') return { ...c, destination };
      // the hierarchy's directory for this container: any controller mounted there names it
      const controllers = c.type === 'cgroup2' ? ['unified'] : c.options.filter((o) => cgroupPaths[o] !== undefined);
      const source = cgroupPaths[controllers[0] ?? ''];
      if (!source) return { ...c, destination };
      return { destination, type: 'bind', source, options: ['rbind', 'nosuid', 'noexec', 'nodev', ...(ro ? ['ro'] : [])] };
    });
    mounts.push(...host);
    if (ro && host[0]?.type === 'tmpfs') readonlyPaths.push(m.destination);
  }
  return { ...spec, mounts, linux: { ...spec.linux, readonlyPaths } };
}

/**
 * podman's `tmpcopyup` (a tmpfs that starts with what the image has at its path): tsrun-runtime
 * copies nothing up, which is the same thing where the image has nothing there (`--tmpfs /tmp`
 * of most images); anything else is refused rather than hidden under an empty tmpfs.
 */
function tmpCopyUp(rootfs: string, m: OciMount): OciMount {
  const at = inRoot(rootfs, m.destination);
  let entries: string[] = [];
  try {
    entries = at === undefined ? [] : readdirSync(at);
  } catch (err) {
    if (errnoOf(err) !== 'ENOENT' && errnoOf(err) !== 'ENOTDIR') throw err;
  }
  if (entries.length > 0) {
    throw new TsrunError('ESPEC', `config.json: mounts (${m.destination}): "tmpcopyup" of a directory that has files in the image is not supported by tsrun-runtime`);
  }
  return { ...m, options: m.options.filter((o) => o !== 'tmpcopyup') };
}

/** `path` in the root file system, its symlinks followed inside it (never out); undefined when missing. */
export function inRoot(rootfs: string, path: string): string | undefined {
  const todo = path.split('/').filter(Boolean);
  const done: string[] = [];
  for (let links = 0; todo.length > 0; ) {
    const name = todo.shift()!;
    if (name === '.') continue;
    if (name === '..') {
      done.pop();
      continue;
    }
    const here = join(rootfs, ...done, name);
    let st;
    try {
      st = lstatSync(here);
    } catch {
      return undefined;
    }
    if (!st.isSymbolicLink()) {
      done.push(name);
      continue;
    }
    if (++links > 40) return undefined;
    const target = readlinkSync(here);
    if (target.startsWith('/')) done.length = 0;
    todo.unshift(...target.split('/').filter(Boolean));
  }
  return join(rootfs, ...done);
}

interface Made {
  state: RuntimeState;
  helper: HelperProcess;
}

/**
 * Make the container. `mode`: 'create' waits on the exec fifo for `start` (the helper leaves);
 * 'run' starts it at once with the helper staying as its parent until it exits.
 */
async function make(ctx: RuntimeContext, id: string, opts: CreateOptions, mode: 'create' | 'run'): Promise<Made> {
  const dir = new RuntimeDir(ctx.root, id);
  const { dir: bundleDir, spec: checked } = loadBundle(opts.bundle);
  if (checked.process.terminal && !opts.consoleSocket && mode === 'create') {
    throw new TsrunError('EINVAL_FLAG', 'cannot allocate a tty if tsrun-runtime will detach without a console socket (--console-socket)');
  }
  if (!checked.process.terminal && opts.consoleSocket) {
    throw new TsrunError('EINVAL_FLAG', '--console-socket is for a container with process.terminal set');
  }
  let rootStat;
  try {
    rootStat = statSync(checked.root.path);
  } catch (err) {
    throw new TsrunError('ESPEC', `config.json: root.path: ${checked.root.path}: ${errnoOf(err) === 'ENOENT' ? 'no such directory' : (err as Error).message}`);
  }
  if (!rootStat.isDirectory()) throw new TsrunError('ESPEC', `config.json: root.path: ${checked.root.path} is not a directory`);
  const layout = detectCgroups();
  const cg = cgroupOf(checked, id);

  const hooksAtCreate = (checked.hooks?.prestart?.length ?? 0) + (checked.hooks?.createRuntime?.length ?? 0) > 0;
  let hooksRan = false;
  dir.make();
  const undo: Array<() => void> = [() => dir.remove()];
  const rollback = () => {
    for (const u of undo.splice(0).reverse()) {
      try {
        u();
      } catch {
        // keep undoing
      }
    }
  };
  try {
    const driver = openDriver(layout);
    const cgroup = makeCgroup(driver, cg, checked);
    undo.push(() => cgroup.remove());
    const spec = forHost(checked, layout, cgroup.paths);
    dir.writeSpec(spec);
    const { helper, pid } = await startHelper(
      spec,
      {
        rootfs: 'bundle',
        storeRoot: '/',
        lowerDirs: [],
        upperDir: '',
        workDir: '',
        name: id,
        trace: ctx.onTrace !== undefined,
        interactive: true,
        init: false,
        runtime: {
          ...(mode === 'create' && { execFifo: dir.fifo }),
          ...(hooksAtCreate && { hooks: true }),
          ...(opts.consoleSocket && { consoleSocket: opts.consoleSocket }),
        },
      },
      cgroup,
      { stdio: [0, 1, 2], preserveFds: opts.preserveFds ?? 0, ...(ctx.onTrace && { onTrace: ctx.onTrace }) },
      undo,
    );
    const pidStartTime = processStartTime(pid);
    if (pidStartTime === undefined) throw new TsrunError('EHELPER', `the container's process ${pid} died at once`);
    const state: RuntimeState = { id, pid, pidStartTime, bundle: bundleDir, rootfs: spec.root.path, created: new Date().toISOString(), cgroup: cg };
    dir.writeState(state);
    dir.writeFastPath(pid, pidStartTime, [...new Set(Object.values(cgroup.paths))], !spec.hooks?.poststart?.length && !spec.hooks?.poststop?.length);
    if (spec.process.oomScoreAdj !== undefined) {
      // Before the process runs anything; its children inherit it.
      writeProcFile(`/proc/${pid}/oom_score_adj`, String(spec.process.oomScoreAdj));
    }
    helper.go();
    if (hooksAtCreate) {
      // the child waits at its `hooks` step: namespaces made, mounts done, before pivot_root
      await helper.waitHooks();
      hooksRan = true;
      const doc = stateDocument(state, 'creating', spec);
      await runHooks(spec.hooks?.prestart, doc, 'prestart');
      await runHooks(spec.hooks?.createRuntime, doc, 'createRuntime');
      helper.hooksDone();
    }
    if (mode === 'create') await helper.waitReady();
    else await helper.waitStarted();
    if (opts.pidFile) writePidFile(opts.pidFile, pid);
    return { state, helper };
  } catch (err) {
    rollback();
    // As runc's destroy: once createRuntime hooks ran, the poststop ones undo what they did.
    if (hooksRan) await runHooksWarn(checked.hooks?.poststop, { ociVersion: checked.ociVersion, id, status: 'stopped', bundle: bundleDir }, 'poststop', ctx.warn);
    const userns = checked.linux.uidMappings?.[0];
    if (err instanceof StepError && err.errno === 'EACCES' && userns) {
      throw new TsrunError('ESTEP', `${err.message}: in a user namespace the container's root is host uid ${userns.hostID}, which must be able to reach ${checked.root.path} (every directory above it searchable)`);
    }
    throw err;
  }
}

function writeProcFile(path: string, value: string): void {
  const fd = openSync(path, constants.O_WRONLY);
  try {
    writeSync(fd, value);
  } finally {
    closeSync(fd);
  }
}

/** `create`: the container made, its process waiting for `start`. */
export async function createContainer(ctx: RuntimeContext, id: string, opts: CreateOptions): Promise<void> {
  await make(ctx, id, opts, 'create');
}

/** `start`: let a created container's process run its program. */
export async function startContainer(ctx: RuntimeContext, id: string): Promise<void> {
  const c = openContainer(ctx, id);
  const status = c.status();
  if (status !== 'created') throw new TsrunError('ESTATE', `cannot start a container that is ${status}: ${id}`);
  let fd: number;
  try {
    // Non-blocking: with its process gone there is no reader, and open fails with ENXIO.
    fd = openSync(c.dir.fifo, constants.O_WRONLY | constants.O_NONBLOCK);
  } catch (err) {
    if (errnoOf(err) === 'ENXIO') throw new TsrunError('ESTATE', `cannot start container ${id}: its process has exited`);
    if (errnoOf(err) === 'ENOENT') throw new TsrunError('ESTATE', `cannot start container ${id}: it was started already`);
    throw err;
  }
  try {
    writeSync(fd, '0');
  } finally {
    closeSync(fd);
  }
  rmSync(c.dir.fifo, { force: true });
  await runHooksWarn(c.spec.hooks?.poststart, stateDocument(c.state, 'running', c.spec), 'poststart', ctx.warn);
}

/** `run`: create and start; without detach, wait for the exit and (unless keep) delete, returning its code. */
export async function runContainer(ctx: RuntimeContext, id: string, opts: CreateOptions & { detach: boolean; keep?: boolean }): Promise<number> {
  if (opts.detach) {
    await createContainer(ctx, id, opts);
    await startContainer(ctx, id);
    return 0;
  }
  const { helper } = await make(ctx, id, opts, 'run');
  const c = openContainer(ctx, id);
  const exit = waitForwarding(helper);
  exit.catch(() => {}); // awaited below, after the hooks: not an unhandled rejection meanwhile
  await runHooksWarn(c.spec.hooks?.poststart, stateDocument(c.state, 'running', c.spec), 'poststart', ctx.warn);
  const status = await exit;
  if (!opts.keep) await deleteContainer(ctx, id, { force: true });
  return status.code;
}

export class RuntimeContainer {
  private handle: CgroupHandle | undefined | null = null;
  constructor(
    readonly dir: RuntimeDir,
    readonly state: RuntimeState,
    readonly spec: OciSpec,
  ) {}

  cgroup(): CgroupHandle | undefined {
    if (this.handle === null) this.handle = openDriver(detectCgroups()).open(this.state.cgroup.parent, this.state.cgroup.name);
    return this.handle;
  }

  frozen(): boolean {
    const paths = this.cgroup()?.paths ?? {};
    try {
      if (paths.freezer) return readFileSync(join(paths.freezer, 'freezer.state'), 'utf8').trim() !== 'THAWED';
      if (paths.unified) return /^frozen 1$/m.test(readFileSync(join(paths.unified, 'cgroup.events'), 'utf8'));
    } catch {
      // gone: not frozen
    }
    return false;
  }

  status(): RuntimeStatus {
    return statusOf(this.dir, this.state, () => this.frozen());
  }
}

export function openContainer(ctx: RuntimeContext, id: string): RuntimeContainer {
  const dir = new RuntimeDir(ctx.root, id);
  const { state, spec } = dir.read();
  return new RuntimeContainer(dir, state, spec);
}

export function containerState(ctx: RuntimeContext, id: string): Record<string, unknown> {
  const c = openContainer(ctx, id);
  return stateDocument(c.state, c.status(), c.spec);
}

const SIGNALS = new Set(Object.keys(osConstants.signals));

const SIGRTMIN = 34;
const SIGRTMAX = 64;

/** runc's forms: KILL, SIGKILL, 9, and the real-time ones: 37, RTMIN+3, SIGRTMAX-1. */
export function parseSignal(s: string): number {
  const numbers = osConstants.signals as Record<string, number>;
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    if (n < 1 || n > SIGRTMAX) throw new TsrunError('EINVAL_FLAG', `unknown signal "${s}"`);
    return n;
  }
  const name = s.toUpperCase().startsWith('SIG') ? s.toUpperCase() : `SIG${s.toUpperCase()}`;
  const rt = /^SIGRT(MIN|MAX)(?:([+-])(\d+))?$/.exec(name);
  if (rt) {
    const n = (rt[1] === 'MIN' ? SIGRTMIN : SIGRTMAX) + (rt[2] === '-' ? -1 : 1) * Number(rt[3] ?? 0);
    if (n < SIGRTMIN || n > SIGRTMAX) throw new TsrunError('EINVAL_FLAG', `unknown signal "${s}"`);
    return n;
  }
  if (!SIGNALS.has(name)) throw new TsrunError('EINVAL_FLAG', `unknown signal "${s}"`);
  return numbers[name]!;
}

export function killContainer(ctx: RuntimeContext, id: string, signal: string, all: boolean): void {
  const sig = parseSignal(signal);
  const c = openContainer(ctx, id);
  const status = c.status();
  // --all: whatever is left in its cgroup, its first process gone or not (containerd's shim
  // sends `kill --all 9` after the exit of a container that shares the host's PID namespace).
  if (status === 'stopped' && !all) throw new TsrunError('ESTATE', `container not running: ${id}`);
  const cgroup = all ? c.cgroup() : undefined;
  // As runc: frozen while signalled, so that nothing forks away meanwhile.
  if (cgroup && status === 'running') cgroup.freeze();
  try {
    const pids = cgroup ? cgroup.pids() : [c.state.pid];
    for (const pid of pids) {
      try {
        process.kill(pid, sig);
      } catch (err) {
        if (errnoOf(err) !== 'ESRCH') throw err;
      }
    }
  } finally {
    // A frozen process cannot die until it is thawed (runc thaws a paused one for SIGKILL too).
    if (cgroup && status === 'running') cgroup.thaw();
    else if (status === 'paused' && sig === osConstants.signals.SIGKILL) c.cgroup()?.thaw();
  }
}

export async function deleteContainer(ctx: RuntimeContext, id: string, opts: { force: boolean }): Promise<void> {
  const dir = new RuntimeDir(ctx.root, id);
  if (!dir.exists()) {
    // A create that died (or is dying) before it wrote the state: what it made goes, as with runc.
    if (opts.force && existsSync(dir.dir)) removeUnfinished(dir);
    if (opts.force) return;
    throw new TsrunError('ENOCONTAINER', `container does not exist: ${id}`);
  }
  const c = openContainer(ctx, id);
  const status = c.status();
  if ((status === 'running' || status === 'paused') && !opts.force) {
    throw new TsrunError('ESTATE', `cannot delete container ${id} that is not stopped: ${status}`);
  }
  const cgroup = c.cgroup();
  if (status === 'paused') cgroup?.thaw();
  // A created container was never started: deleting it kills it, with or without --force.
  if (status !== 'stopped') {
    try {
      process.kill(c.state.pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  cgroup?.remove();
  await runHooksWarn(c.spec.hooks?.poststop, stateDocument(c.state, 'stopped', c.spec), 'poststop', ctx.warn);
  dir.remove();
}

/** The state directory of a create that never finished, and the cgroup its spec names. */
function removeUnfinished(dir: RuntimeDir): void {
  try {
    const spec = JSON.parse(readFileSync(dir.configFile, 'utf8')) as OciSpec;
    const cg = cgroupOf(spec, dir.id);
    openDriver(detectCgroups()).open(cg.parent, cg.name)?.remove();
  } catch {
    // no spec yet: it made no cgroup either
  }
  dir.remove();
}

export function pauseContainer(ctx: RuntimeContext, id: string): void {
  const c = openContainer(ctx, id);
  const status = c.status();
  if (status !== 'running') throw new TsrunError('ESTATE', `cannot pause container ${id}: it is ${status}`);
  const cgroup = c.cgroup();
  if (!cgroup) throw new TsrunError('ESTATE', `cannot pause container ${id}: it has no cgroup`);
  cgroup.freeze();
}

export function resumeContainer(ctx: RuntimeContext, id: string): void {
  const c = openContainer(ctx, id);
  const status = c.status();
  if (status !== 'paused') throw new TsrunError('ESTATE', `cannot resume container ${id}: it is ${status}, not paused`);
  c.cgroup()?.thaw();
}

/** The pids of every process in the container (its cgroup). */
export function containerPids(ctx: RuntimeContext, id: string): number[] {
  const c = openContainer(ctx, id);
  if (c.status() === 'stopped') return [];
  return (c.cgroup()?.pids() ?? [c.state.pid]).sort((a, b) => a - b);
}

export function listContainers(ctx: RuntimeContext, ids: string[]): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const id of ids) {
    try {
      const c = openContainer(ctx, id);
      const status = c.status();
      out.push({ ...stateDocument(c.state, status, c.spec), pid: status === 'stopped' ? 0 : c.state.pid });
    } catch {
      // removed meanwhile
    }
  }
  return out;
}

export { processAlive };

/** `update`: apply the resources given (others are left as they are) and keep them in the spec. */
export function updateContainer(ctx: RuntimeContext, id: string, change: Resources): void {
  const c = openContainer(ctx, id);
  if (c.status() === 'stopped') throw new TsrunError('ESTATE', `cannot update container ${id}: it is stopped`);
  const cgroup = c.cgroup();
  if (!cgroup) throw new TsrunError('ESTATE', `cannot update container ${id}: it has no cgroup`);
  cgroup.update(change);
  const r = c.spec.linux.resources;
  const merged = {
    ...r,
    ...(change.memory && { memory: { ...r.memory, ...change.memory } }),
    ...(change.cpu && { cpu: { ...r.cpu, ...change.cpu } }),
    ...(change.pids && { pids: change.pids }),
    ...(change.blockIO && { blockIO: { ...r.blockIO, ...change.blockIO } }),
  };
  c.dir.writeSpec({ ...c.spec, linux: { ...c.spec.linux, resources: merged } });
}

/** runc's `events --stats` document for one container. */
export function statsEvent(ctx: RuntimeContext, id: string): Record<string, unknown> {
  const c = openContainer(ctx, id);
  if (c.status() === 'stopped') throw new TsrunError('ESTATE', `container ${id} is stopped`);
  const cgroup = c.cgroup();
  if (!cgroup) throw new TsrunError('ESTATE', `container ${id} has no cgroup`);
  const s = cgroup.stats();
  return {
    type: 'stats',
    id,
    data: {
      cpu: { usage: { total: s.cpuUsageNs } },
      memory: { usage: { usage: s.memoryUsage, limit: s.memoryLimit } },
      pids: { current: s.pidsCurrent },
      blkio: {
        ioServiceBytesRecursive: [
          { op: 'Read', value: s.blkioReadBytes },
          { op: 'Write', value: s.blkioWriteBytes },
        ],
      },
    },
  };
}
