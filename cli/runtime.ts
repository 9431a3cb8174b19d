// `tsrun-runtime`: runc's command line over tsrun's runtime half (src/runtime/), so that podman
// (through conmon), containerd's shim — and so Kubernetes — can drive tsrun as they drive runc.
// Flags, state JSON, exit statuses and the --log format are runc's; docs/runtime.md has the rest.
// Bundled on its own as dist/tsrun-runtime.cjs: it never loads the engine's commands.
import { execFileSync } from 'node:child_process';
import { appendFileSync, fstatSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Command, Option, type CommanderError } from 'commander';
import { TsrunError } from '../src/errors.js';
import type { Resources } from '../src/cgroups/types.js';
import type { OciSpec } from '../src/namespaces/spec.js';
import { writeOut, writeErr } from './out.js';

const VERSION = '0.1.0';

interface Globals {
  root: string;
  log?: string;
  logFormat: 'text' | 'json';
  debug: boolean;
  systemdCgroup: boolean;
  rootless?: string;
}

const program = new Command('tsrun-runtime')
  .description('an OCI runtime with runc\'s command line, for podman, containerd and Kubernetes (tsrun\'s runtime half)')
  .option('--root <dir>', 'where container state is kept', '/run/tsrun-runtime')
  .option('--log <file>', 'where errors and warnings are logged (default: stderr only)')
  .addOption(new Option('--log-format <format>', 'the --log format').choices(['text', 'json']).default('text'))
  .option('--debug', 'also log what the helper does, step by step', false)
  .option('--systemd-cgroup', 'refused: tsrun-runtime drives cgroupfs only', false)
  .option('--rootless <value>', 'accepted for runc compatibility; tsrun-runtime runs as root')
  .option('--criu <path>', 'accepted for runc compatibility (checkpoint/restore is not supported)')
  .option('-v, --version', 'print the version')
  .enablePositionalOptions()
  .configureOutput({ outputError: (text, write) => write(`tsrun-runtime: ${text.replace(/^error: /, '')}`) })
  .exitOverride((err: CommanderError) => {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help') process.exit(0);
    logLine('error', err.message.replace(/^error: /, ''));
    process.exit(1);
  });

function globals(): Globals {
  return program.opts() as Globals;
}

/** One line to --log as runc writes it; containerd's shim shows the last error line to the user. */
function logLine(level: 'error' | 'warning' | 'debug', msg: string): void {
  const g = globals();
  // podman reads a JSON log as one object: no warnings there (stderr has them); the steps only
  // when --debug asks (podman never does).
  if (!g.log || (g.logFormat === 'json' && level === 'warning')) return;
  const time = new Date().toISOString();
  const line = g.logFormat === 'json' ? JSON.stringify({ level, msg, time }) : `time="${time}" level=${level} msg=${JSON.stringify(msg)}`;
  try {
    appendFileSync(g.log, line + '\n', { mode: 0o600 });
  } catch {
    // nowhere left to say it
  }
}

async function context(): Promise<import('../src/runtime/container.js').RuntimeContext> {
  const g = globals();
  if (g.systemdCgroup) {
    throw new TsrunError('EINVAL_FLAG', '--systemd-cgroup is not supported: tsrun-runtime drives cgroupfs only (in podman, cgroup_manager = "cgroupfs"; in containerd, SystemdCgroup = false)');
  }
  return {
    root: g.root,
    warn: (msg) => {
      logLine('warning', msg);
      writeErr(`tsrun-runtime: warning: ${msg}\n`);
    },
    ...(g.debug && { onTrace: (t) => logLine('debug', `[${t.who} ${t.step}] ${t.text}`) }),
  };
}

/** Runs a command; an error goes to stderr and --log, and the exit status is runc's 1. */
function action<A extends unknown[]>(fn: (...args: A) => Promise<number | void> | number | void) {
  return async (...args: A) => {
    try {
      const code = await fn(...args);
      process.exit(typeof code === 'number' ? code : 0);
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      logLine('error', msg);
      writeErr(`tsrun-runtime: ${msg}\n`);
      if (globals().debug && err instanceof Error && !(err instanceof TsrunError)) writeErr(`${err.stack}\n`);
      process.exit(1);
    }
  };
}

/** runc's sizes: bytes, or with a unit (200m, 1g; powers of 1024). */
const bytes = (flag: string, v: string) => {
  const m = /^(\d+)([kmgt]?)b?$/i.exec(v);
  if (!m) throw new TsrunError('EINVAL_FLAG', `invalid value "${v}" for ${flag}: a size like 200m or 1g`);
  return Number(m[1]) * 1024 ** ' kmgt'.indexOf((m[2] || ' ').toLowerCase());
};

const int = (v: string) => {
  if (!/^-?\d+$/.test(v)) throw new TsrunError('EINVAL_FLAG', `"${v}" is not a number`);
  return Number(v);
};

const runtime = () => import('../src/runtime/container.js');

function createFlags(cmd: Command): Command {
  return cmd
    .option('-b, --bundle <dir>', 'the bundle: a directory with config.json and the root file system', '.')
    .option('--pid-file <file>', 'write the container process\'s pid here')
    .option('--console-socket <path>', 'a unix socket that receives the PTY master (process.terminal)')
    .option('--no-pivot', 'accepted for runc compatibility; the root is always changed with pivot_root')
    .option('--no-new-keyring', 'accepted: tsrun-runtime never makes a session keyring')
    .option('--preserve-fds <n>', 'pass this many more of our fds, from 3 on, to the container as its 3, 4, ...', '0');
}

/**
 * --preserve-fds N: our fds 3..3+N-1, each one the caller's. Node makes fds of its own before
 * any of ours runs, where no inherited one is, and marks them all close-on-exec, so an fd the
 * caller did not pass may be Node's: the C front (native/runtime/fast.c), which runs first,
 * says which were the caller's. Run without it, the caller is trusted, as runc trusts it.
 */
function preserveFds(n: string): number {
  if (!/^\d+$/.test(n) || Number(n) > 1000) throw new TsrunError('EINVAL_FLAG', `--preserve-fds: "${n}" is not a count from 0 to 1000`);
  const given = process.env.TSRUN_RUNTIME_CALLER_FDS;
  const callers = given === undefined ? undefined : new Set(given.split(',').filter(Boolean).map(Number));
  for (let fd = 3; fd < 3 + Number(n); fd++) {
    if (callers ? !callers.has(fd) : !isOpen(fd)) throw new TsrunError('EINVAL_FLAG', `--preserve-fds ${n}: fd ${fd} was not passed to tsrun-runtime`);
  }
  return Number(n);
}

function isOpen(fd: number): boolean {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

createFlags(program.command('create <container-id>').description('make a container from a bundle; its process waits for `start`')).action(
  action(async (id: string, o: { bundle: string; pidFile?: string; consoleSocket?: string; preserveFds: string }) => {
    const fds = preserveFds(o.preserveFds);
    const { createContainer } = await runtime();
    await createContainer(await context(), id, { bundle: o.bundle, preserveFds: fds, ...(o.pidFile && { pidFile: o.pidFile }), ...(o.consoleSocket && { consoleSocket: o.consoleSocket }) });
  }),
);

program
  .command('start <container-id>')
  .description('run the program of a created container')
  .action(
    action(async (id: string) => {
      const { startContainer } = await runtime();
      await startContainer(await context(), id);
    }),
  );

createFlags(program.command('run <container-id>').description('create and start a container; without -d, wait for it and delete it'))
  .option('-d, --detach', 'return once the container runs', false)
  .option('--keep', 'keep the container (its state and cgroup) after it exits, for `delete` later', false)
  .action(
    action(async (id: string, o: { bundle: string; pidFile?: string; consoleSocket?: string; preserveFds: string; detach: boolean; keep: boolean }) => {
      const fds = preserveFds(o.preserveFds);
      const { runContainer } = await runtime();
      return runContainer(await context(), id, {
        bundle: o.bundle,
        preserveFds: fds,
        detach: o.detach,
        keep: o.keep,
        ...(o.pidFile && { pidFile: o.pidFile }),
        ...(o.consoleSocket && { consoleSocket: o.consoleSocket }),
      });
    }),
  );

program
  .command('state <container-id>')
  .description('print the container\'s state (the runtime spec\'s state JSON)')
  .action(
    action(async (id: string) => {
      const { containerState } = await runtime();
      writeOut(JSON.stringify(containerState(await context(), id), null, 2) + '\n');
    }),
  );

program
  .command('kill <container-id> [signal]')
  .description('send a signal (default SIGTERM; KILL, SIGKILL or 9) to the container\'s process')
  .option('-a, --all', 'to every process in the container', false)
  .action(
    action(async (id: string, signal: string | undefined, o: { all: boolean }) => {
      const { killContainer } = await runtime();
      killContainer(await context(), id, signal ?? 'SIGTERM', o.all);
    }),
  );

program
  .command('delete <container-id>')
  .description('remove a stopped (or, with -f, any) container and everything it holds')
  .option('-f, --force', 'kill it first if it runs; no error if it does not exist', false)
  .action(
    action(async (id: string, o: { force: boolean }) => {
      const { deleteContainer } = await runtime();
      await deleteContainer(await context(), id, o);
    }),
  );

program
  .command('pause <container-id>')
  .description('freeze every process in the container')
  .action(
    action(async (id: string) => {
      const { pauseContainer } = await runtime();
      pauseContainer(await context(), id);
    }),
  );

program
  .command('resume <container-id>')
  .description('thaw a paused container')
  .action(
    action(async (id: string) => {
      const { resumeContainer } = await runtime();
      resumeContainer(await context(), id);
    }),
  );

program
  .command('ps <container-id> [ps-args...]')
  .description('the processes in the container (ps -ef, or --format json: their pids)')
  .passThroughOptions()
  .addOption(new Option('-f, --format <format>', 'table or json').choices(['table', 'json']).default('table'))
  .action(
    action(async (id: string, psArgs: string[], o: { format: string }) => {
      const { containerPids } = await runtime();
      const pids = containerPids(await context(), id);
      if (o.format === 'json') {
        writeOut(JSON.stringify(pids) + '\n');
        return;
      }
      const out = execFileSync('ps', psArgs.length > 0 ? psArgs : ['-ef'], { encoding: 'utf8' }).split('\n');
      const header = out[0] ?? '';
      const pidColumn = header.trim().split(/\s+/).indexOf('PID');
      if (pidColumn < 0) throw new TsrunError('EINVAL_FLAG', 'ps output has no PID column');
      const lines = out.slice(1).filter((l) => pids.includes(Number(l.trim().split(/\s+/)[pidColumn])));
      writeOut([header, ...lines].join('\n') + '\n');
    }),
  );

program
  .command('list')
  .alias('ls')
  .description('the containers under --root')
  .addOption(new Option('-f, --format <format>', 'table or json').choices(['table', 'json']).default('table'))
  .option('-q, --quiet', 'ids only', false)
  .action(
    action(async (o: { format: string; quiet: boolean }) => {
      const { listContainers } = await runtime();
      const { listIds } = await import('../src/runtime/state.js');
      const ctx = await context();
      const list = listContainers(ctx, listIds(ctx.root));
      if (o.quiet) {
        writeOut(list.map((c) => `${c.id}\n`).join(''));
      } else if (o.format === 'json') {
        writeOut(JSON.stringify(list) + '\n');
      } else {
        const rows = [['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER'], ...list.map((c) => [c.id, c.pid, c.status, c.bundle, c.created, 'root'].map(String))];
        const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
        writeOut(rows.map((r) => r.map((x, i) => (i === r.length - 1 ? x : x.padEnd(widths[i]! + 3))).join('')).join('\n') + '\n');
      }
    }),
  );

program
  .command('exec <container-id> [command...]')
  .description('run a process in a running container')
  .passThroughOptions()
  .option('-p, --process <file>', 'the process as OCI JSON (process.json); the command line and the flags below are then not used')
  .option('-d, --detach', 'return once the process runs', false)
  .option('--pid-file <file>', 'write its pid here')
  .option('--console-socket <path>', 'a unix socket that receives the PTY master')
  .option('-t, --tty', 'give it a terminal', false)
  .option('--cwd <dir>', 'its working directory')
  .option('-e, --env <KEY=value>', 'set an environment variable (repeatable)', (v: string, a: string[]) => [...a, v], [] as string[])
  .option('-u, --user <uid[:gid]>', 'run as this user')
  .option('--additional-gids <gid>', 'another group (repeatable)', (v: string, a: string[]) => [...a, v], [] as string[])
  .option('-c, --cap <cap>', 'add a capability (repeatable)', (v: string, a: string[]) => [...a, v], [] as string[])
  .option('--no-new-privs', 'set no_new_privs for this process (the spec\'s setting otherwise)')
  .option('--preserve-fds <n>', 'pass this many more of our fds, from 3 on, to the process as its 3, 4, ...', '0')
  .action(
    action(async (id: string, command: string[], o: ExecFlags) => {
      const fds = preserveFds(o.preserveFds);
      const { openContainer } = await runtime();
      const { execInContainer } = await import('../src/runtime/exec.js');
      const ctx = await context();
      const proc = await execProcess(openContainer(ctx, id).spec, command, o);
      return execInContainer(ctx, id, {
        process: proc,
        detach: o.detach,
        preserveFds: fds,
        ...(o.pidFile && { pidFile: o.pidFile }),
        ...(o.consoleSocket && { consoleSocket: o.consoleSocket }),
      });
    }),
  );

interface ExecFlags {
  process?: string;
  detach: boolean;
  pidFile?: string;
  consoleSocket?: string;
  tty: boolean;
  cwd?: string;
  env: string[];
  user?: string;
  additionalGids: string[];
  cap: string[];
  /** commander's name for --no-new-privs: false when it is given. */
  newPrivs?: boolean;
  preserveFds: string;
}

async function execProcess(spec: OciSpec, command: string[], o: ExecFlags): Promise<OciSpec['process']> {
  const { SpecError, checkProcessJson } = await import('../src/runtime/bundle.js');
  if (o.process) {
    const text = o.process === '-' ? readFileSync(0, 'utf8') : readFileSync(o.process, 'utf8');
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new TsrunError('ESPEC', `${o.process} is not JSON: ${(err as Error).message}`);
    }
    return checkProcessJson(json);
  }
  if (command.length === 0) throw new SpecError('process.args', 'exec needs a command (or --process)');
  const base = spec.process;
  // runc's -u: uid[:gid], the spec's gid when none is given
  const [uid, gid] = (o.user ?? `${base.user.uid}`).split(':');
  const caps = (list: string[]) => [...new Set([...list, ...o.cap.map((c) => (c.toUpperCase().startsWith('CAP_') ? c.toUpperCase() : `CAP_${c.toUpperCase()}`))])];
  return checkProcessJson({
    ...base,
    terminal: o.tty,
    args: command,
    env: [...base.env, ...o.env],
    cwd: o.cwd ?? base.cwd,
    user: {
      uid: int(uid!),
      gid: gid === undefined ? base.user.gid : int(gid),
      additionalGids: [...base.user.additionalGids, ...o.additionalGids.map(int)],
      ...(base.umask !== undefined && { umask: base.umask }),
    },
    capabilities: {
      bounding: caps(base.capabilities.bounding),
      effective: caps(base.capabilities.effective),
      permitted: caps(base.capabilities.permitted),
      inheritable: base.capabilities.inheritable,
      ambient: base.capabilities.ambient,
    },
    noNewPrivileges: base.noNewPrivileges || o.newPrivs === false,
  });
}

program
  .command('update <container-id>')
  .description('change the resources of a running container')
  .option('-r, --resources <file>', 'linux.resources as JSON; - for stdin')
  .option('--memory <bytes>', 'memory limit')
  .option('--memory-reservation <bytes>', 'memory soft limit')
  .option('--memory-swap <bytes>', 'memory + swap limit')
  .option('--cpu-shares <n>', 'relative CPU weight')
  .option('--cpu-quota <us>', 'CPU time per period, µs')
  .option('--cpu-period <us>', 'the period, µs')
  .option('--cpuset-cpus <list>', 'CPUs it may use')
  .option('--cpuset-mems <list>', 'memory nodes it may use')
  .option('--pids-limit <n>', 'maximum number of tasks')
  .option('--blkio-weight <n>', 'block IO weight, 10-1000')
  .action(
    action(async (id: string, o: Record<string, string | undefined>) => {
      const { checkResources } = await import('../src/runtime/bundle.js');
      let json: Record<string, Record<string, unknown>> = {};
      if (o.resources) {
        const text = o.resources === '-' ? readFileSync(0, 'utf8') : readFileSync(o.resources, 'utf8');
        try {
          json = JSON.parse(text) as typeof json;
        } catch (err) {
          throw new TsrunError('ESPEC', `--resources: not JSON: ${(err as Error).message}`);
        }
      }
      const set = (group: string, field: string, value: unknown) => {
        json[group] = { ...(json[group] ?? {}), [field]: value };
      };
      if (o.memory) set('memory', 'limit', bytes('--memory', o.memory));
      if (o.memoryReservation) set('memory', 'reservation', bytes('--memory-reservation', o.memoryReservation));
      if (o.memorySwap) set('memory', 'swap', o.memorySwap === '-1' ? -1 : bytes('--memory-swap', o.memorySwap));
      if (o.cpuShares) set('cpu', 'shares', int(o.cpuShares));
      if (o.cpuQuota) set('cpu', 'quota', int(o.cpuQuota));
      if (o.cpuPeriod) set('cpu', 'period', int(o.cpuPeriod));
      if (o.cpusetCpus) set('cpu', 'cpus', o.cpusetCpus);
      if (o.cpusetMems) set('cpu', 'mems', o.cpusetMems);
      if (o.pidsLimit) set('pids', 'limit', int(o.pidsLimit));
      if (o.blkioWeight) set('blockIO', 'weight', int(o.blkioWeight));
      // containerd's CRI sends the whole linux.resources: its device rules are not changed (runc's rule)
      const change: Resources = checkResources(json, o.resources ? '--resources' : 'update', true);
      const { updateContainer } = await runtime();
      updateContainer(await context(), id, change);
    }),
  );

program
  .command('events <container-id>')
  .description('the container\'s resource usage as JSON, every --interval (once with --stats)')
  .option('--stats', 'print once and exit', false)
  .option('--interval <duration>', 'between two prints, like 5s', '5s')
  .action(
    action(async (id: string, o: { stats: boolean; interval: string }) => {
      const { statsEvent } = await runtime();
      const ctx = await context();
      const m = /^(\d+)(ms|s|m)?$/.exec(o.interval);
      if (!m) throw new TsrunError('EINVAL_FLAG', `--interval: "${o.interval}" is not a duration like 5s`);
      const ms = Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 'm' ? 60000 : 1000);
      for (;;) {
        writeOut(JSON.stringify(statsEvent(ctx, id)) + '\n');
        if (o.stats) return;
        await new Promise((r) => setTimeout(r, Math.max(ms, 100)));
      }
    }),
  );

program
  .command('spec')
  .description('write a starting config.json (runs sh in ./rootfs)')
  .option('-b, --bundle <dir>', 'where to write it', '.')
  .option('--rootless', 'refused: tsrun-runtime runs as root', false)
  .action(
    action(async (o: { bundle: string; rootless: boolean }) => {
      if (o.rootless) throw new TsrunError('EINVAL_FLAG', 'spec --rootless: tsrun-runtime runs containers as root');
      const file = join(o.bundle, 'config.json');
      if (existsSync(file)) throw new TsrunError('ESTATE', `File ${file} exists. Remove it first`);
      const { defaultSpec } = await import('../src/runtime/features.js');
      writeFileSync(file, JSON.stringify(defaultSpec(), null, '\t') + '\n', { mode: 0o644 });
    }),
  );

program
  .command('features')
  .description('what this runtime supports (the runtime spec\'s features document)')
  .action(
    action(async () => {
      const { features } = await import('../src/runtime/features.js');
      writeOut(JSON.stringify(features(VERSION), null, '    ') + '\n');
    }),
  );

for (const name of ['checkpoint', 'restore']) {
  program
    .command(`${name} [args...]`)
    .allowUnknownOption()
    .description('not supported')
    .action(
      action(() => {
        throw new TsrunError('EINVAL_FLAG', `${name} is not supported by tsrun-runtime (it has no CRIU support)`);
      }),
    );
}

async function main(): Promise<void> {
  // `--version` before any command (global flags may come first).
  const args = process.argv.slice(2);
  let i = 0;
  while (i < args.length && args[i]!.startsWith('-') && !['--version', '-v'].includes(args[i]!)) {
    i += ['--root', '--log', '--log-format', '--rootless', '--criu'].includes(args[i]!) ? 2 : 1;
  }
  if (args[i] === '--version' || args[i] === '-v') {
    // runc's first line is what podman shows; the spec line is what callers parse.
    writeOut(`tsrun-runtime version ${VERSION}\nspec: 1.2.0\n`);
    return;
  }
  await program.parseAsync(process.argv);
}

void main();
