// What every command shares: global options, and the one place errors become exit codes.
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { hostLimitOf, TsrunError } from '../src/errors.js';
import { isRootless, rootlessPaths } from '../src/rootless.js';
import { writeErr } from './out.js';

export interface GlobalOptions {
  /** Store root (images, layers, containers). */
  root: string;
  insecureRegistry: string[];
  debug: boolean;
}

export function globalOptions(cmd: Command): GlobalOptions {
  // optsWithGlobals merges the program's options into the subcommand's.
  const o = cmd.optsWithGlobals() as Partial<GlobalOptions>;
  // Rootless (an ordinary user, or tsrun inside its user namespace): the user's own store.
  const defaults = isRootless() ? rootlessPaths() : { root: '/var/lib/tsrun' };
  return {
    // Absolute: the monitor runs in / and overlay options are relative to the root.
    root: resolve(o.root ?? process.env.TSRUN_ROOT ?? defaults.root),
    insecureRegistry: o.insecureRegistry ?? [],
    debug: o.debug ?? false,
  };
}

/** Collects a repeatable option into an array (`-e A -e B`). */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** -D/--debug (the command's global option, seen by action()) or TSRUN_DEBUG: errors show their causes. */
let debug = Boolean(process.env.TSRUN_DEBUG);

/**
 * Runs a command's action; a TsrunError, or the host refusing (a full disk), becomes one line
 * and an exit code (docker's: 125 engine, 126, 127); anything else is a bug and shows its stack.
 */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<number | void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    // commander passes the Command last.
    const cmd = args.at(-1) as Partial<Command> | undefined;
    if (typeof cmd?.optsWithGlobals === 'function' && cmd.optsWithGlobals<Partial<GlobalOptions>>().debug) debug = true;
    try {
      const code = await fn(...args);
      process.exitCode = code ?? 0;
    } catch (err) {
      process.exitCode = report(err);
    }
  };
}

/**
 * An error as the user sees it: one line, and an exit code. A full disk (or a read-only one, an
 * I/O error, no file descriptors left) is the host's state, not a bug: it says what failed,
 * the errno and the file — `tsrun: <what>: no space left on device (ENOSPC): <path>` — with
 * the stack only under -D.
 */
/** A full disk (or a read-only, failing one) in one line: what, the errno, the path. */
export function hostLimitLine(limit: NonNullable<ReturnType<typeof hostLimitOf>>): string {
  return `${limit.doing}: ${limit.text} (${limit.errno})${limit.path ? `: ${limit.path}` : ''}`;
}

export function report(err: unknown): number {
  const limit = hostLimitOf(err);
  if (limit) {
    writeErr(`tsrun: ${hostLimitLine(limit)}\n`);
    if (debug) writeErr(`${stackOf(err)}\n`);
    return err instanceof TsrunError ? err.exitCode : 125;
  }
  if (err instanceof TsrunError) {
    writeErr(`tsrun: ${err.message}\n`);
    if (debug && err.cause) writeErr(`  caused by: ${String(err.cause)}\n`);
    return err.exitCode;
  }
  writeErr(`tsrun: internal error: ${stackOf(err)}\n`);
  return 125;
}

/** The stack of an error and of each error down its cause chain. */
function stackOf(err: unknown): string {
  const text = err instanceof Error ? (err.stack ?? err.message) : String(err);
  return err instanceof Error && err.cause !== undefined ? `${text}\ncaused by: ${stackOf(err.cause)}` : text;
}

/** Bad flag value: docker's exit status 125 and a message naming the flag. */
export { flagError } from '../src/errors.js';

/** How a monitor calls tsrun back (its exit command): this Node, this CLI, this store. */
export function tsrunCommand(root: string): string[] {
  return [process.execPath, resolve(process.argv[1]!), '--root', root];
}

/** The cgroup limits `run`, `create` and `update` share, as docker's flags. */
export function addResourceOptions(cmd: Command): Command {
  return cmd
    .option('-m, --memory <bytes>', 'memory limit (b, k, m, g; at least 6m)')
    .option('--memory-swap <bytes>', 'memory + swap limit; -1 for unlimited swap')
    .option('--memory-reservation <bytes>', 'memory soft limit')
    .option('--cpus <number>', 'number of CPUs (e.g. 0.5)')
    .option('-c, --cpu-shares <int>', 'CPU shares (relative weight, 2-262144)')
    .option('--cpu-period <us>', 'CPU CFS period in microseconds')
    .option('--cpu-quota <us>', 'CPU CFS quota in microseconds')
    .option('--cpuset-cpus <list>', 'CPUs allowed (0-3, 0,1)')
    .option('--cpuset-mems <list>', 'memory nodes allowed (0-3, 0,1)')
    .option('--pids-limit <int>', 'maximum number of processes (-1 for unlimited)')
    .option('--blkio-weight <int>', 'block IO weight (10-1000)')
    .option('--device-read-bps <dev:rate>', 'limit read rate from a device (repeatable)', collect)
    .option('--device-write-bps <dev:rate>', 'limit write rate to a device (repeatable)', collect);
}
