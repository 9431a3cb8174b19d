// `start`: give a created (or exited) container a cgroup and a network, and launch its monitor
// (the native helper), which clones the container and stays with it. The cgroup, the plan and
// the helper are made as tsrun-runtime makes them (src/runtime/launch.ts), from config.json. Attached, tsrun relays
// signals and waits for the exit; detached, tsrun returns once the process runs and the
// monitor carries on alone, running `tsrun container cleanup` when the container is done. A
// detached container with a TTY has its PTY served on the attach socket (attach.ts), which
// `run -it` and `start -ai` connect to before the container runs.
import { readFileSync, rmSync } from 'node:fs';
import { TsrunError } from '../errors.js';
import { withDevices, type OciSpec } from '../namespaces/spec.js';
import { inUserns, type PlanContext } from '../namespaces/plan.js';
import { describeSeccomp } from '../seccomp/index.js';
import { StepError, type ExitStatus, type TraceLine } from '../namespaces/helper.js';
import { markNoIdmap, prepareContainerDirs, shiftedLayers, usernsFilesFor, type UsernsFiles } from '../namespaces/userns-files.js';
import { detectCgroups, openDriver } from '../cgroups/index.js';
import { makeCgroup, startHelper } from '../runtime/launch.js';
import { withLock } from '../sys/lock.js';
import { inOwnUserns } from '../rootless.js';
import { crashPoint } from '../sys/crash.js';
import { selfToken } from '../sys/proc.js';
import { cleanupContainer } from './cleanup.js';
import { attachJoined } from './connect.js';
import { waitNotRunning } from './signals.js';
import { findContainer, type Found } from './lookup.js';
import { recipeFor, refreshPeers, usesBridge, writeHosts } from './network.js';
import type { Attachment } from '../netns/index.js';
import { updateState, writeJsonAtomic, type ContainerRecord, type NetworkState } from './record.js';
import { InvalidTransitionError, can, currentBootId, observe } from './status.js';
import { containerDevices } from '../namespaces/devices.js';
import type { TerminalConnection, WindowSize } from './attach.js';
import { healthFile } from './healthcheck.js';
import { healthPlan } from './health-plan.js';

export interface StartOptions {
  /** attached: the container uses these fds and tsrun waits; detached: /dev/null and a log. */
  attach?: { stdio: [number | 'ignore', number | 'ignore', number | 'ignore'] };
  onTrace?: (line: TraceLine) => void;
  /**
   * Detached, with tsrun on the container's PTY (`run -it`, `start -ai`): connected to the attach
   * socket before the container runs, so that none of its output is missed; Started.terminal.
   * `size`: the local terminal's, the PTY's from the start.
   */
  terminal?: { size?: WindowSize };
  /** How the monitor calls tsrun back after the exit: [node, cli.js, --root, root]. */
  tsrunCommand: string[];
  /**
   * This process created the container a moment ago (`run`): no other tsrun can be starting it,
   * so the container lock — and loading the FFI that takes it — is skipped on this hot path.
   */
  fresh?: boolean;
}

export interface Started {
  id: string;
  name: string;
  pid: number;
  signal(sig: NodeJS.Signals): void;
  /** Attached only: waits for the exit and releases the container's resources. */
  wait(): Promise<ExitStatus>;
  /** With StartOptions.terminal: the connection to the container's PTY. */
  terminal?: TerminalConnection;
}

function restartLine(record: ContainerRecord): string {
  const p = record.restartPolicy;
  return p.name === 'on-failure' ? `on-failure:${p.maximumRetryCount}` : p.name;
}

export async function startContainer(storeRoot: string, found: Found, opts: StartOptions): Promise<Started> {
  const { paths, record } = found;
  const { options } = record;
  const undo: Array<() => void | Promise<void>> = [];
  const rollback = async () => {
    for (const u of undo.splice(0).reverse()) {
      try {
        await u();
      } catch {
        // keep undoing the rest
      }
    }
  };

  const launch = async (files: UsernsFiles | undefined) => {
    const seen = observe(paths);
    if (!can.start(seen.status)) {
      if (seen.status === 'running') throw new TsrunError('ESTATE', `cannot start container ${record.name}: it is already running`);
      throw new InvalidTransitionError(record.name, seen.status, 'start', seen.status === 'paused' ? 'unpause it' : '');
    }
    // What the last run left behind (a dead monitor's cgroup or endpoint) goes first.
    if (seen.orphaned) await cleanupContainer(storeRoot, record.id, { locked: true, autoRemove: false });
    rmSync(paths.stopFile, { force: true });
    rmSync(paths.status, { force: true });
    // A new monitor starts the healthcheck afresh ("starting", no results).
    rmSync(healthFile(paths.dir), { force: true });
    // Written ahead of the cgroup and the network: a start killed from here on is seen as such.
    updateState(paths, { startingBy: selfToken(), cleanedUp: false });
    crashPoint('start:state-intent');

    try {
      // The host's devices as they are now: their numbers may have changed since the container
      // was made (a reboot, a re-plug). `run` made it a moment ago, and resolved them then.
      const stored = JSON.parse(readFileSync(paths.config, 'utf8')) as OciSpec;
      const spec = opts.fresh ? stored : withDevices(stored, options, containerDevices(options));
      if (spec !== stored) writeJsonAtomic(paths.config, spec);
      // The cgroup exists, with its limits, before the container's first instruction: the
      // helper writes the child's pid into every cgroup.procs before releasing it.
      // Rootless tsrun may not make cgroups: its containers stay in the user's.
      const driver = openDriver(detectCgroups());
      const cgroup = inOwnUserns() ? undefined : makeCgroup(driver, { parent: options.cgroupParent, name: record.id }, spec);
      if (cgroup) {
        undo.push(() => {
          cgroup.remove();
          driver.removeParent(options.cgroupParent);
        });
      }
      crashPoint('start:cgroup-made');

      // Bridge networks: the namespace and its veth exist before the container's first step, so
      // every run of the container (restart policies) joins the same network. They are made
      // while the helper starts (its child waits for "go" before it joins the namespace): once
      // the address is reserved and `ip` runs, the helper is spawned meanwhile. Not in a user
      // namespace, where the monitor itself joins the namespace as it starts.
      let network: NetworkState | null = null;
      // The inside of the namespace and the port rules, made while the helper starts.
      let networkReady = async (): Promise<void> => {};
      let attaching: Promise<Attachment & { ready(): Promise<void> }> | undefined;
      let joinNetns: string | undefined;
      let netUp: PlanContext['netUp'];
      if (usesBridge(options.network)) {
        const { attach, detach, NETNS_DIR, netnsName } = await import('../netns/index.js');
        // Its address, once reserved: the child sets it (net-up), unless in a user namespace.
        type Address = Omit<NonNullable<PlanContext['netUp']>, 'ifname'>;
        let launched!: (address: Address) => void;
        const reserved = new Promise<Address>((resolve) => (launched = resolve));
        const insideByChild = !inUserns(spec);
        attaching = attach(storeRoot, {
          id: record.id,
          name: record.name,
          network: options.network,
          ports: options.publish,
          aliases: options.networkAliases,
          ...(options.ip !== undefined && { ip: options.ip }),
        }, { early: true, launched, insideByChild });
        attaching.catch(() => {}); // awaited below, or by the undo
        const pending = attaching;
        undo.push(async () => {
          // Never under the attachment's feet: a link or rule added after detach would stay.
          const att = await pending.catch(() => undefined);
          await att?.ready().catch(() => {});
          await detach(storeRoot, record.id);
          // Its peers were told its name (refreshPeers below): they forget it with its address.
          if (network) refreshPeers(storeRoot, network.name, record.id);
        });
        joinNetns = `${NETNS_DIR}/${netnsName(record.id)}`;
        if (insideByChild) {
          // attach() may fail before it reserves (a taken --ip, say): then with its error, at once.
          const address = await Promise.race([reserved, pending.then(() => undefined)]);
          if (address) netUp = { ifname: 'eth0', ...address };
        } else {
          // In a user namespace the monitor joins the namespace before anything else, so it
          // must exist first (`ip netns add` makes its file, then mounts the namespace on it).
          await pending;
        }
      } else if (options.network.startsWith('container:')) {
        // --network container:<x>: join that container's network namespace (docker's sharing mode).
        joinNetns = sharedNetns(storeRoot, options.network.slice(10));
      }

      const detached = opts.attach === undefined;
      const health = healthPlan(spec, options.healthcheck, healthFile(paths.dir));
      let lowerDirs = record.lowerDirs;
      if (files === 'copy' && options.userns && options.volumes.some((v) => v.volume)) {
        // Without an idmapped store a volume's files would be the host's root's, nobody's inside.
        throw new TsrunError('EUSERNS', 'named volumes in a user namespace need a store that can be idmapped (this one is copied per map: see tsrun info); use a bind mount (-v /host/dir:/path) you chown to the container\'s root');
      }
      if (files === 'copy' && options.userns) {
        lowerDirs = shiftedLayers(storeRoot, lowerDirs, options.userns);
        prepareContainerDirs(storeRoot, paths.dir, options.userns);
      }
      const { helper, pid } = await startHelper(
        spec,
        {
          storeRoot,
          lowerDirs,
          ...(files && { usernsFiles: files }),
          upperDir: paths.upperRel,
          workDir: paths.workRel,
          name: record.name,
          trace: options.trace,
          interactive: options.interactive && !detached,
          init: options.init,
          ...(joinNetns && { joinNetns }),
          ...(netUp && { netUp }),
          monitor: {
            attachStdio: !detached,
            ...(record.logConfig.driver !== 'none' && { log: { path: paths.log, maxSize: record.logConfig.maxSize, maxFile: record.logConfig.maxFile } }),
            statusFile: paths.status,
            restart: restartLine(record),
            stopFile: paths.stopFile,
            // Detached, or restarting after tsrun stopped waiting, nobody waits for the last exit:
            // the monitor hands over to tsrun's cleanup.
            ...((detached || record.restartPolicy.name !== 'no') && {
              exitCommand: [...opts.tsrunCommand, 'container', 'cleanup', record.id],
            }),
            // Nobody on the other side of a detached container's PTY: `tsrun attach` can be.
            ...(detached && spec.process.terminal && { attachSocket: paths.attachSocket }),
            ...(health && { health }),
          },
        },
        cgroup,
        { stdio: opts.attach?.stdio ?? ['ignore', 'ignore', 'ignore'], ...(opts.onTrace && { onTrace: opts.onTrace }) },
        undo,
      );
      crashPoint('start:helper-started');
      if (attaching) {
        const att = await attaching;
        networkReady = att.ready;
        const { ip, gateway, mac, prefixLen, hostVeth, netnsPath, ports } = att;
        network = { name: att.network, ip, gateway, mac, prefixLen, hostVeth, netnsPath, ports };
        writeHosts(storeRoot, record.id, recipeFor(record.hostname, options, att));
        refreshPeers(storeRoot, att.network, record.id);
        // The networks `network connect` added since it was created (`run`'s container has none).
        if (!opts.fresh) await attachJoined(storeRoot, record);
        crashPoint('start:network-attached');
      }
      updateState(paths, {
        startedAt: new Date().toISOString(),
        finishedAt: null,
        exitCode: null,
        oomKilled: false,
        paused: false,
        bootId: currentBootId(),
        cgroupPaths: cgroup?.paths ?? {},
        network,
        cleanedUp: false,
        startingBy: null,
        ...(files && { usernsFiles: files }),
        seccomp: describeSeccomp(options.seccomp, options.privileged, spec.linux.seccomp),
      });
      let terminal: TerminalConnection | undefined;
      if (opts.terminal) {
        if (!detached || !spec.process.terminal) throw new TsrunError('EINTERNAL', `start ${record.name}: a terminal needs a detached container with a TTY`);
        // On the PTY before the container runs: a shell's first prompt is not missed.
        // attach.ts (and node:net with it) only here: a start without a terminal loads neither.
        const { TerminalConnection } = await import('./attach.js');
        terminal = await TerminalConnection.connect(paths.attachSocket, record.name, opts.terminal.size);
        undo.push(() => terminal?.close());
      }
      await networkReady();
      helper.go();
      await helper.waitStarted();
      return { helper, pid, terminal };
    } catch (err) {
      await rollback();
      updateState(paths, { cleanedUp: true, network: null, startingBy: null });
      throw err;
    }
  };
  // A user namespace: the store idmapped, unless this store is known not to allow it; the
  // first start that finds out falls back to shifted copies (userns-files.ts) once, for good.
  const attempt = async () => {
    const files = options.userns ? usernsFilesFor(storeRoot) : undefined;
    try {
      return await launch(files);
    } catch (err) {
      const idmapFailed = err instanceof StepError && ['idmap-mount', 'mount'].includes(err.op) && ['EINVAL', 'EPERM', 'EOPNOTSUPP', 'ENOSYS'].includes(err.errno);
      if (files !== 'idmap' || !idmapFailed || process.env.TSRUN_USERNS_FILES === 'idmap') throw err;
      markNoIdmap(storeRoot, (err as Error).message);
      return launch('copy');
    }
  };
  const started = opts.fresh ? await attempt() : await withLock(paths.lock, attempt);

  const { helper, pid, terminal } = started;
  if (!opts.attach) helper.release();
  return {
    id: record.id,
    name: record.name,
    pid,
    ...(terminal && { terminal }),
    signal: (sig) => helper.signal(sig),
    wait: async () => {
      if (!opts.attach) throw new TsrunError('EINTERNAL', 'wait() on a detached start');
      const status = await helper.waitExit();
      // With a restart policy the monitor goes on; its exit command cleans up at the end.
      if (record.restartPolicy.name !== 'no') return status;
      // The monitor reports the exit, then records it: let it finish before releasing.
      await waitNotRunning({ paths, record }, 5000);
      // Without the lock when fresh (see StartOptions.fresh): every step of cleanup is
      // idempotent, and the final removal of a --rm container is one atomic rename.
      const after = await cleanupContainer(storeRoot, record.id, { exit: status, locked: opts.fresh === true });
      return { ...status, oomKilled: after.oomKilled };
    },
  };
}

/** The network namespace of a running container, by name or ID. */
function sharedNetns(storeRoot: string, ref: string): string {
  const other = findContainer(storeRoot, ref);
  const seen = observe(other.paths);
  if (seen.status !== 'running' && seen.status !== 'paused') {
    throw new InvalidTransitionError(other.record.name, seen.status, 'share the network of', 'start it first');
  }
  return seen.state.network?.netnsPath ?? `/proc/${seen.pid}/ns/net`;
}

