// tsrun container ...: docker's management group (ls, prune), and `cleanup`, which a
// container's monitor runs when the container exits (like podman's container cleanup).
import type { Command } from 'commander';
import { action, globalOptions } from './common.js';
import { writeOut } from './out.js';

export function register(program: Command): void {
  const group = program.command('container').description('Manage containers');

  group
    .command('prune')
    .description('Remove all stopped containers')
    .option('-f, --force', 'do not prompt (tsrun never prompts)', false)
    .action(action(async (_flags: object, cmd: Command) => {
      const { root } = globalOptions(cmd);
      const { pruneContainers } = await import('../src/container/remove.js');
      const removed = await pruneContainers(root);
      writeOut(removed.length ? `Deleted Containers:\n${removed.join('\n')}\n` : '');
      writeOut(`\nTotal reclaimed space: 0B\n`);
    }));

  group
    .command('cleanup', { hidden: true })
    .description('Release what an exited container held (run by its monitor)')
    .argument('<id>')
    .action(action(async (id: string, _flags: object, cmd: Command) => {
      const { root } = globalOptions(cmd);
      const { cleanupContainer } = await import('../src/container/cleanup.js');
      await cleanupContainer(root, id);
    }));
}
