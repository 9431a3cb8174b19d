#!/usr/bin/env node
// Bundles tsc's output: dist/cli/main.js and everything it imports into dist/tsrun-main.cjs; the
// launcher that runs it from V8's code cache into dist/tsrun.cjs, the `tsrun` command; the unpack
// worker into dist/unpack-worker-thread.js. Runs from `npm run build`.
//
// Why: Node resolves, reads, compiles and links an ES module at a time; `tsrun run` needs ~90 of
// them, and that was a third of its start-up time. One CommonJS file is read and compiled once,
// and esbuild keeps each module's code behind a function run on first import, so a command still
// runs only its own modules. The npm packages loaded through createRequire (undici, tar-stream,
// koffi, fzstd) stay outside: they load from node_modules when a command needs them.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// Whitespace and syntax minified, names kept (stack traces still name functions): a third
// smaller, so a third less to read and scan on every start (~4 ms of `run` on a 2-core VM).
const common = { bundle: true, platform: 'node', target: 'node20', logLevel: 'warning', legalComments: 'none', minifyWhitespace: true, minifySyntax: true };

// A CommonJS script has no import.meta: its URL is the bundle's own (files found relative to it,
// native/build/tsrun-helper and package.json, are found by walking up from dist/ either way).
const cjs = { ...common, format: 'cjs', define: { 'import.meta.url': 'importMetaUrl' }, inject: [join(root, 'scripts/import-meta-url.js')], plugins: [lazyChildProcess()] };

/**
 * commander requires node:child_process at load, for subcommands that are executables of their
 * own, which tsrun has none of; loading it (with net and stream) is ~5 ms of every `ps`,
 * `inspect` or `--version` on a small VM. Here its one use, spawn, requires it when called.
 */
function lazyChildProcess() {
  const line = "const childProcess = require('node:child_process');";
  return {
    name: 'lazy-child-process',
    setup(b) {
      b.onLoad({ filter: /[\\/]commander[\\/]lib[\\/]command\.js$/ }, (args) => {
        const text = readFileSync(args.path, 'utf8');
        const uses = text.match(/childProcess\.\w+/g) ?? [];
        if (!text.includes(line) || uses.some((u) => u !== 'childProcess.spawn')) {
          return { errors: [{ text: `commander changed: ${args.path} no longer has "${line}" with only childProcess.spawn after it; update lazyChildProcess() in scripts/bundle.mjs` }] };
        }
        return { contents: text.replace(line, "const childProcess = { spawn: (...a) => require('node:child_process').spawn(...a) };"), loader: 'js' };
      });
    },
  };
}
// The launcher runs a bundle as a vm.Script, which has no import(): everything must be bundled
// or required (a builtin: a static import; an npm package: createRequire).
async function bundle(entry, outfile) {
  const out = await build({ ...cjs, entryPoints: [join(root, entry)], outfile: join(root, outfile), metafile: true, write: false });
  const dynamic = Object.values(out.metafile.outputs).flatMap((o) => o.imports).filter((i) => i.kind === 'dynamic-import');
  if (dynamic.length > 0) {
    console.error(`bundle: import() of ${dynamic.map((i) => i.path).join(', ')} in ${entry} would fail at run time: import it statically`);
    process.exit(1);
  }
  const [code] = out.outputFiles;
  pending.set(outfile, `${WRAPPER}${asciiOnly(code.text)}\n})`);
}

/**
 * A bundle is a CommonJS module already wrapped in the function Node would wrap it in, so that
 * the launcher compiles the file's text as it is (cli/launcher.ts: mapped, not copied into a
 * string of its own). The launcher checks that a bundle starts so (TSRUN_BUNDLE_WRAPPER).
 */
const WRAPPER = '(function (exports, require, module, __filename, __dirname) {';

/**
 * The bundles, kept until the launchers are written: the launchers go first, so that a `tsrun`
 * starting mid-build, or after a build that died, is a new launcher that refuses an old
 * bundle aloud ("run npm run build"), never an old one (from before bundles came wrapped) that
 * would wrap a new bundle again and exit 0 having run nothing.
 */
const pending = new Map(); // dist-relative outfile → text

/**
 * The launcher reads a bundle as latin1: a one-byte string, read about twice as fast as UTF-8
 * is decoded, or mapped as it is (cli/launcher.ts). That reads ASCII right, and esbuild writes
 * strings, regular expressions and names as ASCII escapes; what it copies as it is, comments,
 * may hold any character: escaped here, which in a comment changes no code.
 */
function asciiOnly(text) {
  return text.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * Written beside and renamed into place, never rewritten in place: a running tsrun may have the
 * old bundle mapped (native/node/sys.c's mapFile), and a file truncated under a mapping kills
 * its reader with SIGBUS; renamed, the old file lives on until its last reader is done.
 */
function writeAtomic(file, text, mode = 0o644) {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, text);
    chmodSync(tmp, mode);
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

await bundle('dist/cli/main.js', 'dist/tsrun-main.cjs');
const words = await commandBundles();
// The launcher names the bundle's code cache by a hash of the bundle (src/sys/code-cache.ts).
const bundleId = (file) => createHash('sha256').update(pending.get(`dist/${file}`)).digest('hex').slice(0, 16);
async function launcher(bundleFile, outfile, byWord = {}) {
  const bundles = Object.fromEntries(Object.entries(byWord).map(([word, file]) => [word, [file, bundleId(file)]]));
  const out = await build({
    ...cjs,
    entryPoints: [join(root, 'dist/cli/launcher.js')],
    outfile: join(root, 'dist', outfile),
    write: false,
    define: {
      ...cjs.define,
      TSRUN_BUNDLE_ID: JSON.stringify(bundleId(bundleFile)),
      TSRUN_BUNDLE_FILE: JSON.stringify(bundleFile),
      TSRUN_BUNDLES: JSON.stringify(bundles),
      TSRUN_BUNDLE_WRAPPER: JSON.stringify(WRAPPER),
    },
  });
  writeAtomic(join(root, 'dist', outfile), out.outputFiles[0].text, 0o755);
}
await launcher('tsrun-main.cjs', 'tsrun.cjs', words);

/**
 * One bundle per command word: cli/program.ts with only the modules that register that word
 * (cli/main.ts's table), so that `tsrun ps` reads and compiles 0.4 MB, not the 1.1 MB of every
 * command (about 15 ms of every start). Words whose modules are the same share a bundle. Each is
 * in dist/ itself, beside the files bundles find relative to their own path (the unpack worker).
 * Returns word → bundle file; the launcher runs the full bundle for any other command line.
 */
async function commandBundles() {
  const source = readFileSync(join(root, 'cli/main.ts'), 'utf8');
  const start = source.indexOf('export const MODULES');
  const table = start < 0 ? '' : source.slice(start, source.indexOf('];', start));
  const entries = [...table.matchAll(/\[\(\) => import\('\.\/([a-z-]+)\.js'\), \[([^\]]*)\]\]/g)].map((m) => ({
    module: m[1],
    words: [...m[2].matchAll(/'([a-z-]+)'/g)].map((w) => w[1]),
  }));
  if (entries.length < 20 || !entries.some((e) => e.module === 'run')) {
    console.error('bundle: cannot read the command table in cli/main.ts (one `[() => import(\'./x.js\'), [...]]` per module)');
    process.exit(1);
  }
  const groups = new Map(); // module list → words
  for (const word of new Set(entries.flatMap((e) => e.words))) {
    if (word === 'completion') continue; // describes every command: the full bundle
    const modules = entries.filter((e) => e.words.includes(word)).map((e) => e.module);
    const key = modules.join(',');
    groups.set(key, [...(groups.get(key) ?? []), word]);
  }
  const dir = join(root, 'dist/cli/words');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const byWord = {};
  for (const [key, groupWords] of groups) {
    const name = groupWords[0];
    const loaders = key.split(',').map((m) => `[() => import('../${m}.js'), ${JSON.stringify(entries.find((e) => e.module === m).words)}]`);
    writeFileSync(join(dir, `${name}.js`), `import { runTsrun } from '../program.js';\nvoid runTsrun([${loaders.join(', ')}]);\n`);
    await bundle(`dist/cli/words/${name}.js`, `dist/tsrun-${name}.cjs`);
    for (const w of groupWords) byWord[w] = `tsrun-${name}.cjs`;
  }
  return byWord;
}

// tsrun-runtime, runc's command line (cli/runtime.ts): a bundle and a launcher of its own, since
// podman and containerd start it for every step of a container's life.
await bundle('dist/cli/runtime.js', 'dist/tsrun-runtime-main.cjs');
await launcher('tsrun-runtime-main.cjs', 'tsrun-runtime.cjs');
// The launchers are in place: now their bundles (see `pending`).
for (const [outfile, text] of pending) writeAtomic(join(root, outfile), text);

// The worker is started by URL, './unpack-worker-thread.js' next to the module that starts it:
// dist/src/image/ in tsc's output, dist/ in the bundle. As an ES module it keeps import.meta.
await build({
  ...common,
  entryPoints: [join(root, 'dist/src/image/unpack-worker-thread.js')],
  outfile: join(root, 'dist/unpack-worker-thread.js'),
  format: 'esm',
});
