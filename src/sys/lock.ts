// One exclusive lock per file, shared by the image store, the network layer and containers.
// flock(2), not a lock file created with O_EXCL: the kernel releases it when the holder dies
// (kill -9 included), so there is never a stale lock to guess about. Non-blocking tries with
// back-off, because a blocking flock would stop Node's event loop while it waits.
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { TsrunError } from '../errors.js';

export interface LockOptions {
  timeoutMs?: number;
  /** Create the lock file's directory if missing (default). Off for a lock inside an object
   * that may be deleted meanwhile: taking the lock must not bring its directory back. */
  createDir?: boolean;
}

/** Run fn while holding an exclusive flock on `path` (created if missing); waits up to timeoutMs. */
export async function withLock<T>(path: string, fn: () => Promise<T> | T, opts: LockOptions = {}): Promise<T> {
  const { timeoutMs = 60_000, createDir = true } = opts;
  const { tryLockExclusive, unlock } = await import('./libc.js');
  if (createDir) mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  // Each open() is its own open file description, so two holders in one process exclude each other too.
  const fd = openSync(path, 'a', 0o600);
  try {
    const deadline = Date.now() + timeoutMs;
    for (let wait = 1; !tryLockExclusive(fd); wait = Math.min(wait * 2, 50)) {
      if (Date.now() > deadline) throw new TsrunError('ELOCK', `timed out after ${timeoutMs / 1000}s waiting for the lock ${path}`);
      // Holders keep it for milliseconds: poll soon, with jitter so waiters do not move in step.
      await new Promise((r) => setTimeout(r, wait * (0.5 + Math.random())));
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
