// Runs once around the whole suite: after the last test, nothing tsrun made may remain.
// The leak check looks at the whole host, so two suites at once would see each other's live
// containers as leaks: a suite that finds another one running says so and stops.
import { closeSync, constants, existsSync, openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tryLockExclusive } from '../src/sys/libc.js';
import { findLeaks } from './leaks.js';

// A fixed path, not one under TMPDIR (two suites with different TMPDIRs would both go on), and
// an flock on it, not a pid written there: the kernel drops it when this suite's process ends,
// however it ends, and two suites starting at once cannot both take it.
const lockFile = existsSync('/run/lock') ? '/run/lock/tsrun-test-suite.lock' : join(tmpdir(), 'tsrun-test-suite.lock');
let held: number | undefined;

export async function setup(): Promise<void> {
  // Read-only is enough for flock, so a file another user made does not stop this one.
  const fd = openSync(lockFile, constants.O_RDONLY | constants.O_CREAT | constants.O_CLOEXEC, 0o644);
  if (!tryLockExclusive(fd)) {
    closeSync(fd);
    throw new Error(`another tsrun test suite is running on this host (it holds ${lockFile}): its containers would look like this one's leaks; wait for it to end`);
  }
  held = fd;
}

export async function teardown(): Promise<void> {
  // A suite that setup stopped has nothing of its own to check, and must not judge the other's.
  if (held === undefined) return;
  let leaks: string[];
  try {
    leaks = findLeaks();
  } finally {
    closeSync(held); // the next suite may start
    held = undefined;
  }
  if (leaks.length > 0) {
    // vitest reports a throwing teardown but keeps its exit status: set it, so CI fails.
    process.exitCode = 1;
    throw new Error(`the test suite left things behind:\n  ${leaks.join('\n  ')}`);
  }
}
