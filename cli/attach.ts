// tsrun attach CONTAINER: follow a running container's output from now on, pass Ctrl-C and
// SIGTERM to it (docker's --sig-proxy), and exit with its status. A detached tsrun container
// has no stdin (its monitor gave it /dev/null), so there is nothing to attach input to.
import type { Command } from 'commander';
import { action, globalOptions } from './common.js';

export function register(program: Command): void {
  program
    .command('attach')
    .description('Attach to a running container\'s output and signals')
    .argument('<container>')
    .option('--no-sig-proxy', 'do not pass received signals to the container')
    .action(action(async (name: string, flags: { sigProxy: boolean }, cmd: Command) => {
      const { root } = globalOptions(cmd);
      const [{ findContainer }, { streamLogs }, { killContainer, waitContainer }, { observe, InvalidTransitionError }] = await Promise.all([
        import('../src/container/lookup.js'),
        import('../src/container/logs.js'),
        import('../src/container/signals.js'),
        import('../src/container/status.js'),
      ]);
      const found = findContainer(root, name);
      const status = observe(found.paths).status;
      if (status !== 'running') throw new InvalidTransitionError(found.record.name, status, 'attach to', 'start it first');
      if (flags.sigProxy) {
        for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'] as const) {
          process.on(sig, () => void killContainer(found, sig).catch(() => {}));
        }
      }
      if (found.record.logConfig.driver === 'none') {
        // Its output goes nowhere tsrun can read (the monitor's /dev/null): signals and the exit status still come through.
        process.stderr.write(`tsrun: ${found.record.name} keeps no log (--log-driver none): attached for signals and the exit status only\n`);
      } else {
        await streamLogs(found, { follow: true, tail: 0 }, (e) => (e.stream === 'stderr' ? process.stderr : process.stdout).write(e.log));
      }
      return waitContainer(found);
    }));
}
