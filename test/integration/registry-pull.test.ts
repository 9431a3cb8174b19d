// Pulling from a real registry (Debian's docker-registry) over plain HTTP on loopback, which is
// implicitly insecure as in docker: layers, warm pulls, digests, indexes and platforms.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { pullAllTags, pullImage, type PullEvent } from '../../src/image/pull.js';
import { pushImage } from '../../src/image/push.js';
import { ImageStore } from '../../src/image/store.js';
import { Repository } from '../../src/registry-client/remote.js';
import { describePrivileged } from './helpers/env.js';
import {
  buildImage,
  buildIndex,
  inspectRaw,
  pushLayout,
  sha256Of,
  startRegistry,
  testDecompressor,
  TestStore,
  type BuiltImage,
  type TestRegistry,
} from './helpers/registry.js';

describe('pull from a plain-HTTP registry on loopback', () => {
  let reg: TestRegistry;
  let image: BuiltImage;
  const cleanup: string[] = [];
  const opts = { decompressor: testDecompressor, env: { TSRUN_CONFIG: '/nonexistent' } };

  beforeAll(async () => {
    reg = await startRegistry({ mode: 'http' });
    image = await buildImage({
      layers: [
        { 'bin/busybox': randomBytes(300_000), 'etc/passwd': 'root:x:0:0:root:/root:/bin/sh\n' },
        { 'etc/hostname': 'tsrun\n' },
        { 'usr/share/big': randomBytes(1_500_000) },
        { 'tmp/a': 'a' },
        { 'tmp/b': 'b' },
      ],
    });
    cleanup.push(image.layoutDir);
    await pushLayout(reg, image.layoutDir, 'busybox:latest');
  });
  afterAll(async () => {
    await reg?.stop();
    for (const d of cleanup) await rm(d, { recursive: true, force: true });
  });

  it('pulls every layer in parallel, verifies and records the image', async () => {
    const store = await TestStore.create();
    try {
      const events: PullEvent[] = [];
      const result = await pullImage(store, `${reg.host}/busybox:latest`, opts, (e) => events.push(e));
      expect(result.manifestDigest).toBe(image.manifestDigest);
      expect(result.name).toBe(`${reg.host}/busybox:latest`);
      expect(result.updated).toBe(true);
      expect(store.unpacked).toEqual(expect.arrayContaining(image.layers.map((l) => l.diffId)));
      expect(store.unpacked).toHaveLength(5);
      expect(store.maxParallelUnpacks).toBeGreaterThan(1);
      expect(store.maxParallelUnpacks).toBeLessThanOrEqual(3);
      for (const l of image.layers) {
        expect(await store.hasBlob(l.digest)).toBe(true);
        const done = events.filter((e) => e.id === l.digest.slice(7, 19) && e.status === 'Pull complete');
        expect(done).toHaveLength(1);
      }
      expect(events.some((e) => e.status === 'Downloading' && e.current! > 0)).toBe(true);
      expect(await store.hasBlob(image.configDigest)).toBe(true);
      expect(await store.hasBlob(image.manifestDigest)).toBe(true);
      expect((await store.resolve(`${reg.host}/busybox:latest`))?.manifestDigest).toBe(image.manifestDigest);

      // Warm: nothing to download, not even the config; docker's "Image is up to date". (Its
      // time is bench/pull.mjs's "warm" row, not a test's.)
      const writes = store.blobWrites.length;
      const warmEvents: PullEvent[] = [];
      const blobsOpened = vi.spyOn(Repository.prototype, 'openBlob');
      const again = await pullImage(store, `${reg.host}/busybox:latest`, opts, (e) => warmEvents.push(e)).finally(() => blobsOpened.mockRestore());
      expect(again.updated).toBe(false);
      expect(warmEvents.map((e) => e.status)).toEqual(Array(5).fill('Already exists'));
      expect(store.blobWrites.length).toBe(writes);
      expect(blobsOpened).not.toHaveBeenCalled();
    } finally {
      await store.destroy();
    }
  });

  it('pulls with a concurrency of 1 when asked', async () => {
    const store = await TestStore.create();
    try {
      await pullImage(store, `${reg.host}/busybox`, { ...opts, maxConcurrentDownloads: 1 });
      expect(store.maxParallelUnpacks).toBe(1);
    } finally {
      await store.destroy();
    }
  });

  it('pulls by digest, and from the store alone once it has it', async () => {
    const store = await TestStore.create();
    try {
      const ref = `${reg.host}/busybox@${image.manifestDigest}`;
      const r = await pullImage(store, ref, opts);
      expect(r.manifestDigest).toBe(image.manifestDigest);
      await reg.stop(); // the registry is gone: a pinned, complete image needs no network
      const again = await pullImage(store, ref, opts);
      expect(again.updated).toBe(false);
    } finally {
      await store.destroy();
      reg = await startRegistry({ mode: 'http' });
      await pushLayout(reg, image.layoutDir, 'busybox:latest');
    }
  });

  it('reports an unknown tag and an unknown repository as missing images', async () => {
    const store = await TestStore.create();
    try {
      await expect(pullImage(store, `${reg.host}/busybox:nope`, opts)).rejects.toMatchObject({
        code: 'ENOIMAGE',
        message: expect.stringContaining(`pull ${reg.host}/busybox:nope`),
      });
      await expect(pullImage(store, `${reg.host}/nothing/here`, opts)).rejects.toMatchObject({ code: 'ENOIMAGE' });
    } finally {
      await store.destroy();
    }
  });

  it('selects the platform from an index (host default, --platform, arm variants, no match)', async () => {
    const idx = await buildIndex([
      { architecture: 'amd64', layers: [{ 'amd64.txt': 'x86' }] },
      { architecture: 'arm64', variant: 'v8', layers: [{ 'arm64.txt': 'arm64' }] },
      { architecture: 'arm', variant: 'v6', layers: [{ 'armv6.txt': 'armv6' }] },
    ]);
    cleanup.push(idx.layoutDir);
    await pushLayout(reg, idx.layoutDir, 'multi:latest', true);
    const store = await TestStore.create();
    try {
      const host = process.arch === 'arm64' ? idx.images[1]! : idx.images[0]!;
      const r1 = await pullImage(store, `${reg.host}/multi`, opts);
      expect(r1.manifestDigest).toBe(host.manifestDigest);
      const r2 = await pullImage(store, `${reg.host}/multi`, { ...opts, platform: 'linux/arm64' });
      expect(r2.manifestDigest).toBe(idx.images[1]!.manifestDigest);
      // An armv7 machine runs v6 code: the v6 image is the best match.
      const r3 = await pullImage(store, `${reg.host}/multi`, { ...opts, platform: 'linux/arm/v7' });
      expect(r3.manifestDigest).toBe(idx.images[2]!.manifestDigest);
      await expect(pullImage(store, `${reg.host}/multi`, { ...opts, platform: 'linux/s390x' })).rejects.toThrow(
        /no matching manifest for linux\/s390x .*available: linux\/amd64, linux\/arm64\/v8, linux\/arm\/v6/,
      );
      // A single-platform image and an explicit, different platform: refused.
      await expect(pullImage(store, `${reg.host}/busybox`, { ...opts, platform: 'linux/arm64' })).rejects.toThrow(
        /does not match the requested platform \(linux\/arm64\/v8\)/,
      );
    } finally {
      await store.destroy();
    }
  });

  it('pulls every tag with --all-tags', async () => {
    await pushLayout(reg, image.layoutDir, 'busybox:1.36');
    const store = await TestStore.create();
    try {
      const tags: string[] = [];
      const results = await pullAllTags(store, `${reg.host}/busybox`, opts, () => {}, (t) => tags.push(t));
      expect(tags).toEqual(['1.36', 'latest']);
      expect(results.map((r) => r.name)).toEqual([`${reg.host}/busybox:1.36`, `${reg.host}/busybox:latest`]);
      await expect(pullAllTags(store, `${reg.host}/busybox:latest`, opts)).rejects.toThrow(/can't be used with --all-tags/);
    } finally {
      await store.destroy();
    }
  });
});

describePrivileged('pull into, and push from, the real ImageStore', () => {
  let reg: TestRegistry;
  let image: BuiltImage;
  let root: string;

  beforeAll(async () => {
    reg = await startRegistry({ mode: 'http' });
    image = await buildImage({ layers: [{ 'bin/tool': randomBytes(100_000), 'etc/passwd': 'root:x:0:0::/root:/bin/sh\n' }, { 'etc/hostname': 'x\n' }] });
    await pushLayout(reg, image.layoutDir, 'busybox:latest');
    root = await mkdtemp(join(tmpdir(), 'tsrun-test-registry-store-'));
  });
  afterAll(async () => {
    await reg?.stop();
    await rm(image.layoutDir, { recursive: true, force: true });
    await rm(root, { recursive: true, force: true });
  });

  it('unpacks the layers, records the image, and pushes it elsewhere unchanged', async () => {
    const env = { TSRUN_CONFIG: '/nonexistent', DOCKER_CONFIG: '/nonexistent' };
    const store = await ImageStore.open(root);
    const r = await pullImage(store, `${reg.host}/busybox`, { env });
    expect(r.image.layers).toHaveLength(2);
    expect(await readFile(join(r.image.layers[1]!.dir, 'etc/hostname'), 'utf8')).toBe('x\n');
    expect((await store.resolve(`${reg.host}/busybox:latest`))?.manifestDigest).toBe(image.manifestDigest);
    const t0 = performance.now();
    const warm = await pullImage(store, `${reg.host}/busybox`, { env });
    expect(performance.now() - t0).toBeLessThan(150);
    expect(warm.updated).toBe(false);

    await store.tag(`${reg.host}/busybox:latest`, `${reg.host}/elsewhere/busybox:v1`);
    const pushed = await pushImage(store, `${reg.host}/elsewhere/busybox:v1`, { env });
    expect(pushed.digest).toBe(image.manifestDigest);
    expect(sha256Of(await inspectRaw(reg, 'elsewhere/busybox:v1'))).toBe(image.manifestDigest);
  });
});
