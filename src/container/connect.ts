// `tsrun network connect` / `network disconnect`: a container joins or leaves one more network.
//
// What a container was connected to is part of what it is, as docker keeps it in its config:
// networks.json (network.ts) lists the networks `connect` added, with their aliases and
// address, and every start attaches them after the one it was created with. A container that
// runs (or is paused, or between two runs of its restart policy) is connected at once too: its
// endpoints (src/netns/connect.ts) are the truth of which networks it is on. The order of the
// writes keeps a killed command harmless: connect makes the endpoint, then records the network,
// then marks the endpoint done; disconnect removes the endpoint, then the record.
//
// tsrun does not take a container off the network it was created with (docker can): that
// endpoint owns the container's network namespace, and its record (state.json) its ports.
import { isIPv4 } from '../sys/ip-syntax.js';
import { TsrunError } from '../errors.js';
import { parseNetworkAlias } from '../netns/dns.js';
import { isHostAddress, parseCidr, parseIp } from '../netns/ipv4.js';
import { DEFAULT_NETWORK } from '../netns/network-names.js';
import { findNetwork, readContainerEndpoints } from '../netns/store.js';
import { selfToken } from '../sys/proc.js';
import { withLock } from '../sys/lock.js';
import type { Found } from './lookup.js';
import { readJoined, refreshPeers, usesBridge, writeHosts, writeJoined, type JoinedNetwork } from './network.js';
import { ContainerPaths } from './paths.js';
import type { ContainerRecord } from './record.js';
import { observe, type Observed } from './status.js';

export interface ConnectOptions {
  /** --alias: more names its peers on this network know it by. */
  aliases: string[];
  /** --ip: a fixed address (user-defined networks only). */
  ip?: string;
}

/** Its network namespace and endpoints exist: running, paused, between restarts, or starting. */
const attached = (seen: Observed) =>
  seen.status === 'running' || seen.status === 'paused' || seen.status === 'restarting' || (seen.starting === true && !seen.orphaned);

/** The network the container was created with, by name (it may have been given by ID prefix). */
function firstNetwork(storeRoot: string, record: ContainerRecord): string {
  return findNetwork(storeRoot, record.options.network)?.name ?? record.options.network;
}

/** docker's refusals for containers that have no network namespace of their own. */
function refuseShared(record: ContainerRecord, network: string): void {
  const mode = record.options.network;
  if (network === 'host') throw new TsrunError('ENETWORK', 'container cannot be disconnected from host network or connected to host network');
  if (mode === 'host' || mode.startsWith('container:')) {
    throw new TsrunError('ENETWORK', 'container sharing network namespace with another container or host cannot be connected to any other network');
  }
  if (mode === 'none' || network === 'none') {
    throw new TsrunError('ENETWORK', 'container cannot be connected to multiple networks with one of the networks in private (none) mode');
  }
}

export async function connectContainer(storeRoot: string, { paths, record }: Found, networkRef: string, opts: ConnectOptions): Promise<void> {
  await withLock(paths.lock, async () => {
    refuseShared(record, networkRef);
    const { connect, commitConnect } = await import('../netns/index.js');
    // The default network exists once its first container ran; before, it is made on first use.
    const net = findNetwork(storeRoot, networkRef);
    if (!net && networkRef !== DEFAULT_NETWORK) throw new TsrunError('ENETWORK', `network ${networkRef} not found`);
    const name = net?.name ?? DEFAULT_NETWORK;
    // As docker: the default network gives no names, and hands out its addresses itself.
    if (name === DEFAULT_NETWORK && opts.aliases.length > 0) throw new TsrunError('EINVAL_FLAG', 'network-scoped alias is supported only for containers in user defined networks');
    if (name === DEFAULT_NETWORK && opts.ip !== undefined) throw new TsrunError('EINVAL_FLAG', 'user specified IP address is supported on user defined networks only');
    for (const a of opts.aliases) parseNetworkAlias(a);
    if (opts.ip !== undefined) {
      if (!isIPv4(opts.ip)) throw new TsrunError('EINVAL_FLAG', `invalid argument "${opts.ip}" for "--ip" flag: not an IPv4 address`);
      if (!isHostAddress(parseCidr(net!.subnet)!, parseIp(opts.ip)!)) throw new TsrunError('EINVAL_FLAG', `invalid address ${opts.ip}: not a host address of ${net!.subnet}`);
    }
    const already = new TsrunError('ESTATE', `endpoint with name ${record.name} already exists in network ${name}`);
    if (usesBridge(record.options.network) && firstNetwork(storeRoot, record) === name) throw already;
    const recorded = readJoined(paths);
    const others = recorded.filter((j) => j.network !== name);
    const wanted: JoinedNetwork = { network: name, aliases: opts.aliases, ...(opts.ip !== undefined && { ip: opts.ip }) };
    if (!attached(observe(paths))) {
      // Stopped: recorded, for the next start to attach.
      if (others.length < recorded.length) throw already;
      writeJoined(paths, [...others, wanted]);
      return;
    }
    // Running: its endpoint says whether it is on the network already (connect refuses then);
    // one a killed connect left half-made is undone and made again.
    await connect(storeRoot, { id: record.id, name: record.name, network: name, aliases: opts.aliases, ...(opts.ip !== undefined && { ip: opts.ip }), by: selfToken() });
    writeJoined(paths, [...others, wanted]);
    await commitConnect(storeRoot, record.id, name);
    writeHosts(storeRoot, record.id);
    refreshPeers(storeRoot, name, record.id);
  });
}

export async function disconnectContainer(storeRoot: string, { paths, record }: Found, networkRef: string, opts: { force: boolean }): Promise<void> {
  await withLock(paths.lock, async () => {
    const { disconnect } = await import('../netns/index.js');
    if (networkRef === 'host' && record.options.network === 'host') {
      throw new TsrunError('ENETWORK', 'container cannot be disconnected from host network or connected to host network');
    }
    const net = findNetwork(storeRoot, networkRef);
    // -f: a network removed since it was connected is still taken off the record.
    if (!net && !opts.force && networkRef !== DEFAULT_NETWORK) throw new TsrunError('ENETWORK', `network ${networkRef} not found`);
    const name = net?.name ?? networkRef;
    if (usesBridge(record.options.network) && firstNetwork(storeRoot, record) === name) {
      throw new TsrunError('ENETWORK', `tsrun cannot disconnect container ${record.name} from ${name}, the network it was created with; only from networks added with tsrun network connect`);
    }
    const joined = readJoined(paths);
    const live = attached(observe(paths));
    const endpoint = live && readContainerEndpoints(storeRoot, record.id).some((e) => e.network === name);
    if (!endpoint && !joined.some((j) => j.network === name)) {
      throw new TsrunError('ENETWORK', `container ${record.id} is not connected to network ${name}`);
    }
    if (endpoint) await disconnect(storeRoot, record.id, name);
    writeJoined(paths, joined.filter((j) => j.network !== name));
    if (live) {
      writeHosts(storeRoot, record.id);
      refreshPeers(storeRoot, name, record.id);
    }
  });
}

/**
 * At start, once the container has its first network: attach the networks connected since it
 * was created. `run` never gets here: its container was made a moment ago, with none.
 */
export async function attachJoined(storeRoot: string, record: ContainerRecord): Promise<void> {
  const joined = readJoined(new ContainerPaths(storeRoot, record.id));
  if (joined.length === 0) return;
  const { connect } = await import('../netns/index.js');
  for (const j of joined) {
    if (!findNetwork(storeRoot, j.network) && j.network !== DEFAULT_NETWORK) {
      throw new TsrunError('ENETWORK', `network ${j.network} not found: it was removed after container ${record.name} was connected to it; tsrun network disconnect -f ${j.network} ${record.name}`);
    }
    await connect(storeRoot, { id: record.id, name: record.name, network: j.network, aliases: j.aliases, ...(j.ip !== undefined && { ip: j.ip }) });
  }
  writeHosts(storeRoot, record.id);
  for (const j of joined) refreshPeers(storeRoot, j.network, record.id);
}
