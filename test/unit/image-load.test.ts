import { createReadStream } from 'node:fs';
import * as fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { sha256 } from '../../src/image/digest.js';
import { loadImages, loadImagesFromStream } from '../../src/image/load.js';
import { ImageStore } from '../../src/image/store.js';
import { haveBusybox, makeBusyboxImage, type Fixture, type FixtureOptions } from '../fixtures/images.js';
import { makeTar } from '../fixtures/tar.js';

let root: string;
let store: ImageStore;
let scratch: string;
const fixtures: Fixture[] = [];

async function fixture(o: FixtureOptions): Promise<Fixture> {
  const f = await makeBusyboxImage(o);
  fixtures.push(f);
  return f;
}

let oci3: Fixture;
let archive3: Fixture;
let docker3: Fixture;

beforeAll(async () => {
  if (!haveBusybox) return;
  oci3 = await fixture({ format: 'oci', layers: 3 });
  archive3 = await fixture({ format: 'oci-archive', layers: 3, tag: 'busybox:3layers' });
  docker3 = await fixture({ format: 'docker-archive', layers: 3 });
});

afterAll(() => {
  for (const f of fixtures) f.remove();
});

beforeEach(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-load-'));
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-load-input-'));
  store = await ImageStore.open(root);
});

afterEach(() => {
  fs.rmSync(root, { recursive: true, force: true });
  fs.rmSync(scratch, { recursive: true, force: true });
});

/** Nothing trusted in the store: no image, no layer, no link, no blob, no temp. */
async function expectEmptyStore() {
  expect(await store.list()).toEqual([]);
  expect(fs.readdirSync(path.join(root, 'layers'))).toEqual([]);
  expect(fs.readdirSync(path.join(root, 'l'))).toEqual([]);
  expect(fs.readdirSync(path.join(root, 'blobs/sha256'))).toEqual([]);
  expect(fs.readdirSync(path.join(root, 'tmp'))).toEqual([]);
}

function copyLayout(from: string): string {
  const to = path.join(scratch, 'layout');
  fs.cpSync(from, to, { recursive: true });
  return to;
}

describe.runIf(haveBusybox)('loadImages', () => {
  it('loads an OCI layout with three layers (whiteout, opaque dir, hardlink)', async () => {
    const [img] = await loadImages(store, oci3.path);
    // ref.name "latest" names no repository: loaded untagged, like podman.
    expect(img).toMatchObject({ id: oci3.configDigest, manifestDigest: oci3.manifestDigest, names: [] });
    const rec = (await store.resolve(oci3.configDigest))!;
    expect(rec.layers.map((l) => l.diffId)).toEqual(oci3.diffIds);
    const [base, second] = rec.layers;
    expect(fs.statSync(path.join(base!.dir, 'bin/busybox')).size).toBe(fs.statSync('/bin/busybox').size);
    expect(fs.readlinkSync(path.join(base!.dir, 'bin/sh'))).toBe('/bin/busybox');
    expect(fs.statSync(path.join(base!.dir, 'tmp')).mode & 0o7777).toBe(0o1777);
    expect(fs.lstatSync(path.join(second!.dir, 'etc/deleteme')).isCharacterDevice()).toBe(true);
    expect(fs.lstatSync(path.join(second!.dir, 'etc/motd.hardlink')).ino).toBe(fs.lstatSync(path.join(second!.dir, 'etc/motd')).ino);
    // The compressed layer blobs are kept, as a pull keeps them (push needs them) ...
    const manifest = JSON.parse((await store.readBlob(oci3.manifestDigest as never)).toString());
    for (const l of manifest.layers) expect(await store.hasBlob(l.digest)).toBe(true);
    // ... and go with the image.
    await store.removeImage(oci3.configDigest);
    expect(fs.readdirSync(path.join(root, 'blobs/sha256'))).toEqual([]);
    expect(fs.readdirSync(path.join(root, 'layers'))).toEqual([]);
  });

  it('names images from annotations: a full ref.name, or containerd’s name', async () => {
    const named = await fixture({ format: 'oci', tag: 'localhost:5000/tools/busybox:v1' });
    expect((await loadImages(store, named.path))[0]!.names).toEqual(['localhost:5000/tools/busybox:v1']);
    const containerd = await fixture({ format: 'oci', tag: 'latest', name: 'docker.io/library/busybox:latest' });
    expect((await loadImages(store, containerd.path))[0]!.names).toEqual(['docker.io/library/busybox:latest']);
    expect((await store.resolve('busybox'))?.id).toBe(containerd.configDigest);
  });

  it('loads an oci-archive, from a file and from a stream', async () => {
    const [img] = await loadImages(store, archive3.path);
    expect(img).toMatchObject({ id: archive3.configDigest, names: ['docker.io/library/busybox:3layers'] });
    const again = await loadImagesFromStream(store, createReadStream(archive3.path));
    expect(again[0]!.id).toBe(archive3.configDigest);
    expect(fs.readdirSync(path.join(root, 'tmp'))).toEqual([]);
  });

  it('loads a docker-archive, plain or gzip-compressed as a whole', async () => {
    const [img] = await loadImages(store, docker3.path);
    expect(img).toMatchObject({ id: docker3.configDigest, names: ['docker.io/library/busybox:latest'] });
    const rec = (await store.resolve('busybox:latest'))!;
    expect(rec.layers.map((l) => l.diffId)).toEqual(docker3.diffIds);
    expect(rec.manifestDigest).toBe(img!.manifestDigest);
    // The manifest recorded names each layer's tar by its diff_id, as docker's does; the store
    // holds those blobs (`push` and `save` send them), each what its descriptor says.
    const manifest = JSON.parse((await store.readBlob(img!.manifestDigest)).toString('utf8')) as { layers: Array<{ digest: string; size: number }> };
    expect(manifest.layers.map((l) => l.digest)).toEqual(docker3.diffIds);
    for (const l of manifest.layers) {
      const blob = fs.readFileSync(path.join(root, 'blobs/sha256', l.digest.slice(7)));
      expect([sha256(blob), blob.length]).toEqual([l.digest, l.size]);
    }
    await store.removeImage('busybox');
    const gz = path.join(scratch, 'busybox.tar.gz');
    fs.writeFileSync(gz, zlib.gzipSync(fs.readFileSync(docker3.path)));
    expect((await loadImages(store, gz))[0]!.id).toBe(docker3.configDigest);
  });

  it('loads docker-archive layers that are gzip-compressed, and zstd OCI layers', async () => {
    const gzLayers = await fixture({ format: 'docker-archive', compression: 'gzip', layers: 2 });
    expect((await loadImages(store, gzLayers.path))[0]!.id).toBe(gzLayers.configDigest);
    const z = await fixture({ format: 'oci', compression: 'zstd', layers: 2 });
    expect((await loadImages(store, z.path))[0]!.id).toBe(z.configDigest);
  });

  it("picks the host's platform from a multi-platform index", async () => {
    const idx = await fixture({ format: 'oci', index: true, name: 'docker.io/library/busybox:multi' });
    const loaded = await loadImages(store, idx.path);
    expect(loaded).toHaveLength(1);
    expect(loaded[0]).toMatchObject({ id: idx.configDigest, names: ['docker.io/library/busybox:multi'] });
  });

  it('shares layers with images already in the store', async () => {
    await loadImages(store, oci3.path);
    const before = fs.readdirSync(path.join(root, 'layers'));
    await loadImages(store, archive3.path); // same layers, another manifest name
    expect(fs.readdirSync(path.join(root, 'layers'))).toEqual(before);
  });
});

describe.runIf(haveBusybox)('loadImages refuses bad input and keeps nothing', () => {
  it('a tarball that is not an image', async () => {
    const p = path.join(scratch, 'notimage.tar');
    fs.writeFileSync(p, makeTar([{ name: 'hello.txt', content: 'hi' }]));
    await expect(loadImages(store, p)).rejects.toMatchObject({ code: 'EBADIMAGE', message: expect.stringMatching(/neither manifest.json/) });
    await expectEmptyStore();
  });

  it('a file that is not a tar', async () => {
    const p = path.join(scratch, 'random.bin');
    fs.writeFileSync(p, Buffer.alloc(4096, 7));
    await expect(loadImages(store, p)).rejects.toMatchObject({ code: 'EBADIMAGE', message: expect.stringMatching(/not a tar archive/) });
    await expect(loadImages(store, path.join(scratch, 'missing'))).rejects.toMatchObject({ code: 'EBADIMAGE' });
    await expectEmptyStore();
  });

  it('a missing blob', async () => {
    const layout = copyLayout(oci3.path);
    const last = oci3.diffIds.length - 1;
    const manifest = JSON.parse(fs.readFileSync(path.join(layout, 'blobs/sha256', oci3.manifestDigest.slice(7)), 'utf8'));
    fs.rmSync(path.join(layout, 'blobs/sha256', manifest.layers[last].digest.slice(7)));
    await expect(loadImages(store, layout)).rejects.toMatchObject({ code: 'EBADIMAGE', message: expect.stringMatching(/missing/) });
    await expectEmptyStore();
  });

  it('a layer blob whose digest does not match, after earlier layers were unpacked', async () => {
    const layout = copyLayout(oci3.path);
    const manifest = JSON.parse(fs.readFileSync(path.join(layout, 'blobs/sha256', oci3.manifestDigest.slice(7)), 'utf8'));
    const last = path.join(layout, 'blobs/sha256', manifest.layers[2].digest.slice(7));
    // Same size, different content: a valid gzip of a different tar, padded to the size.
    const other = zlib.gzipSync(makeTar([{ name: 'etc/layer-3', content: '4\n' }]));
    const size = fs.statSync(last).size;
    fs.writeFileSync(last, Buffer.concat([other, Buffer.alloc(Math.max(0, size - other.length))]).subarray(0, size));
    await expect(loadImages(store, layout)).rejects.toMatchObject({ code: 'EDIGEST' });
    await expectEmptyStore();
  });

  it('a manifest blob that does not match its digest', async () => {
    const layout = copyLayout(oci3.path);
    const file = path.join(layout, 'blobs/sha256', oci3.manifestDigest.slice(7));
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('"schemaVersion":2', '"schemaVersion":2 '));
    await expect(loadImages(store, layout)).rejects.toMatchObject({ code: 'EDIGEST' });
    await expectEmptyStore();
  });

  it('a docker-archive whose layer does not match the config diff_ids', async () => {
    const layer = makeTar([{ name: 'a', content: 'a' }]);
    const config = JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256('another layer')] } });
    const p = path.join(scratch, 'wrong.tar');
    fs.writeFileSync(
      p,
      makeTar([
        { name: 'config.json', content: config },
        { name: 'l1/layer.tar', content: layer },
        { name: 'manifest.json', content: JSON.stringify([{ Config: 'config.json', RepoTags: ['bad:1'], Layers: ['l1/layer.tar'] }]) },
      ]),
    );
    await expect(loadImages(store, p)).rejects.toMatchObject({ code: 'EDIGEST' });
    await expectEmptyStore();
  });

  it('a docker-archive whose config file is not what its name says', async () => {
    const p = path.join(scratch, 'cfg.tar');
    const config = JSON.stringify({ rootfs: { type: 'layers', diff_ids: [] } });
    fs.writeFileSync(
      p,
      makeTar([
        { name: `${'a'.repeat(64)}.json`, content: config },
        { name: 'manifest.json', content: JSON.stringify([{ Config: `${'a'.repeat(64)}.json`, RepoTags: [], Layers: [] }]) },
      ]),
    );
    await expect(loadImages(store, p)).rejects.toMatchObject({ code: 'EDIGEST' });
    await expectEmptyStore();
  });

  it('a layer with ../ entries', async () => {
    const good = makeTar([{ name: 'ok', content: 'fine' }]);
    const evil = makeTar([{ name: '../../../../tmp/tsrun-pwned', content: 'pwned' }]);
    const config = JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(good), sha256(evil)] } });
    const p = path.join(scratch, 'evil.tar');
    fs.writeFileSync(
      p,
      makeTar([
        { name: 'config.json', content: config },
        { name: 'good/layer.tar', content: good },
        { name: 'evil/layer.tar', content: evil },
        { name: 'manifest.json', content: JSON.stringify([{ Config: 'config.json', RepoTags: ['evil:1'], Layers: ['good/layer.tar', 'evil/layer.tar'] }]) },
      ]),
    );
    await expect(loadImages(store, p)).rejects.toMatchObject({ code: 'EUNSAFE' });
    expect(fs.existsSync('/tmp/tsrun-pwned')).toBe(false);
    await expectEmptyStore();
  });

  it('an archive member that climbs out with ../', async () => {
    const p = path.join(scratch, 'climb.tar');
    fs.writeFileSync(p, makeTar([{ name: '../manifest.json', content: '[]' }]));
    await expect(loadImages(store, p)).rejects.toMatchObject({ code: 'EUNSAFE' });
    await expectEmptyStore();
  });

  it('an index with no image for this platform', async () => {
    const layout = copyLayout((await fixture({ format: 'oci', index: true })).path);
    const index = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8'));
    const nested = JSON.parse(fs.readFileSync(path.join(layout, 'blobs/sha256', index.manifests[0].digest.slice(7)), 'utf8'));
    // Point index.json straight at the s390x manifest, with its platform.
    index.manifests = [nested.manifests[0]];
    fs.writeFileSync(path.join(layout, 'index.json'), JSON.stringify(index));
    await expect(loadImages(store, layout)).rejects.toMatchObject({ code: 'ENOIMAGE', message: expect.stringMatching(/no image for linux/) });
    await expectEmptyStore();
  });
});
