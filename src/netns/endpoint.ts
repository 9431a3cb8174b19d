// Connecting a container to a network, between the helper's clone() and the container's exec:
//
//   host                                     container netns (the helper's child, pid P)
//   ────                                     ──────────────────────────────────────────
//   bridge tsrun0 10.99.0.1/24
//     └─ veth1a2b3c4d ═══════ veth pair ═══════ eth0 10.99.0.2/24, default via 10.99.0.1
//   /run/netns/tsrun-<id12> ── bind mount of /proc/P/ns/net (`ip netns exec` works)
//   iptables: DNAT host ports → 10.99.0.2   (firewall-rules.ts)
//
// Three processes at most: `ip -batch -` on the host side, `ip -n <netns> -batch -` inside,
// and `iptables-restore` when ports are published.
//
// Detaching a container whose processes are gone hands the veth to the kernel: deleting the
// netns bind mount frees the namespace, and the kernel's cleanup_net removes the pair in a
// workqueue ~20 ms later. `ip link del` would do it now but wait that long for an RCU grace
// period (32 ms instead of 2 ms here). Until the veth is seen gone, a released/<id>.json file
// keeps its address taken; the next attach (under the network lock) drops the files of veths
// that are gone, and deletes a veth itself when it must: one still there after
// RELEASE_GRACE_MS (released.ts; someone holds the namespace: an `ip netns exec` shell), one whose name the
// attaching container needs, or one on a network being removed.
//
// `network connect` adds more endpoints to the same namespace (eth1, eth2…: connect.ts). They
// live and die with it: detach() releases them all, the namespace's own endpoint last.
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { TsrunError, errnoOf, wrap } from '../errors.js';
import { MNT_DETACH, umount2 } from '../sys/libc.js';
import { ensureBridge, linkExists } from './bridge.js';
import { observeEquivalent, runCommand } from './exec.js';
import { addPortRules, removePortRules, removeTagged, setupNetworkFirewall } from './firewall.js';
import { endpointTag } from './firewall-rules.js';
import { resolveHostPorts } from './host-ports.js';
import { formatIp, isHostAddress, macForIp, parseCidr, parseIp, size } from './ipv4.js';
import { withLock } from './lock.js';
import { hostsEntries } from './peers.js';
import { settleReleased } from './released.js';
export { hostsEntries, networkPeers, type Peer } from './peers.js';
import { createNetworkLocked, DEFAULT_NETWORK, findNetwork, listNetworks } from './network.js';
import type { PortMapping } from './publish.js';
import {
  createJsonExclusive,
  endpointPath,
  ensureDirs,
  lockPath,
  readConnected,
  readEndpoints,
  readJson,
  releasedDir,
  releasedPath,
  removeFile,
  validateContainerId,
  writeJsonAtomic,
  type Endpoint,
  type NetworkConfig,
  type Released,
} from './store.js';
import { sha256Text } from '../sys/text-hash.js';

export const NETNS_DIR = '/run/netns';

/**
 * Names derived from the container id, so they can be found again without any record. The veth
 * of an endpoint `network connect` added is named after the container and that network.
 */
export const hostVethName = (id: string, connected?: string) =>
  `veth${sha256Text(connected === undefined ? id : `${id}+${connected}`).slice(0, 8)}`;
export const netnsName = (id: string) => `tsrun-${id.slice(0, 12)}`;

export interface AttachRequest {
  id: string;
  /** The container's name: what its peers' /etc/hosts call it. */
  name: string;
  /**
   * Host pid of the container's first process, still in its fresh network namespace; or
   * absent: attach() then creates a persistent namespace (netnsPath) for the container to join.
   */
  pid?: number;
  /** Default: "bridge", created with tsrun0 and 10.99.0.0/24 if it does not exist. */
  network?: string;
  ports?: PortMapping[];
  /** More names for the peers' /etc/hosts (--network-alias). */
  aliases?: string[];
  /** A fixed address (--ip); by default the lowest free one. */
  ip?: string;
}

/** What attach() made: the endpoint as recorded, less its bookkeeping, plus the peers' names. */
export type Attachment = Pick<
  Endpoint,
  'network' | 'bridge' | 'ip' | 'prefixLen' | 'gateway' | 'mac' | 'mtu' | 'hostVeth' | 'netnsName' | 'netnsPath' | 'ports'
> & {
  /** /etc/hosts lines for the other containers on the network (none on the default network). */
  hostsEntries: Array<[ip: string, names: string]>;
};

/** The lowest free address of the network (or `wanted`), given every endpoint that holds one. */
export function allocate(net: NetworkConfig, endpoints: Endpoint[], wanted?: string): string {
  const cidr = parseCidr(net.subnet)!;
  const used = new Set([net.gateway, ...endpoints.filter((e) => e.network === net.name).map((e) => e.ip)]);
  if (wanted !== undefined) {
    const n = parseIp(wanted);
    if (n === undefined || !isHostAddress(cidr, n)) throw new TsrunError('EINVAL_FLAG', `invalid address ${wanted}: not a host address of ${net.subnet}`);
    if (used.has(wanted)) throw new TsrunError('ENETWORK', `address ${wanted} is already in use on network ${net.name}`);
    return wanted;
  }
  for (let n = cidr.base + 1; n < cidr.base + size(cidr) - 1; n++) {
    if (!used.has(formatIp(n))) return formatIp(n);
  }
  throw new TsrunError('ENETWORK', `no free address left in network ${net.name} (${net.subnet})`);
}

/** `ip -batch` lines run on the host: the veth pair (its container end created directly in the
 * container's namespace as eth0), the host end on the bridge, and the netns bind mount. */
export function hostBatch(ep: Endpoint): string {
  // Without a pid, the namespace is made here, before the container exists: it then outlives
  // every run of the container (restart policies), which joins it with setns(2).
  const target = ep.pid ? String(ep.pid) : ep.netnsName;
  return [
    ...(ep.pid ? [] : [`netns add ${ep.netnsName}`]),
    `link add ${ep.hostVeth} mtu ${ep.mtu} type veth peer name eth0 mtu ${ep.mtu} address ${ep.mac} netns ${target}`,
    `link set ${ep.hostVeth} master ${ep.bridge} up`,
    // A bridge never sends a frame back out of the port it came in by, unless told to: needed
    // when a container reaches its own published port through a host address.
    `link set ${ep.hostVeth} type bridge_slave hairpin on`,
    ...(ep.pid ? [`netns attach ${ep.netnsName} ${ep.pid}`] : []),
  ].join('\n') + '\n';
}

/** `ip -n <netns> -batch` lines run inside the container's namespace. */
export function containerBatch(ep: Endpoint): string {
  return [
    'link set lo up',
    'link set eth0 up',
    `addr add ${ep.ip}/${ep.prefixLen} brd + dev eth0`,
    `route add default via ${ep.gateway} dev eth0`,
  ].join('\n') + '\n';
}

/** What an endpoint at `ip` on `net` has from the network: its bridge, prefix, gateway, MAC and MTU. */
export function addressOn(net: NetworkConfig, ip: string): Pick<Endpoint, 'network' | 'bridge' | 'ip' | 'prefixLen' | 'gateway' | 'mac' | 'mtu'> {
  return { network: net.name, bridge: net.bridge, ip, prefixLen: parseCidr(net.subnet)!.prefixLen, gateway: net.gateway, mac: macForIp(parseIp(ip)!), mtu: net.mtu };
}

async function reserve(stateDir: string, req: AttachRequest): Promise<{ ep: Endpoint; net: NetworkConfig }> {
  const networkName = req.network ?? DEFAULT_NETWORK;
  return withLock(lockPath(stateDir), async () => {
    let net = findNetwork(stateDir, networkName);
    if (!net && networkName === DEFAULT_NETWORK) net = createNetworkLocked(stateDir, { name: DEFAULT_NETWORK });
    if (!net) throw new TsrunError('ENETWORK', `network ${networkName} not found`);
    await ensureBridge(net);
    const endpoints = readEndpoints(stateDir);
    if (endpoints.some((e) => e.id === req.id)) throw new TsrunError('ESTATE', `container ${req.id.slice(0, 12)} is already attached to a network`);
    // A released veth of this same container has the name its new one needs; one holding the
    // address asked for (--ip) goes now rather than at the end of its grace.
    const leaving = await settleReleased(stateDir, (r) => r.id === req.id || (req.ip !== undefined && r.network === net.name && r.ip === req.ip));
    const ip = allocate(net, [...endpoints, ...leaving], req.ip);
    const ports = await resolveHostPorts(req.ports ?? [], endpoints.flatMap((e) => e.ports));
    const ep: Endpoint = {
      id: req.id,
      name: req.name,
      aliases: req.aliases ?? [],
      ...addressOn(net, ip),
      hostVeth: hostVethName(req.id),
      netnsName: netnsName(req.id),
      netnsPath: `${NETNS_DIR}/${netnsName(req.id)}`,
      ports,
      pid: req.pid ?? 0,
      created: new Date().toISOString(),
    };
    // Recorded before anything exists in the kernel: whatever happens next, detach() knows what to undo.
    if (!createJsonExclusive(endpointPath(stateDir, req.id), ep)) throw new TsrunError('ESTATE', `container ${req.id.slice(0, 12)} is already attached`);
    return { ep, net };
  });
}

/**
 * Connect the container to a network: when it returns, everything is made. With `early`, it
 * returns once the namespace and the veth exist, so the container's helper can start joining
 * it, while eth0's address and route inside it and the port rules are made: `ready()` waits
 * for them (and detaches, and throws, if one failed). It must be awaited before the container's
 * program runs, and before anything undoes the attachment. `launched` is called with the
 * address once it is reserved and the host side's `ip` started: from then on the caller's own
 * work overlaps the kernel's. With `insideByChild`, eth0's address, lo and the default route are
 * the container's first process's to set (its `net-up` step), not an `ip -n` here.
 */
export async function attach(
  stateDir: string,
  req: AttachRequest,
  opts: { early?: boolean; launched?: (address: Pick<Endpoint, 'ip' | 'prefixLen' | 'gateway'>) => void; insideByChild?: boolean } = {},
): Promise<Attachment & { ready(): Promise<void> }> {
  validateContainerId(req.id);
  if (req.pid !== undefined && (!Number.isInteger(req.pid) || req.pid <= 0)) throw new TsrunError('EINTERNAL', `attach: invalid pid ${req.pid}`);
  ensureDirs(stateDir);
  const { ep, net } = await reserve(stateDir, req);
  const short = req.id.slice(0, 12);
  // The links and the port rules do not depend on each other (a DNAT rule may name an address
  // before anything answers there): made at the same time, the container waits for the longer.
  const hostSide = runCommand(['ip', '-batch', '-'], hostBatch(ep), `create veth pair ${ep.hostVeth} for container ${short}`);
  opts.launched?.({ ip: ep.ip, prefixLen: ep.prefixLen, gateway: ep.gateway });
  const rest = Promise.allSettled([
    opts.insideByChild ? hostSide : hostSide.then(() => runCommand(['ip', '-n', ep.netnsName, '-batch', '-'], containerBatch(ep), `configure eth0 ${ep.ip}/${ep.prefixLen} in container ${short}`)),
    addPortRules(ep).catch(async () => {
      // tsrun's chains are gone (someone flushed the firewall) while the bridge stayed: restore them.
      await setupNetworkFirewall(net);
      await addPortRules(ep);
    }),
  ]);
  const ready = async () => {
    const failed = (await rest).find((r) => r.status === 'rejected');
    if (failed) {
      await detach(stateDir, req.id).catch(() => {});
      throw wrap('ENETWORK', `attach container ${short} to network ${ep.network}`, failed.reason);
    }
  };
  if (opts.early) {
    try {
      await hostSide;
    } catch {
      await ready(); // throws: the host side's error, after the rest has settled
    }
  } else {
    await ready();
  }
  const { network, bridge, ip, prefixLen, gateway, mac, mtu, hostVeth, netnsPath, ports } = ep;
  return { network, bridge, ip, prefixLen, gateway, mac, mtu, hostVeth, netnsName: ep.netnsName, netnsPath, ports, hostsEntries: hostsEntries(stateDir, req.id), ready };
}

/**
 * Disconnect the container: its veths (the one made with its namespace, and those `network
 * connect` added), netns bind mount, port rules, then its addresses. Idempotent, and needs
 * nothing but the endpoint files (works after tsrun was killed). Returns the networks it was
 * on, for their peers' /etc/hosts.
 * `processesGone`: nothing of the container runs any more, so once its bind mount is deleted
 * the kernel removes the namespace and the veths in it by itself (see the top of this file).
 */
export async function detach(stateDir: string, id: string, opts: { processesGone?: boolean } = {}): Promise<string[]> {
  const path = endpointPath(stateDir, id);
  const ep = readJson<Endpoint>(path);
  const connected = readConnected(stateDir, id);
  const veth = ep?.hostVeth ?? hostVethName(id);
  const ns = ep?.netnsName ?? netnsName(id);
  const mounted = existsSync(`${NETNS_DIR}/${ns}`);
  const vethThere = linkExists(veth);
  const handOff = opts.processesGone === true && ep !== undefined && mounted && vethThere;
  if (handOff) {
    // Before the endpoint files go: an address must never look free while its veth is there.
    mkdirSync(releasedDir(stateDir), { recursive: true, mode: 0o700 });
    const released = new Date().toISOString();
    for (const e of [ep, ...connected.filter((c) => linkExists(c.hostVeth))]) {
      writeJsonAtomic(releasedPath(stateDir, e), { ...e, released } satisfies Released);
    }
  }
  const lines: string[] = [];
  // Deleting one end of a veth pair deletes the other; the namespace goes when its last user does.
  if (!handOff) for (const c of connected) if (linkExists(c.hostVeth)) lines.push(`link del ${c.hostVeth}`);
  if (vethThere && !handOff) lines.push(`link del ${veth}`);
  // The namespace after its veths: gone first, it would take them along, and `link del` fail.
  // With no veth to delete (the usual end: handOff), without starting ip for it.
  if (mounted && lines.length > 0) lines.push(`netns delete ${ns}`);
  // Independent, so concurrent: deleting a veth waits for the kernel's RCU grace period (~15 ms).
  const results = await Promise.allSettled([
    lines.length > 0 ? runCommand(['ip', '-batch', '-'], lines.join('\n') + '\n', `remove the network of container ${id.slice(0, 12)}`) : undefined,
    ...[...(ep ? [ep] : []), ...connected].map((e) => removePortRules(e)),
    mounted && lines.length === 0 ? deleteNetns(ns) : undefined,
  ]);
  for (const r of results) if (r.status === 'rejected') throw r.reason;
  // Last: the addresses are free again only when nothing uses them any more; the namespace's
  // own endpoint goes after the others, so that while anything of it is left, its file says so.
  for (const c of connected) removeFile(endpointPath(stateDir, id, c.network));
  removeFile(path);
  return [...(ep ? [ep.network] : []), ...connected.map((c) => c.network)];
}

/**
 * `ip netns delete NAME`, in-process: unmount the namespace's bind mount (MNT_DETACH, as ip
 * does) and remove the file. The same two calls, without the few milliseconds of starting ip
 * at every container's end; --trace still shows the command.
 */
async function deleteNetns(ns: string): Promise<void> {
  observeEquivalent(['ip', 'netns', 'delete', ns]);
  const path = `${NETNS_DIR}/${ns}`;
  try {
    umount2(path, MNT_DETACH);
  } catch (err) {
    // EINVAL: not a mount point (a file left by a killed `ip netns add`): just remove it.
    if (errnoOf(err) !== 'EINVAL' && errnoOf(err) !== 'ENOENT') throw wrap('ENETWORK', `delete network namespace ${ns}`, err);
  }
  rmSync(path, { force: true });
}

/** Detach every container that `isAlive` says is gone (after a kill -9 or a reboot); returns their ids. */
export async function recover(stateDir: string, isAlive: (id: string) => boolean): Promise<string[]> {
  const released: string[] = [];
  for (const ep of readEndpoints(stateDir)) {
    if (released.includes(ep.id) || isAlive(ep.id)) continue;
    await detach(stateDir, ep.id);
    released.push(ep.id);
  }
  return released;
}

/**
 * Put back every rule of this state dir's networks and containers, e.g. after the host's
 * firewall was flushed or reloaded (like `podman network reload`). Idempotent.
 */
export async function reloadFirewall(stateDir: string): Promise<void> {
  for (const net of listNetworks(stateDir)) if (linkExists(net.bridge)) await setupNetworkFirewall(net);
  for (const ep of readEndpoints(stateDir)) {
    await removeTagged(endpointTag(ep.bridge, ep.id));
    await addPortRules(ep);
  }
}

