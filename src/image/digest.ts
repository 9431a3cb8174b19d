// Content addresses: sha256 digests and OCI chain IDs, and the one check everything the store
// trusts went through (mismatch).
import type { Hash } from 'node:crypto';
import { nodeCrypto } from '../sys/random.js';
import { TsrunError } from '../errors.js';
import type { Digest } from './types.js';

const DIGEST = /^sha256:[a-f0-9]{64}$/;

export function isDigest(value: unknown): value is Digest {
  return typeof value === 'string' && DIGEST.test(value);
}

/** Checks a digest read from untrusted JSON (it becomes a file name, so this matters). */
export function checkDigest(value: unknown, what: string): Digest {
  if (!isDigest(value)) throw new TsrunError('EBADIMAGE', `${what}: "${String(value)}" is not a sha256 digest`);
  return value;
}

export function hexOf(digest: Digest): string {
  return digest.slice('sha256:'.length);
}

export function sha256(bytes: Uint8Array | string): Digest {
  return `sha256:${nodeCrypto().createHash('sha256').update(bytes).digest('hex')}`;
}

/**
 * OCI chain ID: the first layer's is its diff ID; each next one is
 * sha256("<parent chain ID> <diff ID>"). Two images that share a bottom stack of layers share
 * these IDs, so the stack is unpacked once.
 */
export function chainIdOf(parent: Digest | null, diffId: Digest): Digest {
  return parent === null ? diffId : sha256(`${parent} ${diffId}`);
}

export function chainIds(diffIds: readonly Digest[]): Digest[] {
  const out: Digest[] = [];
  for (const d of diffIds) out.push(chainIdOf(out.length === 0 ? null : out[out.length - 1]!, d));
  return out;
}

/** Counts and hashes bytes as they pass. */
export class Hasher {
  private readonly hash: Hash = nodeCrypto().createHash('sha256');
  size = 0;

  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
    this.size += chunk.length;
  }

  digest(): Digest {
    return `sha256:${this.hash.digest('hex')}`;
  }
}

export interface Expected {
  digest: Digest;
  size?: number | undefined;
}

/** The error for content that is not what its descriptor says. */
export function mismatch(what: string, expected: Expected, actual: { digest: Digest; size: number }): TsrunError | undefined {
  if (expected.size !== undefined && expected.size !== actual.size) {
    return new TsrunError('EDIGEST', `${what}: size ${actual.size} does not match the expected ${expected.size} (${expected.digest})`);
  }
  if (expected.digest !== actual.digest) {
    return new TsrunError('EDIGEST', `${what}: content hashes to ${actual.digest}, expected ${expected.digest}`);
  }
  return undefined;
}
