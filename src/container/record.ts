// What tsrun knows about a container, on disk, with no daemon:
//   container.json  what it was created with (written once by create, changed by rename)
//   state.json      what tsrun did to it (started, network, cgroup, finished, OOM)
//   status          what its monitor reports (the C helper writes it: running, pid, exit code)
// Every file is replaced atomically (write + rename), so readers never need a lock.
import { readFileSync, readdirSync } from 'node:fs';
import { writeJsonAtomic } from '../sys/atomic.js';
import { join } from 'node:path';
import { errnoOf, TsrunError } from '../errors.js';
import type { ContainerOptions } from '../namespaces/options.js';
import type { PortMapping } from '../netns/publish.js';
import type { SeccompDescription } from '../seccomp/index.js';
import { ContainerPaths } from './paths.js';

export interface RestartPolicy {
  name: 'no' | 'always' | 'unless-stopped' | 'on-failure';
  maximumRetryCount: number;
}

/** --log-driver and --log-opt: json-file (docker's format, rotated at maxSize into maxFile files) or none. */
export interface LogConfig {
  /** Absent (older records): json-file. */
  driver?: 'json-file' | 'none';
  maxSize: number;
  maxFile: number;
}

/** docker's json-file defaults are unbounded; tsrun caps a container's log at 3 × 10 MB. */
export const DEFAULT_LOG_CONFIG: LogConfig = { driver: 'json-file', maxSize: 10 * 1024 * 1024, maxFile: 3 };

export interface ContainerRecord {
  id: string;
  name: string;
  created: string;
  /** The image as the user named it, and its ID (config digest). */
  image: string;
  imageId: string;
  /** The process (entrypoint + cmd), for ps and inspect. */
  path: string;
  args: string[];
  hostname: string;
  /**
   * The flags it was made with — but its limits: those are config.json's linux.resources, the one
   * place `start`, `update` and `inspect` read and write them.
   */
  options: Omit<ContainerOptions, 'resources'>;
  restartPolicy: RestartPolicy;
  /** Overlay lower dirs relative to the store root, top layer first. */
  lowerDirs: string[];
  logConfig: LogConfig;
  stopSignal: string;
  /** --stop-timeout: seconds `stop` waits before SIGKILL when not told (-1: forever). */
  stopTimeout?: number;
  /**
   * The `tsrun build` that made this container for a step (`PID@START-TIME`): a build removes
   * the containers of builds that died. Nothing an image or a flag sets can put it here.
   */
  buildOwner?: string;
  /** The image's labels with --label's on top (older records: absent). */
  labels?: Record<string, string>;
}

export interface NetworkState {
  name: string;
  ip: string;
  gateway: string;
  mac: string;
  prefixLen: number;
  hostVeth: string;
  netnsPath: string;
  ports: PortMapping[];
}

export interface ContainerState {
  startedAt: string | null;
  finishedAt: string | null;
  exitCode: number | null;
  oomKilled: boolean;
  /** `pause` froze the cgroup. */
  paused: boolean;
  /** The boot the monitor ran in: a monitor from an earlier boot is certainly gone. */
  bootId: string | null;
  cgroupPaths: Record<string, string>;
  network: NetworkState | null;
  /** Resources (cgroup, network) released after the last run. */
  cleanedUp: boolean;
  /** With a user namespace: how its image files got their owners at the last start. */
  usernsFiles?: 'idmap' | 'copy';
  /**
   * The tsrun starting it (`PID@START-TIME`), written before its cgroup or network exist and
   * cleared once its monitor is recorded: a start killed with -9 in between leaves this
   * naming a dead process, and the container's resources are released as a dead monitor's.
   */
  startingBy?: string | null;
  /**
   * inspect's Tsrun.Seccomp, described at the last start, which compiled the filter anyway:
   * inspect then needs neither the profiles nor the compiler (absent before a first start).
   */
  seccomp?: SeccompDescription;
}

export const emptyState = (): ContainerState => ({
  startedAt: null,
  finishedAt: null,
  exitCode: null,
  oomKilled: false,
  paused: false,
  bootId: null,
  cgroupPaths: {},
  network: null,
  cleanedUp: true,
});

export { writeJsonAtomic };

function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return undefined;
    throw new TsrunError('EINTERNAL', `${path} is damaged: ${(err as Error).message}`, { cause: err });
  }
}

export function readRecord(paths: ContainerPaths): ContainerRecord | undefined {
  return readJson<ContainerRecord>(paths.record);
}

export function readState(paths: ContainerPaths): ContainerState {
  return { ...emptyState(), ...readJson<ContainerState>(paths.state) };
}

/** Read-modify-write of state.json; callers hold the container's lock. */
export function updateState(paths: ContainerPaths, change: Partial<ContainerState>): ContainerState {
  const next = { ...readState(paths), ...change };
  writeJsonAtomic(paths.state, next);
  return next;
}

/** What `create` marks a container it is making with (create.ts), or undefined. */
export function readCreatingMarker(paths: ContainerPaths): { by: string; imageId: string } | undefined {
  try {
    const m = JSON.parse(readFileSync(paths.creating, 'utf8')) as { by?: unknown; imageId?: unknown };
    return typeof m.by === 'string' && typeof m.imageId === 'string' ? { by: m.by, imageId: m.imageId } : undefined;
  } catch {
    return undefined; // none, or half-written by a create that died: its directory is debris either way
  }
}

/** Every container ID in the store (directories that hold a container.json). */
export function listIds(storeRoot: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(join(storeRoot, 'containers'));
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return [];
    throw err;
  }
  return entries.filter((e) => /^[0-9a-f]{64}$/.test(e));
}

/** The monitor's `status` file: key=value lines (native/README.md). */
export interface MonitorStatus {
  status: 'running' | 'exited' | 'restarting' | string;
  pid: number;
  monitorPid: number;
  monitorStartTime: string;
  exitCode: number | null;
  exitSignal: number;
  startedAt: string | null;
  finishedAt: string | null;
  restartCount: number;
}

export function readMonitorStatus(paths: ContainerPaths): MonitorStatus | undefined {
  let text: string | undefined;
  // Replaced by rename, whole; but on a full disk the monitor overwrites it in place
  // (native/status.c), so a read can catch half of that: the checksum says, and we read again.
  for (let attempt = 0; text === undefined; attempt++) {
    let bytes: Buffer;
    try {
      bytes = readFileSync(paths.status);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return undefined;
      throw err;
    }
    if (checksumOk(bytes) || attempt >= 5) text = bytes.toString('utf8');
    else Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1); // the overwrite takes microseconds
  }
  const kv = new Map<string, string>();
  // The newlines that pad the file to its fixed size (native/status.c) are not lines.
  const end = text.indexOf('\n\n');
  for (const line of (end < 0 ? text : text.slice(0, end)).split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) kv.set(line.slice(0, eq), line.slice(eq + 1));
  }
  const num = (k: string) => (kv.get(k) ? Number(kv.get(k)) : 0);
  return {
    status: kv.get('status') ?? 'unknown',
    pid: num('pid'),
    monitorPid: num('monitor_pid'),
    monitorStartTime: kv.get('monitor_start_time') ?? '',
    exitCode: kv.get('exit_code') ? Number(kv.get('exit_code')) : null,
    exitSignal: num('exit_signal'),
    startedAt: kv.get('started_at') || null,
    finishedAt: kv.get('finished_at') || null,
    restartCount: num('restart_count'),
  };
}

/** The `checksum=` line: FNV-1a (32 bits, hex) of every byte before it. Files without one pass. */
export function checksumOk(bytes: Buffer): boolean {
  const at = bytes.lastIndexOf('\nchecksum=');
  if (at < 0) return true;
  let h = 0x811c9dc5;
  for (let i = 0; i <= at; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193) >>> 0;
  return bytes.toString('latin1', at + 10, at + 18) === h.toString(16).padStart(8, '0');
}
