// Pushing to a real registry: existence checks, cross-repository mounts, monolithic and chunked
// uploads, manifest last; what skopeo reads back is byte for byte what was pushed.
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pullImage } from '../../src/image/pull.js';
import { pushImage, type PushEvent } from '../../src/image/push.js';
import { buildImage, inspectRaw, pushLayout, sha256Of, startRegistry, testDecompressor, TestStore, type BuiltImage, type TestRegistry } from './helpers/registry.js';

describe('push', () => {
  let src: TestRegistry;
  let dst: TestRegistry;
  let image: BuiltImage;
  let store: TestStore;
  const env = { TSRUN_CONFIG: '/nonexistent', DOCKER_CONFIG: '/nonexistent' };

  beforeAll(async () => {
    [src, dst] = await Promise.all([startRegistry({ mode: 'http' }), startRegistry({ mode: 'token' })]);
    image = await buildImage({ layers: [{ 'etc/motd': 'hello\n' }, { 'opt/data': randomBytes(200_000) }, { 'opt/more': randomBytes(70_000) }] });
    await pushLayout(src, image.layoutDir, 'team/app:latest');
    store = await TestStore.create();
    await pullImage(store, `${src.host}/team/app:latest`, { decompressor: testDecompressor, env });
  });
  afterAll(async () => {
    await store?.destroy();
    await src?.stop();
    await dst?.stop();
    await rm(image.layoutDir, { recursive: true, force: true });
  });

  async function tag(name: string): Promise<void> {
    const m = await store.resolve(`${src.host}/team/app:latest`);
    await store.putImage({ manifestDigest: m.manifestDigest, manifest: { layers: [] }, configDigest: m.id, names: [name] });
  }

  it('mounts blobs from another repository of the same registry instead of uploading them', async () => {
    await tag(`${src.host}/other/app:v1`);
    const events: PushEvent[] = [];
    const r = await pushImage(store, `${src.host}/other/app:v1`, { env }, (e) => events.push(e));
    expect(r.digest).toBe(image.manifestDigest);
    const final = events.filter((e) => ['Mounted', 'Pushed', 'Layer already exists'].includes(e.status));
    expect(final.map((e) => e.status)).toEqual(['Mounted', 'Mounted', 'Mounted']);
    expect(final.every((e) => e.detail === 'team/app')).toBe(true);
    expect(sha256Of(await inspectRaw(src, `other/app:v1`))).toBe(image.manifestDigest);
  });

  it('uploads to another registry with a token (chunked), then finds every layer there', async () => {
    const name = `${dst.host}/copy/app:v2`;
    await tag(name);
    const cred = async () => ({ username: dst.user!, password: dst.password! });
    const events: PushEvent[] = [];
    const r = await pushImage(store, name, { env, credential: cred, chunkSize: 64 * 1024 }, (e) => events.push(e));
    expect(r).toMatchObject({ tag: 'v2', digest: image.manifestDigest });
    expect(events.filter((e) => e.status === 'Pushed')).toHaveLength(3);
    expect(events.some((e) => e.status === 'Pushing' && e.current! > 0 && e.current! < e.total!)).toBe(true);
    // The token asked for covers pull and push.
    expect(dst.token!.requests.some((q) => q.scopes.includes('repository:copy/app:pull,push'))).toBe(true);
    expect(sha256Of(await inspectRaw(dst, 'copy/app:v2'))).toBe(image.manifestDigest);

    const again: PushEvent[] = [];
    await pushImage(store, name, { env, credential: cred }, (e) => again.push(e));
    expect(again.filter((e) => e.status === 'Layer already exists')).toHaveLength(3);

    // And it pulls back, by digest, unchanged.
    const back = await TestStore.create();
    try {
      const p = await pullImage(back, `${dst.host}/copy/app@${r.digest}`, { decompressor: testDecompressor, env, credential: cred });
      expect(p.manifestDigest).toBe(image.manifestDigest);
    } finally {
      await back.destroy();
    }
  });

  it('uploads in one PUT when the blob is small', async () => {
    const name = `${src.host}/mono/app:v3`;
    await tag(name);
    // Forget where the blobs came from, so nothing can be mounted.
    await rm(`${store.root}/registry-sources`, { recursive: true, force: true });
    const events: PushEvent[] = [];
    const r = await pushImage(store, name, { env }, (e) => events.push(e));
    expect(events.filter((e) => e.status === 'Pushed')).toHaveLength(3);
    expect(sha256Of(await inspectRaw(src, 'mono/app:v3'))).toBe(r.digest);
  });

  it('says which image is missing', async () => {
    await expect(pushImage(store, `${src.host}/nope:v1`, { env })).rejects.toMatchObject({
      code: 'ENOIMAGE',
      message: expect.stringContaining('an image does not exist locally with the tag'),
    });
  });
});
