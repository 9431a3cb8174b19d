import * as fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { applyFromBelow } from '../../src/overlay/inherit.js';
import { LowerLayers } from '../../src/overlay/lower-layers.js';
import { lgetxattr, lsetxattr } from '../../src/sys/libc.js';

const isRoot = process.getuid?.() === 0;
let tmp: string;
let lower1: string;
let lower2: string;
let layer: string;

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-inherit-'));
  [lower1, lower2, layer] = ['l1', 'l2', 'layer'].map((d) => path.join(tmp, d)) as [string, string, string];
  for (const d of [lower1, lower2, layer]) fs.mkdirSync(d);
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

function dir(p: string, mode: number, mtime = 1_600_000_000, owner?: [number, number]): void {
  fs.mkdirSync(p, { recursive: true });
  if (owner && isRoot) fs.chownSync(p, owner[0], owner[1]);
  fs.chmodSync(p, mode);
  fs.utimesSync(p, mtime, mtime);
}

describe('applyFromBelow', () => {
  it('gives implied directories the mode, owner, times and attributes the layers below give them', () => {
    dir(path.join(lower1, 'tmp'), 0o1777);
    dir(path.join(lower1, 'home/user'), 0o700, 1_600_000_001, [1000, 1000]);
    lsetxattr(path.join(lower1, 'home/user'), 'user.note', Buffer.from('kept'));
    // The upper of the two lower layers decides: it has its own home/ (0711).
    dir(path.join(lower2, 'home'), 0o711, 1_600_000_002);
    for (const d of ['tmp', 'home/user', 'nolower']) dir(path.join(layer, d), 0o755, 1_700_000_000);
    applyFromBelow(layer, { implied: ['home', 'home/user', 'nolower', 'tmp'], opaqueRoot: false, whiteouts: [] }, new LowerLayers([lower2, lower1]));
    const st = (rel: string) => fs.lstatSync(path.join(layer, rel));
    expect(st('tmp').mode & 0o7777).toBe(0o1777);
    expect(st('tmp').mtimeMs).toBe(1_600_000_000_000);
    expect(st('home').mode & 0o7777).toBe(0o711);
    expect(st('home').mtimeMs).toBe(1_600_000_002_000);
    expect(st('home/user').mode & 0o7777).toBe(0o700);
    if (isRoot) expect([st('home/user').uid, st('home/user').gid]).toEqual([1000, 1000]);
    expect(lgetxattr(path.join(layer, 'home/user'), 'user.note')?.toString()).toBe('kept');
    expect(st('nolower').mode & 0o7777).toBe(0o755); // nothing below: as made
  });

  it('never follows a symlink of the layer to a directory it did not make', () => {
    dir(path.join(lower1, 'tmp'), 0o1777);
    const outside = path.join(tmp, 'outside');
    dir(outside, 0o750);
    fs.symlinkSync(outside, path.join(layer, 'tmp'));
    applyFromBelow(layer, { implied: ['tmp'], opaqueRoot: false, whiteouts: [] }, new LowerLayers([lower1]));
    expect(fs.statSync(outside).mode & 0o7777).toBe(0o750);
  });

  it.runIf(isRoot)('keeps a whiteout that hides a lower name, and removes one that hides nothing', async () => {
    const { mknod, S_IFCHR } = await import('../../src/sys/libc.js');
    fs.writeFileSync(path.join(lower1, 'there'), 'x');
    dir(path.join(lower1, 'd'), 0o755);
    fs.writeFileSync(path.join(lower1, 'd/there'), 'x');
    dir(path.join(layer, 'd'), 0o755);
    dir(path.join(layer, 'onlyhere'), 0o755);
    for (const rel of ['there', 'nothing', 'd/there', 'd/nothing', 'onlyhere/nothing']) mknod(path.join(layer, rel), S_IFCHR, 0, 0);
    applyFromBelow(layer, { implied: [], opaqueRoot: false, whiteouts: ['d/nothing', 'd/there', 'nothing', 'onlyhere/nothing', 'there'] }, new LowerLayers([lower1]));
    expect(fs.readdirSync(layer).sort()).toEqual(['d', 'onlyhere', 'there']);
    expect(fs.readdirSync(path.join(layer, 'd'))).toEqual(['there']);
    expect(fs.readdirSync(path.join(layer, 'onlyhere'))).toEqual([]);
  });

  it.runIf(isRoot)('hides everything below an opaque root: a whiteout for each lower name, opaque for a directory it has too', () => {
    fs.writeFileSync(path.join(lower1, 'gone'), 'x');
    dir(path.join(lower1, 'etc'), 0o755);
    fs.writeFileSync(path.join(lower1, 'etc/passwd'), 'root');
    dir(path.join(layer, 'etc'), 0o755);
    fs.writeFileSync(path.join(layer, 'etc/hosts'), 'h');
    fs.writeFileSync(path.join(layer, 'new'), 'n');
    applyFromBelow(layer, { implied: [], opaqueRoot: true, whiteouts: [] }, new LowerLayers([lower1]));
    const gone = fs.lstatSync(path.join(layer, 'gone'));
    expect(gone.isCharacterDevice() && gone.rdev === 0).toBe(true);
    expect(lgetxattr(path.join(layer, 'etc'), 'trusted.overlay.opaque')?.toString()).toBe('y');
    expect(fs.readFileSync(path.join(layer, 'new'), 'utf8')).toBe('n');
    // Again: the same tree.
    applyFromBelow(layer, { implied: [], opaqueRoot: true, whiteouts: [] }, new LowerLayers([lower1]));
    expect(fs.readdirSync(layer).sort()).toEqual(['etc', 'gone', 'new']);
  });
});
