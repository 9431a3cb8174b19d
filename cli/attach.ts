// tsrun attach CONTAINER. A detached container with a TTY: its terminal (the attach socket its
// monitor serves), until it exits or the detach keys are typed, any number of times; a signal to
// tsrun detaches too (docker's --sig-proxy is for non-TTY mode only). Otherwise: its output from
// now on (the log), with Ctrl-C and SIGTERM passed to it; a detached tsrun container without a
// TTY has no stdin (its monitor gave it /dev/null). Exits with the container's status.
import os from 'node:os';
import type { Command } from 'commander';
import { action, globalOptions } from './common.js';
import { writeErr, stdoutStream, stderrStream } from './out.js';

export function register(program: Command): void {
  program
    .command('attach')
    .description('Attach to a running container\'s terminal, or its output and signals')
    .argument('<container>')
    .option('--detach-keys <keys>', 'key sequence that detaches, leaving the container running (default "ctrl-p,ctrl-q"; "" for none)')
    .option('--no-stdin', 'do not attach STDIN (a terminal\'s output only)')
    .option('--no-sig-proxy', 'do not pass received signals to the container')
    .action(action(async (name: string, flags: { detachKeys?: string; stdin: boolean; sigProxy: boolean }, cmd: Command) => {
      const { root } = globalOptions(cmd);
      const [{ findContainer }, { streamLogs }, { killContainer, waitContainer }, { observe, InvalidTransitionError }, attach] = await Promise.all([
        import('../src/container/lookup.js'),
        import('../src/container/logs.js'),
        import('../src/container/signals.js'),
        import('../src/container/status.js'),
        import('../src/container/attach.js'),
      ]);
      const detachKeys = attach.parseDetachKeys(flags.detachKeys);
      const found = findContainer(root, name);
      const status = observe(found.paths).status;
      if (status !== 'running') throw new InvalidTransitionError(found.record.name, status, 'attach to', 'start it first');
      const signals = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'] as const;
      if (attach.servesTerminal(found)) {
        const size = stdoutStream().isTTY ? { rows: stdoutStream().rows, cols: stdoutStream().columns } : undefined;
        const terminal = await attach.TerminalConnection.connect(found.paths.attachSocket, found.record.name, size);
        let signalled = 0;
        for (const sig of signals) {
          process.on(sig, () => {
            signalled = os.constants.signals[sig];
            terminal.detach();
          });
        }
        const input = flags.stdin && found.record.options.interactive;
        const outcome = await attach.attachTerminal(found, terminal, { ...(input && { stdin: process.stdin }), stdout: stdoutStream(), detachKeys });
        return signalled ? 128 + signalled : outcome.code;
      }
      if (found.record.options.tty) {
        // A foreground `run -t` (its tsrun has the terminal), or one started before tsrun served terminals.
        writeErr(`tsrun: no monitor serves ${found.record.name}'s terminal (it runs in the foreground of another tsrun): following its output\n`);
      }
      if (flags.sigProxy) {
        for (const sig of signals) process.on(sig, () => void killContainer(found, sig).catch(() => {}));
      }
      if (found.record.logConfig.driver === 'none') {
        // Its output goes nowhere tsrun can read (the monitor's /dev/null): signals and the exit status still come through.
        writeErr(`tsrun: ${found.record.name} keeps no log (--log-driver none): attached for signals and the exit status only\n`);
      } else {
        await streamLogs(found, { follow: true, tail: 0 }, (e) => (e.stream === 'stderr' ? stderrStream() : stdoutStream()).write(e.log));
      }
      return waitContainer(found);
    }));
}
