// The few libc calls Node's `fs` does not have, through koffi (an FFI that ships its binary
// in the npm package). koffi and libc are loaded on first use, not at import, so commands
// that never call these pay nothing at startup. flock, which every command that changes state
// makes, and umount2 go through tsrun's own small addon instead (native/node/sys.c): koffi's
// load alone would cost those commands 13-17 ms.
//
// Every wrapper throws a Node-style error on failure (`code: 'EPERM'`, `errno`, `syscall`,
// `path`), so callers handle it exactly like an error from `fs`.
import { closeSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { constants as osConstants } from 'node:os';
import { getSystemErrorMap } from 'node:util';
import type { MapFile } from './code-cache.js';
import { LOADED_ADDON } from './loaded-addon.js';
import { nativeBuildFile } from './native-build.js';

type Koffi = typeof import('koffi');
type Fn = (...args: unknown[]) => number;

interface Libc {
  koffi: Koffi;
  mknod: Fn;
  setxattr: Fn;
  lsetxattr: Fn;
  fsetxattr: Fn;
  lgetxattr: Fn;
  llistxattr: Fn;
  fgetxattr: Fn;
  flistxattr: Fn;
  lremovexattr: Fn;
  syscall: Fn;
  close: Fn;
  mount: Fn;
  strerror: (errnum: number) => string;
  openHow: unknown;
}

let libc: Libc | undefined;

function load(): Libc {
  if (libc) return libc;
  const koffi = createRequire(import.meta.url)('koffi') as Koffi;
  const lib = koffi.load('libc.so.6');
  // glibc < 2.33 exported mknod only as an inline wrapper around __xmknod.
  let mknod: Fn;
  try {
    mknod = lib.func('int mknod(const char *path, uint32_t mode, uint64_t dev)');
  } catch {
    const xmknod = lib.func('int __xmknod(int ver, const char *path, uint32_t mode, uint64_t *dev)');
    mknod = (path, mode, dev) => xmknod(0, path, mode, [dev]);
  }
  libc = {
    koffi,
    mknod,
    setxattr: lib.func('int setxattr(const char *path, const char *name, const void *value, size_t size, int flags)'),
    lsetxattr: lib.func('int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags)'),
    fsetxattr: lib.func('int fsetxattr(int fd, const char *name, const void *value, size_t size, int flags)'),
    lgetxattr: lib.func('long lgetxattr(const char *path, const char *name, _Out_ void *value, size_t size)'),
    llistxattr: lib.func('long llistxattr(const char *path, _Out_ void *list, size_t size)'),
    fgetxattr: lib.func('long fgetxattr(int fd, const char *name, _Out_ void *value, size_t size)'),
    flistxattr: lib.func('long flistxattr(int fd, _Out_ void *list, size_t size)'),
    lremovexattr: lib.func('int lremovexattr(const char *path, const char *name)'),
    syscall: lib.func('long syscall(long number, ...)'),
    close: lib.func('int close(int fd)'),
    mount: lib.func('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)'),
    strerror: lib.func('const char *strerror(int errnum)') as unknown as (errnum: number) => string,
    // struct open_how from <linux/openat2.h>: three u64s, always 24 bytes.
    openHow: koffi.struct('open_how', { flags: 'uint64_t', mode: 'uint64_t', resolve: 'uint64_t' }),
  };
  return libc;
}

const errnoNames = new Map<number, string>(Object.entries(osConstants.errno).map(([name, n]) => [n, name]));

/** NodeJS.ErrnoException for the errno koffi saved right after the failed call. */
function fail(syscall: string, path?: string): never {
  const l = load();
  const errno = l.koffi.errno();
  return throwErrno(errno, l.strerror(errno).toLowerCase(), syscall, path);
}

/** The same for an errno the addon returned (libuv's wording of it: no koffi to load for strerror). */
function failWith(errno: number, syscall: string, path?: string): never {
  return throwErrno(errno, getSystemErrorMap().get(-errno)?.[1] ?? 'unknown error', syscall, path);
}

function throwErrno(errno: number, message: string, syscall: string, path?: string): never {
  const code = errnoNames.get(errno) ?? `E${errno}`;
  const where = path === undefined ? '' : ` '${path}'`;
  const err = new Error(`${code}: ${message}, ${syscall}${where}`) as NodeJS.ErrnoException;
  err.code = code;
  err.errno = -errno;
  err.syscall = syscall;
  if (path !== undefined) err.path = path;
  throw err;
}

// ---- device nodes ----------------------------------------------------------------------

export const S_IFIFO = 0o010000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;

/** glibc's makedev(): the 64-bit dev_t layout (12+20 bits of major, 8+24 of minor). */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major >>> 0);
  const mi = BigInt(minor >>> 0);
  return ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) | (mi & 0xffn);
}

/** mknod(2). `mode` includes the file type (S_IFCHR, S_IFBLK, S_IFIFO). */
export function mknod(path: string, mode: number, major = 0, minor = 0): void {
  if (load().mknod(path, mode, makedev(major, minor)) !== 0) fail('mknod', path);
}

// ---- extended attributes ----------------------------------------------------------------

/** setxattr(2): follows a symlink in the last component. */
export function setxattr(path: string, name: string, value: Buffer): void {
  if (load().setxattr(path, name, value, value.length, 0) !== 0) fail('setxattr', path);
}

/** lsetxattr(2): sets it on a symlink itself. */
export function lsetxattr(path: string, name: string, value: Buffer): void {
  if (load().lsetxattr(path, name, value, value.length, 0) !== 0) fail('lsetxattr', path);
}

export function fsetxattr(fd: number, name: string, value: Buffer): void {
  if (load().fsetxattr(fd, name, value, value.length, 0) !== 0) fail('fsetxattr');
}

// One buffer for every xattr read: XATTR_SIZE_MAX and XATTR_LIST_MAX are both 64 KiB.
let xattrScratch: Buffer | undefined;
const scratch = (): Buffer => (xattrScratch ??= Buffer.allocUnsafe(64 * 1024));

/** lgetxattr(2) of a path (not following it), fgetxattr(2) of an fd; undefined when not set. */
export function lgetxattr(file: string | number, name: string): Buffer | undefined {
  const l = load();
  const buf = scratch();
  const n = typeof file === 'number' ? l.fgetxattr(file, name, buf, buf.length) : l.lgetxattr(file, name, buf, buf.length);
  if (n < 0) {
    if (errnoNames.get(l.koffi.errno()) === 'ENODATA') return undefined;
    fail(typeof file === 'number' ? 'fgetxattr' : 'lgetxattr', typeof file === 'number' ? undefined : file);
  }
  return Buffer.from(buf.subarray(0, n));
}

/** llistxattr(2) of a path (not following it), flistxattr(2) of an fd: the attributes' names. */
export function llistxattr(file: string | number): string[] {
  const l = load();
  const buf = scratch();
  const n = typeof file === 'number' ? l.flistxattr(file, buf, buf.length) : l.llistxattr(file, buf, buf.length);
  if (n < 0) fail(typeof file === 'number' ? 'flistxattr' : 'llistxattr', typeof file === 'number' ? undefined : file);
  if (n === 0) return [];
  return buf.subarray(0, n).toString('latin1').split('\0').filter((s) => s !== '');
}

/** lremovexattr(2): removes it from a symlink itself, not what it points to. */
export function lremovexattr(path: string, name: string): void {
  if (load().lremovexattr(path, name) !== 0) fail('lremovexattr', path);
}

// ---- openat2: path resolution the kernel confines ------------------------------------------

const SYS_openat2 = 437; // the same number on every architecture (new syscall table)
export const O_PATH = 0o10000000;
export const O_DIRECTORY = 0o200000;
export const O_CLOEXEC = 0o2000000;
export const O_NOFOLLOW = 0o400000;
/** Treat dirfd as the root: `..` and absolute symlinks stay inside it (like chroot). */
export const RESOLVE_IN_ROOT = 0x10;
/** Fail rather than leave dirfd's tree (`..` above it, an absolute path or symlink). */
export const RESOLVE_BENEATH = 0x08;
/** Fail on any symlink on the way. */
export const RESOLVE_NO_SYMLINKS = 0x04;
/** Refuse /proc/<pid>/fd-style "magic" links while resolving. */
export const RESOLVE_NO_MAGICLINKS = 0x02;

/**
 * openat2(2): open `path` relative to `dirfd` with `resolve` flags. With RESOLVE_IN_ROOT the
 * kernel resolves every component (symlinks, `..`) as if dirfd were `/`, so nothing an
 * image's symlinks say can lead outside it — the thing JavaScript cannot check without a race.
 */
export function openat2(dirfd: number, path: string, flags: number, resolve: number, mode = 0): number {
  const l = load();
  const how = { flags: BigInt(flags), mode: BigInt(mode), resolve: BigInt(resolve) };
  const fd = l.syscall(SYS_openat2, 'int', dirfd, 'const char *', path, l.koffi.pointer(l.openHow as never), how, 'size_t', 24);
  if (fd < 0) fail('openat2', path);
  return Number(fd);
}

export function close(fd: number): void {
  if (load().close(fd) !== 0) fail('close');
}

// ---- mounts ------------------------------------------------------------------------------

export const MS_RDONLY = 0x1;
export const MS_NOSUID = 0x2;
export const MS_NODEV = 0x4;
export const MS_NOEXEC = 0x8;
export const MS_REMOUNT = 0x20;
export const MS_BIND = 0x1000;
export const MS_REC = 0x4000;
export const MS_PRIVATE = 0x40000;
export const MNT_DETACH = 0x2;

/** mount(2). `data` is the filesystem's option string (overlay: lowerdir=...). */
export function mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null = null): void {
  if (load().mount(source, target, fstype, flags, data) !== 0) fail('mount', target);
}

/** umount2(2), through the addon: a container's end unmounts its network namespace. */
export function umount2(target: string, flags = 0): void {
  const errno = addon().umount2(target, flags);
  if (errno !== 0) failWith(errno, 'umount2', target);
}

// ---- advisory locks ------------------------------------------------------------------------

const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;

/**
 * flock(fd, LOCK_EX|LOCK_NB): true when taken, false when another open file holds it. The
 * kernel drops the lock when its holder dies, so a killed process never leaves a stale lock.
 * Non-blocking on purpose: a blocking call would freeze Node's event loop; callers poll.
 */
export function tryLockExclusive(fd: number): boolean {
  const errno = addon().flock(fd, LOCK_EX | LOCK_NB);
  if (errno === 0) return true;
  if (errno === osConstants.errno.EWOULDBLOCK || errno === osConstants.errno.EAGAIN) return false;
  return failWith(errno, 'flock');
}

export function unlock(fd: number): void {
  const errno = addon().flock(fd, LOCK_UN);
  if (errno !== 0) failWith(errno, 'flock');
}

// ---- memory ---------------------------------------------------------------------------------

/**
 * Lets glibc keep freed memory for the next allocations instead of handing it back to the
 * kernel (see native/node/sys.c): for the commands that stream layers, whose buffers would
 * otherwise fault in anew, page by page. Process-wide and lasting; false where it could not
 * be set (not glibc, or no addon built), which only costs speed.
 */
export function keepFreedMemory(): boolean {
  try {
    return addon().keepFreedMemory(256 * 1024 * 1024, 4 * 1024 * 1024);
  } catch {
    return false;
  }
}

/** Back to glibc's defaults (128 KiB each), and what is free handed back to the kernel
 * (malloc_trim): once the layers are done, in a process that goes on (`run` after its pull). */
export function releaseFreedMemory(): void {
  addonWith('releaseFreedMemory')?.releaseFreedMemory!();
}

/** V8's flags through the addon (native/node/sys.c), without loading node:v8 (4-7 ms); false
 * when the addon cannot (not built, built before setV8Flags, a Node that does not export it). */
export function setV8Flags(flags: string): boolean {
  return addonWith('setV8Flags')?.setV8Flags!(flags) ?? false;
}

// ---- processes ------------------------------------------------------------------------------

/** A process started by spawnPiped: its pid and our ends of its stdin, stdout and stderr. */
export interface PipedProcess {
  pid: number;
  stdin: number;
  stdout: number;
  stderr: number;
}

/**
 * Starts argv[0] (found on PATH) with pipes for its fds 0-2, by posix_spawnp (native/node/sys.c):
 * ~1 ms where Node's spawn, which forks, takes 7-8 on a VM. Undefined without the addon (the
 * caller then uses child_process). Throws the errno as a system error (ENOENT: not installed).
 */
export function spawnPiped(argv: string[]): PipedProcess | undefined {
  const native = addonWith('spawnPiped');
  if (!native) return undefined;
  const r = native.spawnPiped(argv);
  if (typeof r === 'number') return failWith(-r, 'posix_spawnp', argv[0]);
  const [pid, stdin, stdout, stderr] = r;
  return { pid, stdin, stdout, stderr };
}

/** waitpid(2) for a child of spawnPiped, once its output has ended: its exit code, or the signal that killed it. */
export function waitExit(pid: number): { code: number | null; signal: number | null } {
  const status = addon().waitExit(pid);
  if (status < 0) return failWith(-status, 'waitpid');
  const signal = status & 0x7f;
  return signal === 0 ? { code: (status >> 8) & 0xff, signal: null } : { code: null, signal };
}

/**
 * Starts the container's helper by posix_spawnp (native/node/sys.c), as child_process would with
 * stdio [...stdio, 'pipe', 3, 4, ...] and `detached`: its fds 0-2 are these ('ignore':
 * /dev/null), fd 3 its end of a socketpair whose other end is `channel`, our fds
 * 3..3+preserve-1 its 4.., in a session of its own. Undefined without the addon; throws the
 * errno as a system error.
 */
export function spawnHelper(path: string, args: string[], stdio: Array<number | 'ignore'>, preserve: number): { pid: number; channel: number } | undefined {
  const native = addonWith('spawnHelper');
  if (!native) return undefined;
  const r = native.spawnHelper(path, args, stdio.map((f) => (f === 'ignore' ? -1 : f)), preserve);
  if (typeof r === 'number') return failWith(-r, 'posix_spawnp', path);
  return { pid: r[0], channel: r[1] };
}

/** waitpid(pid, WNOHANG) for a child of spawnHelper: whether it has ended (and is reaped now). */
export function reapIfGone(pid: number): boolean {
  return addon().reapIfGone(pid) !== -1;
}

/**
 * Reads the socket `fd` on a thread of the addon's (native/node/sys.c) and hands each chunk to
 * onChunk on the event loop, then `onChunk(null, errno)` once at the end (0: end of file);
 * until then the event loop waits for it. The fd stays ours: to write to, and to close after
 * the end, never before; it is made blocking. Main thread only. False without the addon (the
 * caller then uses node:net); throws if no thread could be started.
 */
export function watchChannel(fd: number, onChunk: (chunk: Buffer | null, errno: number) => void): boolean {
  const native = addonWith('watchChannel');
  if (!native) return false;
  const err = native.watchChannel!(fd, onChunk);
  if (err !== 0) return failWith(-err, 'watchChannel');
  return true;
}

/**
 * watchChannel for text: onText with each chunk (UTF-8 decoded across chunks), then the fd
 * closed and onEnd once. False where the addon cannot watch (none, an older one, no thread):
 * the fd is then still the caller's.
 */
export function watchText(fd: number, onText: (text: string) => void, onEnd: () => void): boolean {
  const decoder = new TextDecoder();
  try {
    return watchChannel(fd, (chunk) => {
      if (chunk) return onText(decoder.decode(chunk, { stream: true }));
      try {
        closeSync(fd);
      } finally {
        onEnd();
      }
    });
  } catch {
    return false;
  }
}

/** All of `text` to a blocking fd; false if the reader has gone (EPIPE) or the write failed. */
export function writeAll(fd: number, text: string): boolean {
  const bytes = Buffer.from(text, 'utf8');
  try {
    for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done);
    return true;
  } catch {
    return false;
  }
}

/** shutdown(2) both ways of a watched channel: its read ends, and its end follows. */
export function shutdownChannel(fd: number): void {
  addon().shutdownChannel!(fd);
}

/**
 * Binds `address`:`port` and lets go at once, as Node's listen() (tcp) or dgram's bind (udp)
 * would (native/node/sys.c): the port bound, the kernel's choice for 0. Undefined without the
 * addon, or for an address that is no IP literal (the caller then asks node:net or node:dgram);
 * throws the errno as a system error (EADDRINUSE: a host process has it).
 */
export function testBind(protocol: 'tcp' | 'udp', address: string, port: number): number | undefined {
  const native = addonWith('testBind');
  if (!native) return undefined;
  const r = native.testBind!(protocol, address, port);
  if (r === -osConstants.errno.EAFNOSUPPORT) return undefined;
  if (r < 0) return failWith(-r, 'bind', `${address}:${port}`);
  return r;
}

/** native/build/tsrun-sys.node (native/node/sys.c): what hot paths need, without loading koffi. */
interface SysAddon {
  /** [pid, channel], or a negative errno. */
  spawnHelper(path: string, args: string[], stdio: number[], preserve: number): [number, number] | number;
  /** The exit status, -1 while it runs, -2 if it is not our child. */
  reapIfGone(pid: number): number;
  /** 0, or the errno of the failed call. */
  flock(fd: number, operation: number): number;
  umount2(path: string, flags: number): number;
  keepFreedMemory(trimBytes: number, mmapBytes: number): boolean;
  releaseFreedMemory?(): void;
  /** [pid, stdin, stdout, stderr], or a negative errno. */
  spawnPiped(argv: string[]): [number, number, number, number] | number;
  /** waitpid's status, or a negative errno. */
  waitExit(pid: number): number;
  /** 0, or a negative errno (no thread, no memory, or fcntl's). */
  watchChannel?(fd: number, onChunk: (chunk: Buffer | null, errno: number) => void): number;
  /** 0, or shutdown's errno. */
  shutdownChannel?(fd: number): number;
  /** The port bound, or a negative errno. */
  testBind?(protocol: 'tcp' | 'udp', address: string, port: number): number;
  /** The file mapped (a latin1 string, or a read-only Buffer), or undefined (the launcher's). */
  mapFile?: MapFile;
  /** Whether V8 took the flags. */
  setV8Flags?(flags: string): boolean;
}

let sys: SysAddon | undefined;

/** The addon if it is built and has `fn` (one built before `fn` was added has not): else the
 * caller does without it (child_process instead of posix_spawnp). */
function addonWith(fn: keyof SysAddon): SysAddon | undefined {
  try {
    const native = addon();
    return typeof native[fn] === 'function' ? native : undefined;
  } catch {
    return undefined;
  }
}

function addon(): SysAddon {
  sys ??= ((globalThis as Record<symbol, unknown>)[LOADED_ADDON] as SysAddon | undefined) ?? (createRequire(import.meta.url)(nativeBuildFile('tsrun-sys.node')) as SysAddon);
  return sys;
}
