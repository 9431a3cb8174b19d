#!/usr/bin/env node
// Builds the native helper (native/*.c → native/build/tsrun-helper), the fronts of tsrun-runtime
// (native/runtime/ → native/build/tsrun-runtime) and of tsrun (native/front/ →
// native/build/tsrun), and the flock addon (native/node/) with the system C compiler.
// Runs from `npm install`/`npm ci` (the "prepare" script) and from `npm run build`.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cc = process.env.CC || 'cc';
const probe = spawnSync(cc, ['--version'], { stdio: 'ignore' });
if (probe.error || probe.status !== 0) {
  console.error(
    `tsrun: cannot build the native helper: no C compiler (${cc}) found.\n` +
      `Install one, e.g. on Debian/Ubuntu: apt-get install -y gcc libc6-dev`,
  );
  process.exit(1);
}
const sources = [...readdirSync(join(root, 'native')), ...readdirSync(join(root, 'native', 'shared')).map((f) => `shared/${f}`)]
  .filter((f) => f.endsWith('.c'))
  .map((f) => join(root, 'native', f));
mkdirSync(join(root, 'native', 'build'), { recursive: true });
const out = join(root, 'native', 'build', 'tsrun-helper');
// -s: stripped. The helper copies itself into memory once per container (native/main.c,
// sealed_self), so its symbols would cost every container; build without it to debug with gdb.
// Each binary is linked under a temporary name and renamed into place: a container started
// while this runs gets the old binary or the new one, never ENOENT or a half-written file.
const args = ['-std=gnu11', '-O2', '-s', '-Wall', '-Wextra', '-Werror=implicit-function-declaration',
  '-D_GNU_SOURCE', '-o', `${out}.new`, ...sources];
const r = spawnSync(cc, args, { stdio: 'inherit' });
if (r.status !== 0) {
  console.error(`tsrun: building the native helper failed (${cc} ${args.join(' ')})`);
  process.exit(1);
}
renameSync(`${out}.new`, out);

// The fronts, small programs that answer what they can without starting Node and run the
// TypeScript command for the rest: tsrun-runtime's (start, kill, delete: native/runtime/fast.c)
// and tsrun's (exec and ps: native/front/). Both use native/shared/.
const cFiles = (dir) => readdirSync(join(root, 'native', dir)).filter((f) => f.endsWith('.c')).map((f) => join(root, 'native', dir, f));
const frontArgs = (dir, out) => ['-std=gnu11', '-O2', '-s', '-Wall', '-Wextra', '-Werror=implicit-function-declaration',
  '-D_GNU_SOURCE', '-o', out, ...cFiles(dir), ...cFiles('shared')];
for (const [dir, name] of [['runtime', 'tsrun-runtime'], ['front', 'tsrun']]) {
  const frontOut = join(root, 'native', 'build', name);
  let args = frontArgs(dir, `${frontOut}.new`);
  if (dir === 'front') {
    // tsrun's `ps` (native/front/ps.c) reads the store's JSON with json-c >= 0.14 (Debian's
    // libjson-c-dev), linked in statically: the front must run even where the shared library is
    // gone, if only to hand over to Node. Without it the front is built without ps, and every
    // `ps` runs through Node.
    const withPs = [...args, '-Wl,-Bstatic', '-ljson-c', '-Wl,-Bdynamic', '-lm'];
    const tried = spawnSync(cc, withPs, { encoding: 'utf8' });
    if (tried.status === 0) {
      process.stderr.write(tried.stderr); // the compiler's warnings, if any
      renameSync(`${frontOut}.new`, frontOut);
      continue;
    }
    const why = (tried.stderr || tried.error?.message || '').split('\n').filter(Boolean).slice(0, 3).join('\n  ');
    console.error(`tsrun: the native front is built without its own \`ps\` (it needs json-c >= 0.14 and its static library: apt-get install libjson-c-dev):\n  ${why}`);
    args = [...args.filter((a) => !a.endsWith('/ps.c')), '-DTSRUN_FRONT_NO_PS'];
  }
  const f = spawnSync(cc, args, { stdio: 'inherit' });
  if (f.status !== 0) {
    console.error(`tsrun: building ${name}'s front failed (${cc} ${args.join(' ')})`);
    process.exit(1);
  }
  renameSync(`${frontOut}.new`, frontOut);
}

// tsrun-sys.node: flock(2) for Node without koffi's load time (native/node/sys.c). Node-API's
// headers come from the node-api-headers package; the symbols resolve against Node at load.
const napiInclude = join(root, 'node_modules', 'node-api-headers', 'include');
const addonOut = join(root, 'native', 'build', 'tsrun-sys.node');
const addonArgs = ['-std=gnu11', '-O2', '-s', '-Wall', '-Wextra', '-Werror=implicit-function-declaration', '-D_GNU_SOURCE',
  '-shared', '-fPIC', '-pthread', '-I', napiInclude, '-o', `${addonOut}.new`, join(root, 'native', 'node', 'sys.c'), '-ldl'];
const a = spawnSync(cc, addonArgs, { stdio: 'inherit' });
if (a.status !== 0) {
  console.error(`tsrun: building tsrun-sys.node failed (${cc} ${addonArgs.join(' ')}); is node-api-headers installed (npm ci)?`);
  process.exit(1);
}
renameSync(`${addonOut}.new`, addonOut);
