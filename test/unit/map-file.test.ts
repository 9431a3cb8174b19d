// mapFile (native/node/sys.c): how the launcher takes a bundle and its code cache without copying
// them. Each answer is compared with what readFileSync reads of the same file; whatever it cannot
// map it declines (undefined), and the launcher then reads the file.
import { closeSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import type { MapFile } from '../../src/sys/code-cache.js';
import { nativeBuildFile } from '../../src/sys/native-build.js';

const { mapFile } = createRequire(import.meta.url)(nativeBuildFile('tsrun-sys.node')) as { mapFile: MapFile };
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
    expect(typeof text).toBe('string');
    expect(text === readFileSync(file, 'latin1')).toBe(true);
    const bytes = mapped(file, false);
    expect(Buffer.isBuffer(bytes)).toBe(true);
    expect(Buffer.compare(bytes as Buffer, readFileSync(file))).toBe(0);
  }
});

it('keeps what it mapped when the file is replaced by rename, as the build and the code cache replace theirs', () => {
  const file = join(tmp, 'bundle');
  writeFileSync(file, 'a'.repeat(10_000));
  const text = mapped(file, true) as string;
  const bytes = mapped(file, false) as Buffer;
  writeFileSync(`${file}.new`, 'b'.repeat(20_000));
  renameSync(`${file}.new`, file);
  expect(text).toBe('a'.repeat(10_000));
  expect(bytes.toString()).toBe('a'.repeat(10_000));
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
