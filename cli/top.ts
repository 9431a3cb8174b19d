// tsrun top CONTAINER [ps OPTIONS]: the container's processes, as the host's ps shows them.
import type { Command } from 'commander';
import { action, globalOptions } from './common.js';
import { writeOut } from './out.js';
import { formatTable } from './table.js';

/** docker's top table: its tabwriter's, with a minimum width of 20. */
export function topTable(titles: string[], rows: string[][]): string {
  return formatTable([titles, ...rows], 20);
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
