import { describe, expect, it } from 'vitest';
import { createdSince, familiarName, goTimeString, humanDuration, humanSize, imageRows, shortId } from '../../src/image/listing.js';
import type { StoredImage } from '../../src/image/store.js';
import type { Digest } from '../../src/image/types.js';

const ID = `sha256:${'ab'.repeat(32)}` as Digest;
const ID2 = `sha256:${'cd'.repeat(32)}` as Digest;
const M1 = `sha256:${'11'.repeat(32)}` as Digest;
const M2 = `sha256:${'22'.repeat(32)}` as Digest;

function image(id: Digest, manifestDigest: Digest, names: string[], repoDigests: string[] = []): StoredImage {
  return {
    id,
    manifestDigest,
    names,
    repoDigests,
    added: '2024-01-01T00:00:00Z',
    config: { architecture: 'amd64', os: 'linux', created: '2024-01-01T00:00:00Z', rootfs: { type: 'layers', diff_ids: [] } },
    layers: [],
    size: 4_261_000,
  };
}

describe('images listing', () => {
  it('formats sizes like docker (decimal, 3 significant digits)', () => {
    expect(humanSize(0)).toBe('0B');
    expect(humanSize(855)).toBe('855B');
    expect(humanSize(1234)).toBe('1.23kB');
    expect(humanSize(4_261_000)).toBe('4.26MB');
    expect(humanSize(77_800_000)).toBe('77.8MB');
    expect(humanSize(1_000_000_000)).toBe('1GB');
    expect(humanSize(999_999)).toBe('1e+03kB'); // Go's %.3g, as docker prints it
  });

  it('formats ages like docker', () => {
    const s = 1000;
    expect(humanDuration(500)).toBe('Less than a second');
    expect(humanDuration(1 * s)).toBe('1 second');
    expect(humanDuration(45 * s)).toBe('45 seconds');
    expect(humanDuration(90 * s)).toBe('About a minute');
    expect(humanDuration(5 * 60 * s)).toBe('5 minutes');
    expect(humanDuration(65 * 60 * s)).toBe('About an hour');
    expect(humanDuration(2 * 3600 * s)).toBe('2 hours');
    expect(humanDuration(3 * 86400 * s)).toBe('3 days');
    expect(humanDuration(20 * 86400 * s)).toBe('2 weeks');
    expect(humanDuration(100 * 86400 * s)).toBe('3 months');
    expect(humanDuration(800 * 86400 * s)).toBe('2 years');
    expect(createdSince(new Date('2024-01-01T00:00:00Z'), new Date('2024-01-01T02:00:00Z'))).toBe('2 hours ago');
    expect(createdSince(undefined, new Date())).toBe('N/A');
    expect(goTimeString(new Date('2024-01-01T00:00:00Z'))).toBe('2024-01-01 00:00:00 +0000 UTC');
  });

  it('makes familiar names and short IDs', () => {
    expect(familiarName('docker.io/library/busybox:latest')).toBe('busybox:latest');
    expect(familiarName('docker.io/team/app:v1')).toBe('team/app:v1');
    expect(familiarName('127.0.0.1:5000/busybox:latest')).toBe('127.0.0.1:5000/busybox:latest');
    expect(shortId(ID)).toBe('abababababab');
  });

  it('makes one row per name, <none> for unnamed images, no duplicates per image ID', () => {
    const rows = imageRows([
      image(ID, M1, ['docker.io/library/busybox:latest', 'localhost:5000/bb:v1'], [`docker.io/library/busybox@${M1}`]),
      image(ID, M2, []), // the same image loaded from a docker-archive: no extra row
      image(ID2, M2, []),
    ]);
    expect(rows.map((r) => [r.repository, r.tag, r.id, r.digest])).toEqual([
      ['busybox', 'latest', ID, M1],
      ['localhost:5000/bb', 'v1', ID, '<none>'],
      ['<none>', '<none>', ID2, '<none>'],
    ]);
    expect(imageRows([image(ID, M1, [], [`docker.io/library/busybox@${M1}`])]).map((r) => [r.repository, r.tag])).toEqual([['busybox', '<none>']]);
  });

  it('filters by repository and tag', () => {
    const imgs = [image(ID, M1, ['docker.io/library/busybox:latest', 'docker.io/library/busybox:1.36']), image(ID2, M2, ['docker.io/library/alpine:3'])];
    expect(imageRows(imgs, 'busybox').map((r) => r.tag)).toEqual(['latest', '1.36']);
    expect(imageRows(imgs, 'busybox:1.36').map((r) => r.tag)).toEqual(['1.36']);
    expect(imageRows(imgs, 'docker.io/library/alpine').map((r) => r.repository)).toEqual(['alpine']);
  });
});
