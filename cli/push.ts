// tsrun push [-q] NAME[:TAG]
// As docker: "The push refers to repository [...]", a line per layer (Pushed, Layer already
// exists, Mounted from ...), then "<tag>: digest: sha256:... size: N".
import type { Command } from 'commander';
import { action, globalOptions } from './common.js';
import { ProgressView, warnLine } from './pull.js';
import { writeOut, stdoutStream } from './out.js';

export function register(program: Command): void {
  program
    .command('push')
    .description('Upload an image to a registry')
    .argument('<name>', 'NAME[:TAG]')
    .option('-q, --quiet', 'suppress verbose output', false)
    .action(
      action(async (name: string, flags: { quiet: boolean }, cmd: Command) => {
        const g = globalOptions(cmd);
        const [{ pushImage }, { ImageStore }, { parseReference }] = await Promise.all([
          import('../src/image/push.js'),
          import('../src/image/store.js'),
          import('../src/registry-client/reference.js'),
        ]);
        const store = await ImageStore.open(g.root, { writer: true });
        const ref = parseReference(name);
        const view = new ProgressView(stdoutStream(), flags.quiet);
        view.say(`The push refers to repository [${ref.registry}/${ref.repository}]`);
        const r = await pushImage(store, name, { insecureRegistries: g.insecureRegistry, onWarning: warnLine }, (e) => view.update(e));
        view.finish();
        view.say(`${r.tag}: digest: ${r.digest} size: ${r.size}`);
        if (flags.quiet) writeOut(`${r.name}\n`);
      }),
    );
}
