// The build context: the directory COPY and ADD read from, with its .dockerignore, and the
// Dockerfile that comes with it.
//
//   tsrun build DIR         DIR itself; nothing is copied
//   tsrun build - < x.tar   the tar (plain, gzip, zstd) unpacked into a private temp dir
//                           (context-stdin.ts: the hostile-archive rules)
//   tsrun build - < Dockerfile   no context: an empty temp dir, the Dockerfile from stdin
//
// Every path from a Dockerfile or an archive is resolved by the kernel with the context root as
// `/` (context-sources.ts), so no symlink in the context leads outside it.
import * as fs from 'node:fs';
import { mkdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { TsrunError, errnoOf, wrap } from '../errors.js';
import { removeTree, tempName } from '../image/fsutil.js';
import * as libc from '../sys/libc.js';
import { IgnoreRules } from './context-ignore.js';
import { ContextRoot, cleanSource } from './context-sources.js';
import { MAX_DOCKERFILE_SIZE, readCapped, readStdinContext } from './context-stdin.js';

export { type FileHashes, resolveSources, sourcesDigest, walkSource, cleanSource } from './context-sources.js';
export { MAX_CONTEXT_ENTRIES, MAX_DOCKERFILE_SIZE } from './context-stdin.js';

export interface BuildContext {
  /** Absolute real path of the context directory (for `-`: a private temp dir the tar was unpacked into). */
  dir: string;
  /**
   * Whether a path relative to the context root (posix, no leading slash) is excluded by
   * .dockerignore: it or a directory above it matches, and no later `!` line re-includes it.
   */
  ignored(rel: string): boolean;
  /** Whether a `!` pattern may re-include something below the (excluded) directory `rel`; walks
   * descend into an excluded directory only then. Absent: always descend. */
  reincludesBelow?(rel: string): boolean;
  /** `tsrun build - < Dockerfile`: stdin held a Dockerfile, not an archive; the context is empty. */
  dockerfileFromStdin?: string;
  /** Removes a temp dir made for `-`. Idempotent. */
  close(): Promise<void>;
}

export interface SourceEntry {
  /** Absolute host path in the context, symlinks resolved inside it (never outside ctx.dir). */
  path: string;
  /** Path relative to the context root as the source named it (a symlink keeps its own name). */
  rel: string;
  /** Where `rel` resolved to, relative to the context root ('' for the root). */
  realRel?: string;
  /** lstat of `path`: for a source that is a symlink, of what it points to. */
  stat: fs.Stats;
}

export interface WalkEntry {
  /** Relative to the walked source ('' for the source itself). */
  rel: string;
  path: string;
  stat: fs.Stats;
}

export interface OpenContextOptions {
  /** A directory, or `-` for stdin. */
  path: string;
  stdin?: NodeJS.ReadableStream;
  /** Where to make temp dirs (same file system as the store). */
  tempRoot: string;
  /** Entries allowed in a context tar (default MAX_CONTEXT_ENTRIES). */
  maxEntries?: number;
}

type Origin = 'dir' | 'tar' | 'dockerfile';

class Context implements BuildContext {
  dockerfileFromStdin?: string;
  private closed = false;

  constructor(
    readonly dir: string,
    readonly origin: Origin,
    private rules: IgnoreRules,
    private readonly temp: boolean,
  ) {}

  // Arrow functions: callers may pass `ctx.ignored` around on its own.
  ignored = (rel: string): boolean => this.rules.ignored(rel);
  reincludesBelow = (rel: string): boolean => this.rules.reincludesBelow(rel);

  /** A `<Dockerfile>.dockerignore` replaces the context's .dockerignore (BuildKit's rule). */
  useIgnore(rules: IgnoreRules): void {
    this.rules = rules;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.temp) await removeTree(this.dir);
  }
}

export async function openContext(opts: OpenContextOptions): Promise<BuildContext> {
  if (opts.path !== '-') return openDirectory(opts.path);
  if (!opts.stdin) throw new TsrunError('EBUILD', 'the build context is "-" but there is no stdin to read it from');
  await mkdir(opts.tempRoot, { recursive: true, mode: 0o700 });
  const dir = path.join(opts.tempRoot, tempName('build-context-'));
  await mkdir(dir, { mode: 0o700 });
  try {
    const real = await realpath(dir);
    const got = await readStdinContext(opts.stdin, real, opts.maxEntries === undefined ? {} : { maxEntries: opts.maxEntries });
    if (got.kind === 'dockerfile') {
      const ctx = new Context(real, 'dockerfile', new IgnoreRules(), true);
      ctx.dockerfileFromStdin = got.text;
      return ctx;
    }
    return new Context(real, 'tar', contextIgnore(real), true);
  } catch (err) {
    await removeTree(dir);
    throw err;
  }
}

async function openDirectory(given: string): Promise<BuildContext> {
  let dir: string;
  try {
    dir = await realpath(given);
    if (!(await stat(dir)).isDirectory()) throw new TsrunError('EBUILD', `unable to prepare context: context must be a directory: ${given}`);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') throw new TsrunError('EBUILD', `unable to prepare context: path "${given}" not found`);
    throw wrap('EBUILD', `unable to prepare context: ${given}`, err);
  }
  return new Context(dir, 'dir', contextIgnore(dir), false);
}

/** The context root's .dockerignore (through the context's own symlinks, never outside it). */
function contextIgnore(dir: string): IgnoreRules {
  const root = new ContextRoot(dir);
  try {
    const text = readInContext(root, '.dockerignore', '.dockerignore');
    return new IgnoreRules(text ?? '');
  } finally {
    root.close();
  }
}

/**
 * The Dockerfile: `-f FILE` (relative to the current directory, and it may be outside the
 * context; for a context from stdin, a path inside the archive), `-f -` (stdin, with a
 * directory context), else `Dockerfile` — or `dockerfile` — in the context. A
 * `<Dockerfile>.dockerignore` beside it replaces the context's .dockerignore (BuildKit).
 */
export async function readDockerfile(ctx: BuildContext, file: string | undefined, stdin?: NodeJS.ReadableStream): Promise<{ text: string; name: string }> {
  const c = ctx instanceof Context ? ctx : undefined;
  const origin: Origin = c?.origin ?? 'dir';
  if (file === '-' && origin !== 'dir') throw new TsrunError('EBUILD', "invalid argument: can't use stdin for both build context and dockerfile");
  if (ctx.dockerfileFromStdin !== undefined) return checked(ctx.dockerfileFromStdin, file ?? 'Dockerfile');
  if (file === '-') {
    if (!stdin) throw new TsrunError('EBUILD', 'the Dockerfile is "-" but there is no stdin to read it from');
    return checked(await readCapped(stdin as AsyncIterable<string | Buffer>, 'the Dockerfile on stdin'), 'Dockerfile');
  }
  if (file === undefined || origin === 'tar') return fromContext(ctx, c, file);
  // A host path the user named: read as given, symlinks and all, like docker's CLI.
  const abs = path.resolve(file);
  const text = readHostFile(abs, file);
  if (text === undefined) throw new TsrunError('EBUILD', `unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat ${abs}: no such file or directory`);
  const ignore = readHostFile(`${abs}.dockerignore`, `${file}.dockerignore`);
  if (ignore !== undefined) c?.useIgnore(new IgnoreRules(ignore, `${file}.dockerignore`));
  return checked(text, file);
}

function fromContext(ctx: BuildContext, c: Context | undefined, file: string | undefined): { text: string; name: string } {
  const root = new ContextRoot(ctx.dir);
  try {
    const candidates = file === undefined ? ['Dockerfile', 'dockerfile'] : [cleanSource(file)];
    for (const rel of candidates) {
      const text = readInContext(root, rel, file ?? rel);
      if (text === undefined) continue;
      const ignore = readInContext(root, `${rel}.dockerignore`, `${rel}.dockerignore`);
      if (ignore !== undefined) c?.useIgnore(new IgnoreRules(ignore, `${rel}.dockerignore`));
      return checked(text, file ?? rel);
    }
    throw new TsrunError('EBUILD', `Cannot locate specified Dockerfile: ${file ?? 'Dockerfile'} (looked in the build context, ${ctx.dir})`);
  } finally {
    root.close();
  }
}

function checked(text: string, name: string): { text: string; name: string } {
  if (text.length === 0) throw new TsrunError('EBUILD', `the Dockerfile (${name}) cannot be empty`);
  return { text, name };
}

/** A small file inside the context (symlinks followed inside it); undefined if it is not there. */
function readInContext(root: ContextRoot, rel: string, name: string): string | undefined {
  let fd: number;
  try {
    // O_NONBLOCK: opening a fifo must not hang; readFd refuses anything but a file.
    fd = root.open(rel, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') return undefined;
    throw wrap('EBUILD', `reading ${name} in the build context`, err);
  }
  try {
    return readFd(fd, name);
  } finally {
    libc.close(fd);
  }
}

function readHostFile(file: string, name: string): string | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | libc.O_CLOEXEC);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') return undefined;
    throw wrap('EBUILD', `reading ${name}`, err);
  }
  try {
    return readFd(fd, name);
  } finally {
    fs.closeSync(fd);
  }
}

function readFd(fd: number, name: string): string {
  const st = fs.fstatSync(fd);
  if (!st.isFile()) throw new TsrunError('EBUILD', `${name} is not a regular file`);
  if (st.size > MAX_DOCKERFILE_SIZE) throw new TsrunError('EBUILD', `${name} is larger than ${MAX_DOCKERFILE_SIZE / 1024 / 1024} MiB`);
  const buf = Buffer.allocUnsafe(st.size + 1);
  let n = 0;
  for (;;) {
    const got = fs.readSync(fd, buf, n, buf.length - n, null);
    if (got === 0) break;
    n += got;
    if (n === buf.length) throw new TsrunError('EBUILD', `${name} grew while it was read`);
  }
  return buf.subarray(0, n).toString('utf8');
}
