// tsrun create [OPTIONS] IMAGE [COMMAND] [ARG...]: run's flags, but the container is only
// created (printed: its ID); `tsrun start` runs it.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { CreateFlagValues } from '../src/container/create-request.js';
import { action, globalOptions } from './common.js';
import { addRunOptions, cidfile, imageForRun } from './run.js';
import { isTerminal, writeOut } from './out.js';

type CreateFlags = CreateFlagValues & { platform?: string; pull: string };

export function register(program: Command): void {
  const cmd = program
    .command('create')
    .description('Create a new container (tsrun start runs it)')
    .usage('[OPTIONS] IMAGE [COMMAND] [ARG...]')
    .helpOption('--help', 'display help for command')
    .argument('<image>', 'image name, name:tag, name@digest or image ID')
    .argument('[command...]', 'command and arguments (default: the image\'s Entrypoint + Cmd)')
    .passThroughOptions();
  addRunOptions(cmd);
  cmd.options.find((o) => o.long === '--trace')!.description = 'trace the start: tsrun start -a prints it, as run --trace does (tsrun only)';
  cmd.action(action(async (image: string, command: string[], flags: CreateFlags, c: Command) => {
    const g = globalOptions(c);
    const { parseCreateFlags } = await import('../src/container/create-request.js');
    const { options, restartPolicy, logConfig } = parseCreateFlags(flags, command, {
      readFile: (p) => readFileSync(p, 'utf8'),
      env: process.env,
      get stdinIsTty() {
        return isTerminal(0);
      },
    });
    const cid = cidfile(flags.cidfile);
    const record = await imageForRun(g, image, flags);
    const { createContainer } = await import('../src/container/create.js');
    const created = await createContainer({ storeRoot: g.root, image: record, imageName: image, options, restartPolicy, logConfig });
    cid.write(created.id);
    writeOut(`${created.id}\n`);
  }));
}
