// What the network layer keeps on disk, so that any later tsrun process (after a crash too)
// knows what exists and can undo it:
//   <stateDir>/networks/<name>.json   a network (NetworkConfig)
//   <stateDir>/networks/.lock         flock'd while allocating (lock.ts)
//   <stateDir>/endpoints/<id>.json    a container's attachment: address, veth, netns, ports
//   <stateDir>/released/<id>.json     a detached container whose veth the kernel is still
//                                     removing (endpoint.ts, detach): its address stays taken
// An endpoint file is written *before* any kernel object exists, so detach() always finds out
// what to remove; the addresses in use are exactly the ones in endpoint and released files.
import { existsSync, linkSync, mkdirSync, readFileSync, readdirSync, renameSync, unlinkSync } from 'node:fs';
import { writeFileNamed } from '../sys/atomic.js';
import { join } from 'node:path';
import { TsrunError, errnoOf } from '../errors.js';
import type { PortMapping } from './publish.js';

export interface NetworkConfig {
  name: string;
  /** 64 hex digits, like docker's network IDs. */
  id: string;
  /** The Linux bridge (at most 15 characters). */
  bridge: string;
  /** IPv4 CIDR, e.g. 10.99.0.0/24. */
  subnet: string;
  /** The bridge's own address: the containers' default route. */
  gateway: string;
  mtu: number;
  created: string;
}

export interface Endpoint {
  id: string;
  name: string;
  aliases: string[];
  network: string;
  bridge: string;
  ip: string;
  prefixLen: number;
  gateway: string;
  mac: string;
  mtu: number;
  /** Host end of the veth pair, on the bridge; the container end is eth0. */
  hostVeth: string;
  /** Name under /run/netns (what `ip netns` lists) and its path. */
  netnsName: string;
  netnsPath: string;
  /** With the host ports actually chosen. */
  ports: PortMapping[];
  pid: number;
  created: string;
}

/** An endpoint handed to the kernel to remove (see detach in endpoint.ts). */
export interface Released extends Endpoint {
  /** When its namespace was let go (ISO 8601). */
  released: string;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

export function validateNetworkName(name: string): string {
  if (!NAME.test(name) || name.length > 64) {
    throw new TsrunError('EINVAL_FLAG', `invalid network name "${name}": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, at most 64 characters`);
  }
  return name;
}

export function validateContainerId(id: string): string {
  if (!NAME.test(id)) throw new TsrunError('EINTERNAL', `invalid container id "${id}"`);
  return id;
}

export const networksDir = (stateDir: string) => join(stateDir, 'networks');
export const endpointsDir = (stateDir: string) => join(stateDir, 'endpoints');
export const lockPath = (stateDir: string) => join(networksDir(stateDir), '.lock');
export const networkPath = (stateDir: string, name: string) => join(networksDir(stateDir), `${validateNetworkName(name)}.json`);
export const endpointPath = (stateDir: string, id: string) => join(endpointsDir(stateDir), `${validateContainerId(id)}.json`);
export const releasedDir = (stateDir: string) => join(stateDir, 'released');
export const releasedPath = (stateDir: string, id: string) => join(releasedDir(stateDir), `${validateContainerId(id)}.json`);

/** Write a temporary file, then rename(2) it over the target: readers never see half a file. */
export function writeJsonAtomic(path: string, value: unknown): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileNamed(tmp, JSON.stringify(value, null, 2) + '\n', { mode: 0o600 });
  renameSync(tmp, path);
}

/** Create a file that must not exist yet (O_EXCL): false if it does. */
export function createJsonExclusive(path: string, value: unknown): boolean {
  // Write a temporary file, then link(2) it into place: the name appears complete or not at
  // all (EEXIST), so a concurrent reader never sees an empty or half-written file.
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileNamed(tmp, JSON.stringify(value, null, 2) + '\n', { mode: 0o600 });
  try {
    linkSync(tmp, path);
    return true;
  } catch (err) {
    if (errnoOf(err) === 'EEXIST') return false;
    throw err;
  } finally {
    unlinkSync(tmp);
  }
}

export function readJson<T>(path: string): T | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return undefined;
    throw err;
  }
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new TsrunError('EINTERNAL', `${path} is not valid JSON (remove it if it is left from a crash)`, { cause: err });
  }
}

function readAll<T>(dir: string): T[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json') && !f.startsWith('.'))
    .sort()
    .map((f) => readJson<T>(join(dir, f)))
    .filter((v): v is T => v !== undefined);
}

export const readNetworks = (stateDir: string) => readAll<NetworkConfig>(networksDir(stateDir));
export const readEndpoints = (stateDir: string) => readAll<Endpoint>(endpointsDir(stateDir));
export const readReleased = (stateDir: string) => readAll<Released>(releasedDir(stateDir));

export function ensureDirs(stateDir: string): void {
  mkdirSync(networksDir(stateDir), { recursive: true, mode: 0o700 });
  mkdirSync(endpointsDir(stateDir), { recursive: true, mode: 0o700 });
  mkdirSync(releasedDir(stateDir), { recursive: true, mode: 0o700 });
}

export function removeFile(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if (errnoOf(err) !== 'ENOENT') throw err;
  }
}
