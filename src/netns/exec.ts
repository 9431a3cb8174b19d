// Running iproute2 and iptables. tsrun shells out on purpose: these are the commands a learner
// can type to see or repeat each step. Each process costs a few milliseconds, so the callers
// batch their work: `ip -batch -` and `iptables-restore --noflush` read many commands on stdin.
import { closeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import { TsrunError, errnoOf } from '../errors.js';
import { spawnPiped, waitExit, watchText, writeAll, type PipedProcess } from '../sys/libc.js';

/** Every command tsrun's network code runs goes through here; tests and --trace can watch. */
export type CommandObserver = (argv: string[], input: string) => void;

let observer: CommandObserver | undefined;

/** Watch the commands (argv and stdin) the network code runs; undefined stops watching. */
export function observeCommands(fn: CommandObserver | undefined): void {
  observer = fn;
}

/**
 * A change tsrun makes in-process that a learner would make with a command (a sysctl written
 * to /proc/sys): the observer sees it as that command, `sysctl -w key=value`.
 */
export function observeEquivalent(argv: string[]): void {
  observer?.(argv, '');
}

export interface CommandResult {
  stdout: string;
  stderr: string;
}

/**
 * Run argv with `input` on stdin. Throws TsrunError(`doing`: stderr) when it exits non-zero;
 * `code` is EKERNEL when the kernel lacks the feature (an unknown link type or match).
 */
export function runCommand(argv: string[], input: string, doing: string): Promise<CommandResult> {
  observer?.(argv, input);
  return new Promise((resolve, reject) => {
    const failed = (err: unknown) => {
      const why = errnoOf(err) === 'ENOENT' ? `${argv[0]} is not installed (Debian/Ubuntu: apt-get install iproute2 iptables)` : String(err);
      reject(new TsrunError('ENETWORK', `${doing}: ${why}`, { cause: err }));
    };
    const ended = (stdout: string, stderr: string, code: number | null, signal: string | null) => {
      if (code === 0) return resolve({ stdout, stderr });
      const detail = stderr.trim() || `${argv.join(' ')} exited with ${signal ?? code}`;
      const missing = /Unknown device type|Could not fetch rule set|can.t initialize iptables table/.test(detail);
      reject(new TsrunError(missing ? 'EKERNEL' : 'ENETWORK', `${doing}: ${detail}`));
    };
    let piped;
    try {
      piped = spawnPiped(argv);
    } catch (err) {
      return failed(err);
    }
    if (piped) return runPiped(piped, input, ended, failed);
    // Without the addon: node:child_process, loaded only here (with net, dgram and streams).
    const { spawn } = createRequire(import.meta.url)('node:child_process') as typeof import('node:child_process');
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', failed);
    child.on('close', (code, signal) => ended(stdout, stderr, code, signal));
    // A command that exits before reading stdin makes the write fail with EPIPE: the exit status says why.
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

/**
 * The same for a process posix_spawnp started (sys/libc.ts: no fork of Node, ~1 ms instead of
 * 7-8 on a VM). Its stdout and stderr are read by threads of the addon (watchChannel), so that
 * its stdin can take a blocking write meanwhile, and no node:net is loaded; once both have
 * ended, it has exited (or is exiting), and waitpid reaps it.
 */
function runPiped(
  p: PipedProcess,
  input: string,
  ended: (stdout: string, stderr: string, code: number | null, signal: string | null) => void,
  failed: (err: unknown) => void,
): void {
  const out = { stdout: '', stderr: '' };
  let open = 2;
  const done = () => {
    if (--open > 0) return;
    let status;
    try {
      status = waitExit(p.pid);
    } catch (err) {
      return failed(err);
    }
    ended(out.stdout, out.stderr, status.code, status.signal === null ? null : signalName(status.signal));
  };
  for (const name of ['stdout', 'stderr'] as const) readAll(p[name], (text) => (out[name] += text), done);
  // false on EPIPE: the command exited before reading its stdin; its exit status says why.
  writeAll(p.stdin, input);
  closeSync(p.stdin);
}

/** Everything that comes on a pipe, as text, then done() once, the pipe closed. */
function readAll(fd: number, onText: (text: string) => void, done: () => void): void {
  if (watchText(fd, onText, done)) return;
  const { Socket } = createRequire(import.meta.url)('node:net') as typeof import('node:net');
  const s = new Socket({ fd, readable: true, writable: false });
  s.setEncoding('utf8').on('data', onText);
  s.on('error', () => {}); // then 'close' all the same
  s.on('close', done);
}

/** SIGTERM for 15, as child_process names the signal that ended a child. */
function signalName(n: number): string {
  return Object.entries(constants.signals).find(([, v]) => v === n)?.[0] ?? String(n);
}
