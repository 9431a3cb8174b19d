// Networks: `tsrun network create/rm/ls/inspect`. A network is a name, a bridge and an IPv4
// subnet, kept in <stateDir>/networks/<name>.json. The default network "bridge" (bridge
// tsrun0, 10.99.0.0/24 unless configured) is created on first use. Subnets must not overlap
// each other nor the host's routes: the kernel could not tell where to send a packet.
import { crashPoint } from '../sys/crash.js';
import { randomBytes } from '../sys/random.js';
import { existsSync } from 'node:fs';
import { TsrunError } from '../errors.js';
import { defaultMtu, hostRoutes, removeBridge } from './bridge.js';
import { formatCidr, formatIp, isHostAddress, overlaps, parseCidr, parseIp, type Cidr } from './ipv4.js';
import { withLock } from './lock.js';
import { settleReleased } from './released.js';
import {
  connectKilled,
  createJsonExclusive,
  endpointId,
  ensureDirs,
  findNetwork,
  lockPath,
  networkPath,
  readEndpoints,
  readNetworks,
  removeFile,
  sweepDeadWriters,
  validateNetworkName,
  type Endpoint,
  type NetworkConfig,
} from './store.js';

import { DEFAULT_BRIDGE, DEFAULT_NETWORK, defaultSubnet } from './network-names.js';
export { DEFAULT_BRIDGE, DEFAULT_NETWORK, DEFAULT_SUBNET, defaultSubnet } from './network-names.js';
export { findNetwork } from './store.js';

export interface CreateNetworkOptions {
  name: string;
  /** IPv4 CIDR; by default the first free 10.99.N.0/24 (N ≥ 1; 10.99.0.0/24 is the default network's). */
  subnet?: string;
  /** By default the subnet's first address. */
  gateway?: string;
  /** Linux bridge name; by default tsrun0 for "bridge", tsrun-<8 hex of the network id> otherwise. */
  bridge?: string;
  /** By default the MTU of the host's default-route interface. */
  mtu?: number;
}

function invalid(what: string): TsrunError {
  return new TsrunError('EINVAL_FLAG', what);
}

function validSubnet(text: string): Cidr {
  const c = parseCidr(text);
  if (!c) throw invalid(`invalid subnet "${text}": expected an IPv4 CIDR such as 10.99.1.0/24`);
  if (c.hostBitsSet) throw invalid(`invalid subnet "${text}": host bits are set; did you mean ${formatCidr(c)}?`);
  if (c.prefixLen < 8 || c.prefixLen > 30) throw invalid(`invalid subnet "${text}": the prefix length must be between /8 and /30`);
  return c;
}

/** Why this subnet cannot be used, or undefined. */
function conflict(c: Cidr, networks: NetworkConfig[], bridge: string): string | undefined {
  for (const n of networks) {
    if (overlaps(c, parseCidr(n.subnet)!)) return `it overlaps with network ${n.name} (${n.subnet})`;
  }
  const ours = new Set([bridge, ...networks.map((n) => n.bridge)]);
  for (const r of hostRoutes()) {
    if (r.cidr.prefixLen === 0 || ours.has(r.iface)) continue;
    if (overlaps(c, r.cidr)) return `it overlaps with the host's route to ${formatCidr(r.cidr)} on ${r.iface}`;
  }
  return undefined;
}

/** Create the network record (the caller holds the lock). Changes nothing in the kernel. */
export function createNetworkLocked(stateDir: string, opts: CreateNetworkOptions): NetworkConfig {
  const name = validateNetworkName(opts.name);
  ensureDirs(stateDir);
  const networks = readNetworks(stateDir);
  if (networks.some((n) => n.name === name)) throw new TsrunError('ENETWORK', `network with name ${name} already exists`);
  const id = randomBytes(32).toString('hex');

  const bridge = opts.bridge ?? (name === DEFAULT_NETWORK ? process.env.TSRUN_BRIDGE || DEFAULT_BRIDGE : `tsrun-${id.slice(0, 8)}`);
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(bridge)) throw invalid(`invalid bridge name "${bridge}": at most 15 characters of [A-Za-z0-9_.-]`);
  const user = networks.find((n) => n.bridge === bridge);
  if (user) throw new TsrunError('ENETWORK', `bridge ${bridge} is already used by network ${user.name}`);
  if (existsSync(`/sys/class/net/${bridge}`) && !existsSync(`/sys/class/net/${bridge}/bridge`)) {
    throw new TsrunError('ENETWORK', `cannot use ${bridge} as a bridge: the host has an interface of that name that is not a bridge`);
  }

  let cidr: Cidr;
  if (opts.subnet !== undefined) {
    cidr = validSubnet(opts.subnet);
    const why = conflict(cidr, networks, bridge);
    if (why) throw new TsrunError('ENETWORK', `cannot use subnet ${opts.subnet} for network ${name}: ${why}`);
  } else if (name === DEFAULT_NETWORK) {
    cidr = validSubnet(defaultSubnet());
    const why = conflict(cidr, networks, bridge);
    if (why) {
      throw new TsrunError('ENETWORK', `cannot use the default subnet ${defaultSubnet()}: ${why}; choose another with TSRUN_BRIDGE_SUBNET`);
    }
  } else {
    const free = Array.from({ length: 255 }, (_, i) => parseCidr(`10.99.${i + 1}.0/24`)!).find((c) => !conflict(c, networks, bridge));
    if (!free) throw new TsrunError('ENETWORK', 'no free subnet left in 10.99.1.0-10.99.255.0/24; give one with --subnet');
    cidr = free;
  }

  const gateway = opts.gateway ?? formatIp(cidr.base + 1);
  const gw = parseIp(gateway);
  if (gw === undefined || !isHostAddress(cidr, gw)) throw invalid(`invalid gateway "${gateway}": it must be a host address inside ${formatCidr(cidr)}`);
  const mtu = opts.mtu ?? defaultMtu();
  if (!Number.isInteger(mtu) || mtu < 576 || mtu > 65535) throw invalid(`invalid MTU ${mtu}: expected 576-65535`);

  const net: NetworkConfig = { name, id, bridge, subnet: formatCidr(cidr), gateway, mtu, created: new Date().toISOString() };
  if (!createJsonExclusive(networkPath(stateDir, name), net)) throw new TsrunError('ENETWORK', `network with name ${name} already exists`);
  return net;
}

export function createNetwork(stateDir: string, opts: CreateNetworkOptions): Promise<NetworkConfig> {
  return withLock(lockPath(stateDir), () => createNetworkLocked(stateDir, opts));
}

export function listNetworks(stateDir: string): NetworkConfig[] {
  return readNetworks(stateDir);
}

export interface NetworkInspect extends NetworkConfig {
  /** Every endpoint on the network: containers started on it, and those `network connect` added. */
  containers: Array<Pick<Endpoint, 'id' | 'name' | 'ip' | 'prefixLen' | 'mac' | 'hostVeth'> & { endpointId: string; ifname: string }>;
}

export function inspectNetwork(stateDir: string, nameOrId: string): NetworkInspect {
  const net = findNetwork(stateDir, nameOrId);
  if (!net) throw new TsrunError('ENETWORK', `network ${nameOrId} not found`);
  const containers = readEndpoints(stateDir)
    .filter((e) => e.network === net.name && !connectKilled(e))
    .map((e) => ({ id: e.id, name: e.name, ip: e.ip, prefixLen: e.prefixLen, mac: e.mac, hostVeth: e.hostVeth, endpointId: endpointId(e), ifname: e.ifname ?? 'eth0' }));
  return { ...net, containers };
}

/**
 * What `network inspect` prints: the network's record, and its containers as docker lists them
 * (`Containers`, by container ID), so that `{{range .Containers}}{{.IPv4Address}}{{end}}` works.
 */
export function networkJson(n: NetworkInspect): Record<string, unknown> {
  const { containers, ...record } = n;
  return {
    ...record,
    Containers: Object.fromEntries(
      containers.map((c) => [c.id, { Name: c.name, EndpointID: c.endpointId, MacAddress: c.mac, IPv4Address: `${c.ip}/${c.prefixLen}`, IPv6Address: '' }]),
    ),
  };
}

/**
 * Remove a network: its bridge, its firewall rules, its record. Refused while containers are
 * attached, and for the default network unless `force` (docker never removes it).
 */
export async function removeNetwork(stateDir: string, nameOrId: string, opts: { force?: boolean } = {}): Promise<void> {
  await withLock(lockPath(stateDir), async () => {
    const net = findNetwork(stateDir, nameOrId);
    if (!net) throw new TsrunError('ENETWORK', `network ${nameOrId} not found`);
    if (net.name === DEFAULT_NETWORK && !opts.force) {
      throw new TsrunError('ENETWORK', `${DEFAULT_NETWORK} is a pre-defined network and cannot be removed`);
    }
    const attached = readEndpoints(stateDir).filter((e) => e.network === net.name);
    if (attached.length > 0) {
      throw new TsrunError('ENETWORK', `network ${net.name} has active endpoints (${attached.map((e) => e.name).join(', ')}); stop or remove them first`);
    }
    await takeDown(stateDir, net);
    crashPoint('network-rm:bridge-removed');
    removeFile(networkPath(stateDir, net.name));
  });
}

/**
 * `tsrun network prune`: every network no container uses. User-defined ones are removed (as
 * docker's prune); the default network keeps its record, and loses its bridge and firewall
 * rules, which its next container makes again (ensureBridge). So nothing of tsrun stays in the
 * host's network once its containers are gone. Returns the names of the removed networks.
 */
export async function pruneNetworks(stateDir: string): Promise<string[]> {
  return withLock(lockPath(stateDir), async () => {
    sweepDeadWriters(stateDir);
    const used = new Set(readEndpoints(stateDir).map((e) => e.network));
    const removed: string[] = [];
    for (const net of readNetworks(stateDir)) {
      if (used.has(net.name)) continue;
      await takeDown(stateDir, net);
      if (net.name === DEFAULT_NETWORK) continue;
      removeFile(networkPath(stateDir, net.name));
      removed.push(net.name);
    }
    return removed;
  });
}

/** The network's kernel side: its released veths, its bridge, its firewall rules. Lock held. */
async function takeDown(stateDir: string, net: NetworkConfig): Promise<void> {
  await settleReleased(stateDir, (r) => r.network === net.name);
  await removeBridge(net.bridge);
}
