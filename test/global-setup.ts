// Runs once around the whole suite: after the last test, nothing tsrun made may remain.
// The leak check looks at the whole host, so two suites at once would see each other's live
// containers as leaks: a suite that finds another one running says so and stops.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findLeaks } from './leaks.js';

const pidFile = join(tmpdir(), 'tsrun-test-suite.pid');

/** Whether `pid` is a vitest still running (a stale file's pid may belong to anything by now). */
function runningSuite(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('vitest');
  } catch {
    return false;
  }
}

export async function setup(): Promise<void> {
  let other = NaN;
  try {
    other = Number(readFileSync(pidFile, 'utf8'));
  } catch {
    // none recorded
  }
  if (Number.isInteger(other) && other !== process.pid && runningSuite(other)) {
    throw new Error(`another tsrun test suite (pid ${other}, ${pidFile}) is running on this host: its containers would look like this one's leaks; wait for it to end`);
  }
  writeFileSync(pidFile, String(process.pid));
}

export async function teardown(): Promise<void> {
  // Only this suite's record: a suite that setup stopped must not remove the running one's.
  let recorded = '';
  try {
    recorded = readFileSync(pidFile, 'utf8');
  } catch {
    // none
  }
  if (recorded !== String(process.pid)) return;
  rmSync(pidFile, { force: true });
  const leaks = findLeaks();
  if (leaks.length > 0) {
    // vitest reports a throwing teardown but keeps its exit status: set it, so CI fails.
    process.exitCode = 1;
    throw new Error(`the test suite left things behind:\n  ${leaks.join('\n  ')}`);
  }
}
