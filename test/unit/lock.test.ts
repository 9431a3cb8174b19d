// withLock and the flock addon under it (native/node/sys.c, src/sys/libc.ts).
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { tryLockExclusive, unlock } from '../../src/sys/libc.js';
import { withLock } from '../../src/sys/lock.js';

let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('flock through the addon', () => {
  it('excludes a second open file description, and unlock lets it in', () => {
    dir = mkdtempSync(join(tmpdir(), 'tsrun-lock-'));
    const a = openSync(join(dir, 'l'), 'a');
    const b = openSync(join(dir, 'l'), 'a');
    try {
      expect(tryLockExclusive(a)).toBe(true);
      expect(tryLockExclusive(b)).toBe(false);
      unlock(a);
      expect(tryLockExclusive(b)).toBe(true);
      expect(tryLockExclusive(a)).toBe(false);
    } finally {
      closeSync(a);
      closeSync(b);
    }
  });

  it('throws a Node-style error for a bad descriptor', () => {
    dir = mkdtempSync(join(tmpdir(), 'tsrun-lock-'));
    const fd = 1 << 20; // above any open file's number (the soft limit is lower)
    expect(() => tryLockExclusive(fd)).toThrow(expect.objectContaining({ code: 'EBADF', syscall: 'flock', errno: -9, message: 'EBADF: bad file descriptor, flock' }));
    expect(() => unlock(fd)).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });
});

describe('withLock', () => {
  it('waits for a holder in another process, and takes the lock once that process dies', async () => {
    dir = mkdtempSync(join(tmpdir(), 'tsrun-lock-'));
    const path = join(dir, 'l');
    // flock(1) holds it from another process, as another tsrun would (-o: its sleep does not
    // inherit the lock; the group is killed, so no sleep outlives the test).
    const holder = spawn('flock', ['-o', '-x', path, 'sleep', '30'], { stdio: 'ignore', detached: true });
    const kill = () => {
      try {
        process.kill(-holder.pid!, 'SIGKILL');
      } catch {
        // gone already
      }
    };
    try {
      for (let i = 0; i < 200; i++) {
        const fd = openSync(path, 'a');
        const free = tryLockExclusive(fd);
        closeSync(fd); // closing drops a lock taken by mistake
        if (!free) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      await expect(withLock(path, () => 'got it', { timeoutMs: 200 })).rejects.toThrow(/timed out after 0.2s waiting for the lock/);
      const waiting = withLock(path, () => 'got it', { timeoutMs: 10_000 });
      kill();
      await expect(waiting).resolves.toBe('got it');
    } finally {
      kill();
    }
  });
});
