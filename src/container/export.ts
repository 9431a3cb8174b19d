// A container's file system as tsrun reads and writes it from the host (cp, export, diff,
// commit), and `tsrun export` (docker export: the merged file system as a tar).
//
// Everything the container wrote is the container's to shape: a symlink `/trap -> /etc` or
// `-> ../../..` must never lead tsrun to the host's /etc. So container paths are never given
// to path-based calls. The container's root is opened once as a file descriptor, a path in it
// is resolved by the kernel with openat2(RESOLVE_IN_ROOT), which treats that fd as `/`, and
// trees are walked one directory fd at a time through `/proc/self/fd/<dirfd>/<name>` with
// O_NOFOLLOW: the kernel jumps to the exact directory the fd holds and looks up one name
// (overlay/walk.ts, and overlay/tar-writer.ts for the tars).
//
// Where the root fd comes from:
//   running or paused  /proc/<pid>/root of its first process: the container's own mount
//                      namespace, with its volumes (and /proc, /dev: export skips mounts)
//   created or exited  the overlay (lowerdir=..., upperdir, workdir) mounted in a throwaway
//                      mount namespace (`unshare -m` running a shell that mounts and then
//                      waits on its stdin): it vanishes with that process, so even a killed
//                      tsrun leaves no mount behind. The container's lock is held meanwhile,
//                      so `start` cannot mount the same upper dir at the same time.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { posix } from 'node:path';
import type { Writable } from 'node:stream';
import { TsrunError, errnoOf } from '../errors.js';
import { mountOptions } from '../overlay/mount-options.js';
import { fdPath, walk } from '../overlay/walk.js';
import { shiftedLayers, toContainerIds, usernsFilesFor, type IdShift } from '../namespaces/userns-files.js';
import { withLock } from '../sys/lock.js';
import * as libc from '../sys/libc.js';
import type { Found } from './lookup.js';
import type { ContainerState } from './record.js';
import { observe, processStartTime } from './status.js';

const { O_RDONLY, O_DIRECTORY } = fs.constants;
const O_CLOEXEC = libc.O_CLOEXEC;

export interface RootView {
  /** O_PATH fd of the container's `/`; valid until the callback returns. */
  fd: number;
  /** Mount points inside the view, relative (`proc`, `etc/hosts`): other file systems. */
  mountPoints: Set<string>;
  running: boolean;
  /** Set when the view shows host ids, not the container's (see withContainerRoot). */
  ids?: IdShift;
}

/**
 * Whether a user-namespaced container's files on disk carry host ids: yes where they are shifted
 * copies of the layers (the fallback where the store cannot be idmapped, userns-files.ts), its
 * root's files then belong to the first id of its map; no with an idmapped store, whose disk
 * holds the container's own ids (but see withContainerRoot: not what its mount shows the host).
 */
export function diskIdShift(found: Found, state: ContainerState): IdShift | undefined {
  const userns = found.record.options.userns;
  if (!userns) return undefined;
  // Never started: what its first start will use.
  const files = state.usernsFiles ?? usernsFilesFor(found.paths.storeRoot);
  return files === 'copy' ? { uidMap: userns.uidMap, gidMap: userns.gidMap } : undefined;
}

/**
 * Runs `fn` with the container's root open (see the top of this file). `write`: a stopped
 * container's overlay is mounted read-write (its upper dir receives the writes); otherwise the
 * upper dir is mounted as the top lower layer, which overlayfs makes read-only.
 */
export async function withContainerRoot<T>(found: Found, access: 'read' | 'write', fn: (view: RootView) => Promise<T>): Promise<T> {
  const { paths, record } = found;
  let view: RootView | undefined;
  const result = await withLock(paths.lock, async () => {
    const seen = observe(paths);
    if (seen.status === 'restarting') {
      throw new TsrunError('ESTATE', `container ${record.name} is restarting; try again once it runs or has stopped`);
    }
    const { userns } = record.options;
    if (seen.status === 'running' || seen.status === 'paused') {
      if (userns && access === 'write') {
        // Its overlay belongs to its user namespace, where host root is nobody: creating a file
        // there as host root fails (EOVERFLOW). docker's userns-remap copies through the daemon.
        throw new TsrunError(
          'ESTATE',
          `container ${record.name} runs in a user namespace, where tsrun cannot create files while it runs: stop it first, or pipe a tar through it (tar -c FILES | tsrun exec -i ${record.name} tar -x -C DIR)`,
        );
      }
      // Through the container's own mount the host sees host ids, idmapped or copied alike.
      const ids = userns && { uidMap: userns.uidMap, gidMap: userns.gidMap };
      view = { ...openProcessRoot(seen.pid, record.name), ...(ids && { ids }) };
      return undefined; // the lock is not needed: the container's own mount holds the upper dir
    }
    const ids = diskIdShift(found, seen.state);
    // Shifted upper, shifted lowers: the same copies the container runs on.
    const lowers = ids ? shiftedLayers(paths.storeRoot, record.lowerDirs, userns!) : record.lowerDirs;
    // Read-only: the upper dir as the top lower layer, which nothing can write into.
    const data =
      access === 'write'
        ? mountOptions({ lowers, upper: { dir: paths.upperRel, work: paths.workRel } })
        : mountOptions({ lowers: [paths.upperRel, ...lowers] });
    const mount = await PrivateMount.start(paths.storeRoot, data, paths.rootfs);
    try {
      const fd = fs.openSync(`/proc/${mount.pid}/root${paths.rootfs}`, libc.O_PATH | O_DIRECTORY | O_CLOEXEC);
      try {
        return { value: await fn({ fd, mountPoints: new Set(), running: false, ...(ids && { ids }) }) };
      } finally {
        fs.closeSync(fd);
      }
    } finally {
      await mount.stop();
    }
  });
  if (result) return result.value;
  try {
    return await fn(view!);
  } finally {
    fs.closeSync(view!.fd);
  }
}

function openProcessRoot(pid: number, name: string): RootView {
  const started = processStartTime(pid);
  let fd: number;
  let mountinfo: string;
  try {
    fd = fs.openSync(`/proc/${pid}/root`, libc.O_PATH | O_DIRECTORY | O_CLOEXEC);
    mountinfo = fs.readFileSync(`/proc/${pid}/mountinfo`, 'utf8');
  } catch (err) {
    throw new TsrunError('ESTATE', `container ${name} stopped while tsrun opened its file system`, { cause: err });
  }
  // The pid could have been reused between observe() and open(): the start time says.
  if (started === undefined || processStartTime(pid) !== started) {
    fs.closeSync(fd);
    throw new TsrunError('ESTATE', `container ${name} stopped while tsrun opened its file system`);
  }
  return { fd, mountPoints: mountPointsOf(mountinfo), running: true };
}

/** Field 5 of each /proc/<pid>/mountinfo line (octal escapes undone), without `/`. */
export function mountPointsOf(mountinfo: string): Set<string> {
  const out = new Set<string>();
  for (const line of mountinfo.split('\n')) {
    const field = line.split(' ')[4];
    if (!field) continue;
    const p = field.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (p !== '/') out.add(p.replace(/^\/+/, ''));
  }
  return out;
}

/**
 * An overlay mounted in a private mount namespace: `unshare -m` runs a shell that mounts, says
 * "ready", then waits on its stdin. Closing stdin (or tsrun dying) ends it and its namespace.
 */
class PrivateMount {
  private constructor(private readonly child: ReturnType<typeof spawn>) {}

  get pid(): number {
    return this.child.pid!;
  }

  static async start(cwd: string, data: string, target: string): Promise<PrivateMount> {
    const script = 'set -e; cd "$1"; mount -t overlay -o "$2" tsrun-view "$3"; echo ready; exec cat >/dev/null';
    const child = spawn('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'tsrun-view', cwd, data, target], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const ok = await new Promise<boolean>((resolve) => {
      child.stdout!.once('data', () => resolve(true));
      child.once('exit', () => resolve(false));
      child.once('error', (err) => ((stderr += err.message), resolve(false)));
    });
    if (!ok) {
      throw new TsrunError('EKERNEL', `mounting the container's file system (overlay in a private mount namespace): ${stderr.trim() || 'unshare failed'}`);
    }
    return new PrivateMount(child);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.stdin!.end();
    const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  }
}

/**
 * A system error as the user can read it: the kernel's word for it, without the /proc/self/fd
 * paths the copy works through (`copying a to c1:/b: EROFS: read-only file system`).
 */
export function failure(err: unknown, doing: string): TsrunError {
  if (err instanceof TsrunError) return err;
  const code = errnoOf(err);
  const text = err instanceof Error ? err.message.split(', ')[0]! : String(err);
  return new TsrunError('EINTERNAL', `${doing}: ${code && !text.startsWith(code) ? `${code}: ` : ''}${text}`, { cause: err });
}

// ---- paths in a root -------------------------------------------------------------------------

/** `/a/./b/../c/` → `a/c` (lexically, as docker's filepath.Clean: never above the root). */
export function cleanInRoot(p: string): string {
  return posix.normalize(`/${p}`).replace(/^\/+/, '').replace(/\/+$/, '');
}

/** openat2(rootFd, path, RESOLVE_IN_ROOT): `/` and `..` and every symlink stay inside. */
export function openInRoot(rootFd: number, rel: string, flags: number): number {
  return libc.openat2(rootFd, rel === '' ? '.' : rel, flags | O_CLOEXEC, libc.RESOLVE_IN_ROOT | libc.RESOLVE_NO_MAGICLINKS);
}

// ---- docker export -----------------------------------------------------------------------------

/**
 * The merged file system as a tar, as docker export writes it: no volumes, no /proc or /dev
 * contents; a mount point shows as the (empty) directory or file it is mounted on.
 */
export async function exportContainer(found: Found, out: Writable): Promise<void> {
  // The tar code (tar-stream) loads here, not with this file: diff and cp's reads need the rest.
  const { writeTar } = await import('../overlay/tar-writer.js');
  await withContainerRoot(found, 'read', async (view) => {
    const rootDir = fs.openSync(fdPath(view.fd), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    try {
      await writeTar(out, (w) =>
        walk(rootDir, '', async (e) => {
          const mounted = view.mountPoints.has(e.rel);
          await w.add(e, e.rel, { empty: mounted });
          return !mounted;
        }),
        view.ids && ((onDisk) => toContainerIds(view.ids, onDisk)),
      );
    } finally {
      fs.closeSync(rootDir);
    }
  }).catch((err: unknown) => {
    throw failure(err, `exporting container ${found.record.name}`);
  });
}
