// Insecure registry matching, platform selection, Retry-After, manifest checks, network errors.
import { describe, expect, it } from 'vitest';
import { chainIds } from '../../src/image/pull.js';
import { InsecurePolicy, parseInsecureEntry, splitHostPort } from '../../src/registry-client/insecure.js';
import { parseManifest, readLimited, verifyManifestDigest, sha256 } from '../../src/registry-client/manifest.js';
import { classifyNetworkError } from '../../src/registry-client/neterr.js';
import { hostPlatform, parsePlatform, selectManifest } from '../../src/registry-client/platform.js';
import { backoffDelay, parseRetryAfter } from '../../src/registry-client/retry.js';
import type { Descriptor } from '../../src/image/types.js';

describe('insecure registries', () => {
  const none = async () => [] as string[];
  it('matches host, host:port and CIDR entries', async () => {
    const p = new InsecurePolicy(['myreg.local', 'other:5000', '10.0.0.0/8', 'fd00::/8'], { implicitLoopback: false, resolve: none });
    expect(await p.isInsecure('myreg.local')).toBe(true);
    expect(await p.isInsecure('myreg.local:5000')).toBe(true); // no port: every port
    expect(await p.isInsecure('other:5000')).toBe(true);
    expect(await p.isInsecure('other:5001')).toBe(false);
    expect(await p.isInsecure('other')).toBe(false);
    expect(await p.isInsecure('10.1.2.3:5000')).toBe(true);
    expect(await p.isInsecure('11.1.2.3:5000')).toBe(false);
    expect(await p.isInsecure('[fd00::5]:5000')).toBe(true);
    expect(await p.isInsecure('docker.io')).toBe(false);
  });
  it('matches host names against CIDRs through DNS', async () => {
    const p = new InsecurePolicy(['192.168.0.0/16'], { implicitLoopback: false, resolve: async (h) => (h === 'nas' ? ['192.168.1.9'] : []) });
    expect(await p.isInsecure('nas:5000')).toBe(true);
    expect(await p.isInsecure('elsewhere:5000')).toBe(false);
  });
  it('treats loopback as insecure, unless told not to', async () => {
    const p = new InsecurePolicy([], { resolve: async (h) => (h === 'loop.test' ? ['127.0.0.2'] : ['93.184.216.34']) });
    for (const h of ['127.0.0.1:5000', 'localhost:5000', 'localhost', '[::1]:5000', '127.9.9.9', 'loop.test:80']) expect(await p.isInsecure(h)).toBe(true);
    expect(await p.isInsecure('example.com')).toBe(false);
    const strict = new InsecurePolicy([], { implicitLoopback: false, resolve: none });
    expect(await strict.isInsecure('127.0.0.1:5000')).toBe(false);
  });
  it('reads TSRUN_INSECURE_REGISTRIES and rejects malformed entries', async () => {
    const p = await InsecurePolicy.load(['a:1'], { env: { TSRUN_INSECURE_REGISTRIES: 'b:2, c', TSRUN_CONFIG: '/nonexistent' }, implicitLoopback: false, resolve: none });
    expect(await p.isInsecure('b:2')).toBe(true);
    expect(await p.isInsecure('c:9')).toBe(true);
    expect(() => parseInsecureEntry('10.0.0.0/40')).toThrow(/CIDR/);
    expect(() => parseInsecureEntry('nothost/8')).toThrow(/CIDR/);
    expect(parseInsecureEntry('http://reg:5000/')).toEqual({ kind: 'host', host: 'reg', port: 5000 });
    expect(splitHostPort('[::1]:5000')).toEqual({ host: '::1', port: 5000 });
    expect(splitHostPort('::1')).toEqual({ host: '::1' });
  });
});

describe('platforms', () => {
  const d = (architecture: string, variant?: string, os = 'linux'): Descriptor => ({
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest: `sha256:${sha256(Buffer.from(architecture + (variant ?? '') + os)).slice(7)}`,
    size: 1,
    platform: { os, architecture, ...(variant && { variant }) },
  });
  const list = [d('amd64'), d('arm64', 'v8'), d('arm', 'v7'), d('arm', 'v6'), d('amd64', undefined, 'windows'), d('unknown', undefined, 'unknown')];

  it('maps Node arch names to OCI ones', () => {
    expect(hostPlatform('x64')).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(hostPlatform('arm64')).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });
    expect(hostPlatform('arm')).toEqual({ os: 'linux', architecture: 'arm', variant: 'v7' });
  });
  it('parses --platform', () => {
    expect(parsePlatform('linux/arm64')).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });
    expect(parsePlatform('linux/aarch64')).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });
    expect(parsePlatform('linux/x86_64')).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(parsePlatform('arm')).toEqual({ os: 'linux', architecture: 'arm', variant: 'v7' });
    expect(() => parsePlatform('linux/')).toThrow(/os\/arch/);
    expect(() => parsePlatform('a/b/c/d')).toThrow(/os\/arch/);
  });
  it('selects the best manifest', () => {
    expect(selectManifest(list, parsePlatform('linux/amd64'), 'x')).toBe(list[0]);
    expect(selectManifest(list, parsePlatform('linux/arm64'), 'x')).toBe(list[1]);
    expect(selectManifest(list, parsePlatform('linux/arm/v7'), 'x')).toBe(list[2]);
    expect(selectManifest(list, parsePlatform('linux/arm/v6'), 'x')).toBe(list[3]);
    expect(selectManifest(list, parsePlatform('windows/amd64'), 'x')).toBe(list[4]);
    // arm64 entries without a variant are v8.
    expect(selectManifest([d('arm64')], parsePlatform('linux/arm64/v8'), 'x').platform!.architecture).toBe('arm64');
    expect(() => selectManifest(list, parsePlatform('linux/arm/v5'), 'img')).toThrow(
      'img: no matching manifest for linux/arm/v5 in the manifest list entries (available: linux/amd64, linux/arm64/v8, linux/arm/v7, linux/arm/v6, windows/amd64; choose one with --platform)',
    );
  });
});

describe('Retry-After and back-off', () => {
  const now = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT');
  it('reads seconds and HTTP dates', () => {
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter('0', now)).toBe(0);
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:27:00 GMT', now)).toBe(0); // in the past
    expect(parseRetryAfter(['5'], now)).toBe(5000);
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter('-5', now)).toBeUndefined();
  });
  it('doubles, with jitter, and caps', () => {
    const policy = { retries: 5, baseDelayMs: 100, maxDelayMs: 1000 };
    expect(backoffDelay(1, policy)).toBeGreaterThanOrEqual(75);
    expect(backoffDelay(1, policy)).toBeLessThanOrEqual(125);
    expect(backoffDelay(3, policy)).toBeGreaterThanOrEqual(300);
    expect(backoffDelay(10, policy)).toBe(1000);
    expect(backoffDelay(1, policy, 400)).toBe(400);
    expect(backoffDelay(1, policy, 60_000)).toBe(1000);
  });
});

describe('manifests', () => {
  const config = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${'c'.repeat(64)}`, size: 10 };
  const m = (o: object) => Buffer.from(JSON.stringify(o));
  it('tells manifests from indexes', () => {
    expect(parseManifest(m({ schemaVersion: 2, config, layers: [] }), 'application/vnd.docker.distribution.manifest.v2+json', 'x').kind).toBe('manifest');
    expect(parseManifest(m({ schemaVersion: 2, mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json', manifests: [] }), undefined, 'x').kind).toBe('index');
  });
  it('refuses schema 1, odd digests and bad JSON', () => {
    expect(() => parseManifest(m({ schemaVersion: 1 }), 'application/json', 'img')).toThrow(/deprecated Docker schema 1/);
    expect(() => parseManifest(m({}), 'application/vnd.docker.distribution.manifest.v1+prettyjws', 'img')).toThrow(/schema 1/);
    expect(() => parseManifest(m({ schemaVersion: 2, config: { ...config, digest: `sha512:${'a'.repeat(128)}` }, layers: [] }), undefined, 'x')).toThrow(/only sha256/);
    expect(() => parseManifest(Buffer.from('{'), undefined, 'x')).toThrow(/not valid JSON/);
  });
  it('limits size while reading and verifies digests', async () => {
    async function* chunks() {
      for (let i = 0; i < 10; i++) yield Buffer.alloc(100);
    }
    await expect(readLimited(chunks(), 500, 'm')).rejects.toThrow(/too large/);
    expect((await readLimited(chunks(), 1000, 'm')).length).toBe(1000);
    const b = Buffer.from('x');
    expect(verifyManifestDigest(b, sha256(b), 'm')).toBe(sha256(b));
    expect(() => verifyManifestDigest(b, `sha256:${'0'.repeat(64)}`, 'm')).toThrow(/digest mismatch/);
  });
  it('computes chain IDs as the OCI image spec does', () => {
    const a = `sha256:${'a'.repeat(64)}` as const;
    const b = `sha256:${'b'.repeat(64)}` as const;
    const ids = chainIds([a, b]);
    expect(ids[0]).toBe(a);
    expect(ids[1]).toBe(sha256(Buffer.from(`${a} ${b}`)));
  });
});

describe('network error kinds', () => {
  it('recognizes an HTTP answer to a TLS client, untrusted certificates and failed handshakes', () => {
    expect(classifyNetworkError(Object.assign(new Error('…:SSL routines:ssl3_get_record:wrong version number:…'), { code: 'ERR_SSL_WRONG_VERSION_NUMBER' }))).toBe('http-on-https');
    expect(classifyNetworkError(Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }))).toBe('untrusted-cert');
    expect(classifyNetworkError(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }))).toBe('no-tls');
    expect(classifyNetworkError(new Error('Client network socket disconnected before secure TLS connection was established'))).toBe('no-tls');
    expect(classifyNetworkError(Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }))).toBe('other');
    expect(classifyNetworkError(new Error('wrapped', { cause: Object.assign(new Error('y'), { code: 'ERR_SSL_WRONG_VERSION_NUMBER' }) }))).toBe('http-on-https');
  });
});
