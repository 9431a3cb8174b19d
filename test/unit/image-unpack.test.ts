import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cleanPath, unpackTar } from '../../src/image/unpack.js';
import { lgetxattr } from '../../src/sys/libc.js';
import { chunks, makeTar, type TarEntry } from '../fixtures/tar.js';

const isRoot = process.getuid?.() === 0;
let sentinel: string;
let layer: string;

beforeEach(() => {
  // sentinel/ holds the layer dir and a "victim" file; nothing in sentinel/ but layer/ may change.
  sentinel = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-unpack-'));
  layer = path.join(sentinel, 'layer');
  fs.mkdirSync(layer, { mode: 0o755 });
  fs.writeFileSync(path.join(sentinel, 'victim'), 'original');
});

afterEach(() => {
  fs.rmSync(sentinel, { recursive: true, force: true });
});

function unpack(entries: TarEntry[], options = {}) {
  return unpackTar(chunks(makeTar(entries), 700), layer, options);
}

/** Everything under sentinel/ except layer/, with contents: what an escape would change. */
function outside(): string[] {
  const out: string[] = [];
  for (const name of fs.readdirSync(sentinel)) {
    if (name === 'layer') continue;
    const p = path.join(sentinel, name);
    const st = fs.lstatSync(p);
    out.push(`${name}:${st.isFile() ? fs.readFileSync(p, 'utf8') : st.isSymbolicLink() ? 'link' : 'other'}`);
  }
  return out.sort();
}

const L = (rel: string) => path.join(layer, rel);

describe('cleanPath', () => {
  it('drops leading / and ./, resolves inner .., refuses escapes', () => {
    expect(cleanPath('/etc/x')).toBe('etc/x');
    expect(cleanPath('./a/./b/')).toBe('a/b');
    expect(cleanPath('a/../b')).toBe('b');
    expect(cleanPath('./')).toBe('');
    expect(() => cleanPath('../../etc/x')).toThrow(expect.objectContaining({ code: 'EUNSAFE' }));
    expect(() => cleanPath('a/../../x')).toThrow(expect.objectContaining({ code: 'EUNSAFE' }));
  });
});

describe('unpackTar', () => {
  it('unpacks files, dirs, symlinks and hardlinks with modes and mtimes, and hashes the stream', async () => {
    const tar = makeTar([
      { name: './', type: 'dir', mode: 0o755, mtime: 1_600_000_000 },
      { name: 'bin/', type: 'dir', mode: 0o755, mtime: 1_600_000_001 },
      { name: 'bin/tool', content: 'hello', mode: 0o4755, uid: 1000, gid: 1000, mtime: 1_600_000_002 },
      { name: 'bin/link', type: 'symlink', linkname: 'tool', mtime: 1_600_000_003 },
      { name: 'bin/hard', type: 'hardlink', linkname: 'bin/tool' },
      { name: 'ro/', type: 'dir', mode: 0o555, mtime: 1_600_000_004 },
      { name: 'ro/inside', content: 'x', mode: 0o600 },
      { name: 'tmp/', type: 'dir', mode: 0o1777 },
      { name: 'implicit/parent/file', content: 'deep' },
    ]);
    const r = await unpackTar(chunks(tar), layer);
    expect(r.diffId).toBe(`sha256:${createHash('sha256').update(tar).digest('hex')}`);
    expect(r.tarSize).toBe(tar.length);
    expect(r.contentSize).toBe(5 + 1 + 4);

    const tool = fs.lstatSync(L('bin/tool'));
    expect(fs.readFileSync(L('bin/tool'), 'utf8')).toBe('hello');
    expect(tool.mode & 0o7777).toBe(0o4755);
    expect(tool.mtimeMs).toBe(1_600_000_002_000);
    if (isRoot) expect([tool.uid, tool.gid]).toEqual([1000, 1000]);
    expect(fs.readlinkSync(L('bin/link'))).toBe('tool');
    expect(fs.lstatSync(L('bin/link')).mtimeMs).toBe(1_600_000_003_000);
    expect(fs.lstatSync(L('bin/hard')).ino).toBe(tool.ino);
    expect(fs.statSync(L('ro')).mode & 0o7777).toBe(0o555);
    expect(fs.statSync(L('ro')).mtimeMs).toBe(1_600_000_004_000);
    expect(fs.statSync(L('tmp')).mode & 0o7777).toBe(0o1777);
    expect(fs.statSync(L('bin')).mtimeMs).toBe(1_600_000_001_000);
    expect(fs.statSync(layer).mtimeMs).toBe(1_600_000_000_000);
    expect(fs.readFileSync(L('implicit/parent/file'), 'utf8')).toBe('deep');
    expect(fs.statSync(L('implicit/parent')).mode & 0o777).toBe(0o755);
    fs.chmodSync(L('ro'), 0o755); // so afterEach can remove it without root
  });

  it('keeps sub-second PAX mtimes and PAX uid/gid', async () => {
    await unpack([{ name: 'f', content: 'x', pax: { mtime: '1600000000.25', uid: '3000000', gid: '3000001' } }]);
    const st = fs.lstatSync(L('f'));
    expect(st.mtimeMs).toBe(1_600_000_000_250);
    if (isRoot) expect([st.uid, st.gid]).toEqual([3_000_000, 3_000_001]);
  });

  it('converts OCI whiteouts to overlayfs ones', async () => {
    await unpack([
      { name: 'etc/', type: 'dir' },
      { name: 'etc/.wh.deleted' },
      { name: 'opt/dir/.wh..wh..opq' },
      { name: 'opt/dir/new', content: 'n' },
      { name: '.wh..wh.plnk/', type: 'dir' },
    ]);
    const wh = fs.lstatSync(L('etc/deleted'));
    expect(wh.isCharacterDevice()).toBe(true);
    expect(wh.rdev).toBe(0);
    expect(fs.existsSync(L('etc/.wh.deleted'))).toBe(false);
    const xattr = isRoot ? 'trusted.overlay.opaque' : 'user.overlay.opaque';
    expect(lgetxattr(L('opt/dir'), xattr)?.toString()).toBe('y');
    expect(fs.readFileSync(L('opt/dir/new'), 'utf8')).toBe('n');
    expect(fs.existsSync(L('.wh..wh.plnk'))).toBe(false);
  });

  it('applies xattrs from SCHILY.xattr PAX records, binary values intact', async () => {
    // A file capability (cap_net_raw+ep), as docker images of ping carry it.
    const cap = Buffer.from('0000000200200000000000000000000000000000', 'hex');
    await unpack([
      { name: 'user-x', content: 'a', pax: { 'SCHILY.xattr.user.comment': 'héllo' } },
      { name: 'ping', content: 'b', mode: 0o755, pax: { 'SCHILY.xattr.security.capability': cap } },
      { name: 'd/', type: 'dir', pax: { 'SCHILY.xattr.user.dir': 'yes' } },
    ]);
    expect(lgetxattr(L('user-x'), 'user.comment')?.toString('utf8')).toBe('héllo');
    expect(lgetxattr(L('d'), 'user.dir')?.toString()).toBe('yes');
    if (isRoot) expect(lgetxattr(L('ping'), 'security.capability')).toEqual(cap);
  });

  it('refuses overlayfs attributes smuggled in PAX records', async () => {
    await expect(unpack([{ name: 'd/', type: 'dir', pax: { 'SCHILY.xattr.trusted.overlay.redirect': '/etc' } }])).rejects.toMatchObject({
      code: 'EUNSAFE',
    });
  });

  it('replaces an earlier entry with the same path, as tar does', async () => {
    await unpack([
      { name: 'f', content: 'first' },
      { name: 'f', content: 'second' },
      { name: 'd/', type: 'dir' },
      { name: 'd/child', content: 'c' },
      { name: 'd', content: 'now a file' },
      { name: 'x', content: 'file' },
      { name: 'x/', type: 'dir', mode: 0o700 },
      { name: 'same/', type: 'dir', mode: 0o700 },
      { name: 'same/keep', content: 'k' },
      { name: 'same/', type: 'dir', mode: 0o750 },
    ]);
    expect(fs.readFileSync(L('f'), 'utf8')).toBe('second');
    expect(fs.readFileSync(L('d'), 'utf8')).toBe('now a file');
    expect(fs.statSync(L('x')).isDirectory()).toBe(true);
    expect(fs.readFileSync(L('same/keep'), 'utf8')).toBe('k');
    expect(fs.statSync(L('same')).mode & 0o777).toBe(0o750);
  });

  it.runIf(isRoot)('creates device nodes and fifos', async () => {
    await unpack([
      { name: 'dev/null', type: 'char', devmajor: 1, devminor: 3, mode: 0o666 },
      { name: 'dev/sda', type: 'block', devmajor: 8, devminor: 0, mode: 0o660 },
      { name: 'fifo', type: 'fifo', mode: 0o640 },
    ]);
    const nul = fs.lstatSync(L('dev/null'));
    expect(nul.isCharacterDevice()).toBe(true);
    expect(nul.rdev).toBe(0x103);
    expect(nul.mode & 0o777).toBe(0o666);
    expect(fs.lstatSync(L('dev/sda')).isBlockDevice()).toBe(true);
    expect(fs.lstatSync(L('fifo')).isFIFO()).toBe(true);
    expect(fs.lstatSync(L('fifo')).mode & 0o777).toBe(0o640);
  });

  it('rejects a truncated tar and a non-tar', async () => {
    const tar = makeTar([{ name: 'f', content: 'x'.repeat(2000) }]);
    await expect(unpackTar(chunks(tar.subarray(0, 1000)), layer)).rejects.toMatchObject({ code: 'EBADIMAGE' });
    await expect(unpackTar(chunks(Buffer.alloc(1024, 'garbage')), path.join(sentinel, 'layer'))).rejects.toMatchObject({
      code: 'EBADIMAGE',
    });
  });

  it('passes a source error through', async () => {
    async function* failing() {
      yield makeTar([{ name: 'a', content: 'x' }]).subarray(0, 512);
      throw Object.assign(new Error('connection reset'), { code: 'ECONNRESET' });
    }
    await expect(unpackTar(failing(), layer)).rejects.toThrow(/connection reset/);
  });
});

describe('malicious layers', () => {
  // Documented behaviour: a name or hardlink target whose ".." climbs out is refused (EUNSAFE);
  // absolute names and symlinks are resolved with the layer as "/" (confined, like docker).
  it('refuses ../../etc/x', async () => {
    await expect(unpack([{ name: '../../etc/x', content: 'pwned' }])).rejects.toMatchObject({ code: 'EUNSAFE' });
    await expect(unpack([{ name: 'a/../../victim', content: 'pwned' }])).rejects.toMatchObject({ code: 'EUNSAFE' });
    expect(outside()).toEqual(['victim:original']);
  });

  it('confines /etc/x to <layer>/etc/x', async () => {
    await unpack([{ name: '/etc/x', content: 'inside' }, { name: `${sentinel}/victim`, content: 'inside too' }]);
    expect(fs.readFileSync(L('etc/x'), 'utf8')).toBe('inside');
    expect(fs.readFileSync(L(`${sentinel}/victim`), 'utf8')).toBe('inside too');
    expect(outside()).toEqual(['victim:original']);
  });

  it('resolves symlink a -> /etc then a/passwd inside the layer', async () => {
    const passwd = fs.readFileSync('/etc/passwd', 'utf8');
    await unpack([
      { name: 'etc/', type: 'dir' },
      { name: 'a', type: 'symlink', linkname: '/etc' },
      { name: 'a/passwd', content: 'pwned' },
      { name: `${sentinel.slice(1)}/`, type: 'dir' },
      { name: 's', type: 'symlink', linkname: sentinel },
      { name: 's/victim', content: 'pwned' },
    ]);
    expect(fs.readFileSync('/etc/passwd', 'utf8')).toBe(passwd);
    expect(fs.readFileSync(L('etc/passwd'), 'utf8')).toBe('pwned');
    expect(fs.readFileSync(L(`${sentinel}/victim`), 'utf8')).toBe('pwned');
    expect(fs.readlinkSync(L('a'))).toBe('/etc');
    expect(outside()).toEqual(['victim:original']);
  });

  it('refuses to write through a symlink to a directory the layer does not have', async () => {
    const passwd = fs.readFileSync('/etc/passwd', 'utf8');
    await expect(unpack([{ name: 'a', type: 'symlink', linkname: '/etc' }, { name: 'a/passwd', content: 'pwned' }])).rejects.toMatchObject({
      code: 'EUNSAFE',
    });
    await expect(unpack([{ name: 's', type: 'symlink', linkname: sentinel }, { name: 's/victim', content: 'pwned' }])).rejects.toMatchObject({
      code: 'EUNSAFE',
    });
    await expect(unpack([{ name: 'r', type: 'symlink', linkname: '../x' }, { name: 'r/y/z', content: 'pwned' }])).rejects.toMatchObject({
      code: 'EUNSAFE',
    });
    expect(fs.readFileSync('/etc/passwd', 'utf8')).toBe(passwd);
    expect(outside()).toEqual(['victim:original']);
  });

  it('resolves symlink a -> ../../.. then a/victim at the layer root', async () => {
    await unpack([
      { name: 'a', type: 'symlink', linkname: '../../..' },
      { name: 'a/victim', content: 'pwned' },
      { name: `${sentinel.slice(1)}/`, type: 'dir' },
      { name: 'deep/er/b', type: 'symlink', linkname: '../../../../../..' + sentinel },
      { name: 'deep/er/b/victim', content: 'pwned' },
    ]);
    expect(fs.readFileSync(L('victim'), 'utf8')).toBe('pwned');
    expect(fs.readFileSync(L(`${sentinel}/victim`), 'utf8')).toBe('pwned');
    expect(outside()).toEqual(['victim:original']);
  });

  it('follows a symlink chain only inside the layer', async () => {
    await unpack([
      { name: 'd/', type: 'dir' },
      { name: 'a', type: 'symlink', linkname: 'b' },
      { name: 'b', type: 'symlink', linkname: 'c/d' },
      { name: 'c', type: 'symlink', linkname: '../../../' },
      { name: 'a/x', content: 'chained' },
      { name: 'a/new/dir/y', content: 'made inside' },
    ]);
    expect(fs.readFileSync(L('d/x'), 'utf8')).toBe('chained');
    expect(fs.readFileSync(L('d/new/dir/y'), 'utf8')).toBe('made inside');
    expect(outside()).toEqual(['victim:original']);
  });

  it('refuses hardlinks to /etc/passwd and ../x', async () => {
    await expect(unpack([{ name: 'h', type: 'hardlink', linkname: '/etc/passwd' }])).rejects.toMatchObject({ code: 'EUNSAFE' });
    await expect(unpack([{ name: 'h2', type: 'hardlink', linkname: '../victim' }])).rejects.toMatchObject({ code: 'EUNSAFE' });
    await expect(unpack([{ name: 'h3', type: 'hardlink', linkname: `${sentinel}/victim` }])).rejects.toMatchObject({ code: 'EUNSAFE' });
    expect(fs.existsSync(L('h'))).toBe(false);
    expect(fs.statSync(path.join(sentinel, 'victim')).nlink).toBe(1);
    expect(outside()).toEqual(['victim:original']);
  });

  it('resolves a hardlink target through a symlink inside the layer', async () => {
    await unpack([
      { name: 's', type: 'symlink', linkname: sentinel },
      { name: `${sentinel.slice(1)}/victim`, content: 'layer copy' },
      { name: 'h', type: 'hardlink', linkname: 's/victim' },
    ]);
    expect(fs.readFileSync(L('h'), 'utf8')).toBe('layer copy');
    expect(fs.statSync(path.join(sentinel, 'victim')).nlink).toBe(1);
    expect(outside()).toEqual(['victim:original']);
  });

  it('does not write through a symlink replaced by a file, dir, whiteout or opaque marker', async () => {
    await unpack([
      { name: `${sentinel.slice(1)}/`, type: 'dir' },
      { name: 'f', type: 'symlink', linkname: `${sentinel}/victim` },
      { name: 'f', content: 'replaced the link' },
      { name: 'd', type: 'symlink', linkname: sentinel },
      { name: 'd/', type: 'dir', mode: 0o777 },
      { name: 'w', type: 'symlink', linkname: sentinel },
      { name: 'w/.wh.victim' },
      { name: 'o', type: 'symlink', linkname: sentinel },
      { name: 'o/.wh..wh..opq' },
    ]);
    expect(fs.readFileSync(L('f'), 'utf8')).toBe('replaced the link');
    expect(fs.lstatSync(L('d')).isDirectory()).toBe(true);
    expect(fs.statSync(sentinel).mode & 0o777).toBe(0o700);
    expect(fs.lstatSync(L(`${sentinel}/victim`)).isCharacterDevice()).toBe(true);
    expect(lgetxattr(sentinel, 'trusted.overlay.opaque')).toBeUndefined();
    expect(outside()).toEqual(['victim:original']);
  });

  it('treats a hardlink to a symlink as a symlink', async () => {
    await unpack([
      { name: `${sentinel.slice(1)}/`, type: 'dir' },
      { name: 's', type: 'symlink', linkname: sentinel },
      { name: 'h', type: 'hardlink', linkname: 's' },
      { name: 'h/victim', content: 'pwned' },
    ]);
    expect(fs.readFileSync(L(`${sentinel}/victim`), 'utf8')).toBe('pwned');
    expect(outside()).toEqual(['victim:original']);
  });
});

describe('the spec\'s merge rules within one layer (issue 13)', () => {
  const opaqueXattr = isRoot ? 'trusted.overlay.opaque' : 'user.overlay.opaque';
  const opaque = (rel: string) => lgetxattr(L(rel), opaqueXattr)?.toString() === 'y';

  it.runIf(isRoot)('a whiteout removes only what the layers below have: what this layer has at the name stays, in either order', async () => {
    const r = await unpack([
      { name: 'x', content: 'file before its whiteout' },
      { name: '.wh.x' },
      { name: '.wh.y' },
      { name: 'y', content: 'file after its whiteout' },
      { name: 'd/', type: 'dir' },
      { name: 'd/k', content: 'k' },
      { name: '.wh.d' },
      { name: '.wh.e' },
      { name: 'e/', type: 'dir', mode: 0o750 },
      { name: 'e/k', content: 'k' },
      { name: '.wh.f' },
      { name: 'f/g', content: 'in an implied directory over a whiteout' },
      { name: 'g', content: 'a file, then' },
      { name: 'g/', type: 'dir' },
    ]);
    expect(fs.readFileSync(L('x'), 'utf8')).toBe('file before its whiteout');
    expect(fs.readFileSync(L('y'), 'utf8')).toBe('file after its whiteout');
    // Directories of this layer stay, and hide the lower directory's content: opaque.
    for (const d of ['d', 'e', 'f', 'g']) {
      expect(fs.lstatSync(L(d)).isDirectory(), d).toBe(true);
      expect(opaque(d), d).toBe(true);
    }
    expect(fs.readFileSync(L('d/k'), 'utf8')).toBe('k');
    expect(fs.readFileSync(L('f/g'), 'utf8')).toContain('implied');
    expect(fs.lstatSync(L('e')).mode & 0o777).toBe(0o750);
    // f's lower entry is gone: it takes nothing from below.
    expect(r.fromBelow).toEqual({ implied: [], opaqueRoot: false, whiteouts: [] });
  });

  it('reports the directories a layer implies, except those a whiteout or opaque directory of the layer hides', async () => {
    const r = await unpack([
      { name: 'tmp/x', content: 'x' },
      { name: 'a/b/c', content: 'c' },
      { name: 'o/.wh..wh..opq' },
      { name: 'o/p/q', content: 'q' },
      { name: 'd/', type: 'dir' },
      { name: 'd/e/f', content: 'f' },
      { name: 'later/x', content: 'x' },
      { name: 'later/', type: 'dir', mode: 0o700 },
    ]);
    // o keeps its own lower attributes (the marker hides its children, not itself); o/p is below it.
    expect(r.fromBelow).toEqual({ implied: ['a', 'a/b', 'd/e', 'o', 'tmp'], opaqueRoot: false, whiteouts: [] });
    expect(fs.lstatSync(L('later')).mode & 0o777).toBe(0o700);
  });

  it.runIf(isRoot)('removes whiteouts under an opaque directory of the layer at once, and reports the others for the layers below', async () => {
    const r = await unpack([{ name: 'o/.wh..wh..opq' }, { name: 'o/.wh.x' }, { name: 'd/.wh.y' }, { name: '.wh.z' }]);
    expect(fs.existsSync(L('o/x'))).toBe(false);
    expect(fs.lstatSync(L('d/y')).isCharacterDevice()).toBe(true);
    expect(r.fromBelow.whiteouts).toEqual(['d/y', 'z']);
  });

  it('reports an opaque root, and then nothing to inherit', async () => {
    const r = await unpack([{ name: '.wh..wh..opq' }, { name: 'tmp/x', content: 'x' }]);
    expect(r.fromBelow).toEqual({ implied: [], opaqueRoot: true, whiteouts: [] });
  });
});

describe('entries naming the layer root', () => {
  // Issue 13's first escape: `.` as a symlink to a host directory, then `x` written through it.
  const spellings = ['.', './', '/', '', '//', './.', 'a/..'];
  const kinds: TarEntry[] = [
    { name: '', type: 'symlink', linkname: '' },
    { name: '', type: 'hardlink', linkname: 'f' },
    { name: '', content: 'a file' },
    { name: '', type: 'char', devmajor: 1, devminor: 3 },
    { name: '', type: 'block', devmajor: 7, devminor: 0 },
    { name: '', type: 'fifo' },
  ];

  for (const spelling of spellings) {
    for (const kind of kinds) {
      it(`refuses a ${kind.type ?? 'file'} named ${JSON.stringify(spelling)}, and writes nothing outside the layer`, async () => {
        fs.mkdirSync(path.join(sentinel, 'victim-dir'));
        const root = { ...kind, name: spelling, ...(kind.type === 'symlink' && { linkname: path.join(sentinel, 'victim-dir') }) };
        const err = await unpack([{ name: 'f', content: 'target of the hardlink' }, root, { name: 'x', content: 'pwned' }, { name: './y', content: 'pwned' }]).catch((e: unknown) => e);
        expect(err).toMatchObject({ code: 'EUNSAFE', message: expect.stringContaining('names the layer root itself') });
        expect((err as Error).message).toContain(spelling === '' ? ' ' : spelling);
        expect(fs.lstatSync(layer).isDirectory()).toBe(true);
        expect(fs.readdirSync(path.join(sentinel, 'victim-dir'))).toEqual([]);
        expect(outside()).toEqual(['victim-dir:other', 'victim:original']);
      });
    }
  }

  it('takes a directory entry for the root as the root\'s own mode and times', async () => {
    await unpack([{ name: './', type: 'dir', mode: 0o711, mtime: 1_600_000_000 }, { name: 'x', content: 'in the layer' }, { name: '/', type: 'dir', mode: 0o751, mtime: 1_600_000_001 }]);
    const st = fs.lstatSync(layer);
    expect(st.isDirectory()).toBe(true);
    expect(st.mode & 0o7777).toBe(0o751);
    expect(st.mtimeMs).toBe(1_600_000_001_000);
    expect(fs.readFileSync(L('x'), 'utf8')).toBe('in the layer');
  });

  it.runIf(isRoot)('refuses whiteouts of the directory they are in, or of its parent', async () => {
    // `.wh..` at the top names the layer directory's parent: once, the unpacker removed it.
    for (const name of ['.wh.', '.wh..', '.wh...', 'a/.wh..', 'a/.wh...', 'a/b/.wh...']) {
      const err = await unpack([{ name: 'a/b/keep', content: 'k' }, { name }]).catch((e: unknown) => e);
      expect(err, name).toMatchObject({ code: 'EUNSAFE', message: expect.stringContaining('names no entry of the directory it is in') });
      expect(fs.lstatSync(layer).isDirectory()).toBe(true);
      expect(outside()).toEqual(['victim:original']);
      fs.rmSync(layer, { recursive: true });
      fs.mkdirSync(layer);
    }
  });
});

// TSRUN_BENCH=1 npx vitest run test/unit/image-unpack.test.ts -t speed   (TMPDIR picks the disk)
describe.runIf(process.env.TSRUN_BENCH === '1')('unpack speed', () => {
  it('unpacks 10,000 small files', async () => {
    const entries: TarEntry[] = [];
    for (let d = 0; d < 100; d++) {
      entries.push({ name: `d${d}/`, type: 'dir' });
      for (let i = 0; i < 100; i++) entries.push({ name: `d${d}/f${i}.txt`, content: 'x'.repeat(200 + i), mode: 0o644 });
    }
    const tar = makeTar(entries);
    const t0 = performance.now();
    const r = await unpackTar(chunks(tar, 64 * 1024), layer);
    const ms = performance.now() - t0;
    console.log(`unpacked ${r.entries} entries (${(tar.length / 1e6).toFixed(1)} MB tar) in ${ms.toFixed(0)} ms: ${Math.round((r.entries / ms) * 1000)} entries/s`);
    expect(r.entries).toBe(10_100);
  });
});
