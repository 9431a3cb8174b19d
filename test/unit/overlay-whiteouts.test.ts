// Whiteouts and opaque directories in both spellings: OCI tar names and overlayfs's 0/0
// character devices and opaque attribute (the latter need root: skipped without it).
import * as fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OPAQUE_XATTR, isOpaque, isWhiteout, makeWhiteout, markOpaque, ociMarker, ociOpaqueName, ociWhiteoutName } from '../../src/overlay/index.js';
import { isOverlayXattr } from '../../src/overlay/whiteouts.js';

const isRoot = process.getuid?.() === 0;

describe('OCI spelling', () => {
  it('names a deleted entry and an opaque directory as the image spec does', () => {
    expect(ociWhiteoutName('gone')).toBe('.wh.gone');
    expect(ociWhiteoutName('etc/apt/sources.list')).toBe('etc/apt/.wh.sources.list');
    expect(ociOpaqueName('var/cache')).toBe('var/cache/.wh..wh..opq');
    expect(ociOpaqueName('')).toBe('.wh..wh..opq');
  });

  it('reads the markers back from a base name', () => {
    expect(ociMarker('.wh.gone')).toEqual({ kind: 'whiteout', name: 'gone' });
    expect(ociMarker('.wh..hidden')).toEqual({ kind: 'whiteout', name: '.hidden' });
    expect(ociMarker('.wh..wh..opq')).toEqual({ kind: 'opaque' });
    expect(ociMarker('.wh..wh.plnk')).toEqual({ kind: 'aufs' });
    expect(ociMarker('file')).toBeUndefined();
    expect(ociMarker('x.wh.y')).toBeUndefined();
    // Names the unpacker must refuse are still reported as what they claim to be.
    expect(ociMarker('.wh.')).toEqual({ kind: 'whiteout', name: '' });
    expect(ociMarker('.wh...')).toEqual({ kind: 'whiteout', name: '..' });
  });

  it('round-trips a path through both directions', () => {
    for (const rel of ['a', 'a/b', 'a/b/.c']) {
      const name = ociWhiteoutName(rel);
      const slash = name.lastIndexOf('/');
      const marker = ociMarker(name.slice(slash + 1));
      expect(marker?.kind).toBe('whiteout');
      expect(`${name.slice(0, slash + 1)}${marker?.kind === 'whiteout' ? marker.name : ''}`).toBe(rel);
    }
  });

  it('knows overlayfs\'s own attributes', () => {
    expect(isOverlayXattr('trusted.overlay.opaque')).toBe(true);
    expect(isOverlayXattr('user.overlay.redirect')).toBe(true);
    expect(isOverlayXattr('user.comment')).toBe(false);
    expect(isOverlayXattr('security.capability')).toBe(false);
  });
});

describe.skipIf(!isRoot)('overlayfs spelling', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-whiteouts-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('makes and recognizes a whiteout: a 0/0 character device, not any device', () => {
    makeWhiteout(path.join(dir, 'gone'));
    expect(isWhiteout(fs.lstatSync(path.join(dir, 'gone')))).toBe(true);
    fs.writeFileSync(path.join(dir, 'file'), '');
    expect(isWhiteout(fs.lstatSync(path.join(dir, 'file')))).toBe(false);
    expect(isWhiteout(fs.lstatSync('/dev/null'))).toBe(false); // 1/3
    expect(() => makeWhiteout(path.join(dir, 'gone'))).toThrow(/EEXIST/);
  });

  it('marks and recognizes an opaque directory, in either attribute namespace', () => {
    for (const d of ['plain', 'marked', 'user']) fs.mkdirSync(path.join(dir, d));
    markOpaque(path.join(dir, 'marked'));
    expect(OPAQUE_XATTR).toBe('trusted.overlay.opaque');
    expect(isOpaque(path.join(dir, 'marked'))).toBe(true);
    expect(isOpaque(path.join(dir, 'plain'))).toBe(false);
    try {
      markOpaque(path.join(dir, 'user'), 'user.overlay.opaque');
    } catch {
      return; // no user.* xattrs on this file system
    }
    expect(isOpaque(path.join(dir, 'user'))).toBe(true);
  });
});
