// tsrun inspect NAME... : containers first, then images, as docker inspect does.
import type { Command } from 'commander';
import { TsrunError } from '../src/errors.js';
import { action, globalOptions } from './common.js';
import { renderTemplate } from './format.js';
import { writeOut } from './out.js';

export function register(program: Command): void {
  program
    .command('inspect')
    .description('Show containers or images as JSON')
    .argument('<name...>')
    .option('-f, --format <template>', 'a template such as "{{.Id}}" (a Go template, as docker\'s)')
    .option('--type <container|image>', 'only look for this kind of object')
    .action(action(async (names: string[], flags: { format?: string; type?: string }, cmd: Command) => {
      const { root } = globalOptions(cmd);
      const [{ findContainer }, { inspectContainer }] = await Promise.all([import('../src/container/lookup.js'), import('../src/container/inspect.js')]);
      const out: Array<Record<string, unknown>> = [];
      let failed = false;
      for (const name of names) {
        try {
          if (flags.type !== 'image') {
            try {
              out.push(await inspectContainer(root, findContainer(root, name).record));
              continue;
            } catch (err) {
              if (!(err instanceof TsrunError && err.code === 'ENOCONTAINER') || flags.type === 'container') throw err;
            }
          }
          const { findImage } = await import('../src/container/image-find.js');
          const image = await findImage(root, name);
          if (!image) throw new TsrunError('ENOCONTAINER', `no such object: ${name}`);
          out.push({ Id: image.id, RepoTags: image.names, Config: image.config.config ?? {}, Architecture: image.config.architecture, Os: image.config.os, Size: image.size, RootFS: image.config.rootfs, Layers: image.layers });
        } catch (err) {
          const { report } = await import('./common.js');
          report(err);
          failed = true;
        }
      }
      if (flags.format) for (const o of out) writeOut(renderTemplate(flags.format, o) + '\n');
      else writeOut(JSON.stringify(out, null, 4) + '\n');
      return failed ? 1 : 0;
    }));
}
