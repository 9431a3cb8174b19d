// SHA-256 of a short text (a container ID with a network name, or with its endpoint's creation
// time) without node:crypto: loading it and making a hash (OpenSSL's bindings, and node:stream
// under them) took ~6 ms on a 2-core VM (2026-12-07, interleaved against `node -e 0`), and the
// bridge path and inspect hash only a few dozen bytes each. @noble/hashes is a pure-JS,
// audited implementation; its digests are node:crypto's (test/unit/text-hash.test.ts). Digests
// of image content, megabytes at a time, stay with node:crypto (src/image/digest.ts).
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';

/** The SHA-256 of `text`'s UTF-8 bytes, as 64 lowercase hex digits. */
export function sha256Text(text: string): string {
  return bytesToHex(sha256(Buffer.from(text, 'utf8')));
}
