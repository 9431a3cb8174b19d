// `run`: create a container from an image and run its process in the foreground.
// The steps, each undone if a later one fails:
//   1. find the image            4. write config.json (OCI spec) and the launch plan
//   2. reserve the name          5. the helper clones the container; we release it; it execs
//   3. make the container dir    6. wait for the exit status; with --rm remove everything
import { mkdirSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TsrunError, errnoOf } from '../errors.js';
import type { ImageRecord } from '../image/types.js';
import type { ContainerOptions } from '../namespaces/options.js';
import { createSpec, type OciSpec } from '../namespaces/spec.js';
import { buildPlan } from '../namespaces/plan.js';
import { HelperProcess, type ExitStatus, type TraceLine } from '../namespaces/helper.js';
import { resolveUser } from './user.js';
import { hostHardLimits, hasCapSysResource } from './host.js';
import { generateName, newContainerId, validateName } from './names.js';
import { ContainerPaths, namesDir } from './paths.js';
import { portsToPublish, recipeFor, refreshPeers, usesBridge, writeHosts, writeResolvConf } from './network.js';
import type { PortMapping } from '../netns/index.js';
import { detectCgroups, openDriver, type CgroupDriver, type CgroupHandle, type Resources } from '../cgroups/index.js';
import { cgroupMounts } from '../namespaces/cgroup-mounts.js';

export interface RunRequest {
  storeRoot: string;
  image: ImageRecord;
  options: ContainerOptions;
  /** The container's stdio (the CLI's own fds). */
  stdio: [number, number, number];
  onTrace?: (line: TraceLine) => void;
}

export interface ContainerState {
  id: string;
  name: string;
  image: string;
  imageId: string;
  status: 'created' | 'running' | 'exited';
  pid: number;
  monitorPid: number;
  exitCode: number | null;
  oomKilled: boolean;
  /** controller → cgroup directory, for inspect and for learners to `cat`. */
  cgroupPaths: Record<string, string>;
  network?: {
    name: string;
    ip: string;
    gateway: string;
    mac: string;
    prefixLen: number;
    hostVeth: string;
    netnsPath: string;
    ports: PortMapping[];
  };
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

/** A container whose process runs; the caller forwards signals and waits. */
export interface RunningContainer {
  id: string;
  name: string;
  spec: OciSpec;
  signal(sig: NodeJS.Signals): void;
  /** Waits for the exit, records it, and removes the container if --rm. */
  wait(): Promise<ExitStatus>;
}

function writeJson(path: string, value: unknown): void {
  // Write a temporary file, then rename(2) over the target: a reader never sees half a file.
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n', { mode: 0o600 });
  renameSync(tmp, path);
}

function reserveName(storeRoot: string, wanted: string | undefined, id: string): string {
  const dir = namesDir(storeRoot);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (let attempt = 0; ; attempt++) {
    const name = wanted === undefined ? generateName() : validateName(wanted);
    try {
      // symlink(2) fails with EEXIST if the name is taken: an atomic reservation across processes.
      symlinkSync(join('..', 'containers', id), join(dir, name));
      return name;
    } catch (err) {
      if (errnoOf(err) !== 'EEXIST') throw err;
      if (wanted !== undefined) {
        throw new TsrunError('ESTATE', `the container name "/${name}" is already in use; remove that container or choose another name with --name`);
      }
      if (attempt > 20) throw err;
    }
  }
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * Another tsrun may remove the (empty) parent between our mkdir of the parent and of the leaf:
 * the leaf's mkdir then fails with ENOENT, and a second attempt recreates the parent.
 */
function createCgroup(driver: CgroupDriver, parent: string, id: string, resources: Resources): CgroupHandle {
  for (let attempt = 0; ; attempt++) {
    try {
      return driver.create(parent, id, resources);
    } catch (err) {
      const code = errnoOf(err) ?? errnoOf((err as { cause?: unknown }).cause);
      if (code !== 'ENOENT' || attempt >= 3) throw err;
    }
  }
}

export async function runContainer(req: RunRequest): Promise<RunningContainer> {
  const { storeRoot, image, options } = req;
  const id = newContainerId();
  // Everything done so far, to undo in reverse if a later step fails (or at --rm).
  const undo: Array<() => void | Promise<void>> = [];
  const cleanup = async () => {
    for (const u of undo.splice(0).reverse()) {
      try {
        await u();
      } catch {
        // best effort: keep undoing the rest
      }
    }
  };

  try {
    const name = reserveName(storeRoot, options.name, id);
    undo.push(() => unlinkSync(join(namesDir(storeRoot), name)));

    const paths = new ContainerPaths(storeRoot, id);
    mkdirSync(join(storeRoot, 'containers'), { recursive: true, mode: 0o700 });
    mkdirSync(paths.dir, { mode: 0o700 });
    undo.push(() => rmSync(paths.dir, { recursive: true, force: true }));
    for (const d of ['upper', 'work', 'rootfs']) mkdirSync(join(paths.dir, d), { mode: 0o755 });

    const layersTopFirst = [...image.layers].reverse();
    const user = resolveUser(options.user ?? image.config.config?.User, layersTopFirst.map((l) => l.dir));
    const hostname = options.hostname ?? id.slice(0, 12);
    writeFileSync(paths.hostname, `${hostname}\n`);
    writeHosts(storeRoot, id, recipeFor(hostname, options));
    writeResolvConf(paths, options);

    const cgroupLayout = detectCgroups();
    const spec = createSpec(image.config, options, {
      id,
      rootfs: paths.rootfs,
      user,
      etcFiles: { hostname: paths.hostname, hosts: paths.hosts, resolvConf: paths.resolvConf },
      hostHardLimits: hostHardLimits(),
      canRaiseLimits: hasCapSysResource(),
      cgroupMounts: cgroupMounts(cgroupLayout, !options.privileged),
    });
    writeJson(paths.config, spec);

    // An image without layers still needs one lower dir for overlayfs.
    let lowerDirs = layersTopFirst.map((l) => l.link);
    if (lowerDirs.length === 0) {
      mkdirSync(join(paths.dir, 'empty'));
      lowerDirs = [join('containers', id, 'empty')];
    }
    // The cgroup exists, with its limits, before the container's first instruction: the
    // helper writes the child's pid into every cgroup.procs before releasing it.
    const driver = openDriver(cgroupLayout);
    const cgroup = createCgroup(driver, options.cgroupParent, id, options.resources);
    const removeCgroup = () => {
      cgroup.remove();
      // Like docker, tsrun keeps no daemon state: an empty parent goes with its last container.
      driver.removeParent(options.cgroupParent);
    };
    undo.push(removeCgroup);

    const plan = buildPlan(
      spec,
      {
        storeRoot,
        lowerDirs,
        upperDir: paths.upperRel,
        workDir: paths.workRel,
        name,
        trace: options.trace,
        interactive: options.interactive,
        init: options.init,
        cgroupProcs: cgroup.procsFiles,
      },
      isFile,
    );

    const state: ContainerState = {
      id,
      name,
      image: image.names[0] ?? image.id,
      imageId: image.id,
      status: 'created',
      pid: 0,
      monitorPid: 0,
      exitCode: null,
      oomKilled: false,
      cgroupPaths: cgroup.paths,
      createdAt: new Date().toISOString(),
      startedAt: null,
      finishedAt: null,
    };
    writeJson(paths.state, state);

    const helper = HelperProcess.launch(plan, { stdio: req.stdio, ...(req.onTrace && { onTrace: req.onTrace }) });
    const killHelper = () => helper.signal('SIGKILL');
    undo.push(killHelper);
    const pid = await helper.waitPid();
    const disconnect = async () => {
      if (!state.network) return;
      const { detach } = await import('../netns/index.js');
      await detach(storeRoot, id);
      refreshPeers(storeRoot, state.network.name, id);
    };
    if (usesBridge(options.network)) {
      // Between clone and exec: the container's network namespace exists, its process waits.
      const { attach, detach } = await import('../netns/index.js');
      undo.push(() => detach(storeRoot, id));
      const att = await attach(storeRoot, { id, name, pid, network: options.network, ports: portsToPublish(options, image.config), aliases: options.networkAliases });
      state.network = { name: att.network, ip: att.ip, gateway: att.gateway, mac: att.mac, prefixLen: att.prefixLen, hostVeth: att.hostVeth, netnsPath: att.netnsPath, ports: att.ports };
      writeHosts(storeRoot, id, recipeFor(hostname, options, att));
      refreshPeers(storeRoot, att.network, id);
    }
    helper.go();
    await helper.waitStarted();
    Object.assign(state, { status: 'running', pid, monitorPid: helper.pid ?? 0, startedAt: new Date().toISOString() });
    writeJson(paths.state, state);

    return {
      id,
      name,
      spec,
      signal: (sig) => helper.signal(sig),
      wait: async () => {
        const status = await helper.waitExit();
        const oomKilled = cgroup.oomKilled();
        await disconnect();
        if (options.remove) {
          await cleanup();
        } else {
          removeCgroup();
          Object.assign(state, { status: 'exited', exitCode: status.code, oomKilled, finishedAt: new Date().toISOString() });
          writeJson(paths.state, state);
        }
        return { ...status, oomKilled };
      },
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
