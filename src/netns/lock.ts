// One lock per state dir serialises what must not interleave between concurrent `tsrun run`s:
// choosing an address or host port and recording it, creating a network's bridge and rules.
// flock(2) on a file: the kernel releases it when the holder dies, so a `kill -9` never
// leaves a stale lock behind (a lock *file* that merely exists would).
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { TsrunError } from '../errors.js';
import { tryLockExclusive, unlock } from '../sys/libc.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Run fn while holding an exclusive flock on `path`; waits up to timeoutMs for it. */
export async function withLock<T>(path: string, fn: () => Promise<T> | T, timeoutMs = 30_000): Promise<T> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  // Each open() is its own open file description, so two holders in one process exclude each other too.
  const fd = openSync(path, 'a', 0o600);
  try {
    const deadline = Date.now() + timeoutMs;
    // Non-blocking tries: a blocking flock would stop Node's event loop while it waits.
    for (let delay = 1; !tryLockExclusive(fd); delay = Math.min(delay * 2, 20)) {
      if (Date.now() > deadline) throw new TsrunError('ELOCK', `timed out after ${timeoutMs} ms waiting for the lock ${path}`);
      await sleep(delay);
    }
    try {
      return await fn();
    } finally {
      unlock(fd);
    }
  } finally {
    closeSync(fd);
  }
}
