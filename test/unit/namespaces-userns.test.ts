import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { mapId, prepareContainerDirs, shiftOwners, toContainerIds, toHostIds, unmapId } from '../../src/namespaces/userns-files.js';
import { allocateUserns, blocksInUse, ensureSubIds, parseSubIds, parseUserns, releaseUserns } from '../../src/namespaces/userns.js';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'tsrun-unit-userns-'));
  dirs.push(d);
  return d;
};
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('user namespace options and subordinate ids', () => {
  it('parses --userns and the maps, podman style', () => {
    expect(parseUserns(undefined, [], [], false)).toBeUndefined();
    expect(parseUserns('host', [], [], true)).toBeUndefined();
    expect(parseUserns('auto', [], [], false)).toEqual({ mode: 'private', uidMap: [], gidMap: [] });
    const m = parseUserns(undefined, ['0:100000:10', '10:200000:5'], [], false)!;
    expect(m.gidMap).toEqual(m.uidMap);
    expect(m.uidMap[1]).toEqual({ containerID: 10, hostID: 200000, size: 5 });
    expect(() => parseUserns('private', [], [], true)).toThrow(/--privileged/);
    expect(() => parseUserns(undefined, ['0:1:10', '2:50:3'], [], false)).toThrow(/container ranges overlap/);
    expect(() => parseUserns(undefined, ['0:100:10', '20:105:3'], [], false)).toThrow(/host ranges overlap/);
    expect(() => parseUserns(undefined, [], ['0:1:1'], false)).toThrow(/--gidmap needs a --uidmap/);
  });

  it('adds tsrun after every existing range, once', () => {
    const f = join(tmp(), 'subuid');
    writeFileSync(f, '# comment\nalice:100000:65536\nbob:300000:1000000');
    expect(parseSubIds(readFileSync(f, 'utf8')).map((e) => e.owner)).toEqual(['alice', 'bob']);
    const r = ensureSubIds(f);
    expect(r.start).toBe(1310720); // 1300000 rounded up to a 65536 block
    expect(ensureSubIds(f)).toEqual(r);
    expect(readFileSync(f, 'utf8').split('\n').filter((l) => l.startsWith('tsrun:'))).toEqual(['tsrun:1310720:67108864']);
  });

  it('hands out distinct blocks and takes back only its own', () => {
    const d = tmp();
    const files = { uid: join(d, 'subuid'), gid: join(d, 'subgid') };
    const a = allocateUserns(d, 'a', files);
    const b = allocateUserns(d, 'b', files);
    expect([a.block, b.block]).toEqual([0, 1]);
    expect(b.uidMap[0]!.hostID - a.uidMap[0]!.hostID).toBe(65536);
    releaseUserns(d, 'b', a); // not b's block: kept
    expect(blocksInUse(d).sort()).toEqual([0, 1]);
    releaseUserns(d, 'a', a);
    expect(blocksInUse(d)).toEqual([1]);
    expect(allocateUserns(d, 'c', files).block).toBe(0);
  });
});

describe('shifted copies, where the store cannot be idmapped', () => {
  const maps = { uidMap: [{ containerID: 0, hostID: 200000, size: 1000 }], gidMap: [{ containerID: 0, hostID: 300000, size: 1000 }] };

  it('maps ids through the ranges, and leaves out what they leave out', () => {
    expect(mapId(0, maps.uidMap)).toBe(200000);
    expect(mapId(999, maps.uidMap)).toBe(200999);
    expect(mapId(1000, maps.uidMap)).toBeUndefined();
    expect(unmapId(200999, maps.uidMap)).toBe(999);
    expect(unmapId(199999, maps.uidMap)).toBeUndefined();
  });

  it('turns owners on disk into the container\'s and back (cp, export, commit); outside the map is nobody', () => {
    expect(toContainerIds(maps, { uid: 200005, gid: 300007 })).toEqual({ uid: 5, gid: 7 });
    expect(toContainerIds(maps, { uid: 0, gid: 300000 })).toEqual({ uid: 65534, gid: 0 });
    expect(toHostIds(maps, { uid: 5, gid: 7 })).toEqual({ uid: 200005, gid: 300007 });
    expect(toHostIds(maps, { uid: 5000, gid: 0 })).toEqual({ uid: 65534, gid: 300000 });
    // No shift (an idmapped store, no user namespace): the ids as they are.
    expect(toContainerIds(undefined, { uid: 200005, gid: 1 })).toEqual({ uid: 200005, gid: 1 });
    expect(toHostIds(undefined, { uid: 5, gid: 7 })).toEqual({ uid: 5, gid: 7 });
  });

  it.skipIf(process.getuid?.() !== 0)('shifts every owner and keeps set-id bits that chown clears', () => {
    const d = tmp();
    mkdirSync(join(d, 'bin'));
    writeFileSync(join(d, 'bin', 'su'), '');
    chownSync(join(d, 'bin', 'su'), 0, 5);
    chmodSync(join(d, 'bin', 'su'), 0o4755); // after chown, which clears it
    symlinkSync('su', join(d, 'bin', 'link'));
    shiftOwners(d, maps);
    const su = statSync(join(d, 'bin', 'su'));
    expect([su.uid, su.gid, su.mode & 0o7777]).toEqual([200000, 300005, 0o4755]);
    expect(lstatSync(join(d, 'bin', 'link')).uid).toBe(200000);
  });

  it('says which parent keeps the container root from the copies', () => {
    const d = tmp(); // mkdtemp: 0700
    const store = join(d, 'store');
    mkdirSync(join(store, 'containers', 'x'), { recursive: true });
    expect(() => prepareContainerDirs(store, join(store, 'containers', 'x'), { mode: 'private', ...maps }))
      .toThrow(new RegExp(`${d} is not searchable by others; chmod o\\+x ${d}`));
  });
});
