// The `tsrun` command runs its bundle from V8's code cache (cli/launcher.ts): written after a
// command's first successful run, used as it is afterwards, rewritten when V8 rejects it, and
// never kept where another user could write.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePrivileged, TestEnv } from './helpers/env.js';
import { loadBusybox } from './helpers/images.js';

describePrivileged('the tsrun launcher and its code cache', () => {
  let env: TestEnv;
  let caches: string;
  let n = 0;
  const cacheDir = () => join(caches, String(n++));
  const files = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.v8')) : []);
  const tsrun = (dir: string, ...args: string[]) => env.run(args, { env: { TSRUN_CODE_CACHE: dir } });

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
    expect(resolved.filter((m) => !m.endsWith('tsrun.cjs') && !m.endsWith(hook))).toEqual([]);
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
    expect(tsrun(dir, 'ps', '-a').status).toBe(0);
    expect(tsrun(dir, 'inspect', 'no-such-container').status).not.toBe(0);
    expect(files(dir).map((f) => f.split('.')[0]).sort()).toEqual(['images', 'ps']);
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
