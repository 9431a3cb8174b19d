// setV8Flags (native/node/sys.c) sets V8's flags without node:v8, for src/sys/v8-flags.ts. What
// a flag change does to a code cache is why the flag is set late: seen here, in a child process
// (flags are the process's), through the same check V8 makes of a launcher's cache.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { expect, it } from 'vitest';
import { nativeBuildFile } from '../../src/sys/native-build.js';

const addonPath = nativeBuildFile('tsrun-sys.node');

it('sets a V8 flag: a code cache made before it is rejected after it, as V8 rejects a cache made with other flags', () => {
  const script = `
    const vm = require('node:vm');
    const m = { exports: {} };
    process.dlopen(m, ${JSON.stringify(addonPath)});
    const source = '(function () { return 42; })';
    // A file name each: the isolate would otherwise reuse what it compiled, and not look at the data.
    const data = new vm.Script(source, { filename: 'a.js' }).createCachedData();
    const same = new vm.Script(source, { filename: 'b.js', cachedData: data }).cachedDataRejected;
    const took = m.exports.setV8Flags('--wasm-tiering-budget=123456');
    const after = new vm.Script(source, { filename: 'c.js', cachedData: data }).cachedDataRejected;
    process.stdout.write(JSON.stringify({ same, took, after }));`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  expect(JSON.parse(r.stdout)).toEqual({ same: false, took: true, after: true });
});

it('refuses what is not a short string', () => {
  const { setV8Flags } = createRequire(import.meta.url)(addonPath) as { setV8Flags: (flags: unknown) => boolean };
  expect(() => setV8Flags(42)).toThrow(/a string of fewer than 255 characters/);
  expect(() => setV8Flags(`--${'x'.repeat(300)}`)).toThrow(/a string of fewer than 255 characters/);
});
