// What tsrun-runtime keeps of a container, under its --root (runc's /run/runc):
//
//   <root>/<id>/state.json   id, pid and its start time, bundle, created, cgroup
//   <root>/<id>/config.json  the spec as checked at `create` (the bundle may change later)
//   <root>/<id>/exec.fifo    while `created`: `start` writes a byte to it, the process goes on
//   <root>/<id>/pid, cgroups, fast   the same facts as plain lines, for native/runtime/fast.c
//
// The status is never stored: it is read from the kernel each time (runc does the same). A
// process that is gone, or a pid that now names another process (its start time differs),
// is `stopped`; a fifo still there means `created`; a frozen cgroup `paused`.
import { mkdirSync, readFileSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { writeFileAtomic as writeAtomic } from '../sys/atomic.js';
import { join } from 'node:path';
import { TsrunError, errnoOf } from '../errors.js';
import type { OciSpec } from '../namespaces/spec.js';
import { processStartTime } from '../sys/proc.js';

export const DEFAULT_ROOT = '/run/tsrun-runtime';

export type RuntimeStatus = 'creating' | 'created' | 'running' | 'paused' | 'stopped';

export interface RuntimeState {
  id: string;
  /** Host pid of the container's first process. */
  pid: number;
  /** Field 22 of /proc/<pid>/stat when it was made: rules out a reused pid. */
  pidStartTime: string;
  bundle: string;
  rootfs: string;
  /** RFC 3339. */
  created: string;
  /** The cgroup as the driver names it, <parent>/<name>. */
  cgroup: { parent: string; name: string };
}

/** runc's rule for container ids. */
export function checkId(id: string): void {
  if (!/^[\w+.-]+$/.test(id) || id === '.' || id === '..' || id.length > 1024) {
    throw new TsrunError('EINVAL_FLAG', `invalid container id "${id}": use letters, digits and _ + - . (not . or ..)`);
  }
}

export class RuntimeDir {
  readonly dir: string;
  constructor(
    readonly root: string,
    readonly id: string,
  ) {
    checkId(id);
    this.dir = join(root, id);
  }
  get stateFile(): string {
    return join(this.dir, 'state.json');
  }
  get configFile(): string {
    return join(this.dir, 'config.json');
  }
  get fifo(): string {
    return join(this.dir, 'exec.fifo');
  }

  /** Claims the id: fails if a container of that id exists. */
  make(): void {
    mkdirSync(this.root, { recursive: true, mode: 0o711 });
    try {
      mkdirSync(this.dir, { mode: 0o700 });
    } catch (err) {
      if (errnoOf(err) === 'EEXIST') throw new TsrunError('ESTATE', `container with id exists: ${this.id}`);
      throw err;
    }
  }

  exists(): boolean {
    return existsSync(this.stateFile);
  }

  read(): { state: RuntimeState; spec: OciSpec } {
    try {
      return { state: JSON.parse(readFileSync(this.stateFile, 'utf8')) as RuntimeState, spec: JSON.parse(readFileSync(this.configFile, 'utf8')) as OciSpec };
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') throw new TsrunError('ENOCONTAINER', `container does not exist: ${this.id}`);
      throw new TsrunError('EINTERNAL', `the state of container ${this.id} is damaged: ${(err as Error).message}`, { cause: err });
    }
  }

  writeSpec(spec: OciSpec): void {
    writeAtomic(this.configFile, JSON.stringify(spec));
  }

  writeState(state: RuntimeState): void {
    writeAtomic(this.stateFile, JSON.stringify(state));
  }

  /**
   * What native/runtime/fast.c needs to start, kill and delete without Node: the pid and its
   * start time, the cgroup directories, and whether no hook has to run (`fast`).
   */
  writeFastPath(pid: number, startTime: string, cgroupDirs: string[], noHooks: boolean): void {
    writeAtomic(join(this.dir, 'pid'), `${pid} ${startTime}\n`);
    writeAtomic(join(this.dir, 'cgroups'), cgroupDirs.map((d) => `${d}\n`).join(''));
    if (noHooks) writeAtomic(join(this.dir, 'fast'), '');
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** runc writes a pid file whole or not at all: a reader never sees half a number (no newline). */
export function writePidFile(path: string, pid: number): void {
  writeAtomic(path, String(pid));
}

/** Ids with a state under root. */
export function listIds(root: string): string[] {
  try {
    return readdirSync(root).filter((id) => existsSync(join(root, id, 'state.json'))).sort();
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return [];
    throw err;
  }
}

/** Whether the container's first process still runs (a zombie does not). */
export function processAlive(state: RuntimeState): boolean {
  return state.pid > 0 && processStartTime(state.pid) === state.pidStartTime;
}

/** created | running | paused | stopped, from the kernel. */
export function statusOf(dir: RuntimeDir, state: RuntimeState, frozen: () => boolean): RuntimeStatus {
  if (!processAlive(state)) return 'stopped';
  if (existsSync(dir.fifo)) return 'created';
  return frozen() ? 'paused' : 'running';
}

/** The runtime spec's state document (runc's fields). */
export function stateDocument(state: RuntimeState, status: RuntimeStatus, spec: OciSpec): Record<string, unknown> {
  return {
    ociVersion: spec.ociVersion,
    id: state.id,
    pid: status === 'stopped' ? 0 : state.pid,
    status,
    bundle: state.bundle,
    rootfs: state.rootfs,
    created: state.created,
    owner: '',
    ...(Object.keys(spec.annotations ?? {}).length > 0 && { annotations: spec.annotations }),
  };
}
