// tsrun run [OPTIONS] IMAGE [COMMAND] [ARG...]
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { Command, Option } from 'commander';
import type { CreateFlagValues } from '../src/container/create-request.js';
import type { TraceLine } from '../src/namespaces/helper.js';
import { TsrunError } from '../src/errors.js';
import { action, addResourceOptions, collect, flagError, globalOptions, tsrunCommand, type GlobalOptions } from './common.js';
import { isTerminal, writeOut, writeErr, stdoutStream, stderrStream } from './out.js';

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'];

type RunFlags = Omit<CreateFlagValues, 'trace'> & {
  platform?: string; pull: string; detach?: boolean; detachKeys?: string;
  /** --trace (true) or --trace=MODE (see acceptTraceMode). */
  trace?: true | string;
  traceFile?: string;
};

export interface Trace {
  onTrace(line: TraceLine): void;
  /** Print what steps mode still holds (the last step): before anything else is printed. */
  flush(): void;
}

/**
 * --trace / --trace=MODE / --trace-file: from now on, the helper's lines and tsrun's own on the
 * host (cgroup directories and files, ip and iptables commands) go to stderr or the file, stamped
 * with the time since tsrun started. The observers exist only while tracing: without --trace
 * nothing watches.
 */
export async function openTrace(value: true | string, file: string | undefined): Promise<Trace> {
  const [trace, fsio, netExec] = await Promise.all([
    import('../src/namespaces/trace.js'),
    import('../src/cgroups/fsio.js'),
    import('../src/netns/exec.js'),
  ]);
  const mode = trace.parseTraceMode(value);
  if (!mode) throw flagError('--trace', String(value), 'expected --trace, --trace=steps or --trace=syscalls');
  let fd: number | undefined;
  if (file !== undefined) {
    try {
      fd = openSync(file, 'w', 0o644);
    } catch (err) {
      throw flagError('--trace-file', file, `cannot write it (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
  }
  const out = fd === undefined ? (line: string) => writeErr(`${line}\n`) : (line: string) => writeSync(fd, `${line}\n`);
  const renderer = new trace.TraceRenderer(mode, out);
  // Host lines are stamped as they happen; the helper's carry the time their call began.
  fsio.setCgroupMkdirObserver((dir) => renderer.host(performance.now(), trace.hostMkdir(dir)));
  fsio.setCgroupWriteObserver((path, v) => renderer.host(performance.now(), trace.hostWrite(path, v)));
  netExec.observeCommands((argv, input) => {
    const at = performance.now();
    for (const line of trace.hostCommands(argv, input)) renderer.host(at, line);
  });
  return { onTrace: (t) => renderer.helper(t, t.at ?? performance.now()), flush: () => renderer.flush() };
}

/**
 * --trace takes a mode only as --trace=MODE: an optional value in commander would take the next
 * word for it (`--trace busybox`). Commander stops at an option it does not know and leaves it
 * first among what it could not parse: a --trace=MODE there is ours, and parsing goes on after it.
 * After the image, --trace=... is the command's own argument and is left alone.
 */
function acceptTraceMode(cmd: Command): void {
  const parse = cmd.parseOptions.bind(cmd);
  cmd.parseOptions = (args) => {
    let parsed = parse(args);
    while (parsed.operands.length === 0 && parsed.unknown[0]?.startsWith('--trace=')) {
      cmd.setOptionValueWithSource('trace', parsed.unknown[0].slice('--trace='.length), 'cli');
      parsed = parse(parsed.unknown.slice(1));
    }
    return parsed;
  };
}

/** The image `run`/`create` name, pulled with docker's progress output on stderr if missing. */
export async function imageForRun(g: GlobalOptions, image: string, flags: { pull: string; platform?: string }) {
  const { findOrPullImage } = await import('../src/container/image-lookup.js');
  const { ProgressView, warnLine } = await import('./pull.js');
  // Made when a pull starts: an image already here prints nothing, and needs no stderr stream.
  let view: InstanceType<typeof ProgressView> | undefined;
  const shown = () => (view ??= new ProgressView(stderrStream(), false));
  const record = await findOrPullImage(g, image, { pull: flags.pull, platform: flags.platform, lastUnpack: true }, {
    onPull: (message) => shown().say(message),
    onProgress: (e) => shown().update(e),
    onWarning: warnLine,
  });
  view?.finish();
  return record;
}

/**
 * --cidfile: as docker, the file is created (O_EXCL) before anything else, so a file that is
 * already there (another container's) or cannot be made stops the run at once; the ID goes in
 * once the container exists, and the file goes away if it never does.
 */
export function cidfile(path: string | undefined): { write(id: string): void } {
  if (path === undefined) return { write: () => {} };
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o644);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new TsrunError('EINVAL_FLAG', `container ID file found, make sure the other container isn't running or delete ${path}`);
    throw new TsrunError('EINVAL_FLAG', `invalid argument "${path}" for "--cidfile" flag: cannot create it (${code ?? String(err)})`);
  }
  let written = false;
  process.once('exit', () => {
    if (!written) rmSync(path, { force: true });
  });
  return {
    write: (id) => {
      writeSync(fd, id);
      closeSync(fd);
      written = true;
    },
  };
}

/** run's flags, shared with `create` (docker groups them the same way in its reference). */
export function addRunOptions(cmd: Command): Command {
  cmd
    .optionsGroup('Container:')
    .option('--name <string>', 'assign a name to the container')
    .option('--rm', 'automatically remove the container when it exits')
    .option('--restart <policy>', 'restart policy: no, on-failure[:max-retries], always, unless-stopped', 'no')
    .option('--log-driver <driver>', 'json-file (default: docker\'s format, rotated) or none (no log: tsrun logs has nothing to read)')
    .option('--log-opt <key=value>', 'json-file options: max-size=10m (default), max-file=3 (default) (repeatable)', collect)
    .option('-i, --interactive', 'keep STDIN open')
    .option('-t, --tty', 'allocate a pseudo-TTY')
    .option('--init', 'run an init inside the container that forwards signals and reaps processes')
    .option('--trace', 'print the syscalls that make the container, like strace (tsrun only)')
    .option('-l, --label <key=value>', 'set metadata on the container (repeatable)', collect)
    .option('--label-file <file>', 'read labels from a file of key=value lines (repeatable)', collect)
    .option('--cidfile <file>', 'write the container ID to this file (which must not exist)')
    .option('--stop-signal <signal>', 'signal to stop the container (default: the image\'s, else SIGTERM)')
    .option('--stop-timeout <seconds>', 'seconds stop waits before SIGKILL (default 10; -1: forever)')
    .optionsGroup('Healthcheck (run by the container\'s monitor; each flag overrides the image\'s HEALTHCHECK field):')
    .option('--health-cmd <command>', 'command to run to check health, with /bin/sh -c (exit 0: healthy)')
    .option('--health-interval <duration>', 'time between running the check: ms, s, m, h (default 30s)')
    .option('--health-timeout <duration>', 'maximum time one check may run; then it is killed and fails (default 30s)')
    .option('--health-retries <int>', 'consecutive failures needed to report unhealthy (default 3)')
    .option('--health-start-period <duration>', 'start period during which failures do not count (default 0s)')
    .option('--no-healthcheck', 'disable any container-specified HEALTHCHECK')
    .optionsGroup('Process:')
    .option('--entrypoint <command>', 'overwrite the default ENTRYPOINT of the image')
    .option('-e, --env <KEY=value>', 'set an environment variable (repeatable)', collect)
    .option('--env-file <file>', 'read environment variables from a file (repeatable)', collect)
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .option('-u, --user <name|uid[:group|gid]>', 'user to run as')
    .option('-h, --hostname <name>', 'container host name (default: the first 12 digits of the ID)')
    .option('--ulimit <name=soft[:hard]>', 'ulimit options (repeatable; never above the host\'s hard limit)', collect)
    .option('--group-add <group>', 'add a supplementary group, by name or number (repeatable)', collect)
    .option('--sysctl <name=value>', 'set a namespaced kernel parameter: net.*, fs.mqueue.*, kernel.msg*/sem/shm* (repeatable)', collect)
    .optionsGroup('Storage:')
    .option('-v, --volume <host:ctr[:ro]>', 'bind mount a host path, or a named volume: NAME:/ctr[:ro] (repeatable)', collect)
    .option('--tmpfs <path[:opts]>', 'mount a tmpfs (repeatable)', collect)
    .option('--read-only', 'mount the container\'s root filesystem as read only')
    .option('--mount <type=bind|tmpfs,...>', 'a mount in docker\'s long form: type=bind,source=/a,target=/b[,readonly], type=volume,source=NAME,target=/b or type=tmpfs,target=/t[,tmpfs-size=64m] (repeatable)', collect)
    .option('--shm-size <bytes>', 'size of /dev/shm (b, k, m, g; default 64m)')
    .optionsGroup('Security:')
    .option('--cap-add <cap>', 'add a Linux capability (repeatable)', collect)
    .option('--cap-drop <cap>', 'drop a Linux capability (repeatable)', collect)
    .option('--privileged', 'give extended privileges: all capabilities, the host\'s devices, no masked paths, no seccomp filter')
    .option('--device <host[:ctr][:rwm]>', 'add a host device (or a directory of them) to the container (repeatable)', collect)
    .option('--device-cgroup-rule <rule>', 'let the container use devices it makes itself: "c 81:* rmw" (repeatable)', collect)
    .option('--security-opt <opt>', 'security options: no-new-privileges=true|false (default true), seccomp=unconfined|<profile.json> (default: docker\'s profile)', collect)
    .optionsGroup('Network and namespaces:')
    .option('--network <mode>', 'network: bridge (default; rootless: host), none, host, container:<name|id>, or a network\'s name')
    .addOption(new Option('--net <mode>', 'alias of --network').hideHelp())
    .option('-p, --publish <[ip:]host:ctr[/proto]>', 'publish a container port on the host (repeatable)', collect)
    .option('-P, --publish-all', 'publish every exposed port on a random host port')
    .option('--dns <ip>', 'set a DNS server (repeatable)', collect)
    .option('--dns-search <domain>', 'set a DNS search domain (repeatable)', collect)
    .option('--dns-option <opt>', 'set a resolv.conf option (repeatable)', collect)
    .option('--add-host <host:ip>', 'add a line to /etc/hosts; ip may be host-gateway (repeatable)', collect)
    .option('--ip <address>', 'the container\'s IPv4 address on a user-defined network (default: the lowest free one)')
    .option('--network-alias <name>', 'another name for the container on its network (repeatable)', collect)
    .option('--pid <mode>', 'PID namespace: "host" to share the host\'s', '')
    .option('--ipc <mode>', 'IPC namespace: "host" to share the host\'s', '')
    .option('--uts <mode>', 'UTS namespace: "host" to share the host\'s', '')
    .option('--userns <mode>', 'user namespace: host (default), or private/auto: root inside is an unprivileged host uid from /etc/subuid')
    .option('--uidmap <ctr:host:size>', 'map container uids to host uids (repeatable; implies a user namespace)', collect)
    .option('--gidmap <ctr:host:size>', 'map container gids to host gids (repeatable; default: as --uidmap)', collect)
    .optionsGroup('Resources (cgroups):');
  return addResourceOptions(cmd)
    .option('--device-read-iops <dev:rate>', 'limit read rate (IO per second) from a device (repeatable)', collect)
    .option('--device-write-iops <dev:rate>', 'limit write rate (IO per second) to a device (repeatable)', collect)
    .option('--cgroup-parent <path>', 'parent cgroup of the container\'s cgroup (env TSRUN_CGROUP_PARENT)', process.env.TSRUN_CGROUP_PARENT ?? 'tsrun')
    .optionsGroup('Image:')
    .option('--platform <os/arch[/variant]>', 'platform to pull if the image is missing')
    .addOption(new Option('--pull <policy>', 'pull the image before running').choices(['missing', 'always', 'never']).default('missing'));
}

export function register(program: Command): void {
  const run = program
    .command('run')
    .description('Create and run a new container from an image')
    .usage('[OPTIONS] IMAGE [COMMAND] [ARG...]')
    .helpOption('--help', 'display help for command')
    .argument('<image>', 'image name, name:tag, name@digest or image ID')
    .argument('[command...]', 'command and arguments (default: the image\'s Entrypoint + Cmd)')
    .passThroughOptions();
  addRunOptions(run);
  acceptTraceMode(run);
  // Its help shows the forms acceptTraceMode takes.
  const traceOption = run.options.find((o) => o.long === '--trace')!;
  traceOption.flags = '--trace[=steps|syscalls]';
  traceOption.description = 'print how the container is made, timed: the helper\'s syscalls and tsrun\'s work on the host (cgroup files, ip, iptables); =steps: one line per step of the launch plan (tsrun only)';
  run
    .addOption(new Option('--trace-file <file>', 'write the trace to this file instead of stderr (implies --trace)').helpGroup('Container:'))
    .addOption(new Option('-d, --detach', 'run the container in the background and print its ID').helpGroup('Container:'))
    .addOption(new Option('--detach-keys <keys>', 'with -it: key sequence that detaches, leaving the container running (default "ctrl-p,ctrl-q")').helpGroup('Container:'))
    .addHelpText('after', '\nDefaults differ from docker in two places: no-new-privileges is on, and RLIMIT_NOFILE never exceeds the host\'s hard limit.')
    .action(action(async (image: string, command: string[], flags: RunFlags, cmd: Command) => {
      const g = globalOptions(cmd);
      const tracing = flags.trace !== undefined || flags.traceFile !== undefined;
      const { parseCreateFlags } = await import('../src/container/create-request.js');
      const { options, restartPolicy, logConfig } = parseCreateFlags({ ...flags, trace: tracing }, command, {
        readFile: (p) => readFileSync(p, 'utf8'),
        env: process.env,
        // -dit needs no terminal now: it keeps the container's TTY for a later attach (docker).
        get stdinIsTty() {
          return flags.detach === true || isTerminal(0);
        },
      });
      // -it in the foreground: tsrun is a client of the container's PTY (the monitor's attach
      // socket), as docker's client is, so that the detach keys can leave it running. Checked
      // with the other flags: before the cidfile is made or the image pulled.
      const terminal = !flags.detach && options.tty && options.interactive;
      const attach = terminal || flags.detachKeys !== undefined ? await import('../src/container/attach.js') : undefined;
      const detachKeys = attach?.parseDetachKeys(flags.detachKeys);
      const trace = tracing ? await openTrace(flags.trace ?? true, flags.traceFile) : undefined;
      const cid = cidfile(flags.cidfile);
      const record = await imageForRun(g, image, flags);
      const { runContainer } = await import('../src/container/run.js');
      if (flags.detach && options.interactive && !options.tty) {
        // Without a TTY a detached container's stdin is /dev/null: there is nothing to attach it to.
        writeErr('tsrun: warning: -i without -t is ignored with -d\n');
      }

      // Signals arriving while the container starts are held and sent once it runs. With a
      // terminal, a resize is the client's business (attach.ts), not the container's signal.
      let container: { signal(s: NodeJS.Signals): void } | undefined;
      const pending: NodeJS.Signals[] = [];
      if (!flags.detach) {
        for (const sig of FORWARDED.filter((s) => !(terminal && s === 'SIGWINCH'))) {
          process.on(sig, () => (container ? container.signal(sig) : pending.push(sig)));
        }
      }

      const running = await runContainer({
        storeRoot: g.root,
        image: record,
        imageName: image,
        options: flags.detach && !options.tty ? { ...options, interactive: false } : options,
        restartPolicy,
        logConfig,
        ...(!flags.detach && !terminal && { stdio: [0, 1, 2] as [number, number, number] }),
        ...(terminal && { terminal: stdoutStream().isTTY ? { size: { rows: stdoutStream().rows, cols: stdoutStream().columns } } : {} }),
        tsrunCommand: tsrunCommand(g.root),
        ...(trace && { onTrace: trace.onTrace }),
      }).finally(() => trace?.flush());
      cid.write(running.id);
      if (flags.detach) {
        writeOut(`${running.id}\n`);
        return 0;
      }
      container = running;
      for (const sig of pending) running.signal(sig);
      if (running.terminal && attach && detachKeys) {
        const { findContainer } = await import('../src/container/lookup.js');
        const outcome = await attach.attachStarted(g.root, findContainer(g.root, running.id), running.terminal, { stdin: process.stdin, stdout: stdoutStream(), detachKeys });
        return outcome.code;
      }
      const status = await running.wait();
      return status.code;
    }));
}
