// V8's code cache for tsrun's own bundle (see cli/launcher.ts): where it is kept, and the checks
// that make it safe to load. A code cache is compiled code that V8 runs without parsing the
// source again, so whoever can write it can run code as the user who loads it (root, mostly).
// It is therefore read only from a directory that the user owns and nobody else may write to,
// and it is never kept anywhere another user chooses (a shared /tmp, a home under sudo).
import { closeSync, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, constants } from 'node:fs';
import { join } from 'node:path';

/** The launcher's, under this registered symbol, called by a command about to change a V8 flag
 * (src/sys/v8-flags.ts): the launcher takes the bundle's code cache now if it is to write one,
 * and keeps it as the partial cache. */
export const CODE_CACHE_NOW = Symbol.for('tsrun.code-cache-now');

/** TSRUN_CODE_CACHE: a directory to keep it in instead, or "off". */
export const CODE_CACHE_ENV = 'TSRUN_CODE_CACHE';

/**
 * Where the cache lives: /var/cache/tsrun for root; $XDG_CACHE_HOME/tsrun (~/.cache/tsrun) for
 * anyone else, rootless tsrun's second process included (it is root only in its own user
 * namespace, TSRUN_USERNS set); undefined when turned off.
 */
export function codeCacheDir(env: NodeJS.ProcessEnv = process.env, euid = process.geteuid?.() ?? 0): string | undefined {
  const chosen = env[CODE_CACHE_ENV];
  if (chosen === 'off') return undefined;
  if (chosen) return chosen;
  if (euid === 0 && !env.TSRUN_USERNS) return '/var/cache/tsrun';
  const base = env.XDG_CACHE_HOME || (env.HOME ? join(env.HOME, '.cache') : undefined);
  return base ? join(base, 'tsrun') : undefined;
}

/**
 * A directory fit to hold compiled code: made if missing (0700), then it must be a directory, not
 * a symlink, owned by this user, and writable by nobody else. Anything else: no cache.
 */
export function trustedDir(dir: string, euid = process.geteuid?.() ?? 0): boolean {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = lstatSync(dir);
    return st.isDirectory() && st.uid === euid && (st.mode & 0o022) === 0;
  } catch {
    return false;
  }
}

/**
 * The cache file of one command, Node version and bundle. V8 itself rejects code from another V8
 * version or flags, or for a source of another length, but not an edited source of the same
 * length; and npm gives every file it installs the same mtime. So the bundle is named by a hash
 * of its content, taken when it is built (scripts/bundle.mjs). Per command, because what is
 * cached is what the run compiled: `ps` and `run` compile different functions.
 */
export function codeCacheName(command: string, bundleId: string): string {
  const word = /^[a-z][a-z-]{0,30}$/.test(command) ? command : 'other';
  return `${word}.${process.version}-${process.arch}-${bundleId}.v8`;
}

/**
 * The cache a run took before it changed a V8 flag (src/sys/v8-flags.ts), with what it had
 * compiled by then: V8 would reject one made after. It serves until a run that changes no flag
 * (a `run` of an image in the store, after one that pulled it) writes the whole one.
 */
export function partialCacheName(name: string): string {
  return name.replace(/\.v8$/, '.partial.v8');
}

/** native/node/sys.c's mapFile: a file's bytes, mapped, as a string or a Buffer; undefined when it cannot. */
export type MapFile = (fd: number, asString: boolean) => string | Buffer | undefined;

/**
 * The cached code, if there is a regular file of ours at that name: mapped by `map` when given
 * (no copy; the cache is only ever replaced by rename, never rewritten in place), else read.
 */
export function readCodeCache(dir: string, name: string, map?: MapFile): Buffer | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(join(dir, name), constants.O_RDONLY | constants.O_NOFOLLOW);
    const st = fstatSync(fd);
    if (!st.isFile() || st.uid !== (process.geteuid?.() ?? 0)) return undefined;
    const mapped = map?.(fd, false);
    return mapped instanceof Buffer ? mapped : readFileSync(fd);
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Keep the code under that name, replacing it whole (a reader sees the old file or the new one),
 * and drop this command's caches of other bundles. Best effort: a full disk
 * or a read-only directory only means the next start compiles again.
 */
export function writeCodeCache(dir: string, name: string, data: Buffer): void {
  const tmp = join(dir, `.${name}.${process.pid}`);
  try {
    writeFileSync(tmp, data, { mode: 0o600, flag: 'wx' });
    renameSync(tmp, join(dir, name));
    // The command's caches of other bundles (earlier builds); another Node's of this one stay,
    // and a whole cache replaces the partial one (partialCacheName).
    const command = name.slice(0, name.indexOf('.') + 1);
    const bundle = `${name.slice(name.lastIndexOf('-')).replace(/(\.partial)?\.v8$/, '')}.`;
    for (const old of readdirSync(dir)) {
      if (old.startsWith(command) && old.endsWith('.v8') && !old.includes(bundle)) rmSync(join(dir, old), { force: true });
    }
    if (!name.endsWith('.partial.v8')) rmSync(join(dir, partialCacheName(name)), { force: true });
  } catch {
    rmSync(tmp, { force: true });
  }
}
