// tsrun save [-o FILE] IMAGE... (also: tsrun image save): a docker-archive that tsrun load,
// docker load, podman load and skopeo read.
import type { Command } from 'commander';
import { TsrunError } from '../src/errors.js';
import { action, globalOptions } from './common.js';
import { writeFileAtomically } from './export.js';
import { imageGroup } from './images.js';
import { stdoutStream } from './out.js';

export function register(program: Command): void {
  for (const cmd of [program.command('save'), imageGroup(program).command('save')]) {
    cmd
      .description('Save one or more images to a tar archive (streamed to STDOUT by default)')
      .usage('[OPTIONS] IMAGE [IMAGE...]')
      .argument('<images...>', 'names or IDs')
      .option('-o, --output <file>', 'write to a file, instead of STDOUT')
      .action(action(async (images: string[], flags: { output?: string }, c: Command) => {
        const [{ ImageStore }, { resolveForSave, saveImages }] = await Promise.all([import('../src/image/store.js'), import('../src/image/save.js')]);
        const store = await ImageStore.open(globalOptions(c).root);
        const items = await resolveForSave(store, images);
        if (flags.output === undefined) {
          if (stdoutStream().isTTY) throw new TsrunError('EINVAL_FLAG', 'cowardly refusing to save to a terminal. Use the -o flag or redirect');
          await saveImages(store, items, stdoutStream());
          return;
        }
        await writeFileAtomically(flags.output, (out) => saveImages(store, items, out));
      }));
  }
}
