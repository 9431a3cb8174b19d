// tsrun load [-i FILE|DIR] [-q]   (also: tsrun image load)
import type { Command } from 'commander';
import { TsrunError } from '../src/errors.js';
import { action, globalOptions } from './common.js';
import { imageGroup } from './images.js';
import { writeOut, writeErr } from './out.js';

interface LoadFlags {
  input?: string;
  quiet: boolean;
}

export function register(program: Command): void {
  for (const cmd of [program.command('load'), imageGroup(program).command('load')]) {
    cmd
      .description('Load images from a tar archive (docker save, oci-archive) or an OCI layout directory, or STDIN')
      .usage('[OPTIONS]')
      .option('-i, --input <file|dir>', 'read from a tar archive file or an OCI image layout directory, instead of STDIN')
      .option('-q, --quiet', 'suppress warnings', false)
      .action(
        action(async (flags: LoadFlags, c: Command) => {
          const { ImageStore } = await import('../src/image/store.js');
          const { loadImages, loadImagesFromStream } = await import('../src/image/load.js');
          const store = await ImageStore.open(globalOptions(c).root, { writer: true });
          let loaded;
          if (flags.input !== undefined) {
            loaded = await loadImages(store, flags.input);
          } else {
            // docker's message: a terminal on stdin means nobody piped an archive in.
            if (process.stdin.isTTY) throw new TsrunError('EINVAL_FLAG', 'requested load from stdin, but stdin is empty');
            loaded = await loadImagesFromStream(store, process.stdin, 'stdin');
          }
          for (const img of loaded) {
            if (!flags.quiet) for (const w of img.warnings) writeErr(`tsrun: warning: ${w}\n`);
            if (img.names.length === 0) writeOut(`Loaded image ID: ${img.id}\n`);
            for (const n of img.names) writeOut(`Loaded image: ${n}\n`);
          }
        }),
      );
  }
}
