// tsrun export [-o FILE] CONTAINER: the container's file system as a tar archive.
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import type { Command } from 'commander';
import { TsrunError } from '../src/errors.js';
import { action, globalOptions } from './common.js';
import { stdoutStream } from './out.js';

export function register(program: Command): void {
  program
    .command('export')
    .description("Export a container's filesystem as a tar archive (volumes and /proc, /dev... are not included)")
    .usage('[OPTIONS] CONTAINER')
    .argument('<container>')
    .option('-o, --output <file>', 'write to a file, instead of STDOUT')
    .action(action(async (name: string, flags: { output?: string }, cmd: Command) => {
      const { root } = globalOptions(cmd);
      const [{ findContainer }, { exportContainer }] = await Promise.all([import('../src/container/lookup.js'), import('../src/container/export.js')]);
      const found = findContainer(root, name);
      if (flags.output === undefined) {
        if (stdoutStream().isTTY) throw new TsrunError('EINVAL_FLAG', 'cowardly refusing to save to a terminal. Use the -o flag or redirect');
        await exportContainer(found, stdoutStream());
        return;
      }
      await writeFileAtomically(flags.output, (out) => exportContainer(found, out));
    }));
}

/** Writes through a temp file next to `file`, renamed into place only when complete. */
export async function writeFileAtomically(file: string, write: (out: Writable) => Promise<void>): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    await write(createWriteStream(tmp, { mode: 0o600 }));
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
