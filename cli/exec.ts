// tsrun exec [-i] [-t] [-d] [-e K=V] [-u user] [-w dir] CONTAINER COMMAND [ARG...]
import type { Command } from 'commander';
import { action, collect, globalOptions } from './common.js';
import { writeErr } from './out.js';

interface ExecFlags {
  interactive: boolean;
  tty: boolean;
  detach: boolean;
  env: string[];
  user?: string;
  workdir?: string;
  privileged: boolean;
  trace: boolean;
}

export function register(program: Command): void {
  program
    .command('exec')
    .description('Run a command in a running container')
    .usage('[OPTIONS] CONTAINER COMMAND [ARG...]')
    .argument('<container>')
    .argument('<command...>')
    .passThroughOptions()
    .option('-i, --interactive', 'keep STDIN open', false)
    .option('-t, --tty', 'allocate a pseudo-TTY', false)
    .option('-d, --detach', 'run the command in the background', false)
    .option('-e, --env <KEY=value>', 'set an environment variable (repeatable)', collect, [])
    .option('-u, --user <name|uid[:group|gid]>', 'user to run as')
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .option('--privileged', 'give the process every capability', false)
    .option('--trace', 'print every step the helper executes', false)
    .action(action(async (name: string, command: string[], flags: ExecFlags, cmd: Command) => {
      const { root } = globalOptions(cmd);
      const [{ findContainer }, { execInContainer }, { expandEnv }] = await Promise.all([
        import('../src/container/lookup.js'),
        import('../src/container/exec.js'),
        import('../src/namespaces/options.js'),
      ]);
      const proc = await execInContainer(
        root,
        findContainer(root, name),
        {
          args: command,
          env: flags.env.flatMap((e) => expandEnv(e, process.env)),
          ...(flags.user !== undefined && { user: flags.user }),
          ...(flags.workdir !== undefined && { workdir: flags.workdir }),
          tty: flags.tty,
          interactive: flags.interactive,
          detach: flags.detach,
          privileged: flags.privileged,
          trace: flags.trace,
        },
        {
          stdio: [0, 1, 2],
          ...(flags.trace && { onTrace: (t) => writeErr(`[${t.who === 'monitor' ? 'monitor' : `step ${t.step}`}] ${t.text}\n`) }),
        },
      );
      for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGWINCH'] as const) process.on(sig, () => proc.signal(sig));
      return proc.wait();
    }));
}
