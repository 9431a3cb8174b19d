// Running iproute2 and iptables. tsrun shells out on purpose: these are the commands a learner
// can type to see or repeat each step. Each process costs a few milliseconds, so the callers
// batch their work: `ip -batch -` and `iptables-restore --noflush` read many commands on stdin.
import { spawn } from 'node:child_process';
import { TsrunError, errnoOf } from '../errors.js';

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
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (err) => {
      const why = errnoOf(err) === 'ENOENT' ? `${argv[0]} is not installed (Debian/Ubuntu: apt-get install iproute2 iptables)` : String(err);
      reject(new TsrunError('ENETWORK', `${doing}: ${why}`, { cause: err }));
    });
    child.on('close', (code, signal) => {
      if (code === 0) return resolve({ stdout, stderr });
      const detail = stderr.trim() || `${argv.join(' ')} exited with ${signal ?? code}`;
      const missing = /Unknown device type|Could not fetch rule set|can.t initialize iptables table/.test(detail);
      reject(new TsrunError(missing ? 'EKERNEL' : 'ENETWORK', `${doing}: ${detail}`));
    });
    // A command that exits before reading stdin makes the write fail with EPIPE: the exit status says why.
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}
