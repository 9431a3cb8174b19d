// Extended attributes in the tars tsrun writes (export, commit, `cp ... -`): which ones travel,
// and that their bytes survive tsrun's PAX encoder — read back by tsrun's own reader and by GNU
// tar, including records whose length crosses a power of ten.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeTar } from '../../src/overlay/tar-writer.js';
import { openDir, walk } from '../../src/overlay/walk.js';
import { carriedXattrs, carriesXattr } from '../../src/overlay/xattrs.js';
import { extract, xattrsOf, type Header } from '../../src/image/tar.js';
import { lgetxattr, lsetxattr } from '../../src/sys/libc.js';

const isRoot = process.getuid?.() === 0;

describe('carried extended attributes', () => {
  it('are file capabilities and user attributes, never overlayfs\'s or the host\'s labels', () => {
    expect(carriesXattr('security.capability')).toBe(true);
    expect(carriesXattr('user.comment')).toBe(true);
    expect(carriesXattr('user.overlay.opaque')).toBe(false);
    expect(carriesXattr('trusted.overlay.opaque')).toBe(false);
    expect(carriesXattr('trusted.overlay.redirect')).toBe(false);
    expect(carriesXattr('trusted.other')).toBe(false);
    expect(carriesXattr('security.selinux')).toBe(false);
    expect(carriesXattr('system.posix_acl_access')).toBe(false);
  });
});

describe('xattrs in written tars', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-xattr-'));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** The tree under `src` as tsrun's TarWriter writes it. */
  async function tarOf(src: string): Promise<Buffer> {
    const parts: Buffer[] = [];
    const root = openDir(src);
    try {
      await writeTar(
        async (tar) => {
          for await (const chunk of tar) parts.push(chunk as Buffer);
        },
        (w) => walk(root, '', async (e) => (await w.add(e, e.rel), true)),
      );
    } finally {
      fs.closeSync(root);
    }
    return Buffer.concat(parts);
  }

  async function headersOf(tar: Buffer): Promise<Header[]> {
    const ex = extract();
    const out: Header[] = [];
    const done = (async () => {
      for await (const entry of ex) {
        out.push(entry.header);
        entry.resume();
      }
    })();
    ex.write(tar);
    ex.end();
    await done;
    return out;
  }

  it('carry binary values intact, read back by tsrun and by GNU tar', async () => {
    const src = path.join(dir, 'src');
    fs.mkdirSync(path.join(src, 'd'), { recursive: true });
    fs.writeFileSync(path.join(src, 'f'), 'data');
    const binary = Buffer.from([0x00, 0xff, 0xc3, 0x28, 0x0a, 0x3d, 0x20, 0x80]);
    lsetxattr(path.join(src, 'f'), 'user.bin', binary);
    lsetxattr(path.join(src, 'f'), 'user.text', Buffer.from('héllo wörld'));
    lsetxattr(path.join(src, 'd'), 'user.dir', Buffer.from('yes'));
    if (isRoot) lsetxattr(path.join(src, 'd'), 'trusted.overlay.opaque', Buffer.from('y'));
    // Values whose PAX record length is around 99..101 and 999..1001 bytes (digit count changes).
    for (let n = 70; n <= 80; n++) lsetxattr(path.join(src, 'f'), `user.len${n}`, Buffer.alloc(n, 0x61));
    // (ext4 keeps one block of attributes per inode: one long value per file.)
    for (let n = 968; n <= 978; n++) {
      fs.writeFileSync(path.join(src, `big${n}`), '');
      lsetxattr(path.join(src, `big${n}`), 'user.long', Buffer.alloc(n, 0x62));
    }

    const tar = await tarOf(src);
    const byName = new Map((await headersOf(tar)).map((h) => [h.name, new Map(xattrsOf(h).map(([k, v]) => [k, v.toString('hex')]))]));
    expect(byName.get('f')?.get('user.bin')).toBe(binary.toString('hex'));
    expect(byName.get('f')?.get('user.text')).toBe(Buffer.from('héllo wörld').toString('hex'));
    expect(byName.get('big977')?.get('user.long')).toBe(Buffer.alloc(977, 0x62).toString('hex'));
    expect(byName.get('d/')?.get('user.dir')).toBe(Buffer.from('yes').toString('hex'));
    expect([...(byName.get('d/')?.keys() ?? [])]).toEqual(['user.dir']); // no trusted.overlay.*

    const out = path.join(dir, 'out');
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(dir, 't.tar'), tar);
    // GNU tar warns about (and skips) a malformed record: stderr must stay empty.
    const r = execFileSync('tar', ['--xattrs', '--xattrs-include=user.*', '-xf', path.join(dir, 't.tar'), '-C', out], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    expect(r).toBe('');
    expect(lgetxattr(path.join(out, 'f'), 'user.bin')).toEqual(binary);
    expect(lgetxattr(path.join(out, 'f'), 'user.text')?.toString()).toBe('héllo wörld');
    for (let n = 70; n <= 80; n++) expect(lgetxattr(path.join(out, 'f'), `user.len${n}`)).toEqual(Buffer.alloc(n, 0x61));
    for (let n = 968; n <= 978; n++) expect(lgetxattr(path.join(out, `big${n}`), 'user.long')).toEqual(Buffer.alloc(n, 0x62));
    expect(carriedXattrs(path.join(out, 'd'))).toEqual([['user.dir', Buffer.from('yes')]]);
  });

  it('a file with none gets no PAX header', async () => {
    const src = path.join(dir, 'plain');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'f'), 'x');
    const headers = await headersOf(await tarOf(src));
    expect(headers.map((h) => [h.name, h.pax ?? null])).toEqual([['f', null]]);
  });
});
