import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chainIdOf, chainIds, sha256 } from '../../src/image/digest.js';
import { ImageStore } from '../../src/image/store.js';
import type { Digest, ImageManifest } from '../../src/image/types.js';
import { chunks, makeTar } from '../fixtures/tar.js';

let root: string;
let store: ImageStore;

beforeEach(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-store-'));
  store = await ImageStore.open(root);
});

afterEach(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

function layerTar(name: string): Buffer {
  return makeTar([{ name: `${name}/`, type: 'dir' }, { name: `${name}/file`, content: `content of ${name}` }]);
}

/** Stores an image whose layers are the given tars; returns its digests. */
async function addImage(layerNames: string[], names: string[], extra: Record<string, unknown> = {}) {
  const tars = layerNames.map(layerTar);
  const diffIds = tars.map((t) => sha256(t));
  const chains = chainIds(diffIds);
  for (const [i, t] of tars.entries()) await store.unpackLayer(diffIds[i]!, i === 0 ? null : chains[i - 1]!, chunks(t));
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: diffIds }, ...extra }));
  const configDigest = await store.writeBlobBytes(config);
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
    layers: tars.map((t, i) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: diffIds[i]!, size: t.length })),
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const manifestDigest = await store.writeBlobBytes(manifestBytes);
  const image = await store.putImage({ manifestDigest, manifest, configDigest, names });
  return { image, configDigest, manifestDigest, chains };
}

const ls = (p: string) => fs.readdirSync(path.join(root, p)).sort();

describe('ImageStore layout and blobs', () => {
  it('creates the layout with private directories', () => {
    for (const d of ['blobs/sha256', 'layers', 'l', 'tmp']) expect(fs.statSync(path.join(root, d)).mode & 0o777).toBe(0o700);
    expect(JSON.parse(fs.readFileSync(path.join(root, 'images.json'), 'utf8'))).toEqual({ version: 1, names: {}, images: {} });
  });

  it('ingests a blob atomically and verifies digest and size', async () => {
    const bytes = Buffer.from('hello blob');
    const digest = sha256(bytes);
    await store.writeBlob(chunks(bytes, 3), { digest, size: bytes.length });
    expect(await store.hasBlob(digest)).toBe(true);
    expect((await store.readBlob(digest)).toString()).toBe('hello blob');
    expect(store.blobPath(digest)).toBe(path.join(root, 'blobs/sha256', digest.slice(7)));
    expect(await store.writeBlobBytes(bytes)).toBe(digest);
  });

  it('rejects a digest or size mismatch and leaves nothing behind', async () => {
    const bytes = Buffer.from('tampered');
    const claimed = sha256('original');
    await expect(store.writeBlob(chunks(bytes), { digest: claimed })).rejects.toMatchObject({ code: 'EDIGEST' });
    await expect(store.writeBlob(chunks(bytes), { digest: sha256(bytes), size: 3 })).rejects.toMatchObject({ code: 'EDIGEST' });
    await expect(store.writeBlob(chunks(bytes), { digest: sha256(bytes), size: 100 })).rejects.toMatchObject({ code: 'EDIGEST' });
    await expect(store.writeBlobBytes(bytes, { digest: claimed })).rejects.toMatchObject({ code: 'EDIGEST' });
    expect(await store.hasBlob(claimed)).toBe(false);
    expect(ls('blobs/sha256')).toEqual([]);
    expect(ls('tmp')).toEqual([]);
  });

  it('refuses a malformed digest rather than making it a path', () => {
    expect(() => store.blobPath('sha256:../../etc/passwd' as Digest)).toThrow(expect.objectContaining({ code: 'EBADIMAGE' }));
  });
});

describe('chain IDs', () => {
  it('follow the OCI definition', () => {
    const a = sha256('layer a');
    const b = sha256('layer b');
    const c = sha256('layer c');
    expect(chainIdOf(null, a)).toBe(a);
    expect(chainIdOf(a, b)).toBe(sha256(`${a} ${b}`));
    expect(chainIds([a, b, c])).toEqual([a, sha256(`${a} ${b}`), sha256(`${sha256(`${a} ${b}`)} ${c}`)]);
  });
});

describe('ImageStore layers', () => {
  it('unpacks a layer into layers/<chain>/diff with a short link', async () => {
    const tar = layerTar('a');
    const diffId = sha256(tar);
    const rec = await store.unpackLayer(diffId, null, chunks(tar));
    expect(rec).toMatchObject({ chainId: diffId, diffId, size: tar.length });
    expect(rec.dir).toBe(path.join(root, 'layers', diffId.slice(7), 'diff'));
    expect(rec.link).toMatch(/^l\/[A-Z0-9]{26}$/);
    expect(fs.readlinkSync(path.join(root, rec.link))).toBe(`../layers/${diffId.slice(7)}/diff`);
    expect(fs.readFileSync(path.join(root, rec.link, 'a/file'), 'utf8')).toBe('content of a');
    expect(await store.layer(diffId)).toEqual(rec);

    const child = await store.unpackLayer(sha256(layerTar('b')), diffId, chunks(layerTar('b')));
    expect(child.chainId).toBe(chainIdOf(diffId, sha256(layerTar('b'))));
  });

  it('rejects a layer whose tar does not hash to its diff ID, keeping nothing', async () => {
    await expect(store.unpackLayer(sha256('something else'), null, chunks(layerTar('a')))).rejects.toMatchObject({ code: 'EDIGEST' });
    expect(ls('layers')).toEqual([]);
    expect(ls('l')).toEqual([]);
  });

  it('puts a layer in place only once what it waits for settles, and not at all if that fails', async () => {
    const tar = layerTar('a');
    const diffId = sha256(tar);
    const refused = Object.assign(new Error('blob refused'), { code: 'EDIGEST' });
    await expect(store.unpackLayer(diffId, null, chunks(tar), Promise.reject(refused))).rejects.toMatchObject({ cause: refused });
    expect(ls('layers')).toEqual([]);
    expect(ls('l')).toEqual([]);
    let release!: () => void;
    const unpacking = store.unpackLayer(diffId, null, chunks(tar), new Promise<void>((r) => (release = r)));
    await new Promise((r) => setTimeout(r, 200)); // unpacked by now, held back
    expect(await store.layer(diffId)).toBeUndefined();
    release();
    expect((await unpacking).chainId).toBe(diffId);
    expect(await store.layer(diffId)).toBeDefined();
  });

  it('rejects an unsafe layer, keeping nothing', async () => {
    const tar = makeTar([{ name: '../escape', content: 'x' }]);
    await expect(store.unpackLayer(sha256(tar), null, chunks(tar))).rejects.toMatchObject({ code: 'EUNSAFE' });
    expect(ls('layers')).toEqual([]);
    expect(ls('l')).toEqual([]);
  });

  it('unpacks the same layer concurrently: one wins, both get it, one link remains', async () => {
    const tar = layerTar('same');
    const diffId = sha256(tar);
    const [a, b, c] = await Promise.all([1, 2, 3].map(() => store.unpackLayer(diffId, null, chunks(tar, 100))));
    expect(a!.chainId).toBe(diffId);
    expect(new Set([a!.link, b!.link, c!.link]).size).toBe(1);
    expect(ls('layers')).toEqual([diffId.slice(7)]);
    expect(ls('l')).toEqual([a!.link.slice(2)]);
    // Already present: the stream is still read and verified.
    await expect(store.unpackLayer(diffId, null, chunks(layerTar('other')))).rejects.toMatchObject({ code: 'EDIGEST' });
  });

  it('removes what a killed process left on the next open', async () => {
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    const tmpLayer = path.join(root, 'layers', `.tmp-${dead}-abcdef`);
    fs.mkdirSync(path.join(tmpLayer, 'diff'), { recursive: true });
    fs.writeFileSync(path.join(tmpLayer, 'layer.json'), JSON.stringify({ link: 'l/AAAAAAAAAAAAAAAAAAAAAAAAAA' }));
    fs.symlinkSync('../layers/0000/diff', path.join(root, 'l/AAAAAAAAAAAAAAAAAAAAAAAAAA'));
    fs.writeFileSync(path.join(root, 'tmp', `${dead}-123456.blob`), 'partial');
    const mine = path.join(root, 'tmp', `${process.pid}-keep.blob`);
    fs.writeFileSync(mine, 'in progress');
    await ImageStore.open(root);
    expect(ls('layers')).toEqual([]);
    expect(ls('l')).toEqual([]);
    expect(ls('tmp')).toEqual([path.basename(mine)]);
  });
});

describe('ImageStore images', () => {
  it('records, resolves and lists an image', async () => {
    const { configDigest, manifestDigest, chains } = await addImage(['a', 'b'], ['busybox'], { created: '2024-01-01T00:00:00Z' });
    const hex = configDigest.slice(7);
    for (const ref of ['busybox', 'busybox:latest', 'docker.io/library/busybox:latest', configDigest, hex, hex.slice(0, 3), `sha256:${hex.slice(0, 12)}`]) {
      const img = await store.resolve(ref);
      expect(img?.id, ref).toBe(configDigest);
    }
    expect(await store.resolve(`busybox@${manifestDigest}`)).toMatchObject({ id: configDigest });
    expect(await store.resolve(`alpine@${manifestDigest}`)).toBeUndefined();
    expect(await store.resolve('alpine')).toBeUndefined();
    const img = (await store.resolve('busybox'))!;
    expect(img.names).toEqual(['docker.io/library/busybox:latest']);
    expect(img.layers.map((l) => l.chainId)).toEqual(chains);
    expect(img.size).toBe(img.layers[0]!.size + img.layers[1]!.size);
    expect(img.manifestDigest).toBe(manifestDigest);
    expect(img.config.created).toBe('2024-01-01T00:00:00Z');
    expect((await store.list()).map((i) => i.id)).toEqual([configDigest]);
  });

  it('refuses an image whose config or layers are missing', async () => {
    const config = Buffer.from(JSON.stringify({ rootfs: { type: 'layers', diff_ids: [sha256('x')] } }));
    const configDigest = sha256(config);
    const manifest: ImageManifest = {
      schemaVersion: 2,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256('x'), size: 1 }],
    };
    const put = () => store.putImage({ manifestDigest: sha256('m'), manifest, configDigest, names: ['x'] });
    await expect(put()).rejects.toMatchObject({ code: 'EBADIMAGE' });
    await store.writeBlobBytes(config);
    await expect(put()).rejects.toThrow(/layer .* is not in the store/);
    expect(await store.list()).toEqual([]);
  });

  it('reports an ambiguous ID prefix with the candidates', async () => {
    // Find two configs whose IDs share their first 3 hex digits.
    const seen = new Map<string, number>();
    let pair: [number, number] | undefined;
    for (let i = 0; !pair; i++) {
      const cfg = JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(layerTar('a'))] }, author: `n${i}` });
      const p = sha256(cfg).slice(7, 10);
      if (seen.has(p)) pair = [seen.get(p)!, i];
      else seen.set(p, i);
    }
    const a = await addImage(['a'], ['one'], { author: `n${pair[0]}` });
    await addImage(['a'], ['two'], { author: `n${pair[1]}` });
    const prefix = a.configDigest.slice(7, 10);
    await expect(store.resolve(prefix)).rejects.toMatchObject({ code: 'EINVAL_REF', message: expect.stringMatching(/ambiguous/) });
  });

  it('tags and untags', async () => {
    const { configDigest } = await addImage(['a'], ['busybox']);
    await store.tag('busybox', 'registry.local:5000/team/bb:v1');
    expect((await store.resolve('registry.local:5000/team/bb:v1'))?.id).toBe(configDigest);
    expect((await store.resolve(configDigest))?.names).toEqual(['docker.io/library/busybox:latest', 'registry.local:5000/team/bb:v1']);
    await store.untag('busybox');
    expect(await store.resolve('busybox')).toBeUndefined();
    expect((await store.resolve(configDigest))?.names).toEqual(['registry.local:5000/team/bb:v1']);
    await expect(store.tag('nope', 'x')).rejects.toMatchObject({ code: 'ENOIMAGE' });
    await expect(store.untag('nope')).rejects.toMatchObject({ code: 'ENOIMAGE' });
  });

  it('moves a name to a newer image; the old one stays untagged', async () => {
    const old = await addImage(['a'], ['app']);
    const cur = await addImage(['b'], ['app']);
    expect((await store.resolve('app'))?.id).toBe(cur.configDigest);
    expect((await store.resolve(old.configDigest))?.names).toEqual([]);
  });

  it('removes an image but keeps layers another image shares', async () => {
    const a = await addImage(['base', 'a'], ['image-a']);
    const b = await addImage(['base', 'b'], ['image-b']);
    const r = await store.removeImage('image-a');
    expect(r.untagged).toEqual(['docker.io/library/image-a:latest']);
    expect(r.deleted).toEqual([a.configDigest, a.chains[1]]);
    expect(await store.resolve('image-a')).toBeUndefined();
    expect(await store.layer(a.chains[0]!)).toBeDefined();
    expect(await store.layer(a.chains[1]!)).toBeUndefined();
    expect(await store.hasBlob(a.configDigest)).toBe(false);
    expect(await store.hasBlob(a.manifestDigest)).toBe(false);
    const stillB = await store.resolve('image-b');
    expect(stillB?.layers.map((l) => l.chainId)).toEqual(b.chains);
    expect(ls('l')).toHaveLength(2);
  });

  it('rmi by name untags when other names remain; by ID needs force for several names', async () => {
    const { configDigest } = await addImage(['a'], ['one', 'two']);
    await expect(store.removeImage(configDigest.slice(7, 19))).rejects.toMatchObject({ code: 'ESTATE' });
    expect(await store.removeImage('one')).toEqual({ untagged: ['docker.io/library/one:latest'], deleted: [] });
    await store.tag('two', 'three');
    const r = await store.removeImage(configDigest, { force: true });
    expect(r.untagged.sort()).toEqual(['docker.io/library/three:latest', 'docker.io/library/two:latest']);
    expect(await store.list()).toEqual([]);
    expect(ls('layers')).toEqual([]);
    expect(ls('l')).toEqual([]);
    await expect(store.removeImage('two')).rejects.toMatchObject({ code: 'ENOIMAGE' });
  });

  it('rmi of a name whose image ID stays listed under another manifest only untags (docker: no Deleted line)', async () => {
    // The same image (one config) recorded twice: pulled, and loaded from an archive.
    const { configDigest, chains } = await addImage(['a'], ['pulled']);
    const config = await store.readBlob(configDigest);
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: configDigest, size: config.length },
      layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar', digest: sha256(layerTar('a')), size: layerTar('a').length }],
    };
    const manifestDigest = await store.writeBlobBytes(Buffer.from(JSON.stringify(manifest)));
    await store.putImage({ manifestDigest, manifest, configDigest, names: ['loaded'] });
    expect(await store.removeImage('pulled')).toEqual({ untagged: ['docker.io/library/pulled:latest'], deleted: [] });
    const left = await store.list();
    expect(left.map((i) => [i.id, i.names])).toEqual([[configDigest, ['docker.io/library/loaded:latest']]]);
    expect(await store.layer(chains[0]!)).toBeDefined();
    expect(await store.hasBlob(configDigest)).toBe(true);
    // The last name: now the image goes.
    expect((await store.removeImage('loaded')).deleted).toEqual([configDigest, chains[0]]);
  });

  it('keeps images.json whole under concurrent changes from separate handles', async () => {
    await addImage(['a'], ['base']);
    const stores = await Promise.all([1, 2, 3, 4].map(() => ImageStore.open(root)));
    await Promise.all(Array.from({ length: 24 }, (_, i) => stores[i % 4]!.tag('base', `tag-${i}`)));
    const names = (await store.resolve('base'))!.names;
    expect(names).toHaveLength(25);
  });

  it('reports usage', async () => {
    const a = await addImage(['a', 'b'], ['x']);
    const u = await store.usage();
    expect(u.images).toBe(1);
    expect(u.layers.count).toBe(2);
    expect(u.layers.size).toBe(a.image.size);
    expect(u.blobs.count).toBe(2); // config and manifest
  });
});

describe('ImageStore garbage collection and leases', () => {
  /** A process's lease, as leases.ts names it: PID@START-TIME (field 22 of /proc/<pid>/stat). */
  const leaseOf = (pid: number) => {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    fs.mkdirSync(path.join(root, 'leases'), { recursive: true });
    fs.writeFileSync(path.join(root, 'leases', `${pid}@${start}`), '');
    return `${pid}@${start}`;
  };
  /** Content a writer stored and never recorded: a layer and a blob. */
  const orphans = async () => {
    const tar = layerTar('orphan');
    await store.unpackLayer(sha256(tar), null, chunks(tar));
    return { chain: chainIdOf(null, sha256(tar)), blob: await store.writeBlobBytes(Buffer.from('orphan blob')) };
  };

  it('takes all unrecorded content, whatever its age, once no writer lives; never what an image records', async () => {
    const { chains, configDigest } = await addImage(['kept'], ['kept:1']);
    const { chain, blob } = await orphans();
    const dead = spawnSync('true').pid!; // a lease whose process is gone
    fs.mkdirSync(path.join(root, 'leases'), { recursive: true });
    fs.writeFileSync(path.join(root, 'leases', `${dead}@1`), '');
    expect((await store.garbage(new Set())).layers).toEqual([chain]);
    const done = await store.collect(new Set());
    expect(done).toEqual({ layers: [chain], blobs: [blob], writers: [] });
    expect(await store.layer(chain)).toBeUndefined();
    expect(await store.hasBlob(blob)).toBe(false);
    expect(await store.layer(chains[0]!)).toBeDefined();
    expect(await store.hasBlob(configDigest)).toBe(true);
    expect(ls('leases')).toEqual([]); // the dead lease is swept
    // The layer's tree went too, once the lock was let go: nothing is left aside.
    expect(ls('layers')).toEqual([chains[0]!.slice(7)]);
  });

  it('leaves unrecorded content alone while a writer holds a live lease, and a layer a container mounts always', async () => {
    const { chain, blob } = await orphans();
    const live = leaseOf(process.pid);
    expect(await store.collect(new Set())).toEqual({ layers: [], blobs: [], writers: [live] });
    expect(await store.layer(chain)).toBeDefined();
    fs.rmSync(path.join(root, 'leases', live));
    const mounted = new Set([(await store.layer(chain))!.link]);
    expect(await store.collect(mounted)).toEqual({ layers: [], blobs: [blob], writers: [] });
    expect(await store.layer(chain)).toBeDefined();
  });

  it('a writer takes its lease on open and gives it back; a handle that found it taken does not give it back', async () => {
    const writer = await ImageStore.open(root, { writer: true });
    expect(ls('leases')).toHaveLength(1);
    expect((await store.collect(new Set())).writers).toHaveLength(1);
    // A build that pulls its base image: the pull's handle must leave the build's lease alone.
    const inner = await ImageStore.open(root, { writer: true });
    inner.releaseLease();
    expect(ls('leases')).toHaveLength(1);
    writer.releaseLease();
    expect(ls('leases')).toEqual([]);
  });

  it('rmi leaves content to garbage collection while another process writes (it may be about to record it)', async () => {
    const { chains } = await addImage(['shared'], ['one:1']);
    const other = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      leaseOf(other.pid!);
      await store.removeImage('one:1');
      expect(await store.layer(chains[0]!)).toBeDefined();
    } finally {
      other.kill('SIGKILL');
      await once(other, 'exit');
    }
    expect((await store.collect(new Set())).layers).toEqual([chains[0]]);
  });

  it('keeps the gzip push made of a plain layer while that layer is kept', async () => {
    const plain = await store.writeBlobBytes(layerTar('plain')); // the plain tar, as a build keeps it
    const { manifestDigest } = await addImage(['plain'], ['plain:1']);
    expect((JSON.parse((await store.readBlob(manifestDigest)).toString()) as ImageManifest).layers[0]!.digest).toBe(plain);
    const gzip = await store.writeBlobBytes(Buffer.from('pretend gzip'));
    fs.mkdirSync(path.join(root, 'compressed'));
    fs.writeFileSync(path.join(root, 'compressed', plain.slice(7)), JSON.stringify({ digest: gzip, size: 12 }));
    expect((await store.collect(new Set())).blobs).toEqual([]);
    await store.removeImage('plain:1');
    await store.collect(new Set());
    expect(await store.hasBlob(gzip)).toBe(false); // its layer gone, it goes too, with its record
    expect(fs.readdirSync(path.join(root, 'compressed'))).toEqual([]);
  });
});
