// tsrun diff CONTAINER: A (added), C (changed), D (deleted), as docker diff prints them.
import type { Command } from 'commander';
import { action, globalOptions } from './common.js';
import { writeOut } from './out.js';

export function register(program: Command): void {
  program
    .command('diff')
    .description("Inspect changes to files or directories on a container's filesystem")
    .usage('CONTAINER')
    .argument('<container>')
    .action(action(async (name: string, _flags: object, cmd: Command) => {
      const { root } = globalOptions(cmd);
      const [{ findContainer }, { containerChanges }] = await Promise.all([import('../src/container/lookup.js'), import('../src/container/diff.js')]);
      const changes = await containerChanges(findContainer(root, name));
      writeOut(changes.map((c) => `${c.kind} ${c.path}\n`).join(''));
    }));
}
