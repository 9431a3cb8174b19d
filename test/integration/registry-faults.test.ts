// A small misbehaving registry (node:http) for the faults a real one rarely shows on demand:
// wrong digests, dropped and stalled connections, rate limits, redirects to another host,
// oversized and schema 1 manifests, a registry that never answers.
import { readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { pullImage, type PullOptions } from '../../src/image/pull.js';
import { buildImage, sha256Of, testDecompressor, TestStore, type BuiltImage } from './helpers/registry.js';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, state: Fake) => boolean | void;

interface Logged {
  method: string;
  url: string;
  authorization?: string;
  range?: string;
}

class Fake {
  log: Logged[] = [];
  blobs = new Map<string, Buffer>();
  manifests = new Map<string, { body: Buffer; type: string; digestHeader?: string }>();
  hook: Handler | undefined;
  /** Require `Authorization: Basic` on /v2/ routes. */
  basic: string | undefined;
  server!: http.Server;
  port = 0;
  sockets = new Set<net.Socket>();

  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.on('connection', (s) => (this.sockets.add(s), s.on('close', () => this.sockets.delete(s))));
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server.close(r));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.log.push({ method: req.method!, url: req.url!, ...(req.headers.authorization && { authorization: req.headers.authorization }), ...(req.headers.range && { range: req.headers.range }) });
    if (this.basic && req.url!.startsWith('/v2/') && req.headers.authorization !== this.basic) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="fake"', 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
      return;
    }
    if (this.hook?.(req, res, this)) return;
    const url = new URL(req.url!, 'http://x');
    if (url.pathname === '/v2/') return void res.writeHead(200).end('{}');
    let m = /^\/v2\/(.+)\/manifests\/(.+)$/.exec(url.pathname);
    if (m) {
      const man = this.manifests.get(m[2]!);
      if (!man) return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}');
      res.writeHead(200, { 'content-type': man.type, 'content-length': man.body.length, 'docker-content-digest': man.digestHeader ?? sha256Of(man.body) });
      return void res.end(man.body);
    }
    m = /^\/v2\/(.+)\/blobs\/(.+)$/.exec(url.pathname);
    if (m) {
      const blob = this.blobs.get(m[2]!);
      if (!blob) return void res.writeHead(404).end();
      return void res.writeHead(200, { 'content-length': blob.length, 'accept-ranges': 'bytes' }).end(blob);
    }
    res.writeHead(404).end();
  }
}

/** Serves `blob` honouring `Range: bytes=N-` (206), as distribution does. */
function serveRange(req: http.IncomingMessage, res: http.ServerResponse, blob: Buffer, cutAt?: number): void {
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  const start = m ? Number(m[1]) : 0;
  const headers: http.OutgoingHttpHeaders = { 'content-length': blob.length - start, 'accept-ranges': 'bytes' };
  if (m) headers['content-range'] = `bytes ${start}-${blob.length - 1}/${blob.length}`;
  res.writeHead(m ? 206 : 200, headers);
  if (cutAt === undefined) return void res.end(blob.subarray(start));
  // Send part, then drop the connection mid-body.
  res.write(blob.subarray(start, cutAt), () => setTimeout(() => res.socket?.destroy(), 20));
}

let image: BuiltImage;
let bigLayer: { digest: string; blob: Buffer };
const blobsOf = async (img: BuiltImage) => {
  const dir = join(img.layoutDir, 'blobs', 'sha256');
  const out = new Map<string, Buffer>();
  for (const d of [img.manifestDigest, img.configDigest, ...img.layers.map((l) => l.digest)]) out.set(d, await readFile(join(dir, d.slice(7))));
  return out;
};

beforeAll(async () => {
  const { randomBytes } = await import('node:crypto');
  image = await buildImage({ layers: [{ 'a.txt': 'small' }, { big: randomBytes(400_000) }] });
  const l = image.layers[1]!;
  bigLayer = { digest: l.digest, blob: await readFile(join(image.layoutDir, 'blobs', 'sha256', l.digest.slice(7))) };
});
afterAll(() => rm(image.layoutDir, { recursive: true, force: true }));

describe('a misbehaving registry', () => {
  let fake: Fake;
  let store: TestStore;
  const waits: number[] = [];
  const opts = (): PullOptions => ({
    decompressor: testDecompressor,
    env: { TSRUN_CONFIG: '/nonexistent', DOCKER_CONFIG: '/nonexistent' },
    retry: { retries: 3, baseDelayMs: 10, maxDelayMs: 5000 },
    wait: async (ms) => void waits.push(ms),
  });

  beforeAll(async () => {
    fake = await new Fake().start();
  });
  afterAll(() => fake.stop());
  afterEach(async () => {
    await store?.destroy();
    fake.hook = undefined;
    fake.basic = undefined;
    fake.log = [];
    waits.length = 0;
  });

  async function setUp(): Promise<void> {
    store = await TestStore.create();
    fake.blobs = await blobsOf(image);
    const manifest = fake.blobs.get(image.manifestDigest)!;
    fake.manifests = new Map([
      ['latest', { body: manifest, type: 'application/vnd.oci.image.manifest.v1+json' }],
      [image.manifestDigest, { body: manifest, type: 'application/vnd.oci.image.manifest.v1+json' }],
    ]);
  }

  it('rejects a blob whose content does not match its digest', async () => {
    await setUp();
    const bad = Buffer.from(bigLayer.blob);
    bad[bad.length - 10] ^= 0xff;
    fake.blobs.set(bigLayer.digest, bad);
    const err = await pullImage(store, `${fake.host}/app`, opts()).catch((e) => e);
    expect(err.code).toBe('EDIGEST');
    expect(store.unpacked.length).toBeLessThan(2);
  });

  it('rejects a manifest whose bytes do not match Docker-Content-Digest, or the pinned digest', async () => {
    await setUp();
    fake.manifests.get('latest')!.digestHeader = `sha256:${'0'.repeat(64)}`;
    await expect(pullImage(store, `${fake.host}/app`, opts())).rejects.toMatchObject({ code: 'EDIGEST', message: expect.stringMatching(/manifest digest mismatch/) });
    const other = `sha256:${'1'.repeat(64)}`;
    fake.manifests.set(other, fake.manifests.get(image.manifestDigest)!);
    await expect(pullImage(store, `${fake.host}/app@${other}`, opts())).rejects.toMatchObject({ code: 'EDIGEST' });
  });

  it('resumes a dropped download with Range', async () => {
    await setUp();
    let calls = 0;
    fake.hook = (req, res) => {
      if (!req.url!.endsWith(bigLayer.digest)) return false;
      calls++;
      serveRange(req, res, bigLayer.blob, calls === 1 ? 150_000 : undefined);
      return true;
    };
    const r = await pullImage(store, `${fake.host}/app`, opts());
    expect(r.manifestDigest).toBe(image.manifestDigest);
    const ranges = fake.log.filter((l) => l.url.endsWith(bigLayer.digest)).map((l) => l.range);
    expect(ranges[0]).toBeUndefined();
    expect(ranges[1]).toMatch(/^bytes=\d+-$/);
    expect(Number(/=(\d+)/.exec(ranges[1]!)![1])).toBeGreaterThan(0);
    expect(store.unpacked).toContain(image.layers[1]!.diffId);
  });

  it('restarts (dropping what it had) when the server ignores Range', async () => {
    await setUp();
    let calls = 0;
    fake.hook = (req, res) => {
      if (!req.url!.endsWith(bigLayer.digest)) return false;
      calls++;
      res.writeHead(200, { 'content-length': bigLayer.blob.length });
      if (calls === 1) res.write(bigLayer.blob.subarray(0, 100_000), () => setTimeout(() => res.socket?.destroy(), 20));
      else res.end(bigLayer.blob);
      return true;
    };
    const r = await pullImage(store, `${fake.host}/app`, opts());
    expect(r.manifestDigest).toBe(image.manifestDigest);
    expect(calls).toBe(2);
  });

  it('gives up after a bounded number of dropped connections', async () => {
    await setUp();
    fake.hook = (req, res) => {
      if (!req.url!.endsWith(bigLayer.digest)) return false;
      serveRange(req, res, bigLayer.blob, (Number(/=(\d+)/.exec(req.headers.range ?? '')?.[1] ?? 0)) + 1000);
      return true;
    };
    const err = await pullImage(store, `${fake.host}/app`, opts()).catch((e) => e);
    expect(err.message).toMatch(/other side closed|terminated|socket/i);
    expect(fake.log.filter((l) => l.url.endsWith(bigLayer.digest))).toHaveLength(4); // 1 + 3 retries
  });

  it('backs off on 429 and 503 as Retry-After says (seconds and HTTP date)', async () => {
    await setUp();
    let blobCalls = 0;
    let manifestCalls = 0;
    fake.hook = (req, res) => {
      if (req.url!.includes('/manifests/') && manifestCalls++ === 0) {
        res.writeHead(503, { 'retry-after': new Date(Date.now() + 3000).toUTCString() }).end();
        return true;
      }
      if (req.url!.endsWith(bigLayer.digest) && blobCalls++ < 2) {
        res.writeHead(429, { 'retry-after': '2' }).end('{"errors":[{"code":"TOOMANYREQUESTS"}]}');
        return true;
      }
      return false;
    };
    const r = await pullImage(store, `${fake.host}/app`, opts());
    expect(r.manifestDigest).toBe(image.manifestDigest);
    expect(waits[0]).toBeGreaterThan(1000); // the HTTP date, about 3 s away (1 s resolution)
    expect(waits[0]).toBeLessThanOrEqual(3000);
    expect(waits.slice(1)).toEqual([2000, 2000]);
  });

  it('follows a redirect to a storage host without the credentials', async () => {
    await setUp();
    const storage = await new Fake().start();
    try {
      storage.hook = (req, res) => {
        const d = /\/data\/(sha256:[a-f0-9]+)/.exec(req.url!)?.[1];
        if (!d) return false;
        res.writeHead(200).end(fake.blobs.get(d));
        return true;
      };
      fake.basic = `Basic ${Buffer.from('bob:secret').toString('base64')}`;
      fake.hook = (req, res) => {
        const d = /\/blobs\/(sha256:[a-f0-9]+)$/.exec(req.url!)?.[1];
        if (!d) return false;
        res.writeHead(307, { location: `http://${storage.host}/data/${d}?sig=abc` }).end();
        return true;
      };
      const warnings: string[] = [];
      const r = await pullImage(store, `${fake.host}/app`, {
        ...opts(),
        credential: async () => ({ username: 'bob', password: 'secret' }),
        onWarning: (w) => warnings.push(w),
      });
      expect(r.manifestDigest).toBe(image.manifestDigest);
      expect(storage.log.length).toBe(3); // config and two layers
      expect(storage.log.every((l) => l.authorization === undefined)).toBe(true);
      expect(fake.log.filter((l) => l.url.includes('/blobs/')).every((l) => l.authorization === fake.basic)).toBe(true);
      expect(warnings.filter((w) => /credentials to 127.0.0.1:\d+ over plain HTTP/.test(w))).toHaveLength(1);
    } finally {
      await storage.stop();
    }
  });

  it('fetches foreign layers from their URLs without credentials', async () => {
    await setUp();
    const storage = await new Fake().start();
    try {
      storage.hook = (_req, res) => {
        res.writeHead(200).end(bigLayer.blob);
        return true;
      };
      const manifest = JSON.parse(fake.manifests.get('latest')!.body.toString());
      manifest.layers[1].urls = [`http://${storage.host}/foreign/layer.tar.gz`];
      const body = Buffer.from(JSON.stringify(manifest));
      fake.manifests.set('latest', { body, type: 'application/vnd.oci.image.manifest.v1+json' });
      fake.blobs.delete(bigLayer.digest);
      fake.basic = `Basic ${Buffer.from('bob:secret').toString('base64')}`;
      await pullImage(store, `${fake.host}/app`, { ...opts(), credential: async () => ({ username: 'bob', password: 'secret' }) });
      expect(storage.log).toEqual([{ method: 'GET', url: '/foreign/layer.tar.gz' }]);
    } finally {
      await storage.stop();
    }
  });

  it('refuses an oversized manifest while reading it', async () => {
    await setUp();
    const huge = Buffer.alloc(5 * 1024 * 1024, 0x20);
    fake.hook = (req, res) => {
      if (!req.url!.includes('/manifests/')) return false;
      if (req.url!.endsWith('chunked')) res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
      else res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'content-length': huge.length });
      res.end(huge);
      return true;
    };
    await expect(pullImage(store, `${fake.host}/app`, opts())).rejects.toThrow(/too large \(5242880 bytes, more than the 4 MiB limit\)/);
    await expect(pullImage(store, `${fake.host}/app:chunked`, opts())).rejects.toThrow(/too large \(more than the 4 MiB limit\)/);
  });

  it('refuses schema 1 with the way out', async () => {
    await setUp();
    const body = Buffer.from(JSON.stringify({ schemaVersion: 1, name: 'app', tag: 'latest', fsLayers: [], history: [] }));
    fake.manifests.set('old', { body, type: 'application/vnd.docker.distribution.manifest.v1+prettyjws' });
    fake.manifests.set('old-json', { body, type: 'application/json' });
    for (const tag of ['old', 'old-json']) {
      await expect(pullImage(store, `${fake.host}/app:${tag}`, opts())).rejects.toThrow(
        `pull ${fake.host}/app:${tag}: ${fake.host}/app:${tag} uses the deprecated Docker schema 1 manifest format, which tsrun does not support; re-push it with a current docker or skopeo`,
      );
    }
  });

  it('checks that the config has one diff_id per layer', async () => {
    await setUp();
    const config = JSON.parse(fake.blobs.get(image.configDigest)!.toString());
    config.rootfs.diff_ids.pop();
    const cbytes = Buffer.from(JSON.stringify(config));
    const cd = sha256Of(cbytes);
    fake.blobs.set(cd, cbytes);
    const manifest = JSON.parse(fake.manifests.get('latest')!.body.toString());
    manifest.config = { ...manifest.config, digest: cd, size: cbytes.length };
    fake.manifests.set('latest', { body: Buffer.from(JSON.stringify(manifest)), type: 'application/vnd.oci.image.manifest.v1+json' });
    await expect(pullImage(store, `${fake.host}/app`, opts())).rejects.toThrow(/config lists 1 diff_ids for 2 layers/);
  });

  it('resumes after the body stalls past the idle timeout', async () => {
    await setUp();
    let calls = 0;
    fake.hook = (req, res) => {
      if (!req.url!.endsWith(bigLayer.digest)) return false;
      if (calls++ === 0) {
        res.writeHead(200, { 'content-length': bigLayer.blob.length, 'accept-ranges': 'bytes' });
        res.write(bigLayer.blob.subarray(0, 50_000)); // then silence
      } else serveRange(req, res, bigLayer.blob);
      return true;
    };
    const t0 = Date.now();
    const r = await pullImage(store, `${fake.host}/app`, { ...opts(), timeouts: { bodyIdleMs: 500 } });
    expect(r.manifestDigest).toBe(image.manifestDigest);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(fake.log.filter((l) => l.url.endsWith(bigLayer.digest)).map((l) => l.range)).toEqual([undefined, 'bytes=50000-']);
  });
});

describe('a registry that never answers', () => {
  it('times out, within a bounded time', async () => {
    const sockets: net.Socket[] = [];
    const silent = net.createServer((s) => void sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const host = `127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
    const store = await TestStore.create();
    try {
      const t0 = Date.now();
      const err = await pullImage(store, `${host}/app`, {
        decompressor: testDecompressor,
        env: { TSRUN_CONFIG: '/nonexistent' },
        timeouts: { connectMs: 300, headersMs: 300, bodyIdleMs: 300 },
      }).catch((e) => e);
      expect(err.code).toBe('ENETWORK');
      expect(err.message).toMatch(/connection not established within 0.3 s.*no response within 0.3 s/);
      expect(Date.now() - t0).toBeLessThan(5000);
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
      await store.destroy();
    }
  });
});
