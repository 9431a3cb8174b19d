// tsrun stats [--no-stream] [--format ...] [-a] [CONTAINER...]   and   tsrun update [limits] CONTAINER...
import type { Command } from 'commander';
import { action, addResourceOptions, globalOptions } from './common.js';
import { printRows } from './format.js';
import { humanSize } from './pull.js';
import { writeOut, stdoutStream } from './out.js';

const COLUMNS: Array<[string, string]> = [
  ['CONTAINER ID', 'ID'],
  ['NAME', 'Name'],
  ['CPU %', 'CPUPerc'],
  ['MEM USAGE / LIMIT', 'MemUsage'],
  ['MEM %', 'MemPerc'],
  ['NET I/O', 'NetIO'],
  ['BLOCK I/O', 'BlockIO'],
  ['PIDS', 'PIDs'],
];

const binary = (n: number) => {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) (n /= 1024), i++;
  return `${i === 0 ? n : n.toFixed(2)}${units[i]}`;
};

export function register(program: Command): void {
  program
    .command('stats')
    .description('Live resource use of containers (all running ones by default)')
    .argument('[container...]')
    .option('-a, --all', 'show all containers (stopped ones show zeros)')
    .option('--no-stream', 'print one reading and exit')
    .option('--format <format>', 'table (default), json, or a template such as "{{.Name}}: {{.CPUPerc}}"')
    .action(action(async (names: string[], flags: { stream: boolean; format?: string; all?: boolean }, cmd: Command) => {
      const { root } = globalOptions(cmd);
      const [{ findContainer }, { listContainers }, { sample, statsRow }] = await Promise.all([
        import('../src/container/lookup.js'),
        import('../src/container/list.js'),
        import('../src/container/stats.js'),
      ]);
      const targets = () =>
        names.length > 0
          ? names.map((n) => findContainer(root, n))
          : listContainers(root)
              .filter(({ seen }) => flags.all || seen.status === 'running' || seen.status === 'paused')
              .map(({ paths, record }) => ({ paths, record }));
      const tty = stdoutStream().isTTY === true && flags.stream;
      for (;;) {
        const found = targets();
        const first = found.map(sample);
        // CPU % needs two readings: docker waits about a second between them.
        await new Promise((r) => setTimeout(r, flags.stream ? 1000 : 500));
        const rows = found.map((f, i) => {
          const a = first[i];
          const b = sample(f);
          const r = a && b ? statsRow(a, b) : undefined;
          return {
            ID: f.record.id.slice(0, 12),
            Name: f.record.name,
            CPUPerc: `${(r?.cpuPercent ?? 0).toFixed(2)}%`,
            MemUsage: `${binary(r?.memUsage ?? 0)} / ${binary(r?.memLimit ?? 0)}`,
            MemPerc: `${(r?.memPercent ?? 0).toFixed(2)}%`,
            NetIO: `${humanSize(r?.netRx ?? 0)} / ${humanSize(r?.netTx ?? 0)}`,
            BlockIO: `${humanSize(r?.blockRead ?? 0)} / ${humanSize(r?.blockWrite ?? 0)}`,
            PIDs: String(r?.pids ?? 0),
            ...(flags.format === 'json' && r && { raw: r }),
          };
        });
        // On a terminal the table is redrawn in place, as docker does.
        if (tty) writeOut('\x1b[2J\x1b[H');
        printRows(rows, COLUMNS, flags.format);
        if (!flags.stream) return;
      }
    }));

  const update = program
    .command('update')
    .description('Change the resource limits of containers (running ones at once)')
    .argument('<container...>');
  addResourceOptions(update).action(action(async (names: string[], flags: Record<string, string>, cmd: Command) => {
      const { root } = globalOptions(cmd);
      const [{ findContainer }, { updateContainer }] = await Promise.all([import('../src/container/lookup.js'), import('../src/container/stats.js')]);
      for (const name of names) {
        await updateContainer(findContainer(root, name), flags);
        writeOut(`${name}\n`);
      }
    }));
}
