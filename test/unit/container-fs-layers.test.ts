// The file-system parts of diff, export and commit on temp dirs: the merged view of lower
// layers (whiteouts and opaque directories need root: they are skipped without it), the
// fd-based walk that never follows a symlink, and the tar writer.
import { chmodSync, closeSync, linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LowerLayers } from '../../src/overlay/index.js';
import { writeTar } from '../../src/overlay/tar-writer.js';
import { openDir, walk } from '../../src/overlay/walk.js';
import { extract } from '../../src/image/tar.js';
import * as libc from '../../src/sys/libc.js';

const isRoot = process.getuid?.() === 0;
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tsrun-fs-unit-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function tree(name: string, files: Record<string, string | { link: string } | null>): string {
  const root = join(dir, name);
  mkdirSync(root, { recursive: true });
  for (const [p, v] of Object.entries(files)) {
    const full = join(root, p);
    if (p.endsWith('/')) mkdirSync(full, { recursive: true });
    else if (v !== null && typeof v === 'object') symlinkSync(v.link, full);
    else writeFileSync(full, v ?? '');
  }
  return root;
}

describe('LowerLayers', () => {
  it('finds entries top layer first, and never looks through a symlink', () => {
    const bottom = tree('l1', { 'etc/': null, 'etc/passwd': 'bottom', 'usr/': null, 'usr/bin/': null, 'usr/bin/sh': 'sh' });
    const top = tree('l2', { 'etc/': null, 'etc/passwd': 'top', 'bin': { link: '/usr/bin' }, 'lib': { link: dir } });
    const lowers = new LowerLayers([top, bottom]);
    expect(lowers.stat('etc/passwd')?.size).toBe(3);
    expect(lowers.stat('usr/bin/sh')?.isFile()).toBe(true);
    expect(lowers.stat('bin')?.isSymbolicLink()).toBe(true);
    expect(lowers.stat('bin/sh')).toBeUndefined(); // would be /usr/bin/sh on the host
    expect(lowers.stat(`lib/l1/etc/passwd`)).toBeUndefined(); // a symlink to the test dir itself
    expect(lowers.stat('nope')).toBeUndefined();
    expect(lowers.list('etc')).toEqual(['passwd']);
    expect(lowers.list('')).toEqual(['bin', 'etc', 'lib', 'usr']);
  });

  it.skipIf(!isRoot)('honours whiteouts and opaque directories', () => {
    const bottom = tree('w1', { 'a/': null, 'a/x': 'x', 'a/y': 'y', 'gone': 'g', 'o/': null, 'o/old': 'old' });
    const top = tree('w2', { 'a/': null, 'o/': null, 'o/new': 'new' });
    libc.mknod(join(top, 'gone'), libc.S_IFCHR | 0o600, 0, 0);
    libc.mknod(join(top, 'a', 'x'), libc.S_IFCHR | 0o600, 0, 0);
    libc.setxattr(join(top, 'o'), 'trusted.overlay.opaque', Buffer.from('y'));
    const lowers = new LowerLayers([top, bottom]);
    expect(lowers.stat('gone')).toBeUndefined();
    expect(lowers.stat('a/x')).toBeUndefined();
    expect(lowers.stat('a/y')?.isFile()).toBe(true);
    expect(lowers.stat('o/old')).toBeUndefined();
    expect(lowers.stat('o/new')?.isFile()).toBe(true);
    expect(lowers.list('a')).toEqual(['y']);
    expect(lowers.list('o')).toEqual(['new']);
  });
});

describe('walk and TarWriter', () => {
  it('walks by fd in sorted order and writes links, symlinks and modes as they are', async () => {
    const root = tree('tarred', { 'b/': null, 'b/file': 'content', 'a': { link: '/etc' }, 'z': 'z' });
    linkSync(join(root, 'b', 'file'), join(root, 'hard'));
    chmodSync(join(root, 'z'), 0);
    const fd = openDir(root);
    const seen: string[] = [];
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    try {
      await writeTar(out, (w) =>
        walk(fd, '', async (e) => {
          seen.push(e.rel);
          await w.add(e, e.rel);
          return true;
        }),
      );
    } finally {
      closeSync(fd);
    }
    expect(seen).toEqual(['a', 'b', 'b/file', 'hard', 'z']);
    const entries: Array<{ name: string; type: string | null; linkname: string | null; mode: number; body: string }> = [];
    const ex = extract();
    ex.end(Buffer.concat(chunks));
    for await (const entry of ex) {
      let body = '';
      for await (const c of entry) body += c.toString();
      entries.push({ name: entry.header.name, type: entry.header.type, linkname: entry.header.linkname, mode: entry.header.mode, body });
    }
    expect(entries.map((e) => [e.name, e.type])).toEqual([
      ['a', 'symlink'],
      ['b/', 'directory'],
      ['b/file', 'file'],
      ['hard', 'link'],
      ['z', 'file'],
    ]);
    expect(entries[0]!.linkname).toBe('/etc');
    expect(entries[2]!.body).toBe('content');
    expect(entries[3]!.linkname).toBe('b/file');
    expect(entries[4]!.mode & 0o7777).toBe(0); // not tar-stream's default 0644
  });
});
