// What tsrun prints. Node's process.stdout and process.stderr are streams, made on first use:
// that first use loads Node's stream modules, ~3-5 ms of every command on a VM (bench/latency.mjs).
// Text goes out with write(2) instead. The stream is still there for what needs one (a tar on
// stdout, a progress view); once a command has asked for it, all its output on that descriptor
// goes through it, so that nothing overtakes what the stream still holds.
import { writeSync } from 'node:fs';
import { createRequire } from 'node:module';

type Fd = 1 | 2;

/** Descriptors whose output now goes through Node's stream. */
const streamed = new Set<Fd>();

/** Prints on stdout. A closed pipe (`tsrun images | head -1`) ends tsrun quietly, with 0. */
export function writeOut(text: string): void {
  write(1, text);
}

/** Prints on stderr; if nobody reads it, the text is dropped. */
export function writeErr(text: string): void {
  write(2, text);
}

/** process.stdout, for what needs a stream; from now on writeOut goes through it too. */
export function stdoutStream(): NodeJS.WriteStream {
  if (!streamed.has(1)) {
    streamed.add(1);
    process.stdout.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(0);
      throw err;
    });
  }
  return process.stdout;
}

/** process.stderr, for what needs a stream; from now on writeErr goes through it too. */
export function stderrStream(): NodeJS.WriteStream {
  if (!streamed.has(2)) {
    streamed.add(2);
    process.stderr.on('error', () => {});
  }
  return process.stderr;
}

/** isatty(3), as process.stdin.isTTY says, without making the stream (node:tty is loaded on first call). */
export function isTerminal(fd: 0 | Fd): boolean {
  const { isatty } = createRequire(import.meta.url)('node:tty') as typeof import('node:tty');
  return isatty(fd);
}

/** Whether Node's stdout or stderr stream has been made: then it may hold output not yet written. */
export function stdioStreamsInUse(): boolean {
  return streamed.size > 0;
}

function write(fd: Fd, text: string): void {
  if (streamed.has(fd)) {
    stream(fd).write(text);
    return;
  }
  const bytes = Buffer.from(text, 'utf8');
  let done = 0;
  try {
    while (done < bytes.length) done += writeSync(fd, bytes, done);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EPIPE') {
      if (fd === 1) process.exit(0);
      return;
    }
    // EAGAIN: whoever shares the descriptor made it non-blocking, and the reader is behind.
    // The stream waits for it; anything else (EBADF: closed) it handles as Node always has.
    stream(fd).write(bytes.subarray(done));
  }
}

function stream(fd: Fd): NodeJS.WriteStream {
  return fd === 1 ? stdoutStream() : stderrStream();
}
