// Runs once around the whole suite: after the last test, nothing tsrun made may remain.
// The leak check looks at the whole host, so two suites at once would see each other's live
// containers as leaks: a suite that finds another one running says so and stops.
import { createServer, type Server } from 'node:net';
import { findLeaks } from './leaks.js';

// One suite at a time on a host: a socket bound to a fixed name in Linux's abstract namespace.
// No file that every user must be able to create and open whatever TMPDIR, the directory's
// permissions or fs.protected_regular say; the kernel frees the name when this process ends,
// however it ends; and of two suites starting at once, one gets it.
const NAME = '\0tsrun-test-suite';
let held: Server | undefined;

export async function setup(): Promise<void> {
  const server = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(NAME, resolve);
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    throw new Error('another tsrun test suite is running on this host: its containers would look like this one\'s leaks; wait for it to end');
  }
  server.unref();
  held = server;
}

export async function teardown(): Promise<void> {
  // A suite that setup stopped has nothing of its own to check, and must not judge the other's.
  if (held === undefined) return;
  let leaks: string[];
  try {
    leaks = findLeaks();
  } finally {
    held.close(); // the next suite may start
    held = undefined;
  }
  if (leaks.length > 0) {
    // vitest reports a throwing teardown but keeps its exit status: set it, so CI fails.
    process.exitCode = 1;
    throw new Error(`the test suite left things behind:\n  ${leaks.join('\n  ')}`);
  }
}
