#!/usr/bin/env node
// The `tsrun` command, dist/tsrun.cjs. It runs the rest of tsrun — the bundle of the command word
// it is given (dist/tsrun-<word>.cjs, cli/program.ts with that word's modules), else
// dist/tsrun-main.cjs (cli/main.ts, every command; scripts/bundle.mjs) — from V8's code cache when there is one:
// compiling that bundle is 10-17 ms of every start, most of which the cache saves. The cache is
// written after a command's first successful run, so it holds every function that run compiled,
// not only the bundle's top level (up to a V8 flag's change, for a command that changes one: a
// partial cache, see below); one per command, bundle and Node version, in a directory only this
// user can write (src/sys/code-cache.ts).
import Module from 'node:module';
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';
import { commandWord, versionOnly } from './command-word.js';
import { CODE_CACHE_NOW, codeCacheDir, codeCacheName, partialCacheName, readCodeCache, trustedDir, writeCodeCache, type MapFile } from '../src/sys/code-cache.js';
import { LOADED_ADDON } from '../src/sys/loaded-addon.js';

/** A hash of the bundle's content, put here when both are built (scripts/bundle.mjs). */
declare const TSRUN_BUNDLE_ID: string;
/** The bundle this launcher runs: tsrun-main.cjs (`tsrun`) or tsrun-runtime-main.cjs (`tsrun-runtime`). */
declare const TSRUN_BUNDLE_FILE: string;
/** How scripts/bundle.mjs begins every bundle: the function Node would wrap a CommonJS module in. */
declare const TSRUN_BUNDLE_WRAPPER: string;

/**
 * `tsrun`'s per-word bundles (scripts/bundle.mjs): command word → [bundle, its hash]. A command
 * line with another word, or none, runs TSRUN_BUNDLE_FILE, which has every command.
 */
declare const TSRUN_BUNDLES: Record<string, [file: string, id: string]>;

const args = process.argv.slice(2);
// `tsrun --version` is answered by any bundle: the smallest, the `version` command's.
const word = versionOnly(args) ? 'version' : commandWord(args);
const [bundleFile, bundleId] = (word !== undefined && Object.hasOwn(TSRUN_BUNDLES, word) && TSRUN_BUNDLES[word]) || [TSRUN_BUNDLE_FILE, TSRUN_BUNDLE_ID];
const dist = dirname(fileURLToPath(import.meta.url));
const file = join(dist, bundleFile);
const bundleRequire = Module.createRequire(file);
const mapFile = loadAddon(join(dirname(dist), 'native', 'build', 'tsrun-sys.node'))?.mapFile;
let source: string;
try {
  source = readBundle(file);
} catch (err) {
  process.stderr.write(`tsrun: cannot read ${file} (${(err as NodeJS.ErrnoException).code}): run \`npm run build\`\n`);
  process.exit(125);
}
// A bundle from another build (older ones were not wrapped) is refused aloud: run as it is, it
// could do nothing and exit 0.
if (!source.startsWith(TSRUN_BUNDLE_WRAPPER)) {
  process.stderr.write(`tsrun: ${file} is not a bundle this launcher runs: run \`npm run build\`\n`);
  process.exit(125);
}

const candidate = codeCacheDir();
const dir = candidate !== undefined && trustedDir(candidate) ? candidate : undefined;
const name = codeCacheName(word ?? 'help', bundleId);
const whole = dir === undefined ? undefined : readCodeCache(dir, name, mapFile);
const partial = whole === undefined && dir !== undefined ? readCodeCache(dir, partialCacheName(name), mapFile) : undefined;
const cached = whole ?? partial;
// Node >= 22.1 caches what loads from node_modules later (undici, tar-stream) in the same place.
if (dir !== undefined) (Module as { enableCompileCache?: (dir: string) => unknown }).enableCompileCache?.(join(dir, 'node'));

// The bundle is a CommonJS module in its function (above); V8 checks the cache against the source
// and its own version and flags, and compiles from the source when it rejects it. A script made
// here cannot import() (scripts/bundle.mjs makes sure the bundle does not).
const script = new vm.Script(source, {
  filename: file,
  ...(cached && { cachedData: cached }),
});
const rejected = cached === undefined || script.cachedDataRejected;
if (dir !== undefined && (rejected || partial !== undefined)) {
  // V8 stamps the cache with its flags, and rejects it at a start whose flags differ: a run that
  // changes one (src/sys/v8-flags.ts) takes its cache before, with what it compiled so far, and
  // keeps it as the partial one; a run that changes none writes the whole cache.
  let flagged = false;
  let taken: Buffer | undefined;
  (globalThis as Record<symbol, unknown>)[CODE_CACHE_NOW] = () => {
    flagged = true;
    if (rejected) taken ??= script.createCachedData(); // else the partial cache read is kept
  };
  process.once('exit', (code) => {
    if (code !== 0) return; // a failed run compiled less than a command needs
    try {
      if (!flagged) writeCodeCache(dir, name, script.createCachedData());
      else if (taken !== undefined) {
        // A whole cache V8 rejected would be read first at every start, and the partial never.
        if (whole !== undefined) rmSync(join(dir, name), { force: true });
        writeCodeCache(dir, partialCacheName(name), taken);
      }
    } catch {
      // no cache this time (out of memory, say): the next start compiles again
    }
  });
}
const mod = { exports: {} };
(script.runInThisContext() as (...args: unknown[]) => void)(mod.exports, bundleRequire, mod, file, dist);

/**
 * tsrun's addon (native/node/sys.c), loaded here rather than when the bundle first needs it, to
 * map the bundle and its code cache instead of reading them (inspect −3.6 ms, run −4 to −12 on
 * a 2-core VM, where a page fault costs ~15 us), and handed to the bundle (src/sys/libc.ts)
 * so that it is not looked for and loaded again. Without it (not built, or built before
 * mapFile), the files are read.
 */
function loadAddon(path: string): { mapFile?: MapFile } | undefined {
  const addon = { exports: {} as { mapFile?: MapFile } };
  try {
    process.dlopen(addon, path);
  } catch {
    return undefined;
  }
  (globalThis as Record<symbol, unknown>)[LOADED_ADDON] = addon.exports;
  return addon.exports;
}

/** The bundle's text: mapped (one-byte, no copy) when the addon can, else read as latin1. */
function readBundle(path: string): string {
  const fd = openSync(path, 'r');
  try {
    const mapped = mapFile?.(fd, true);
    // ASCII (scripts/bundle.mjs makes sure): latin1 reads it as UTF-8 would, twice as fast.
    return typeof mapped === 'string' ? mapped : readFileSync(fd, 'latin1');
  } finally {
    closeSync(fd);
  }
}
