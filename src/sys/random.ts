// Random bytes and a lazily loaded node:crypto. Loading node:crypto (OpenSSL) costs 3-6 ms of
// every start; `run` needs only random IDs, which /dev/urandom gives for the price of a read.
import { closeSync, openSync, readSync } from 'node:fs';
import { createRequire } from 'node:module';

let urandom: number | undefined;

/** `n` bytes from the kernel's CSPRNG (what crypto.randomBytes draws from too). */
export function randomBytes(n: number): Buffer {
  const buf = Buffer.alloc(n);
  urandom ??= openSync('/dev/urandom', 'r');
  for (let got = 0; got < n; ) got += readSync(urandom, buf, got, n - got, null);
  return buf;
}

/** An integer in [0, max), without modulo bias. */
export function randomInt(max: number): number {
  const limit = Math.floor(0x100000000 / max) * max;
  for (;;) {
    const v = randomBytes(4).readUInt32LE(0);
    if (v < limit) return v % max;
  }
}

process.once('exit', () => {
  if (urandom !== undefined) closeSync(urandom);
});

const require = createRequire(import.meta.url);
let crypto: typeof import('node:crypto') | undefined;

/** node:crypto, loaded the first time something hashes. */
export function nodeCrypto(): typeof import('node:crypto') {
  crypto ??= require('node:crypto') as typeof import('node:crypto');
  return crypto;
}
