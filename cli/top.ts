// tsrun top CONTAINER [ps OPTIONS]: the container's processes, as the host's ps shows them.
import type { Command } from 'commander';
import { action, globalOptions } from './common.js';
import { writeOut } from './out.js';

/** docker's top table: Go tabwriter with min width 20 and padding 3; the last column unpadded. */
export function topTable(titles: string[], rows: string[][]): string {
  const all = [titles, ...rows];
  const widths = titles.map((_, c) => Math.max(20, ...all.map((r) => (r[c] ?? '').length + 3)));
  return all.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('') + '\n').join('');
}

export function register(program: Command): void {
  program
    .command('top')
    .description('Display the running processes of a container (ps options after the name; default -ef)')
    .usage('CONTAINER [ps OPTIONS]')
    .argument('<container>')
    .argument('[psOptions...]', 'options for ps (default: -ef)')
    .passThroughOptions()
    .helpOption('--help', 'display help for command')
    .action(action(async (name: string, psOptions: string[], _flags: object, cmd: Command) => {
      const { root } = globalOptions(cmd);
      const [{ findContainer }, { containerTop }] = await Promise.all([import('../src/container/lookup.js'), import('../src/container/top.js')]);
      const top = containerTop(findContainer(root, name), psOptions.length ? psOptions : ['-ef']);
      if (top.titles.length) writeOut(topTable(top.titles, top.processes));
    }));
}
