// Anonymous volumes as data: `-v /path` parsed, and which of the image's VOLUME paths get one
// (those no -v, --mount or --tmpfs of the run covers), in an order that mounts parents first.
import { describe, expect, it } from 'vitest';
import { namedVolume, parseTmpfs, parseVolume, type VolumeMount } from '../../src/namespaces/options.js';
import { withImageVolumes } from '../../src/container/volumes.js';

const anon = (target: string): VolumeMount => ({ source: '', target, readonly: false, anonymous: true });

describe('-v /path: an anonymous volume', () => {
  it('is a container path alone, normalized', () => {
    expect(parseVolume('/data')).toEqual(anon('/data'));
    expect(parseVolume('/var//lib/./db/')).toEqual(anon('/var/lib/db'));
  });

  it('is refused where no mount may go, and takes no mode (as docker)', () => {
    expect(() => parseVolume('/')).toThrow(/cannot mount over the container root/);
    expect(() => parseVolume('/proc/sys')).toThrow(/\/proc belongs to the kernel/);
    expect(() => parseVolume('/data:ro')).toThrow(/the container path "ro" must be absolute/);
    expect(() => parseVolume('data')).toThrow(/expected .* or \/container\/path/);
  });
});

describe("the image's VOLUME", () => {
  const none = { volumes: [] as VolumeMount[], tmpfs: [] };

  it('gives each path an anonymous volume', () => {
    expect(withImageVolumes(none, { '/data': {}, '/var/log/': {} })).toEqual([anon('/data'), anon('/var/log')]);
    expect(withImageVolumes(none, undefined)).toEqual([]);
    expect(withImageVolumes(none, null)).toEqual([]);
  });

  it('leaves out a path a -v, --mount or --tmpfs of the run covers', () => {
    const named = namedVolume('mine', '/data', false, false);
    const bind = parseVolume('/host:/cache');
    const own = parseVolume('/logs');
    expect(withImageVolumes({ volumes: [named, bind, own], tmpfs: [parseTmpfs('/tmp')] }, { '/data': {}, '/cache': {}, '/logs': {}, '/tmp': {}, '/new': {} })).toEqual([
      named,
      bind,
      own,
      anon('/new'),
    ]);
  });

  it('goes before the run\'s mounts below it, which are then mounted on top of it', () => {
    const below = parseVolume('/host:/data/sub');
    const other = parseVolume('/host:/elsewhere');
    expect(withImageVolumes({ volumes: [other, below], tmpfs: [] }, { '/data': {} })).toEqual([other, anon('/data'), below]);
    // /database is not below /data.
    const sibling = parseVolume('/host:/database');
    expect(withImageVolumes({ volumes: [sibling], tmpfs: [] }, { '/data': {} })).toEqual([sibling, anon('/data')]);
  });

  it('refuses a path nothing may be mounted on, naming the VOLUME', () => {
    expect(() => withImageVolumes(none, { '/proc/x': {} })).toThrow(/^the image's VOLUME \/proc\/x cannot be mounted: cannot mount on \/proc\/x: \/proc belongs to the kernel/);
    expect(() => withImageVolumes(none, { relative: {} })).toThrow(/^the image's VOLUME relative cannot be mounted: the container path "relative" must be absolute/);
  });
});
