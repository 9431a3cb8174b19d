// What the network layer keeps on disk, so that any later tsrun process (after a crash too)
// knows what exists and can undo it:
//   <stateDir>/networks/<name>.json   a network (NetworkConfig)
//   <stateDir>/networks/.lock         flock'd while allocating (lock.ts)
//   <stateDir>/endpoints/<id>.json    a container's attachment made by `start`: address, veth
//                                     (eth0 inside), netns, ports
//   <stateDir>/endpoints/<id>+<network>.json
//                                     one more attachment, made by `network connect` (eth1,
//                                     eth2…) in the same netns; `+` is in neither an id nor a
//                                     network name, so the two kinds never meet
//   <stateDir>/released/<id>.json, released/<id>+<network>.json
//                                     a detached endpoint whose veth the kernel is still
//                                     removing (endpoint.ts, detach): its address stays taken
// An endpoint file is written *before* any kernel object exists, so detach() always finds out
// what to remove; the addresses in use are exactly the ones in endpoint and released files.
// A container has at most one endpoint per network. Files written before `network connect`
// existed are the first kind, unchanged: nothing to migrate.
import { existsSync, linkSync, mkdirSync, readFileSync, readdirSync, rmSync, unlinkSync } from 'node:fs';
import { writeFileNamed } from '../sys/atomic.js';
import { join } from 'node:path';
import { TsrunError, errnoOf } from '../errors.js';
import { ownerGone, tokenAlive } from '../sys/proc.js';
import type { PortMapping } from './publish.js';
import { sha256Text } from '../sys/text-hash.js';

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
  /** Host end of the veth pair, on the bridge; the container end is eth0 (or `ifname`). */
  hostVeth: string;
  /** Name under /run/netns (what `ip netns` lists) and its path. */
  netnsName: string;
  netnsPath: string;
  /** With the host ports actually chosen. */
  ports: PortMapping[];
  pid: number;
  created: string;
  /**
   * Only on an endpoint `network connect` added: its interface in the container (eth1, eth2…),
   * and its file is endpoints/<id>+<network>.json. Absent on the one `start` made with the
   * namespace (eth0, endpoints/<id>.json), which owns that namespace.
   */
  ifname?: string;
  /**
   * The `network connect` making it (`PID@START-TIME`), until its interface is up and recorded:
   * one naming a dead process is what a killed connect left, on a container still running.
   */
  connectingBy?: string;
}

/** An endpoint a `network connect` was making when it was killed (its container runs on). */
export const connectKilled = (ep: Endpoint) => ep.connectingBy !== undefined && !tokenAlive(ep.connectingBy);

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
/** The file name of a container's endpoint: <id>.json for the one made with its namespace,
 * <id>+<network>.json for one `network connect` added. */
export const endpointFile = (id: string, connected?: string) =>
  connected === undefined ? `${validateContainerId(id)}.json` : `${validateContainerId(id)}+${validateNetworkName(connected)}.json`;
/** The endpoint file of this endpoint (its kind told by `ifname`). */
export const endpointFileOf = (ep: Pick<Endpoint, 'id' | 'network' | 'ifname'>) => endpointFile(ep.id, ep.ifname === undefined ? undefined : ep.network);
export const endpointPath = (stateDir: string, id: string, connected?: string) => join(endpointsDir(stateDir), endpointFile(id, connected));
/** docker's EndpointID (64 hex digits), derived from what the endpoint file records: a new one
 * each time the container joins the network. */
export const endpointId = (ep: Pick<Endpoint, 'id' | 'network' | 'created'>) =>
  sha256Text(`${ep.id}+${ep.network}+${ep.created}`);
export const releasedDir = (stateDir: string) => join(stateDir, 'released');
export const releasedPath = (stateDir: string, ep: Pick<Endpoint, 'id' | 'network' | 'ifname'>) => join(releasedDir(stateDir), endpointFileOf(ep));

/** Write a temporary file, then rename(2) it over the target: readers never see half a file. */
export { writeJsonAtomic } from '../sys/atomic.js';

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

/**
 * The temporary files of records whose writer was killed before its rename or link:
 * `<name>.json.tmp-<pid>` (createJsonExclusive), `.tmp-<pid>-<hex>` (writeFileAtomic), or
 * `.tmp-<hex>` (writeFileAtomic before it named its pid). Lock held.
 *   - networks/: every writer holds the network lock, so with it held, any such file is a dead
 *     writer's.
 *   - endpoints/ and released/: detach() writes released/ without the lock, so there a file
 *     goes only when the process its name gives is gone; a file without a pid stays.
 */
export function sweepDeadWriters(stateDir: string): void {
  for (const dir of [networksDir(stateDir), endpointsDir(stateDir), releasedDir(stateDir)]) {
    if (!existsSync(dir)) continue;
    const locked = dir === networksDir(stateDir);
    for (const f of readdirSync(dir)) {
      const m = /\.json\.tmp-(?:(\d{1,7})(?:-[0-9a-f]{12})?|[0-9a-f]{12})$/.exec(f);
      if (m && (locked || (m[1] !== undefined && ownerGone(Number(m[1]))))) rmSync(join(dir, f), { force: true });
    }
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

function readAll<T>(dir: string, keep: (file: string) => boolean = () => true): T[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json') && !f.startsWith('.') && keep(f))
    .sort()
    .map((f) => readJson<T>(join(dir, f)))
    .filter((v): v is T => v !== undefined);
}

export const readNetworks = (stateDir: string) => readAll<NetworkConfig>(networksDir(stateDir));
export const readEndpoints = (stateDir: string) => readAll<Endpoint>(endpointsDir(stateDir));
export const readReleased = (stateDir: string) => readAll<Released>(releasedDir(stateDir));

/** A network by name, or by a unique prefix of its id (as docker accepts). */
export function findNetwork(stateDir: string, nameOrId: string): NetworkConfig | undefined {
  if (/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(nameOrId)) {
    const byName = readJson<NetworkConfig>(networkPath(stateDir, nameOrId));
    if (byName) return byName;
  }
  const byId = readNetworks(stateDir).filter((n) => nameOrId.length >= 3 && n.id.startsWith(nameOrId));
  return byId.length === 1 ? byId[0] : undefined;
}

/** The endpoints `network connect` added to this container (one directory listing, no more
 * when there are none). */
export function readConnected(stateDir: string, id: string): Endpoint[] {
  const prefix = `${validateContainerId(id)}+`;
  return readAll<Endpoint>(endpointsDir(stateDir), (f) => f.startsWith(prefix));
}

/** Every endpoint of a container: the one made with its namespace first, if any. */
export function readContainerEndpoints(stateDir: string, id: string): Endpoint[] {
  const own = readJson<Endpoint>(endpointPath(stateDir, id));
  return [...(own ? [own] : []), ...readConnected(stateDir, id)];
}

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
