// An upper dir → an OCI changeset tar, on real directories: overlayfs's 0/0 character device and
// opaque attribute become `.wh.` names, and the safe unpack turns the tar back into the same
// markers in a layer dir. Whiteouts need root (mknod, trusted.* attributes): skipped without it.
import * as fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { unpackTar } from '../../src/image/unpack.js';
import { extract } from '../../src/image/tar.js';
import * as libc from '../../src/sys/libc.js';
import { LowerLayers, isOpaque, isWhiteout, makeWhiteout, markOpaque, writeChangeset, type ChangesetOptions } from '../../src/overlay/index.js';

const isRoot = process.getuid?.() === 0;
let tmp: string;
let lower: string;
let upper: string;

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-changeset-'));
  [lower, upper] = ['lower', 'upper'].map((d) => path.join(tmp, d)) as [string, string];
  for (const d of [lower, upper]) fs.mkdirSync(d);
  // The image: etc/{passwd,gone}, var/cache/old, tmp/ (1777).
  for (const d of ['etc', 'var/cache', 'tmp']) fs.mkdirSync(path.join(lower, d), { recursive: true, mode: 0o755 });
  fs.chmodSync(path.join(lower, 'tmp'), 0o1777);
  for (const f of ['etc/passwd', 'etc/gone', 'var/cache/old']) fs.writeFileSync(path.join(lower, f), f);
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** The entries (name, type) of the tar writeChangeset writes, and what it reports. */
async function changeset(opts: ChangesetOptions = {}): Promise<{ tar: Buffer; names: Array<[string, string | null]>; result: { entries: number; changed: boolean } }> {
  const chunks: Buffer[] = [];
  const result = await writeChangeset(upper, new LowerLayers([lower]), async (tar) => {
    for await (const c of tar) chunks.push(c as Buffer);
  }, opts);
  const tar = Buffer.concat(chunks);
  const names: Array<[string, string | null]> = [];
  const ex = extract();
  ex.end(tar);
  for await (const entry of ex) {
    names.push([entry.header.name, entry.header.type]);
    entry.resume();
  }
  return { tar, names, result };
}

/** Copies a lower directory up as overlayfs does: same mode, owner and times. */
function copyUp(rel: string): void {
  const st = fs.statSync(path.join(lower, rel));
  fs.mkdirSync(path.join(upper, rel), { recursive: true });
  fs.chmodSync(path.join(upper, rel), st.mode & 0o7777);
}

describe('writeChangeset', () => {
  it.skipIf(!isRoot)('spells whiteouts and opaque directories the OCI way', async () => {
    copyUp('etc');
    makeWhiteout(path.join(upper, 'etc/gone'));
    fs.writeFileSync(path.join(upper, 'etc/hosts'), ''); // a runtime mount point: skipped below
    fs.writeFileSync(path.join(upper, 'hello'), 'hi');
    copyUp('var');
    fs.mkdirSync(path.join(upper, 'var/cache'));
    markOpaque(path.join(upper, 'var/cache'));
    fs.writeFileSync(path.join(upper, 'var/cache/new'), 'new');

    const { tar, names, result } = await changeset({ skip: (e) => e.rel === 'etc/hosts' });
    expect(names).toEqual([
      ['etc/', 'directory'],
      ['etc/.wh.gone', 'file'],
      ['hello', 'file'],
      ['var/', 'directory'],
      ['var/cache/', 'directory'],
      ['var/cache/.wh..wh..opq', 'file'],
      ['var/cache/new', 'file'],
    ]);
    expect(result).toEqual({ entries: 7, changed: true });

    // And back: the safe unpack makes the same markers in a layer dir.
    const layer = path.join(tmp, 'layer');
    fs.mkdirSync(layer, { mode: 0o700 });
    await unpackTar(Readable.from([tar]), layer);
    expect(isWhiteout(fs.lstatSync(path.join(layer, 'etc/gone')))).toBe(true);
    expect(isOpaque(path.join(layer, 'var/cache'))).toBe(true);
    expect(isOpaque(path.join(layer, 'var'))).toBe(false);
    expect(fs.readFileSync(path.join(layer, 'var/cache/new'), 'utf8')).toBe('new');
    expect(fs.existsSync(path.join(layer, 'etc/hosts'))).toBe(false);
  });

  it('reports no change when only copied-up directories remain', async () => {
    copyUp('etc');
    copyUp('tmp');
    fs.writeFileSync(path.join(upper, 'etc/hostname'), '');
    const { names, result } = await changeset({ skip: (e) => e.rel === 'etc/hostname' });
    expect(names).toEqual([
      ['etc/', 'directory'],
      ['tmp/', 'directory'],
    ]);
    expect(result).toEqual({ entries: 2, changed: false });
  });

  it('counts a directory whose mode changed, and a new one, as changes', async () => {
    copyUp('tmp');
    fs.chmodSync(path.join(upper, 'tmp'), 0o700);
    expect((await changeset()).result.changed).toBe(true);
    fs.chmodSync(path.join(upper, 'tmp'), 0o1777);
    fs.mkdirSync(path.join(upper, 'new'));
    expect((await changeset()).result.changed).toBe(true);
  });

  it('counts a copied-up directory whose attributes changed as a change (RUN setfattr -n user.x /etc)', async () => {
    copyUp('etc');
    expect((await changeset()).result.changed).toBe(false);
    libc.lsetxattr(path.join(upper, 'etc'), 'user.note', Buffer.from('set by a RUN'));
    expect((await changeset()).result.changed).toBe(true);
  });

  it.skipIf(!isRoot)('gives entries the owner the map says, and compares copied-up dirs by it', async () => {
    copyUp('etc');
    fs.chownSync(path.join(upper, 'etc'), 100000, 100000); // shifted ids on disk
    fs.writeFileSync(path.join(upper, 'etc/motd'), 'hi');
    fs.chownSync(path.join(upper, 'etc/motd'), 101000, 101000);
    const owner = ({ uid, gid }: { uid: number; gid: number }) => ({ uid: uid - 100000, gid: gid - 100000 });
    const chunks: Buffer[] = [];
    const result = await writeChangeset(upper, new LowerLayers([lower]), async (tar) => {
      for await (const c of tar) chunks.push(c as Buffer);
    }, { owner, skip: (e) => e.rel === 'etc/motd' });
    expect(result).toEqual({ entries: 1, changed: false });
    const ex = extract();
    ex.end(Buffer.concat(chunks));
    const owners: Array<[string, number, number]> = [];
    for await (const entry of ex) {
      owners.push([entry.header.name, entry.header.uid, entry.header.gid]);
      entry.resume();
    }
    expect(owners).toEqual([['etc/', 0, 0]]);
    expect((await writeChangeset(upper, new LowerLayers([lower]), async (tar) => {
      for await (const _ of tar) void _;
    }, { owner })).changed).toBe(true);
  });
});
