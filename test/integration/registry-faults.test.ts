// A small misbehaving registry (node:http) for the faults a real one rarely shows on demand:
// wrong digests, dropped and stalled connections, rate limits, redirects to another host,
// oversized and schema 1 manifests, a registry that never answers — and the registry timeout
// (TSRUN_REGISTRY_TIMEOUT) that bounds how long tsrun waits on one, retries included.
import { readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { chainIds } from '../../src/image/digest.js';
import { ImageStore } from '../../src/image/store.js';
import type { Digest } from '../../src/image/types.js';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { pullImage, type PullOptions } from '../../src/image/pull.js';
import { pushImage } from '../../src/image/push.js';
import { Authenticator } from '../../src/registry-client/auth.js';
import { Transport } from '../../src/registry-client/transport.js';
import { TestEnv } from './helpers/env.js';
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
  /** Require `Authorization: Bearer good` on /v2/ routes, a token from this realm. */
  bearer: string | undefined;
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
    if (this.bearer && req.url!.startsWith('/v2/') && req.headers.authorization !== 'Bearer good') {
      res.writeHead(401, { 'www-authenticate': `Bearer realm="${this.bearer}",service="fake"`, 'content-length': 0 }).end();
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

/**
 * Takes a push to the repository "up", where no blob exists yet; `read` decides how a blob's
 * upload is read and calls `done` to answer it.
 */
function takeUploads(read: (req: http.IncomingMessage, done: () => void) => void): Handler {
  return (req, res) => {
    const url = new URL(req.url!, 'http://x');
    if (!url.pathname.startsWith('/v2/up/')) return false;
    if (req.method === 'HEAD') res.writeHead(404).end();
    else if (req.method === 'POST') res.writeHead(202, { location: '/v2/up/blobs/uploads/u1', 'content-length': 0 }).end();
    else if (url.pathname.startsWith('/v2/up/blobs/uploads/')) read(req, () => res.writeHead(201).end());
    else req.resume().on('end', () => res.writeHead(201).end()); // the manifest
    return true;
  };
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

/**
 * Sends `data`, `size` bytes every `everyMs`, then ends; or cuts the connection after `forMs`,
 * so that a client that never gives up still ends the test.
 */
function trickle(res: http.ServerResponse, data: Buffer, size: number, everyMs: number, forMs = 8000): void {
  let at = 0;
  const stop = () => (clearInterval(tick), clearTimeout(cut));
  const tick = setInterval(() => {
    res.write(data.subarray(at, (at += size)));
    if (at >= data.length) (stop(), res.end());
  }, everyMs);
  const cut = setTimeout(() => (stop(), res.socket?.destroy()), forMs);
  res.on('close', stop);
}

/**
 * Slack for "failed within the registry timeout": timers, a few retries' round trips, and the
 * granularity of undici's body timer (half a second beyond 1 s).
 */
const MARGIN_MS = 1500;

let image: BuiltImage;
let bigLayer: { digest: string; blob: Buffer };
/** One layer of 192 KiB that does not compress: 3 s at 64 kB/s. */
let slowImage: BuiltImage;
let slowLayer: { digest: string; blob: Buffer };
/** One layer of 16 MB, to push: more than the kernel's socket buffers on loopback hold. */
let uploadImage: BuiltImage;
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
  slowImage = await buildImage({ layers: [{ slow: randomBytes(192 * 1024) }] });
  const s = slowImage.layers[0]!;
  slowLayer = { digest: s.digest, blob: await readFile(join(slowImage.layoutDir, 'blobs', 'sha256', s.digest.slice(7))) };
  uploadImage = await buildImage({ layers: [{ big: randomBytes(16_000_000) }] });
});
afterAll(async () => {
  for (const img of [image, slowImage, uploadImage]) await rm(img.layoutDir, { recursive: true, force: true });
});

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
    fake.bearer = undefined;
    fake.log = [];
    waits.length = 0;
  });

  async function setUp(img: BuiltImage = image): Promise<void> {
    store = await TestStore.create();
    fake.blobs = await blobsOf(img);
    const manifest = fake.blobs.get(img.manifestDigest)!;
    fake.manifests = new Map([
      ['latest', { body: manifest, type: 'application/vnd.oci.image.manifest.v1+json' }],
      [img.manifestDigest, { body: manifest, type: 'application/vnd.oci.image.manifest.v1+json' }],
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

  it('rejects a layer that unpacks to its diff_id but whose bytes are not the blob the manifest names, and keeps neither', async () => {
    // The gzip header's timestamp changed: the same size, the same tar inside, another digest.
    // The blob writer is what hashes a layer's download (pull.ts), and the layer waits for it:
    // kept, it would be "Already exists" at the next pull, which would record the image
    // without its blob. The real store, with its unpack workers.
    await setUp();
    const recompressed = Buffer.from(bigLayer.blob);
    recompressed[4] ^= 0xff;
    fake.blobs.set(bigLayer.digest, recompressed);
    const root = await mkdtemp(join(tmpdir(), 'tsrun-store-'));
    try {
      const real = await ImageStore.open(root);
      const config = JSON.parse(fake.blobs.get(image.configDigest)!.toString('utf8')) as { rootfs: { diff_ids: Digest[] } };
      const [, big] = chainIds(config.rootfs.diff_ids);
      for (let attempt = 0; attempt < 2; attempt++) {
        const { decompressor: _, ...rest } = opts();
        await expect(pullImage(real, `${fake.host}/app`, rest)).rejects.toMatchObject({ code: 'EDIGEST', message: expect.stringContaining(bigLayer.digest) });
        expect(await real.layer(big!)).toBeUndefined();
        expect(await real.hasBlob(bigLayer.digest as Digest)).toBe(false);
        expect(await real.resolve(`${fake.host}/app:latest`)).toBeUndefined();
      }
    } finally {
      await rm(root, { recursive: true, force: true });
    }
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
      expect(warnings.filter((w) => /your credentials for 127.0.0.1:\d+ over plain HTTP, because it is on loopback/.test(w))).toHaveLength(1);
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

  it('resumes on a new connection after a body stalls past a shorter idle timeout', async () => {
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
    const r = await pullImage(store, `${fake.host}/app`, { ...opts(), bodyIdleMs: 500 });
    expect(r.manifestDigest).toBe(image.manifestDigest);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(fake.log.filter((l) => l.url.endsWith(bigLayer.digest)).map((l) => l.range)).toEqual([undefined, 'bytes=50000-']);
  });

  describe('the registry timeout', () => {
    /** Pull options with a registry timeout of `seconds`, real waits, and more retries than it allows. */
    const within = (seconds: number, extra: Partial<PullOptions> = {}): PullOptions => ({
      decompressor: testDecompressor,
      env: { TSRUN_CONFIG: '/nonexistent', DOCKER_CONFIG: '/nonexistent', TSRUN_REGISTRY_TIMEOUT: String(seconds) },
      retry: { retries: 10, baseDelayMs: 100, maxDelayMs: 5000 },
      ...extra,
    });
    const hint = 'to wait longer, set TSRUN_REGISTRY_TIMEOUT=<seconds> or "registry-timeout": <seconds> in /nonexistent';

    it('fails a manifest request the registry accepts and never answers, naming the request, the wait and the setting', async () => {
      await setUp();
      fake.hook = (req) => req.url!.includes('/manifests/'); // taken, never answered
      const t0 = Date.now();
      const err = await pullImage(store, `${fake.host}/app:v1`, within(2)).catch((e) => e);
      const elapsed = Date.now() - t0;
      expect(err.code).toBe('ENETWORK');
      expect(err.message).toBe(
        `pull ${fake.host}/app:v1: GET http://${fake.host}/v2/app/manifests/v1: the registry sent nothing for 2 s; ${hint} (now 2 s, from TSRUN_REGISTRY_TIMEOUT)`,
      );
      expect(elapsed).toBeLessThan(2000 + MARGIN_MS);
      expect(fake.log.filter((l) => l.url.includes('/manifests/'))).toHaveLength(1);
    });

    it('fails a blob that stops mid-way with the connection left open', async () => {
      await setUp();
      let stalledAt = 0;
      fake.hook = (req, res) => {
        if (!req.url!.endsWith(bigLayer.digest)) return false;
        res.writeHead(200, { 'content-length': bigLayer.blob.length, 'accept-ranges': 'bytes' });
        res.write(bigLayer.blob.subarray(0, 50_000), () => (stalledAt = Date.now())); // then silence
        return true;
      };
      const err = await pullImage(store, `${fake.host}/app`, within(2)).catch((e) => e);
      const sinceStall = Date.now() - stalledAt;
      expect(err.code).toBe('ENETWORK');
      expect(err.message).toContain(`GET blob ${bigLayer.digest} of ${fake.host}/app: the registry sent nothing for 2 s after 50000 of ${bigLayer.blob.length} bytes; ${hint}`);
      expect(sinceStall).toBeLessThan(2000 + MARGIN_MS);
      // The silence used the whole registry timeout: nothing was left to resume with.
      expect(fake.log.filter((l) => l.url.endsWith(bigLayer.digest))).toHaveLength(1);
    });

    it('resumes a stalled blob only while the registry timeout lasts', async () => {
      await setUp();
      let stalledAt = 0;
      fake.hook = (req, res) => {
        if (!req.url!.endsWith(bigLayer.digest)) return false;
        const resumed = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
        if (!resumed) {
          res.writeHead(200, { 'content-length': bigLayer.blob.length, 'accept-ranges': 'bytes' });
          res.write(bigLayer.blob.subarray(0, 50_000), () => (stalledAt = Date.now()));
        } else {
          // Headers for the rest, then nothing: no progress, so the clock keeps running.
          const start = Number(resumed[1]);
          res.writeHead(206, { 'content-length': bigLayer.blob.length - start, 'content-range': `bytes ${start}-${bigLayer.blob.length - 1}/${bigLayer.blob.length}` });
          res.flushHeaders();
        }
        return true;
      };
      // A connection silent for 0.5 s is given up and the download resumed on a new one.
      const err = await pullImage(store, `${fake.host}/app`, within(2, { bodyIdleMs: 500 })).catch((e) => e);
      const sinceStall = Date.now() - stalledAt;
      expect(err.code).toBe('ENETWORK');
      expect(err.message).toMatch(new RegExp(`: GET blob ${bigLayer.digest} of ${fake.host}/app: no progress from the registry for [\\d.]+ s`));
      expect(err.message).toContain(`; ${hint}`);
      expect(sinceStall).toBeLessThan(2000 + MARGIN_MS);
      const ranges = fake.log.filter((l) => l.url.endsWith(bigLayer.digest)).map((l) => l.range);
      expect(ranges.length).toBeGreaterThanOrEqual(2); // it did resume...
      expect(ranges.length).toBeLessThan(11); // ...but not as often as the retry policy allows
      expect(ranges.slice(1).every((r) => r === 'bytes=50000-')).toBe(true);
    });

    it('keeps a slow registry that keeps sending (64 kB/s), for longer than the registry timeout', async () => {
      await setUp(slowImage);
      fake.hook = (req, res) => {
        if (!req.url!.endsWith(slowLayer.digest)) return false;
        res.writeHead(200, { 'content-length': slowLayer.blob.length });
        let at = 0;
        const tick = setInterval(() => {
          res.write(slowLayer.blob.subarray(at, (at += 8192)));
          if (at >= slowLayer.blob.length) {
            clearInterval(tick);
            res.end();
          }
        }, 125);
        res.on('close', () => clearInterval(tick));
        return true;
      };
      const t0 = Date.now();
      const r = await pullImage(store, `${fake.host}/app`, within(1));
      const elapsed = Date.now() - t0;
      expect(r.manifestDigest).toBe(slowImage.manifestDigest);
      expect(elapsed).toBeGreaterThan(2500); // three times the registry timeout: progress kept it going
      expect(fake.log.filter((l) => l.url.endsWith(slowLayer.digest))).toHaveLength(1);
    });

    it('gives up on a registry that answers 503 forever: Retry-After cannot stretch the wait', async () => {
      await setUp();
      fake.hook = (req, res) => {
        if (!req.url!.includes('/manifests/')) return false;
        res.writeHead(503, { 'retry-after': '1', 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}');
        return true;
      };
      const t0 = Date.now();
      const err = await pullImage(store, `${fake.host}/app`, within(2.5)).catch((e) => e);
      const elapsed = Date.now() - t0;
      expect(err.code).toBe('ENETWORK');
      expect(err.message).toMatch(
        new RegExp(`GET http://${fake.host}/v2/app/manifests/latest: no progress from the registry for [\\d.]+ s over \\d attempts \\(last: HTTP 503\\), and trying again in 1 s would pass the registry timeout; to wait longer, set TSRUN_REGISTRY_TIMEOUT=`),
      );
      expect(elapsed).toBeLessThan(2500 + MARGIN_MS);
      const attempts = fake.log.filter((l) => l.url.includes('/manifests/')).length;
      expect(attempts).toBeGreaterThanOrEqual(2); // it retried...
      expect(attempts).toBeLessThanOrEqual(3); // ...within 2.5 s, not the 10 retries the policy allows
    });

    /** 10 bytes every 250 ms: 80 bytes in 2 s. */
    const slowly = (res: http.ServerResponse) => trickle(res, Buffer.alloc(4096, 0x20), 10, 250);

    describe('a registry that trickles: less than 1 KiB in a registry timeout is no progress', () => {
      it('fails the ping', async () => {
        await setUp();
        fake.hook = (req, res) => {
          if (req.url !== '/v2/') return false;
          res.writeHead(200, { 'content-type': 'application/json' });
          slowly(res);
          return true;
        };
        const t0 = Date.now();
        const err = await pullImage(store, `${fake.host}/app`, within(2)).catch((e) => e);
        const elapsed = Date.now() - t0;
        expect(err.message).toBe(`pull ${fake.host}/app: GET http://${fake.host}/v2/: the registry sent less than 1 KiB in 2 s; ${hint} (now 2 s, from TSRUN_REGISTRY_TIMEOUT)`);
        expect(elapsed).toBeLessThan(2000 + MARGIN_MS);
      });

      it('fails the manifest', async () => {
        await setUp();
        fake.hook = (req, res) => {
          if (!req.url!.includes('/manifests/')) return false;
          res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'content-length': 4096 });
          slowly(res);
          return true;
        };
        const t0 = Date.now();
        const err = await pullImage(store, `${fake.host}/app`, within(2)).catch((e) => e);
        const elapsed = Date.now() - t0;
        expect(err.code).toBe('ENETWORK');
        expect(err.message).toBe(`pull ${fake.host}/app: GET http://${fake.host}/v2/app/manifests/latest: the registry sent less than 1 KiB in 2 s; ${hint} (now 2 s, from TSRUN_REGISTRY_TIMEOUT)`);
        expect(elapsed).toBeLessThan(2000 + MARGIN_MS);
      });

      it('fails a blob that goes on at 100 bytes every half second', async () => {
        await setUp();
        let stalledAt = 0;
        fake.hook = (req, res) => {
          if (!req.url!.endsWith(bigLayer.digest)) return false;
          res.writeHead(200, { 'content-length': bigLayer.blob.length });
          res.write(bigLayer.blob.subarray(0, 50_000), () => (stalledAt = Date.now()));
          trickle(res, bigLayer.blob.subarray(50_000), 100, 500);
          return true;
        };
        const err = await pullImage(store, `${fake.host}/app`, within(2)).catch((e) => e);
        const sinceStall = Date.now() - stalledAt;
        expect(err.code).toBe('ENETWORK');
        expect(err.message).toMatch(new RegExp(`: GET blob ${bigLayer.digest} of ${fake.host}/app: the registry sent less than 1 KiB in 2 s after 50[0-9]00 of ${bigLayer.blob.length} bytes; `));
        expect(err.message).toContain(hint);
        expect(sinceStall).toBeLessThan(2000 + MARGIN_MS);
        expect(fake.log.filter((l) => l.url.endsWith(bigLayer.digest))).toHaveLength(1);
      });

      it.each([
        ['a 503 it would retry', 503],
        ['a 401 it would answer with credentials', 401],
        ['a redirect it would follow', 307],
      ])('fails %s, whose body it reads to the end first', async (_, status) => {
        await setUp();
        const target = status === 307 ? bigLayer.digest : '/manifests/';
        fake.hook = (req, res) => {
          if (!req.url!.includes(target)) return false;
          const headers: http.OutgoingHttpHeaders = { 'retry-after': '1', location: `/elsewhere/${bigLayer.digest}` };
          if (status === 401) headers['www-authenticate'] = 'Basic realm="fake"';
          res.writeHead(status, headers);
          slowly(res);
          return true;
        };
        const t0 = Date.now();
        const err = await pullImage(store, `${fake.host}/app`, within(2)).catch((e) => e);
        const elapsed = Date.now() - t0;
        expect(err.code).toBe('ENETWORK');
        const url = status === 307 ? `http://${fake.host}/v2/app/blobs/${bigLayer.digest}` : `http://${fake.host}/v2/app/manifests/latest`;
        // A 401 is an answer (its headers restart the clock; only one more try follows it);
        // a 503 or a redirect is not.
        const why = status === 401 ? 'the registry sent less than 1 KiB in 2 s' : `no progress from the registry for 2 s over 1 attempt (last: HTTP ${status})`;
        expect(err.message).toBe(`pull ${fake.host}/app: GET ${url}: ${why}; ${hint} (now 2 s, from TSRUN_REGISTRY_TIMEOUT)`);
        expect(elapsed).toBeLessThan(2000 + MARGIN_MS);
      });
    });

    describe('a token server', () => {
      let tokens: Fake;
      beforeAll(async () => {
        tokens = await new Fake().start();
      });
      afterAll(() => tokens.stop());
      afterEach(() => {
        tokens.hook = undefined;
      });
      /** The registry asks for a bearer token from `tokens`, whose /token does `serve`. */
      async function bearer(serve: (res: http.ServerResponse) => void): Promise<void> {
        await setUp();
        fake.bearer = `http://${tokens.host}/token`;
        tokens.hook = (req, res) => (req.url!.startsWith('/token') ? (serve(res), true) : false);
      }
      const tokenUrl = () => `http://${tokens.host}/token?service=fake&scope=repository%3Aapp%3Apull`;

      it('that stops mid-body fails with how long tsrun waited and the setting that allows more', async () => {
        let stalledAt = 0;
        await bearer((res) => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.write('{"token":"go', () => (stalledAt = Date.now())); // then silence
        });
        const err = await pullImage(store, `${fake.host}/app`, within(2)).catch((e) => e);
        const sinceStall = Date.now() - stalledAt;
        expect(err.code).toBe('ENETWORK');
        expect(err.message).toBe(
          `pull ${fake.host}/app: ${fake.host}: getting a token: GET ${tokenUrl()}: the token server sent less than 1 KiB in 2 s; ${hint} (now 2 s, from TSRUN_REGISTRY_TIMEOUT)`,
        );
        expect(sinceStall).toBeGreaterThan(1900);
        expect(sinceStall).toBeLessThan(2000 + MARGIN_MS);
      });

      it('that trickles fails the same way', async () => {
        await bearer((res) => {
          res.writeHead(200, { 'content-type': 'application/json' });
          slowly(res);
        });
        const t0 = Date.now();
        const err = await pullImage(store, `${fake.host}/app`, within(2)).catch((e) => e);
        const elapsed = Date.now() - t0;
        expect(err.message).toBe(
          `pull ${fake.host}/app: ${fake.host}: getting a token: GET ${tokenUrl()}: the token server sent less than 1 KiB in 2 s; ${hint} (now 2 s, from TSRUN_REGISTRY_TIMEOUT)`,
        );
        expect(elapsed).toBeLessThan(2000 + MARGIN_MS);
      });

      it('an anonymous token over plain HTTP is nobody\'s secret: no warning', async () => {
        await bearer((res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: 'good' })));
        const warnings: string[] = [];
        const r = await pullImage(store, `${fake.host}/app`, { ...within(5), onWarning: (w) => warnings.push(w) });
        expect(r.manifestDigest).toBe(image.manifestDigest);
        expect(fake.log.some((l) => l.authorization === 'Bearer good')).toBe(true);
        expect(warnings).toEqual([]);
      });

      it('that sends more than 1 MiB is refused', async () => {
        await bearer((res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: 'x'.repeat(2 << 20) })));
        const err = await pullImage(store, `${fake.host}/app`, within(5)).catch((e) => e);
        expect(err.code).toBe('EAUTH');
        expect(err.message).toBe(`pull ${fake.host}/app: ${fake.host}: the token from http://${tokens.host} is too large (more than the 1 MiB limit)`);
      });

      it("stops reading a token when the request's signal aborts", async () => {
        await bearer((res) => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.write('{"token":"go'); // then silence
        });
        const transport = new Transport({ timeout: { ms: 10_000, source: 'env', configFile: '/nonexistent' } });
        try {
          const auth = new Authenticator(transport, fake.host, async () => undefined);
          await auth.init();
          const cancel = new AbortController();
          setTimeout(() => cancel.abort(new Error('cancelled')), 300);
          const t0 = Date.now();
          await expect(auth.authorization(['repository:app:pull'], cancel.signal)).rejects.toThrow('cancelled');
          expect(Date.now() - t0).toBeLessThan(1000);
        } finally {
          await transport.close();
        }
      });

      it('is not charged to the request it gets a token for', async () => {
        // The token takes 1.3 s, the manifest 1.3 s more: each within 2 s, both together not.
        await bearer((res) => void setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{"token":"good"}'), 1300));
        fake.hook = (req, res) => {
          if (!req.url!.includes('/manifests/')) return false;
          const man = fake.manifests.get('latest')!.body;
          setTimeout(() => res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'content-length': man.length }).end(man), 1300);
          return true;
        };
        const r = await pullImage(store, `${fake.host}/app`, within(2));
        expect(r.manifestDigest).toBe(image.manifestDigest);
      });
    });

    describe('an answer after a wait', () => {
      /** The manifest: a 503 with Retry-After: 1 first, then all but its last 10 bytes, and the rest after `pauseMs` (never if undefined). */
      function afterBackoff(pauseMs?: number): { stalledAt: () => number } {
        let calls = 0;
        let stalledAt = 0;
        fake.hook = (req, res) => {
          if (!req.url!.includes('/manifests/')) return false;
          if (calls++ === 0) return void res.writeHead(503, { 'retry-after': '1', 'content-length': 0 }).end(), true;
          const man = fake.manifests.get('latest')!.body;
          res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'content-length': man.length, 'docker-content-digest': sha256Of(man) });
          res.write(man.subarray(0, -10), () => (stalledAt = Date.now()));
          if (pauseMs !== undefined) setTimeout(() => res.end(man.subarray(-10)), pauseMs);
          return true;
        };
        return { stalledAt: () => stalledAt };
      }

      it('gets the whole registry timeout for its body, however long the back-off before it', async () => {
        await setUp();
        afterBackoff(1500);
        const r = await pullImage(store, `${fake.host}/app`, within(2));
        expect(r.manifestDigest).toBe(image.manifestDigest);
      });

      it('that stalls fails after the whole registry timeout, and says so truly', async () => {
        await setUp();
        const { stalledAt } = afterBackoff();
        const err = await pullImage(store, `${fake.host}/app`, within(2)).catch((e) => e);
        const sinceStall = Date.now() - stalledAt();
        expect(err.message).toBe(`pull ${fake.host}/app: GET http://${fake.host}/v2/app/manifests/latest: the registry sent less than 1 KiB in 2 s; ${hint} (now 2 s, from TSRUN_REGISTRY_TIMEOUT)`);
        expect(sinceStall).toBeGreaterThan(1900);
        expect(sinceStall).toBeLessThan(2000 + MARGIN_MS);
      });

      it('from a storage host after a slow redirect gets what the registry timeout has left, on one connection', async () => {
        await setUp();
        const storage = await new Fake().start();
        try {
          // Every request to storage: 100 kB, 1.2 s of silence, the rest.
          storage.hook = (_req, res) => {
            res.writeHead(200, { 'content-length': bigLayer.blob.length });
            res.write(bigLayer.blob.subarray(0, 100_000));
            setTimeout(() => res.end(bigLayer.blob.subarray(100_000)), 1200);
            return true;
          };
          fake.hook = (req, res) => {
            if (!req.url!.endsWith(bigLayer.digest)) return false;
            setTimeout(() => res.writeHead(307, { location: `http://${storage.host}/data`, 'content-length': 0 }).end(), 1200);
            return true;
          };
          const r = await pullImage(store, `${fake.host}/app`, within(2));
          expect(r.manifestDigest).toBe(image.manifestDigest);
          expect(storage.log).toHaveLength(1); // no resume was needed
        } finally {
          await storage.stop();
        }
      });
    });

    describe('push', () => {
      /** The store holds uploadImage, pulled from the fake, tagged for its repository "up". */
      async function pulled(): Promise<string> {
        await setUp(uploadImage);
        await pullImage(store, `${fake.host}/app`, opts());
        const name = `${fake.host}/up:latest`;
        await store.putImage({ manifestDigest: uploadImage.manifestDigest, manifest: { layers: [] }, configDigest: uploadImage.configDigest, names: [name] });
        return name;
      }
      const pushOptions = (seconds: number) => ({ env: { TSRUN_CONFIG: '/nonexistent', DOCKER_CONFIG: '/nonexistent', TSRUN_REGISTRY_TIMEOUT: String(seconds) } });

      it('fails an upload the registry stops reading, within the registry timeout', async () => {
        const name = await pulled();
        fake.hook = takeUploads((req) => {
          let taken = 0;
          req.on('data', (c: Buffer) => {
            if ((taken += c.length) > 1_000_000) req.pause(); // then neither reads nor answers
          });
        });
        const t0 = Date.now();
        const err = await pushImage(store, name, pushOptions(2)).catch((e) => e);
        const elapsed = Date.now() - t0;
        expect(err.code).toBe('ENETWORK');
        expect(err.message).toMatch(new RegExp(`^push ${name}: PUT http://${fake.host}/v2/up/blobs/uploads/u1\\?digest=sha256%3A[0-9a-f]{64}: the registry sent nothing for 2 s; to wait longer, set TSRUN_REGISTRY_TIMEOUT=`));
        expect(elapsed).toBeLessThan(2000 + MARGIN_MS);
      });

      it('keeps an upload the registry reads slowly, for longer than the registry timeout', async () => {
        const name = await pulled();
        // 4 MB/s: 16 MB take 4 s. (Slower, the megabytes the kernel buffers on loopback would
        // take longer than the registry timeout to drain after tsrun's last write.)
        fake.hook = takeUploads((req, done) => {
          req.on('data', (c: Buffer) => {
            req.pause();
            setTimeout(() => req.resume(), c.length / 4000);
          });
          req.on('end', done);
        });
        const t0 = Date.now();
        const r = await pushImage(store, name, pushOptions(2));
        expect(r.digest).toBe(uploadImage.manifestDigest);
        expect(Date.now() - t0).toBeGreaterThan(3000); // longer than the registry timeout: progress kept it going
      });
    });
  });
});

describe('a registry that never answers', () => {
  // Accepts TCP connections and never sends a byte: not even a TLS handshake.
  const sockets: net.Socket[] = [];
  let silent: net.Server;
  let host: string;
  beforeAll(async () => {
    silent = net.createServer((s) => void sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    host = `127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => silent.close(r));
  });

  it('fails within the registry timeout', async () => {
    const store = await TestStore.create();
    try {
      const t0 = Date.now();
      const err = await pullImage(store, `${host}/app`, {
        decompressor: testDecompressor,
        env: { TSRUN_CONFIG: '/nonexistent', TSRUN_REGISTRY_TIMEOUT: '1' },
      }).catch((e) => e);
      expect(err.code).toBe('ENETWORK');
      // The HTTPS attempt (loopback is insecure: HTTP would come next) used up the whole wait.
      expect(err.message).toContain(`GET https://${host}/v2/: the registry sent nothing for 1 s; to wait longer, set TSRUN_REGISTRY_TIMEOUT=<seconds>`);
      expect(Date.now() - t0).toBeLessThan(1000 + MARGIN_MS);
    } finally {
      await store.destroy();
    }
  });

  it('tsrun pull exits 125 within TSRUN_REGISTRY_TIMEOUT, saying how to wait longer', async () => {
    const env = new TestEnv('registry-timeout');
    try {
      const t0 = Date.now();
      const r = env.run(['pull', `${host}/x:y`], { env: { TSRUN_REGISTRY_TIMEOUT: '2', TSRUN_CONFIG: '/nonexistent', DOCKER_CONFIG: '/nonexistent' } });
      const elapsed = Date.now() - t0;
      expect(r.status).toBe(125);
      expect(r.stderr).toContain(
        `GET https://${host}/v2/: the registry sent nothing for 2 s; to wait longer, set TSRUN_REGISTRY_TIMEOUT=<seconds> or "registry-timeout": <seconds> in /nonexistent (now 2 s, from TSRUN_REGISTRY_TIMEOUT)`,
      );
      expect(elapsed).toBeLessThan(2000 + MARGIN_MS + 1500); // plus starting node
    } finally {
      await env.cleanup();
    }
  });
});
