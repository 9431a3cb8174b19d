// What every command shares: global options, and the one place errors become exit codes.
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { TsrunError } from '../src/errors.js';
import { isRootless, rootlessPaths } from '../src/rootless.js';

export interface GlobalOptions {
  /** Store root (images, layers, containers). */
  root: string;
  /** Runtime state (locks, pids); tmpfs, gone after a reboot. */
  runroot: string;
  insecureRegistry: string[];
  debug: boolean;
}

export function globalOptions(cmd: Command): GlobalOptions {
  // optsWithGlobals merges the program's options into the subcommand's.
  const o = cmd.optsWithGlobals() as Partial<GlobalOptions>;
  // Rootless (an ordinary user, or tsrun inside its user namespace): the user's own store.
  const defaults = isRootless() ? rootlessPaths() : { root: '/var/lib/tsrun', runroot: '/run/tsrun' };
  return {
    // Absolute: the monitor runs in / and overlay options are relative to the root.
    root: resolve(o.root ?? process.env.TSRUN_ROOT ?? defaults.root),
    runroot: resolve(o.runroot ?? process.env.TSRUN_RUNROOT ?? defaults.runroot),
    insecureRegistry: o.insecureRegistry ?? [],
    debug: o.debug ?? false,
  };
}

/** Collects a repeatable option into an array (`-e A -e B`). */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/**
 * Runs a command's action; a TsrunError becomes `tsrun: <message>` and its exit code
 * (docker's: 125 engine, 126, 127), anything else is a bug and shows its stack.
 */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<number | void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      const code = await fn(...args);
      process.exitCode = code ?? 0;
    } catch (err) {
      process.exitCode = report(err);
    }
  };
}

export function report(err: unknown): number {
  if (err instanceof TsrunError) {
    process.stderr.write(`tsrun: ${err.message}\n`);
    if (process.env.TSRUN_DEBUG && err.cause) process.stderr.write(`  caused by: ${String(err.cause)}\n`);
    return err.exitCode;
  }
  process.stderr.write(`tsrun: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return 125;
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
