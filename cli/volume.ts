// tsrun volume create|ls|inspect|rm|prune: named and anonymous volumes (src/container/volumes.ts).
import type { Command } from 'commander';
import { action, collect, globalOptions } from './common.js';
import { formatTable } from './table.js';
import { writeOut, writeErr } from './out.js';

export function register(program: Command): void {
  const volume = program.command('volume').description('Manage volumes');

  volume
    .command('create')
    .description('Create a volume (run -v NAME:/path also creates one it does not find)')
    .argument('<name>')
    .option('-l, --label <key=value>', 'set metadata on the volume (repeatable)', collect)
    .action(action(async (name: string, flags: { label?: string[] }, cmd: Command) => {
      const [{ ensureVolume }, { parseLabels }] = await Promise.all([import('../src/container/volumes.js'), import('../src/namespaces/more-options.js')]);
      const v = ensureVolume(globalOptions(cmd).root, name, { labels: parseLabels(flags.label ?? [], []) });
      writeOut(`${v.name}\n`);
    }));

  volume
    .command('ls')
    .alias('list')
    .description('List volumes')
    .option('-q, --quiet', 'only names', false)
    .action(action(async (flags: { quiet: boolean }, cmd: Command) => {
      const { listVolumes } = await import('../src/container/volumes.js');
      const volumes = listVolumes(globalOptions(cmd).root);
      if (flags.quiet) {
        for (const v of volumes) writeOut(`${v.name}\n`);
        return;
      }
      writeOut(formatTable([['DRIVER', 'VOLUME NAME'], ...volumes.map((v) => ['local', v.name])]));
    }));

  volume
    .command('inspect')
    .description('Show volumes as JSON')
    .argument('<name...>')
    .action(action(async (names: string[], _flags: object, cmd: Command) => {
      const { inspectVolume } = await import('../src/container/volumes.js');
      const root = globalOptions(cmd).root;
      writeOut(JSON.stringify(names.map((n) => inspectVolume(root, n)), null, 4) + '\n');
    }));

  volume
    .command('rm')
    .alias('remove')
    .description('Remove volumes and their data (refused while a container uses them)')
    .argument('<name...>')
    .option('-f, --force', 'no error for a volume that does not exist', false)
    .action(action(async (names: string[], flags: { force: boolean }, cmd: Command) => {
      const { removeVolume } = await import('../src/container/volumes.js');
      const root = globalOptions(cmd).root;
      // As docker: every name is tried; the first failure is reported at the end.
      let failed: unknown;
      for (const n of names) {
        try {
          await removeVolume(root, n, { force: flags.force });
          writeOut(`${n}\n`);
        } catch (err) {
          failed ??= err;
        }
      }
      if (failed) throw failed;
    }));

  volume
    .command('prune')
    .description('Remove unused anonymous volumes; with -a every volume no container uses, and its data')
    .option('-a, --all', 'remove unused named volumes too, as docker --all', false)
    .option('-f, --force', 'do not prompt for confirmation (tsrun never prompts)', false)
    .action(action(async (flags: { all: boolean }, cmd: Command) => {
      const { pruneVolumes } = await import('../src/container/volumes.js');
      // docker (since 23.0) keeps named volumes unless told.
      const removed = await pruneVolumes(globalOptions(cmd).root, { all: flags.all });
      if (removed.length === 0 && !flags.all) writeErr('tsrun: no unused anonymous volumes; -a removes the named ones no container uses\n');
      if (removed.length > 0) writeOut(`Deleted Volumes:\n${removed.join('\n')}\n`);
    }));
}
