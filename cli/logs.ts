// tsrun logs [-f] [--tail N] [-t] [--since T] [--until T] CONTAINER
import type { Command } from 'commander';
import { action, flagError, globalOptions } from './common.js';
import { stdoutStream, stderrStream } from './out.js';

interface LogsFlags {
  follow: boolean;
  tail: string;
  timestamps: boolean;
  since?: string;
  until?: string;
}

export function register(program: Command): void {
  program
    .command('logs')
    .description('Show a container\'s output (stdout to stdout, stderr to stderr)')
    .argument('<container>')
    .option('-f, --follow', 'follow the output until the container stops', false)
    .option('-n, --tail <lines>', 'number of lines from the end, or "all"', 'all')
    .option('-t, --timestamps', 'show timestamps', false)
    .option('--since <time>', 'since a time (2026-01-02T15:04:05Z, a Unix time, or 10m for relative)')
    .option('--until <time>', 'until a time (same forms)')
    .action(action(async (name: string, flags: LogsFlags, cmd: Command) => {
      const { root } = globalOptions(cmd);
      const [{ findContainer }, { streamLogs, parseTime }] = await Promise.all([import('../src/container/lookup.js'), import('../src/container/logs.js')]);
      let tail: number | undefined;
      if (flags.tail !== 'all') {
        tail = Number(flags.tail);
        if (!Number.isInteger(tail) || tail < 0) throw flagError('--tail', flags.tail, 'expected a number of lines or "all"');
      }
      await streamLogs(
        findContainer(root, name),
        {
          follow: flags.follow,
          ...(tail !== undefined && { tail }),
          ...(flags.since && { since: parseTime('--since', flags.since) }),
          ...(flags.until && { until: parseTime('--until', flags.until) }),
        },
        (e) => (e.stream === 'stderr' ? stderrStream() : stdoutStream()).write(flags.timestamps ? `${e.time} ${e.log}` : e.log),
      );
    }));
}
