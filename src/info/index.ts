// `tsrun info`, as data: docker info's fields where they mean the same thing (Containers,
// CgroupVersion, KernelVersion, ...), and tsrun's own where a learner wants to know more
// (which hierarchy holds which controller, the helper, the firewall backend). cli/info.ts
// prints it; `--format json` prints this object as is.
//
// There is no daemon to ask: every number is read from the store and the kernel right now.
import { firewallBackend } from '../netns/index.js';
import { listContainers } from '../container/list.js';
import { describeCgroups, type CgroupInfo } from './cgroups.js';
import { registriesInfo, type RegistriesInfo } from './registries.js';
import { storageInfo, type StorageInfo } from './storage.js';
import { hostInfo } from './system.js';
import { helperInfo, tsrunVersion } from './version.js';

export { gatherVersion, helperInfo, tsrunVersion, type VersionInfo, type HelperInfo } from './version.js';
export { describeCgroups, type CgroupInfo } from './cgroups.js';
export { storageInfo, filesystemSupported, filesystemName, type StorageInfo } from './storage.js';
export { registriesInfo, type RegistriesInfo } from './registries.js';
export { hostInfo, parseOsRelease, parseMemTotal, ociArch, type HostInfo } from './system.js';

export interface InfoOptions {
  root: string;
  insecureRegistry: string[];
  debug: boolean;
}

export interface SystemInfo {
  ClientInfo: { Version: string; NodeVersion: string; Debug: boolean };
  Containers: number;
  ContainersRunning: number;
  ContainersPaused: number;
  ContainersStopped: number;
  Images: number;
  ServerVersion: string;
  Driver: 'overlay';
  Storage: StorageInfo;
  CgroupDriver: CgroupInfo['driver'];
  CgroupVersion: CgroupInfo['version'];
  Cgroups: CgroupInfo | { error: string };
  Helper: { Path: string; Version: string; Error?: string };
  Firewall: { Backend: string; Version: string } | { error: string };
  KernelVersion: string;
  OperatingSystem: string;
  OSVersion: string;
  OSType: string;
  Architecture: string;
  NCPU: number;
  MemTotal: number;
  Name: string;
  Registries: RegistriesInfo;
  Warnings: string[];
}

/** Counts as docker does: restarting counts as running; created, exited and dead as stopped. */
export function countContainers(statuses: string[]): { total: number; running: number; paused: number; stopped: number } {
  const running = statuses.filter((s) => s === 'running' || s === 'restarting').length;
  const paused = statuses.filter((s) => s === 'paused').length;
  return { total: statuses.length, running, paused, stopped: statuses.length - running - paused };
}

export async function gatherInfo(opts: InfoOptions, env: NodeJS.ProcessEnv = process.env): Promise<SystemInfo> {
  const warnings: string[] = [];
  const version = tsrunVersion();
  const host = hostInfo();
  const storage = await storageInfo(opts.root);
  if (!storage.overlayInKernel) warnings.push('overlay is not in /proc/filesystems: `modprobe overlay`, or containers cannot start');

  let cgroups: CgroupInfo | { error: string };
  try {
    cgroups = describeCgroups({ env });
    warnings.push(...cgroups.warnings);
  } catch (err) {
    cgroups = { error: (err as Error).message };
    warnings.push(`cgroups: ${(err as Error).message}`);
  }

  const helper = helperInfo();
  if (helper.error !== undefined) warnings.push(`helper: ${helper.error}`);

  let firewall: SystemInfo['Firewall'];
  try {
    const fw = await firewallBackend();
    firewall = { Backend: fw.backend, Version: fw.version };
  } catch (err) {
    firewall = { error: (err as Error).message };
    warnings.push(`no usable iptables: bridge networking and -p will fail (${(err as Error).message})`);
  }

  const registries = await registriesInfo(opts.insecureRegistry, env);
  warnings.push(...registries.errors);

  const counts = countContainers(storage.rootExists ? listContainers(opts.root).map((c) => c.seen.status) : []);
  return {
    ClientInfo: { Version: version, NodeVersion: process.version, Debug: opts.debug },
    Containers: counts.total,
    ContainersRunning: counts.running,
    ContainersPaused: counts.paused,
    ContainersStopped: counts.stopped,
    Images: storage.images,
    ServerVersion: version,
    Driver: 'overlay',
    Storage: storage,
    CgroupDriver: 'cgroupfs',
    CgroupVersion: 'version' in cgroups ? cgroups.version : '1',
    Cgroups: cgroups,
    Helper: { Path: helper.path, Version: helper.version, ...(helper.error !== undefined && { Error: helper.error }) },
    Firewall: firewall,
    KernelVersion: host.kernelVersion,
    OperatingSystem: host.operatingSystem,
    OSVersion: host.osVersion,
    OSType: host.osType,
    Architecture: host.architecture,
    NCPU: host.cpus,
    MemTotal: host.memTotal,
    Name: host.hostname,
    Registries: registries,
    Warnings: warnings,
  };
}
