// Runs once around the whole suite: after the last test, nothing tsrun made may remain.
import { findLeaks } from './leaks.js';

export async function setup(): Promise<void> {}

export async function teardown(): Promise<void> {
  const leaks = findLeaks();
  if (leaks.length > 0) {
    // vitest reports a throwing teardown but keeps its exit status: set it, so CI fails.
    process.exitCode = 1;
    throw new Error(`the test suite left things behind:\n  ${leaks.join('\n  ')}`);
  }
}
