import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { codeCacheDir, codeCacheName, partialCacheName, readCodeCache, trustedDir, writeCodeCache } from '../../src/sys/code-cache.js';

describe('the code cache of the tsrun bundle', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'tsrun-code-cache-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const isRoot = process.geteuid?.() === 0;

  it('lives in /var/cache/tsrun for root, in the user\'s own cache directory for anyone else', () => {
    expect(codeCacheDir({}, 0)).toBe('/var/cache/tsrun');
    expect(codeCacheDir({ HOME: '/home/u' }, 1000)).toBe('/home/u/.cache/tsrun');
    expect(codeCacheDir({ HOME: '/home/u', XDG_CACHE_HOME: '/x' }, 1000)).toBe('/x/tsrun');
    // Rootless tsrun's second process is root only in its user namespace: the user's directory.
    expect(codeCacheDir({ HOME: '/home/u', TSRUN_USERNS: '1000' }, 0)).toBe('/home/u/.cache/tsrun');
    expect(codeCacheDir({}, 1000)).toBeUndefined();
    expect(codeCacheDir({ TSRUN_CODE_CACHE: '/c' }, 0)).toBe('/c');
    expect(codeCacheDir({ TSRUN_CODE_CACHE: 'off' }, 0)).toBeUndefined();
  });

  it('trusts only a directory of this user that nobody else may write to', () => {
    const made = join(tmp, 'a', 'b');
    expect(trustedDir(made)).toBe(true);
    expect(statSync(made).mode & 0o777).toBe(0o700);
    const open = join(tmp, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    expect(trustedDir(open)).toBe(false);
    const link = join(tmp, 'link');
    symlinkSync(made, link);
    expect(trustedDir(link)).toBe(false);
    writeFileSync(join(tmp, 'file'), '');
    expect(trustedDir(join(tmp, 'file'))).toBe(false);
    if (isRoot) {
      const theirs = join(tmp, 'theirs');
      mkdirSync(theirs, { mode: 0o700 });
      chownSync(theirs, 65534, 65534);
      expect(trustedDir(theirs)).toBe(false);
    }
  });

  it('names a cache by command, Node, and the bundle', () => {
    expect(codeCacheName('run', '0123abcd')).toBe(`run.${process.version}-${process.arch}-0123abcd.v8`);
    expect(codeCacheName('../../etc/x', '0123abcd')).toMatch(/^other\./);
  });

  it('reads back what it wrote, replaces it whole, and drops the command\'s stale caches', () => {
    const dir = join(tmp, 'rw');
    expect(trustedDir(dir)).toBe(true);
    const old = codeCacheName('ps', 'aaaa');
    const other = codeCacheName('run', 'aaaa');
    const otherNode = `ps.v0.0.1-${process.arch}-bbbb.v8`;
    writeCodeCache(dir, old, Buffer.from('old'));
    writeCodeCache(dir, other, Buffer.from('run'));
    writeCodeCache(dir, otherNode, Buffer.from('other node'));
    const name = codeCacheName('ps', 'bbbb');
    writeCodeCache(dir, name, Buffer.from('new'));
    expect(readCodeCache(dir, name)?.toString()).toBe('new');
    // ps of the earlier bundle is gone; run's and another Node's of this bundle stay; no temporary file.
    expect(readdirSync(dir).sort()).toEqual([name, other, otherNode].sort());
    expect(statSync(join(dir, name)).mode & 0o777).toBe(0o600);
    expect(readCodeCache(dir, 'missing.v8')).toBeUndefined();
  });

  it('keeps a partial cache beside the whole ones of this bundle, and drops it when the whole one is written', () => {
    const dir = join(tmp, 'partial');
    expect(trustedDir(dir)).toBe(true);
    const name = codeCacheName('run', 'dddd');
    const partial = partialCacheName(name);
    expect(partial).toBe(`run.${process.version}-${process.arch}-dddd.partial.v8`);
    const otherNode = `run.v0.0.1-${process.arch}-dddd.v8`;
    const olderBundle = codeCacheName('run', 'eeee');
    const olderPartial = partialCacheName(olderBundle);
    for (const f of [otherNode, olderBundle, olderPartial]) writeFileSync(join(dir, f), 'x', { mode: 0o600 });
    writeCodeCache(dir, partial, Buffer.from('part'));
    expect(readdirSync(dir).sort()).toEqual([otherNode, partial].sort());
    writeCodeCache(dir, name, Buffer.from('whole'));
    expect(readdirSync(dir).sort()).toEqual([otherNode, name].sort());
  });

  it('maps the cache when given a way to (the addon\'s mapFile), and reads it when that declines', () => {
    const dir = join(tmp, 'mapped');
    expect(trustedDir(dir)).toBe(true);
    const name = codeCacheName('ps', 'cccc');
    writeCodeCache(dir, name, Buffer.from('code'));
    const asked: Array<[number, boolean]> = [];
    const mapped = Buffer.from('mapped');
    expect(readCodeCache(dir, name, (fd, asString) => (asked.push([fd, asString]), mapped))).toBe(mapped);
    expect(asked).toEqual([[expect.any(Number), false]]);
    expect(readCodeCache(dir, name, () => undefined)?.toString()).toBe('code');
    // A planted symlink is refused before anything is mapped.
    symlinkSync(join(dir, name), join(dir, 'link.v8'));
    expect(readCodeCache(dir, 'link.v8', () => mapped)).toBeUndefined();
  });

  it('does not follow a symlink planted in place of a cache file', () => {
    const dir = join(tmp, 'planted');
    expect(trustedDir(dir)).toBe(true);
    writeFileSync(join(tmp, 'elsewhere'), 'code');
    symlinkSync(join(tmp, 'elsewhere'), join(dir, 'run.v8'));
    expect(readCodeCache(dir, 'run.v8')).toBeUndefined();
    expect(readFileSync(join(tmp, 'elsewhere'), 'utf8')).toBe('code');
  });
});
