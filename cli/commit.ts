// tsrun commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]
import type { Command } from 'commander';
import { action, collect, flagError, globalOptions } from './common.js';
import { writeOut } from './out.js';

interface CommitFlags {
  author?: string;
  change: string[];
  message?: string;
  pause: boolean | string;
}

function parseBool(value: string | boolean): boolean {
  if (value === true || value === 'true' || value === '1') return true;
  if (value === false || value === 'false' || value === '0') return false;
  throw flagError('--pause', String(value), 'expected true or false');
}

export function register(program: Command): void {
  program
    .command('commit')
    .description("Create a new image from a container's changes")
    .usage('[OPTIONS] CONTAINER [REPOSITORY[:TAG]]')
    .argument('<container>')
    .argument('[repository]', 'name of the new image (default: untagged)')
    .option('-a, --author <string>', 'author (e.g., "John Hannibal Smith <hannibal@a-team.com>")')
    .option('-c, --change <instruction>', 'apply a Dockerfile instruction to the image: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR (repeatable)', collect, [])
    .option('-m, --message <string>', 'commit message')
    .option('-p, --pause [bool]', 'pause the container during commit', true)
    .action(action(async (name: string, repository: string | undefined, flags: CommitFlags, cmd: Command) => {
      const { root } = globalOptions(cmd);
      const pause = parseBool(flags.pause);
      const [{ findContainer }, { commitContainer }, { ImageStore }] = await Promise.all([
        import('../src/container/lookup.js'),
        import('../src/container/commit.js'),
        import('../src/image/store.js'),
      ]);
      const found = findContainer(root, name);
      const store = await ImageStore.open(root, { writer: true });
      const result = await commitContainer(store, found, {
        ...(repository !== undefined && { reference: repository }),
        ...(flags.message !== undefined && { message: flags.message }),
        ...(flags.author !== undefined && { author: flags.author }),
        changes: flags.change,
        pause,
      });
      writeOut(`${result.id}\n`);
    }));
}
