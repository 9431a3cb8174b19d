// The commands that act on existing containers by name or ID: start, stop, restart, kill, rm,
// wait, pause, unpause, rename. Each parses, calls src/container, prints what docker prints.
import type { Command } from 'commander';
import { action, flagError, globalOptions, tsrunCommand } from './common.js';
import { writeOut, stdoutStream } from './out.js';

const load = () =>
  Promise.all([
    import('../src/container/lookup.js'),
    import('../src/container/signals.js'),
    import('../src/container/remove.js'),
    import('../src/container/start.js'),
    import('../src/container/cleanup.js'),
  ]).then(([lookup, signals, remove, start, cleanup]) => ({ ...lookup, ...signals, ...remove, ...start, ...cleanup }));

/** Runs `fn` for each container named; like docker, goes on after an error and exits 1. */
/**
 * Runs `fn` for each named container and prints each name once it and all before it are done,
 * in the order given (docker's output). `parallel`: the containers' operations run side by side,
 * at most PARALLEL at once, as docker's CLI runs stop, kill, rm and pause; they are independent
 * (each takes its own container's lock, and the shared records their own). One name given twice
 * waits for its first turn. start and restart stay one by one, as docker's do.
 */
async function forEach(names: string[], fn: (name: string) => Promise<void>, opts: { parallel?: boolean } = {}): Promise<number> {
  const { report } = await import('./common.js');
  const limit = opts.parallel ? PARALLEL : 1;
  /** Per name: undefined while running, then null (done) or its error. */
  const results: Array<unknown> = names.map(() => undefined);
  const byName = new Map<string, Promise<unknown>>();
  const running = new Set<Promise<unknown>>();
  let failed = 0;
  let printed = 0;
  const printReady = () => {
    for (; printed < names.length && results[printed] !== undefined; printed++) {
      const err = results[printed];
      if (err === null) writeOut(`${names[printed]}\n`);
      else {
        report(err);
        failed++;
      }
    }
  };
  for (const [i, name] of names.entries()) {
    const before = byName.get(name) ?? Promise.resolve();
    const done: Promise<unknown> = before
      .then(() => fn(name))
      .then(
        () => null,
        (err: unknown) => err ?? new Error('failed'),
      )
      .then((outcome) => {
        results[i] = outcome;
        running.delete(done);
        printReady();
      });
    byName.set(name, done);
    running.add(done);
    while (running.size >= limit) await Promise.race(running);
  }
  await Promise.all(running);
  printReady();
  return failed > 0 ? 1 : 0;
}

/** Containers stopped or removed at once by one command (docker's CLI runs up to 50). */
const PARALLEL = 8;

function seconds(value: string | number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < -1) throw flagError('--time', String(value), 'expected whole seconds (-1: wait forever)');
  return n === -1 ? 1e9 : n;
}

export function register(program: Command): void {
  program
    .command('start')
    .description('Start one or more stopped containers (in the background; -a to attach)')
    .argument('<container...>')
    .option('-a, --attach', 'attach stdout/stderr and wait for the exit', false)
    .option('-i, --interactive', 'attach stdin', false)
    .option('--detach-keys <keys>', 'with a TTY: key sequence that detaches, leaving the container running (default "ctrl-p,ctrl-q")')
    .action(action(async (names: string[], flags: { attach: boolean; interactive: boolean; detachKeys?: string }, cmd: Command) => {
      const { root } = globalOptions(cmd);
      const m = await load();
      await m.reconcile(root);
      if (flags.attach || flags.interactive) {
        if (names.length !== 1) throw flagError('--attach', names.join(' '), 'attaching works with one container at a time');
        const found = m.findContainer(root, names[0]!);
        if (found.record.options.tty) {
          // docker's client: attached to the container's PTY (the monitor's attach socket) before
          // it starts; the detach keys leave it running.
          const attach = await import('../src/container/attach.js');
          const detachKeys = attach.parseDetachKeys(flags.detachKeys);
          const size = stdoutStream().isTTY ? { rows: stdoutStream().rows, cols: stdoutStream().columns } : undefined;
          const started = await m.startContainer(root, found, { terminal: { ...(size && { size }) }, tsrunCommand: tsrunCommand(root) });
          for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => started.signal(sig));
          const input = flags.interactive && process.stdin;
          const outcome = await attach.attachStarted(root, found, started.terminal!, { ...(input && { stdin: input }), stdout: stdoutStream(), detachKeys });
          return outcome.code;
        }
        // Made with `create --trace`: its trace, as `run --trace` prints it.
        const trace = found.record.options.trace ? await (await import('./run.js')).openTrace(true, undefined) : undefined;
        const started = await m.startContainer(root, found, {
          attach: { stdio: [flags.interactive ? 0 : 'ignore', 1, 2] },
          ...(trace && { onTrace: trace.onTrace }),
          tsrunCommand: tsrunCommand(root),
        }).finally(() => trace?.flush());
        for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => started.signal(sig));
        return (await started.wait()).code;
      }
      return forEach(names, async (name) => {
        await m.startContainer(root, m.findContainer(root, name), { tsrunCommand: tsrunCommand(root) });
      });
    }));

  for (const verb of ['stop', 'restart'] as const) {
    program
      .command(verb)
      .description(verb === 'stop' ? 'Stop containers: the stop signal, then SIGKILL after the timeout' : 'Stop, then start containers again')
      .argument('<container...>')
      .option('-t, --time <seconds>', 'seconds to wait before killing (default 10)')
      .option('-s, --signal <signal>', 'signal to send instead of the image\'s StopSignal')
      .action(action(async (names: string[], flags: { time?: string; signal?: string }, cmd: Command) => {
        const { root } = globalOptions(cmd);
        const m = await load();
        const signal = flags.signal === undefined ? undefined : m.parseSignal(flags.signal);
        return forEach(names, async (name) => {
          const found = m.findContainer(root, name);
          // -t, else the container's --stop-timeout, else docker's 10 s.
          const timeout = seconds(flags.time ?? found.record.stopTimeout, 10);
          await m.stopContainer(root, found, timeout, signal);
          if (verb === 'restart') await m.startContainer(root, m.findContainer(root, name), { tsrunCommand: tsrunCommand(root) });
        }, { parallel: verb === 'stop' });
      }));
  }

  program
    .command('kill')
    .description('Send a signal (SIGKILL by default) to running containers')
    .argument('<container...>')
    .option('-s, --signal <signal>', 'signal to send', 'SIGKILL')
    .action(action(async (names: string[], flags: { signal: string }, cmd: Command) => {
      const { root } = globalOptions(cmd);
      const m = await load();
      const sig = m.parseSignal(flags.signal);
      return forEach(names, (name) => m.killContainer(m.findContainer(root, name), sig), { parallel: true });
    }));

  program
    .command('rm')
    .description('Remove stopped containers (-f: running ones too)')
    .argument('<container...>')
    .option('-f, --force', 'kill and remove a running container', false)
    .option('-v, --volumes', 'remove its anonymous volumes too (-v /path, the image\'s VOLUME); named volumes stay', false)
    .action(action(async (names: string[], flags: { force: boolean; volumes: boolean }, cmd: Command) => {
      const { root } = globalOptions(cmd);
      const m = await load();
      return forEach(names, (name) => m.removeContainer(root, m.findContainer(root, name), flags.force, { volumes: flags.volumes }), { parallel: true });
    }));

  program
    .command('wait')
    .description('Block until containers stop, then print their exit codes')
    .argument('<container...>')
    .action(action(async (names: string[], _flags: object, cmd: Command) => {
      const { root } = globalOptions(cmd);
      const m = await load();
      for (const name of names) writeOut(`${await m.waitContainer(m.findContainer(root, name))}\n`);
    }));

  for (const verb of ['pause', 'unpause'] as const) {
    program
      .command(verb)
      .description(verb === 'pause' ? 'Freeze every process of containers (cgroup freezer)' : 'Thaw paused containers')
      .argument('<container...>')
      .action(action(async (names: string[], _flags: object, cmd: Command) => {
        const { root } = globalOptions(cmd);
        const m = await load();
        return forEach(names, (name) => m.pauseContainer(m.findContainer(root, name), verb === 'pause'), { parallel: true });
      }));
  }

  program
    .command('rename')
    .description('Rename a container')
    .argument('<container>')
    .argument('<new-name>')
    .action(action(async (name: string, newName: string, _flags: object, cmd: Command) => {
      const { root } = globalOptions(cmd);
      const [{ findContainer }, { renameContainer }] = await Promise.all([import('../src/container/lookup.js'), import('../src/container/rename.js')]);
      await renameContainer(root, findContainer(root, name), newName);
    }));
}
