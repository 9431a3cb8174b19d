// More networks for a container that has its namespace already (`network connect`, and `start`
// for the networks connected while it was stopped). Each is one more veth pair, from that
// network's bridge to the next free ethN inside:
//
//   host                                         container netns tsrun-<id12>
//   ────                                         ────────────────────────────
//   bridge tsrun0 ─── veth1a2b3c4d ════════════ eth0 10.99.0.2/24, default via 10.99.0.1   (attach)
//   bridge tsrun-5e6f7a8b ─── veth9c8d7e6f ════ eth1 10.98.0.3/24                          (connect)
//
// No second default route: the first network's stays the container's way out; the kernel
// reaches the new subnet through eth1 by its own connected route. The endpoint file
// (endpoints/<id>+<network>.json) is written first, naming the connect at work (connectingBy)
// until the address is up; then the veth; then the address. disconnect() undoes them in the
// reverse order, its file last. An endpoint whose connect was killed half-way is found by
// system check (container/check.ts), and undone by the next connect to that network.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { TsrunError, wrap } from '../errors.js';
import { crashPoint } from '../sys/crash.js';
import { ensureBridge, linkExists } from './bridge.js';
import { addressOn, allocate, detach, hostVethName, NETNS_DIR, netnsName, type Attachment } from './endpoint.js';
import { runCommand } from './exec.js';
import { removePortRules } from './firewall.js';
import { withLock } from './lock.js';
import { createNetworkLocked, DEFAULT_NETWORK, findNetwork } from './network.js';
import { hostsEntries } from './peers.js';
import { settleReleased } from './released.js';
import {
  connectKilled,
  createJsonExclusive,
  endpointFileOf,
  endpointPath,
  endpointsDir,
  ensureDirs,
  lockPath,
  readContainerEndpoints,
  readEndpoints,
  readJson,
  removeFile,
  validateContainerId,
  writeJsonAtomic,
  type Endpoint,
  type NetworkConfig,
} from './store.js';

export interface ConnectRequest {
  id: string;
  /** The container's name: what its peers on this network call it. */
  name: string;
  network: string;
  /** More names for the peers' /etc/hosts (--alias). */
  aliases?: string[];
  /** A fixed address (--ip); by default the lowest free one. */
  ip?: string;
  /**
   * The `network connect` at work (`PID@START-TIME`), kept in the endpoint until commitConnect().
   * Absent when `start` connects: the container's startingBy already says who is at work.
   */
  by?: string;
}

/** `ip -batch` lines on the host: the pair, its container end made directly in the namespace. */
export function connectHostBatch(ep: Endpoint): string {
  return [
    `link add ${ep.hostVeth} mtu ${ep.mtu} type veth peer name ${ep.ifname} mtu ${ep.mtu} address ${ep.mac} netns ${ep.netnsName}`,
    `link set ${ep.hostVeth} master ${ep.bridge} up`,
  ].join('\n') + '\n';
}

/** `ip -n <netns> -batch` lines: the address, and no route but the one the address brings. */
export function connectContainerBatch(ep: Endpoint): string {
  return [`link set ${ep.ifname} up`, `addr add ${ep.ip}/${ep.prefixLen} brd + dev ${ep.ifname}`].join('\n') + '\n';
}

/** The first ethN (N ≥ 1) none of the container's endpoints uses (eth0 is the namespace's own). */
export function nextIfname(own: Endpoint[]): string {
  const used = new Set(own.map((e) => e.ifname ?? 'eth0'));
  let n = 1;
  while (used.has(`eth${n}`)) n++;
  return `eth${n}`;
}

async function reserve(stateDir: string, req: ConnectRequest): Promise<{ ep: Endpoint; net: NetworkConfig }> {
  return withLock(lockPath(stateDir), async () => {
    let net = findNetwork(stateDir, req.network);
    if (!net && req.network === DEFAULT_NETWORK) net = createNetworkLocked(stateDir, { name: DEFAULT_NETWORK });
    if (!net) throw new TsrunError('ENETWORK', `network ${req.network} not found`);
    const ns = netnsName(req.id);
    if (!existsSync(`${NETNS_DIR}/${ns}`)) throw new TsrunError('ESTATE', `container ${req.id.slice(0, 12)} has no network namespace to connect (${NETNS_DIR}/${ns})`);
    let endpoints = readEndpoints(stateDir);
    const same = endpoints.find((e) => e.id === req.id && e.network === net.name);
    if (same) {
      if (same.ifname === undefined || !connectKilled(same)) throw new TsrunError('ESTATE', `endpoint with name ${req.name} already exists in network ${net.name}`);
      // What a connect killed half-way left: undone, then made again.
      await disconnect(stateDir, req.id, net.name);
      endpoints = endpoints.filter((e) => e !== same);
    }
    await ensureBridge(net);
    // This container's released veth on this network has the name the new one needs; one holding
    // the address asked for (--ip) goes now rather than at the end of its grace.
    const leaving = await settleReleased(
      stateDir,
      (r) => r.network === net.name && (r.id === req.id || (req.ip !== undefined && r.ip === req.ip)),
    );
    const ip = allocate(net, [...endpoints, ...leaving], req.ip);
    const ep: Endpoint = {
      id: req.id,
      name: req.name,
      aliases: req.aliases ?? [],
      ...addressOn(net, ip),
      hostVeth: hostVethName(req.id, net.name),
      netnsName: ns,
      netnsPath: `${NETNS_DIR}/${ns}`,
      ports: [],
      pid: 0,
      created: new Date().toISOString(),
      ifname: nextIfname(endpoints.filter((e) => e.id === req.id)),
      ...(req.by !== undefined && { connectingBy: req.by }),
    };
    // Recorded before anything exists in the kernel: whatever happens next, disconnect() knows what to undo.
    if (!createJsonExclusive(endpointPath(stateDir, req.id, net.name), ep)) {
      throw new TsrunError('ESTATE', `endpoint with name ${req.name} already exists in network ${net.name}`);
    }
    return { ep, net };
  });
}

/** Connect the container, which has its network namespace already, to one more network. */
export async function connect(stateDir: string, req: ConnectRequest): Promise<Attachment & { ifname: string }> {
  validateContainerId(req.id);
  ensureDirs(stateDir);
  const { ep, net } = await reserve(stateDir, req);
  crashPoint('connect:endpoint-written');
  const short = req.id.slice(0, 12);
  const ifname = ep.ifname!;
  try {
    await runCommand(['ip', '-batch', '-'], connectHostBatch(ep), `create veth pair ${ep.hostVeth} for container ${short} on network ${net.name}`);
    crashPoint('connect:veth-made');
    await runCommand(['ip', '-n', ep.netnsName, '-batch', '-'], connectContainerBatch(ep), `configure ${ifname} ${ep.ip}/${ep.prefixLen} in container ${short}`);
  } catch (err) {
    await disconnect(stateDir, req.id, net.name).catch(() => {});
    throw wrap('ENETWORK', `connect container ${short} to network ${net.name}`, err);
  }
  const { network, bridge, ip, prefixLen, gateway, mac, mtu, hostVeth, netnsPath, ports } = ep;
  return { network, bridge, ip, prefixLen, gateway, mac, mtu, hostVeth, netnsName: ep.netnsName, netnsPath, ports, ifname, hostsEntries: hostsEntries(stateDir, req.id) };
}

/** The connect is done (and recorded by the caller): its endpoint no longer names it. */
export async function commitConnect(stateDir: string, id: string, network: string): Promise<void> {
  await withLock(lockPath(stateDir), () => {
    const path = endpointPath(stateDir, id, network);
    const ep = readJson<Endpoint>(path);
    if (!ep || ep.connectingBy === undefined) return;
    delete ep.connectingBy;
    writeJsonAtomic(path, ep);
  });
}

/**
 * A renamed container: its endpoints carry the new name, which its peers' /etc/hosts give it.
 * Returns the networks it is on, whose peers' files the caller rewrites.
 */
export async function renameEndpoints(stateDir: string, id: string, name: string): Promise<string[]> {
  return withLock(lockPath(stateDir), () =>
    readContainerEndpoints(stateDir, id).map((ep) => {
      writeJsonAtomic(join(endpointsDir(stateDir), endpointFileOf(ep)), { ...ep, name });
      return ep.network;
    }),
  );
}

/**
 * Take the container off a network `connect` added: its veth (the container's end goes with
 * it), then its file, which frees the address. Idempotent; needs nothing but the file.
 */
export async function disconnect(stateDir: string, id: string, network: string): Promise<void> {
  const path = endpointPath(stateDir, id, network);
  const ep = readJson<Endpoint>(path);
  const veth = ep?.hostVeth ?? hostVethName(id, network);
  if (linkExists(veth)) {
    // Synchronous, unlike detach()'s hand-off: the namespace lives on, and so would the veth.
    await runCommand(['ip', 'link', 'del', veth], '', `remove veth ${veth} of container ${id.slice(0, 12)} on network ${network}`).catch((err: unknown) => {
      if (linkExists(veth)) throw err; // else the kernel was faster
    });
  }
  if (ep) await removePortRules(ep);
  removeFile(path);
}

/** Release an endpoint system check found stray: a connect killed half-way takes only its own
 * endpoint (its container runs on); any other belongs to a container that is not running, and
 * its whole network goes. */
export async function releaseStray(stateDir: string, ep: Endpoint): Promise<void> {
  if (ep.ifname !== undefined && connectKilled(ep)) await disconnect(stateDir, ep.id, ep.network);
  else await detach(stateDir, ep.id);
}
