// The `tsrun` command runs its bundle from V8's code cache (cli/launcher.ts): written after a
// command's first successful run, used as it is afterwards, rewritten when V8 rejects it, and
// never kept where another user could write.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePrivileged, repoRoot, TestEnv } from './helpers/env.js';
import { loadBusybox } from './helpers/images.js';
import { pushLayout, startRegistry } from './helpers/registry.js';

describePrivileged('the tsrun launcher and its code cache', () => {
  let env: TestEnv;
  let caches: string;
  let n = 0;
  const cacheDir = () => join(caches, String(n++));
  const files = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.v8')) : []);
  const tsrun = (dir: string, ...args: string[]) => env.run(args, { env: { TSRUN_CODE_CACHE: dir } });
  /** The launcher itself, without the native front in front (which answers a plain ps alone). */
  const viaNode = (args: string[], extra: NodeJS.ProcessEnv = {}) => {
    const r = spawnSync(process.execPath, env.args(args), { encoding: 'utf8', env: { ...process.env, ...env.env, ...extra }, timeout: 30_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  beforeAll(() => {
    env = new TestEnv('launcher');
    caches = mkdtempSync(join(tmpdir(), 'tsrun-test-code-caches-'));
  });
  afterAll(async () => {
    rmSync(caches, { recursive: true, force: true });
    await env.cleanup();
  });

  it('runs a container without loading a module from node_modules (tar-stream, undici: the commands that need them)', () => {
    const image = loadBusybox(env);
    // Every require() Node resolves, but the launcher's own entry, is written down.
    const hook = join(env.root, 'resolve-hook.cjs');
    const log = join(env.root, 'resolved.txt');
    writeFileSync(hook, `const M = require('module'); const fs = require('fs'); const orig = M._resolveFilename;
M._resolveFilename = function (req, ...rest) { if (!req.startsWith('node:')) fs.appendFileSync(${JSON.stringify(log)}, req + '\\n'); return orig.call(this, req, ...rest); };\n`);
    const r = env.run(['run', '--rm', '--network', 'none', image, 'true'], { env: { NODE_OPTIONS: `--require=${hook}` } });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const resolved = readFileSync(log, 'utf8').split('\n').filter(Boolean);
    // tsrun's own addon (native/build/tsrun-sys.node: locks, posix_spawnp of the helper) is no
    // npm package: it loads in well under a millisecond.
    expect(resolved.filter((m) => !m.endsWith('tsrun.cjs') && !m.endsWith(hook) && m !== join(repoRoot, 'native', 'build', 'tsrun-sys.node'))).toEqual([]);
  });

  it('runs (on the bridge too, with -p), lists and inspects containers without loading Node\'s streams, sockets, child_process or crypto', () => {
    const image = loadBusybox(env);
    // Node's own modules each command loaded, written down as it exits.
    const hook = join(env.root, 'builtins-hook.cjs');
    const log = join(env.root, 'builtins.txt');
    writeFileSync(hook, `process.on('exit', () => require('fs').appendFileSync(${JSON.stringify(log)}, process.argv.slice(2).join(' ') + '\\t' + process.moduleLoadList.join(',') + '\\n'));\n`);
    const options = { env: { NODE_OPTIONS: `--require=${hook}` } };
    const run = env.run(['run', '--rm', '--network', 'none', image, 'true'], options);
    expect(run.status).toBe(0);
    // On the bridge, with a published port: ip and iptables-restore run, the port is test-bound.
    const published = env.run(['run', '--rm', '-p', '127.0.0.1::80', image, 'true'], options);
    expect(published.stderr).toBe('');
    expect(published.status).toBe(0);
    // On the bridge: inspect shows its endpoint (EndpointID, a sha256).
    const id = env.run(['run', '-d', image, 'sleep', '60'], options).stdout.trim();
    try {
      for (const args of [['--version'], ['ps'], ['ps', '-a'], ['inspect', id]]) expect(viaNode(args, options.env).status).toBe(0);
    } finally {
      env.run(['rm', '-f', id]);
    }
    const loadedBy = new Map(readFileSync(log, 'utf8').split('\n').filter(Boolean).map((line) => {
      const [command, list] = line.split('\t');
      return [command!, new Set(list!.split(',').map((m) => m.replace(/^NativeModule /, '')))] as const;
    }));
    // node:crypto too: the names on the bridge (the host veth's, EndpointID) are sha256s of a few
    // dozen bytes, which src/sys/text-hash.ts computes without it.
    const forbidden = ['stream', 'net', 'child_process', 'dgram', 'tty', 'internal/fs/promises', 'crypto'];
    for (const args of [['run', '--rm', '--network', 'none', image, 'true'], ['run', '--rm', '-p', '127.0.0.1::80', image, 'true'], ['run', '-d'], ['--version'], ['ps'], ['ps', '-a'], ['inspect', id]]) {
      // Matched by the end of the command line (the harness puts its own options first).
      const found = [...loadedBy].filter(([command]) => command.endsWith(args.join(' ')) || command.includes(` ${args.join(' ')} `));
      expect([args.join(' '), found.length > 0]).toEqual([args.join(' '), true]);
      for (const [command, loaded] of found) expect([command, forbidden.filter((m) => loaded.has(m))]).toEqual([command, []]);
    }
  });

  it('runs each command word from its own bundle, which registers that command and not the others', () => {
    // The words, as scripts/bundle.mjs reads them: cli/main.ts's table (completion needs them all).
    const main = readFileSync(join(repoRoot, 'cli', 'main.ts'), 'utf8');
    const table = main.slice(main.indexOf('export const MODULES'), main.indexOf('];', main.indexOf('export const MODULES')));
    const lists = [...table.matchAll(/\), \[([^\]]*)\]\]/g)].flatMap((m) => [...m[1]!.matchAll(/'([a-z-]+)'/g)].map((w) => w[1]!));
    const words = [...new Set(lists)].filter((w) => w !== 'completion');
    for (const w of ['run', 'ps', 'inspect', 'rm', 'image', 'build', 'network', 'version']) expect(words).toContain(w);
    const dir = cacheDir();
    for (const word of words) {
      const r = tsrun(dir, word, '--help');
      expect(r.status, `tsrun ${word} --help: ${r.stderr}`).toBe(0);
      expect(r.stdout, `tsrun ${word} --help`).toMatch(new RegExp(`^Usage: tsrun ${word} `));
    }
    // ps's bundle holds ps, not build's Dockerfile parser; the full one holds both. It is the
    // one `tsrun ps` ran: its code cache is named by that bundle's hash (src/sys/code-cache.ts).
    const ps = readFileSync(join(repoRoot, 'dist', 'tsrun-ps.cjs'));
    expect(ps.toString('latin1')).toContain('List containers');
    expect(ps.toString('latin1')).not.toContain('Dockerfile');
    expect(viaNode(['ps'], { TSRUN_CODE_CACHE: dir }).status).toBe(0);
    const psId = createHash('sha256').update(ps).digest('hex').slice(0, 16);
    expect(files(dir).filter((f) => f.startsWith('ps.'))).toEqual([`ps.${process.version}-${process.arch}-${psId}.v8`]);
    expect(readFileSync(join(repoRoot, 'dist', 'tsrun-main.cjs'), 'latin1')).toContain('Dockerfile');
    // --version alone takes the smallest, version's; help and unknown words the full one.
    expect(tsrun(dir, '--version').stdout).toBe('tsrun 0.1.0\n');
    expect(tsrun(dir, '--help').stdout).toMatch(/Common Commands:[\s\S]*build/);
    expect(tsrun(dir, 'bogus')).toMatchObject({ status: 125, stderr: expect.stringMatching(/^tsrun: unknown command 'bogus'/) });
  });

  it('writes a command\'s cache after its first successful run and then runs from it unchanged', () => {
    const dir = cacheDir();
    expect(tsrun(dir, 'images').status).toBe(0);
    const [cache] = files(dir);
    expect(cache).toMatch(new RegExp(`^images\\.${process.version.replace(/\./g, '\\.')}-`));
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const before = statSync(join(dir, cache!));
    expect(tsrun(dir, 'images').status).toBe(0);
    // Accepted by V8, so not written again.
    const after = statSync(join(dir, cache!));
    expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);
    // Another command has a cache of its own; a failing one writes none.
    expect(viaNode(['ps', '-a'], { TSRUN_CODE_CACHE: dir }).status).toBe(0);
    expect(tsrun(dir, 'inspect', 'no-such-container').status).not.toBe(0);
    expect(files(dir).map((f) => f.split('.')[0]).sort()).toEqual(['images', 'ps']);
  });

  it('keeps the cache a pull took before it set a V8 flag, and a later run that sets none completes it', async () => {
    // V8 rejects a cache stamped with other flags than the start's: made after the flag
    // (src/sys/v8-flags.ts), a pull's cache was rejected, compiled again and rewritten every run.
    const reg = await startRegistry({ mode: 'http' });
    const layout = join(env.root, 'busybox-oci');
    try {
      // Published by skopeo from the busybox fixture's OCI layout (tsrun's push is not the test).
      spawnSync(process.execPath, [join(repoRoot, 'scripts', 'make-busybox-image.mjs'), '--out', layout, '--format', 'oci']);
      await pushLayout(reg, layout, 'busybox:latest');
      const ref = `${reg.host}/busybox:latest`;
      const dir = cacheDir();
      const pull = () => tsrun(dir, 'pull', '-q', ref);
      expect(pull().status).toBe(0); // cold
      const [cache] = files(dir);
      expect(cache).toMatch(/^pull\..*\.partial\.v8$/);
      const before = statSync(join(dir, cache!));
      const r = pull(); // warm: from that cache, so it writes none
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const after = statSync(join(dir, cache!));
      expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);
      // A run that pulls its image keeps a partial cache; the next, of the image in the store,
      // sets no flag and writes the whole one in its place.
      expect(tsrun(dir, 'rmi', ref).status).toBe(0);
      const runIt = () => tsrun(dir, 'run', '--rm', '--network', 'none', ref, 'true');
      expect(runIt().status).toBe(0);
      expect(files(dir).filter((f) => f.startsWith('run.'))).toEqual([expect.stringMatching(/\.partial\.v8$/)]);
      expect(runIt().status).toBe(0);
      expect(files(dir).filter((f) => f.startsWith('run.'))).toEqual([expect.stringMatching(/-[0-9a-f]+\.v8$/)]);
    } finally {
      await reg.stop();
    }
  });

  it('compiles from the source when the cache is not V8\'s, and replaces it', () => {
    const dir = cacheDir();
    expect(tsrun(dir, 'images').status).toBe(0);
    const [cache] = files(dir);
    writeFileSync(join(dir, cache!), 'not compiled code', { mode: 0o600 });
    const r = tsrun(dir, 'images');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^REPOSITORY/);
    expect(readFileSync(join(dir, cache!)).length).toBeGreaterThan(10_000);
  });

  it('maps its bundle and the code cache (the addon\'s mapFile) instead of reading them into memory', () => {
    const dir = cacheDir();
    // What the process has mapped from dist/ and the cache directory, written down right after
    // the launcher has compiled the bundle (a mapping lives only as long as V8 keeps its string
    // or Buffer: the cache's may be collected before the command is done).
    const hook = join(env.root, 'maps-hook.cjs');
    const log = join(env.root, 'maps.txt');
    writeFileSync(hook, `const vm = require('vm'); const fs = require('fs'); const Script = vm.Script; let first = true;
vm.Script = function (...args) {
  const script = new Script(...args);
  if (first) fs.appendFileSync(${JSON.stringify(log)}, fs.readFileSync('/proc/self/maps', 'utf8').split('\\n').filter((l) => l.includes(${JSON.stringify(join(repoRoot, 'dist'))}) || l.includes(${JSON.stringify(dir)})).map((l) => l.split(/\\s+/).slice(5).join(' ')).join('\\n') + '\\n---\\n');
  first = false;
  return script;
};\n`);
    for (let i = 0; i < 2; i++) expect(viaNode(['images'], { TSRUN_CODE_CACHE: dir, NODE_OPTIONS: `--require=${hook}` }).status).toBe(0);
    const [first, second] = readFileSync(log, 'utf8').split('---\n').map((run) => run.split('\n').filter(Boolean));
    const bundle = join(repoRoot, 'dist', 'tsrun-images.cjs');
    // The first run compiles and writes the cache; the second maps both.
    expect(first).toEqual([bundle]);
    expect(second!.sort()).toEqual([bundle, join(dir, files(dir)[0]!)].sort());
  });

  it('reads the bundle where there is no addon, and refuses one that is not wrapped as scripts/bundle.mjs wraps it', () => {
    // A package with the launcher and one bundle, no native/build: nothing to map with.
    const pkg = mkdtempSync(join(tmpdir(), 'tsrun-test-launcher-'));
    try {
      mkdirSync(join(pkg, 'dist'));
      writeFileSync(join(pkg, 'package.json'), readFileSync(join(repoRoot, 'package.json')));
      for (const f of ['tsrun.cjs', 'tsrun-version.cjs']) writeFileSync(join(pkg, 'dist', f), readFileSync(join(repoRoot, 'dist', f)));
      const version = () => spawnSync(process.execPath, [join(pkg, 'dist', 'tsrun.cjs'), '--version'], { encoding: 'utf8', env: { ...process.env, TSRUN_CODE_CACHE: 'off' } });
      expect(version()).toMatchObject({ status: 0, stdout: 'tsrun 0.1.0\n', stderr: '' });
      // A bundle from before the wrapper (or edited by hand): a clear error, not a silent no-op.
      const bundle = join(pkg, 'dist', 'tsrun-version.cjs');
      const text = readFileSync(bundle, 'latin1');
      writeFileSync(bundle, text.slice(text.indexOf('{') + 1, text.lastIndexOf('}')));
      expect(version()).toMatchObject({ status: 125, stdout: '', stderr: `tsrun: ${bundle} is not a bundle this launcher runs: run \`npm run build\`\n` });
    } finally {
      rmSync(pkg, { recursive: true, force: true });
    }
  });

  it('keeps nothing when turned off, or in a directory others may write to', () => {
    const off = cacheDir();
    expect(env.run(['images'], { env: { TSRUN_CODE_CACHE: 'off', HOME: off } }).status).toBe(0);
    expect(existsSync(off)).toBe(false);
    const shared = cacheDir();
    mkdirSync(shared);
    chmodSync(shared, 0o777);
    expect(tsrun(shared, 'images').status).toBe(0);
    expect(readdirSync(shared)).toEqual([]);
  });
});
