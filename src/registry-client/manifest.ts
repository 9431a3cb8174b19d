// Manifests and indexes: what to ask for, how much to read, what to refuse.
// OCI and Docker schema2 have the same shape (a config, a list of layers; an index/list of
// per-platform manifests) and differ only in media types. Docker schema1 is signed JSON with
// no config blob and is long deprecated: refused with the way out.
import { createHash } from 'node:crypto';
import { TsrunError } from '../errors.js';
import type { Descriptor, Digest, ImageManifest } from '../oci/types.js';

export const MediaType = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

/** The Accept header for manifests: every format we can use, none we refuse. */
export const MANIFEST_ACCEPT = [MediaType.ociIndex, MediaType.ociManifest, MediaType.dockerList, MediaType.dockerManifest].join(', ');

/** containerd's limit: a manifest bigger than this is an attack or a mistake. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** Image configs can be large (long histories) but not unbounded. */
export const MAX_CONFIG_BYTES = 8 * 1024 * 1024;

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

export type ParsedManifest = { kind: 'index'; index: ImageIndex } | { kind: 'manifest'; manifest: ImageManifest };

const DIGEST = /^sha256:[a-f0-9]{64}$/;

export function sha256(bytes: Uint8Array): Digest {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export function isDigest(s: unknown): s is Digest {
  return typeof s === 'string' && DIGEST.test(s);
}

/** Reads a body into memory, refusing it as soon as it passes `limit` bytes. */
export async function readLimited(body: AsyncIterable<Uint8Array>, limit: number, what: string, declared?: number): Promise<Buffer> {
  if (declared !== undefined && declared > limit) throw tooBig(what, limit, declared);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    total += chunk.length;
    if (total > limit) {
      // Stop reading: the caller destroys the connection with the body.
      throw tooBig(what, limit);
    }
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks, total);
}

function tooBig(what: string, limit: number, size?: number): TsrunError {
  const s = size === undefined ? 'more than' : `${size} bytes, more than`;
  return new TsrunError('EREGISTRY', `${what} is too large (${s} the ${limit / 1024 / 1024} MiB limit)`);
}

function schema1Error(what: string): TsrunError {
  return new TsrunError(
    'EREGISTRY',
    `${what} uses the deprecated Docker schema 1 manifest format, which tsrun does not support; re-push it with a current docker or skopeo`,
  );
}

function checkDescriptor(d: unknown, what: string): asserts d is Descriptor {
  const x = d as Partial<Descriptor> | null;
  if (!x || typeof x !== 'object') throw new TsrunError('EREGISTRY', `${what}: descriptor is not an object`);
  if (typeof x.digest !== 'string' || !x.digest.startsWith('sha256:')) {
    throw new TsrunError('EREGISTRY', `${what}: unsupported digest "${String(x.digest)}" (only sha256 is supported)`);
  }
  if (!DIGEST.test(x.digest)) throw new TsrunError('EREGISTRY', `${what}: malformed digest "${x.digest}"`);
  if (typeof x.size !== 'number' || !Number.isSafeInteger(x.size) || x.size < 0) {
    throw new TsrunError('EREGISTRY', `${what}: descriptor ${x.digest} has an invalid size`);
  }
  if (typeof x.mediaType !== 'string') throw new TsrunError('EREGISTRY', `${what}: descriptor ${x.digest} has no mediaType`);
}

/**
 * Parses manifest bytes. `contentType` is the registry's Content-Type header; the body's own
 * mediaType wins when present (registries sometimes answer with a generic type).
 */
export function parseManifest(bytes: Buffer, contentType: string | undefined, what: string): ParsedManifest {
  const ct = contentType?.split(';')[0]!.trim();
  if (ct === MediaType.dockerSchema1 || ct === MediaType.dockerSchema1Signed) throw schema1Error(what);
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new TsrunError('EREGISTRY', `${what}: manifest is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (!json || typeof json !== 'object') throw new TsrunError('EREGISTRY', `${what}: manifest is not a JSON object`);
  if (json.schemaVersion === 1) throw schema1Error(what);
  if (json.schemaVersion !== 2) throw new TsrunError('EREGISTRY', `${what}: unsupported manifest schemaVersion ${String(json.schemaVersion)}`);
  const mediaType = typeof json.mediaType === 'string' ? json.mediaType : ct;
  const isIndex =
    mediaType === MediaType.ociIndex || mediaType === MediaType.dockerList || (Array.isArray(json.manifests) && !('config' in json));
  if (isIndex) {
    if (!Array.isArray(json.manifests)) throw new TsrunError('EREGISTRY', `${what}: index has no "manifests" list`);
    json.manifests.forEach((d, i) => checkDescriptor(d, `${what}: manifests[${i}]`));
    return { kind: 'index', index: json as unknown as ImageIndex };
  }
  if (mediaType !== undefined && mediaType !== MediaType.ociManifest && mediaType !== MediaType.dockerManifest && mediaType !== 'application/json') {
    throw new TsrunError('EREGISTRY', `${what}: unsupported manifest media type "${mediaType}"`);
  }
  checkDescriptor(json.config, `${what}: config`);
  if (!Array.isArray(json.layers)) throw new TsrunError('EREGISTRY', `${what}: manifest has no "layers" list`);
  json.layers.forEach((d, i) => checkDescriptor(d, `${what}: layers[${i}]`));
  return { kind: 'manifest', manifest: json as unknown as ImageManifest };
}

/** The manifest's own digest must match what we asked for, or what the registry claims. */
export function verifyManifestDigest(bytes: Buffer, expected: string | undefined, what: string): Digest {
  const actual = sha256(bytes);
  if (expected !== undefined && expected.startsWith('sha256:') && expected !== actual) {
    throw new TsrunError('EDIGEST', `${what}: manifest digest mismatch: expected ${expected}, got ${actual}`);
  }
  return actual;
}
