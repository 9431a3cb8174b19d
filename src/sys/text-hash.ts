// SHA-256 of a short text (a container ID and a network name) without node:crypto: loading
// node:crypto (OpenSSL's bindings, and node:stream under them) is ~6 ms of a start on a small VM,
// and the bridge path and inspect hash only a few dozen bytes each. @noble/hashes is a pure-JS,
// audited implementation; its digests are node:crypto's (test/unit/text-hash.test.ts). Digests
// of image content, megabytes at a time, stay with node:crypto (src/image/digest.ts).
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';

/** The SHA-256 of `text`'s UTF-8 bytes, as 64 lowercase hex digits. */
export function sha256Text(text: string): string {
  return bytesToHex(sha256(Buffer.from(text, 'utf8')));
}
