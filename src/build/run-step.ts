// A RUN step's pieces that are not the builder's bookkeeping: the argv (with BuildKit's heredoc
// rules), where a `#!` heredoc script is mounted, and the step's output — followed as the
// container writes it, and the end of it kept for the error of a step that failed.
import * as fs from 'node:fs';
import { argvOf } from './image-config.js';
import { heredocWord } from './expand.js';
import type { Instruction } from './instructions.js';
import type { ImageRunConfig } from '../image/types.js';

/** How much of a failed RUN's output its error keeps: the end, where the reason usually is. */
export const OUTPUT_SHOWN = 64 * 1024;

export function lastBytes(path: string, n: number): string {
  const fd = fs.openSync(path, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const buf = Buffer.alloc(Math.min(size, n));
    fs.readSync(fd, buf, 0, buf.length, size - buf.length);
    return (size > n ? `[... ${size - n} bytes of output before this]\n` : '') + buf.toString('utf8');
  } finally {
    fs.closeSync(fd);
  }
}

/** A RUN step's output, kept on its error so the CLI can show it when it was not shown live. */
export class StepOutput extends Error {
  constructor(readonly output: string) {
    super('step output');
  }
}

/**
 * RUN's argv, heredocs as BuildKit runs them. A heredoc alone (`RUN <<EOF`) is the script: run
 * by the shell, or (starting with `#!`) made a file of its own, `script`, and executed. A
 * heredoc after a command (`RUN python3 <<EOF`) goes to the shell with its body, which feeds it
 * to the command.
 */
export function runArgv(inst: Extract<Instruction, { kind: 'RUN' }>, config: ImageRunConfig): { argv: string[]; script?: { name: string; body: string } } {
  const { command } = inst;
  if ('exec' in command || inst.heredocs.length === 0) return { argv: argvOf(command, config) };
  const only = inst.heredocs.length === 1 ? heredocWord(command.shell.trim()) : undefined;
  if (only && only.name === inst.heredocs[0]!.name) {
    const body = inst.heredocs[0]!.body;
    if (body.startsWith('#!')) return { argv: [`${HEREDOC_DIR}/${only.name}`], script: { name: only.name, body } };
    return { argv: argvOf({ shell: body }, config) };
  }
  const bodies = inst.heredocs.map((h) => `\n${h.body}${h.name}`).join('');
  return { argv: argvOf({ shell: `${command.shell}${bodies}` }, config) };
}

/** Where a `#!` heredoc script is mounted in a RUN step (BuildKit's place: /dev is a tmpfs, never committed). */
export const HEREDOC_DIR = '/dev/pipes';

/** Follows a file as it grows (a RUN's output), handing new bytes over until stopped. */
export class Tail {
  private offset = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly path: string,
    private readonly onData: (b: Buffer) => void,
  ) {
    this.timer = setInterval(() => this.poll(), 100);
  }

  private poll(): void {
    let fd: number;
    try {
      fd = fs.openSync(this.path, 'r');
    } catch {
      return; // gone with its container, or not there yet: nothing to show
    }
    try {
      const buf = Buffer.alloc(64 * 1024);
      for (;;) {
        const n = fs.readSync(fd, buf, 0, buf.length, this.offset);
        if (n <= 0) break;
        this.offset += n;
        this.onData(Buffer.from(buf.subarray(0, n)));
      }
    } finally {
      fs.closeSync(fd);
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.poll();
  }
}

