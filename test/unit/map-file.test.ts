// mapFile (native/node/sys.c): how the launcher takes a bundle and its code cache without copying
// them. Each answer is compared with what readFileSync reads of the same file; whatever it cannot
// map it declines (undefined), and the launcher then reads the file.
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import type { MapFile } from '../../src/sys/code-cache.js';
import { nativeBuildFile } from '../../src/sys/native-build.js';

const addonPath = nativeBuildFile('tsrun-sys.node');
const { mapFile } = createRequire(import.meta.url)(addonPath) as { mapFile: MapFile };
// Node-API's external strings came with Node 20.4; before, mapFile declines strings.
const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
const externalStrings = major > 20 || (major === 20 && minor >= 4);
/** The lines of /proc/self/maps that map `path`. */
const mappings = (path: string) => readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => l.endsWith(` ${path}`));
const tmp = mkdtempSync(join(tmpdir(), 'tsrun-map-file-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** mapFile's answer for the file at `path`, opened read-only. */
function mapped(path: string, asString: boolean): string | Buffer | undefined {
  const fd = openSync(path, 'r');
  try {
    return mapFile(fd, asString);
  } finally {
    closeSync(fd);
  }
}

it('gives a file\'s bytes as a latin1 string or a Buffer, the same as readFileSync reads them', () => {
  // Every byte value, and sizes on, below and past a page boundary.
  const every = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  for (const size of [1, 255, 4095, 4096, 4097, 300_000]) {
    const file = join(tmp, `f${size}`);
    writeFileSync(file, Buffer.concat(Array.from({ length: Math.ceil(size / 256) }, () => every)).subarray(0, size));
    const text = mapped(file, true);
    if (!externalStrings) {
      expect(text).toBeUndefined();
    } else {
      expect(typeof text).toBe('string');
      expect(text === readFileSync(file, 'latin1')).toBe(true);
    }
    const bytes = mapped(file, false);
    expect(Buffer.isBuffer(bytes)).toBe(true);
    expect(Buffer.compare(bytes as Buffer, readFileSync(file))).toBe(0);
  }
});

it('maps the file rather than copying it, and keeps what it mapped when the file is replaced by rename', () => {
  const file = join(tmp, 'bundle');
  writeFileSync(file, 'a'.repeat(10_000));
  const text = (externalStrings ? mapped(file, true) : 'a'.repeat(10_000)) as string;
  const bytes = mapped(file, false) as Buffer;
  // The string and the Buffer: a mapping each, of the file itself (read-only, private).
  expect(mappings(file).map((l) => l.split(/\s+/)[1])).toEqual(externalStrings ? ['r--p', 'r--p'] : ['r--p']);
  // As the build and the code cache replace theirs: the mappings keep the old file.
  writeFileSync(`${file}.new`, 'b'.repeat(20_000));
  renameSync(`${file}.new`, file);
  expect(text).toBe('a'.repeat(10_000));
  expect(bytes.toString()).toBe('a'.repeat(10_000));
});

it('unmaps the file once V8 has freed the string or the Buffer', () => {
  const file = join(tmp, 'freed');
  writeFileSync(file, 'x'.repeat(50_000));
  // A Node of its own, with gc() exposed: 20 strings and 20 Buffers made and dropped.
  const script = `
    const { openSync, closeSync, readFileSync } = require('node:fs');
    const { mapFile } = require(${JSON.stringify(addonPath)});
    const count = () => readFileSync('/proc/self/maps', 'utf8').split('\\n').filter((l) => l.endsWith(${JSON.stringify(` ${file}`)})).length;
    let kept = [];
    for (let i = 0; i < 20; i++) {
      const fd = openSync(${JSON.stringify(file)}, 'r');
      kept.push(mapFile(fd, true), mapFile(fd, false));
      closeSync(fd);
    }
    const before = count();
    if (kept.some((k) => k !== undefined && k.length !== 50000)) throw new Error('wrong length');
    kept = null;
    // Node-API runs finalizers after the collection, from its event loop.
    (async () => {
      for (let i = 0; i < 20 && count() > 0; i++) {
        gc();
        await new Promise((r) => setTimeout(r, 10));
      }
      process.stdout.write(JSON.stringify([before, count()]));
    })();`;
  const r = spawnSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  expect(JSON.parse(r.stdout)).toEqual([externalStrings ? 40 : 20, 0]);
});

it('declines what is not a regular file with content, and says so of bad arguments', () => {
  const empty = join(tmp, 'empty');
  writeFileSync(empty, '');
  expect(mapped(empty, true)).toBeUndefined();
  expect(mapped(empty, false)).toBeUndefined();
  expect(mapped(tmp, true)).toBeUndefined(); // a directory
  expect(mapped('/dev/null', false)).toBeUndefined();
  expect(mapFile(-1, true)).toBeUndefined();
  expect(() => (mapFile as (...a: unknown[]) => unknown)('0', true)).toThrow(/mapFile\(fd, asString\)/);
  expect(() => (mapFile as (...a: unknown[]) => unknown)(0)).toThrow(/mapFile\(fd, asString\)/);
});
