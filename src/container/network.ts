// A container's network: its endpoints on bridge networks (src/netns), the networks `network
// connect` added (networks.json), and the /etc/hosts and /etc/resolv.conf it sees. The hosts
// file is rewritten in place, never replaced: the container's bind mount pins the inode.
import { readFileSync, rmSync } from 'node:fs';
import { errnoOf, TsrunError } from '../errors.js';
import { writeFileNamed } from '../sys/atomic.js';
import type { ImageConfig } from '../image/types.js';
import type { ContainerOptions } from '../namespaces/options.js';
import type { Attachment } from '../netns/endpoint.js';
import { addHostEntries, hostResolvConf } from '../netns/dns.js';
import { hostsEntries, networkPeers } from '../netns/peers.js';
import { DEFAULT_NETWORK } from '../netns/network-names.js';
import type { PortMapping } from '../netns/publish.js';
import { connectKilled, endpointId, findNetwork, readContainerEndpoints } from '../netns/store.js';
import { hostsFile } from './etc-files.js';
import { ContainerPaths } from './paths.js';
import { writeJsonAtomic, type ContainerRecord, type NetworkState } from './record.js';

/** What a container's /etc/hosts is made from; kept in its directory as hosts.json. */
interface HostsRecipe {
  hostname: string;
  ip?: string;
  gateway?: string;
  addHosts: ContainerOptions['addHosts'];
}

export function usesBridge(network: string): boolean {
  return network !== 'none' && network !== 'host' && !network.startsWith('container:');
}

/** -p plus, with -P, every port the image exposes (on a random host port). */
export function portsToPublish(opts: ContainerOptions, image: ImageConfig): PortMapping[] {
  const ports = [...opts.publish];
  if (opts.publishAll) {
    for (const key of Object.keys(image.config?.ExposedPorts ?? {})) {
      const [port, proto = 'tcp'] = key.split('/');
      const containerPort = Number(port);
      // The image's say: anything but a port number and tcp/udp is passed over, as docker does.
      if (!/^\d{1,5}$/.test(port ?? '') || containerPort < 1 || containerPort > 65535 || (proto !== 'tcp' && proto !== 'udp')) continue;
      if (ports.some((p) => p.containerPort === containerPort && p.protocol === proto)) continue;
      ports.push({ hostIp: '', hostPort: 0, containerPort, protocol: proto });
    }
  }
  return ports;
}

export function writeResolvConf(paths: ContainerPaths, opts: ContainerOptions): void {
  writeFileNamed(paths.resolvConf, hostResolvConf(opts.dns));
}

function hostsPath(paths: ContainerPaths): string {
  return `${paths.dir}/hosts.json`;
}

/** (Re)writes a container's /etc/hosts from its recipe and its network's current peers. */
export function writeHosts(storeRoot: string, id: string, recipe?: HostsRecipe): void {
  const paths = new ContainerPaths(storeRoot, id);
  if (recipe) writeFileNamed(hostsPath(paths), JSON.stringify(recipe));
  else recipe = JSON.parse(readFileSync(hostsPath(paths), 'utf8')) as HostsRecipe;
  const extra: Array<[string, string]> = [];
  if (recipe.ip) {
    // Its own name on each network it was connected to as well (as docker writes them), then its peers'.
    const own = readContainerEndpoints(storeRoot, id);
    const connected = own.filter((e) => e.ifname !== undefined).map((e): [string, string] => [e.ip, recipe!.hostname]);
    extra.push([recipe.ip, recipe.hostname], ...connected, ...hostsEntries(storeRoot, id, own));
  }
  extra.push(...addHostEntries(recipe.addHosts, recipe.gateway ?? '127.0.0.1'));
  // In place (no rename): the container's bind mount holds this inode.
  writeFileNamed(paths.hosts, hostsFile(recipe.hostname, extra));
}

/** After a container joins or leaves a network, its peers learn its name (user networks only). */
export function refreshPeers(storeRoot: string, network: string, except: string): void {
  // The default network names nobody: rewriting every peer's /etc/hosts to the same content
  // made each start and end on it cost a file write per container already there.
  if (network === DEFAULT_NETWORK) return;
  for (const peer of networkPeers(storeRoot, network)) {
    if (peer.id === except) continue;
    try {
      writeHosts(storeRoot, peer.id);
    } catch {
      // a peer being removed at the same moment: nothing to refresh
    }
  }
}

export function recipeFor(hostname: string, opts: Pick<ContainerOptions, 'addHosts'>, att?: Attachment): HostsRecipe {
  return { hostname, addHosts: opts.addHosts, ...(att && { ip: att.ip, gateway: att.gateway }) };
}

/** A network `network connect` added to a container, as it was asked for. */
export interface JoinedNetwork {
  network: string;
  aliases: string[];
  ip?: string;
}

/** containers/<id>/networks.json: the networks `network connect` added, which every start
 * attaches after the one the container was created with (absent: none). */
function joinedPath(paths: ContainerPaths): string {
  return `${paths.dir}/networks.json`;
}

export function readJoined(paths: ContainerPaths): JoinedNetwork[] {
  const path = joinedPath(paths);
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as JoinedNetwork[];
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return [];
    throw new TsrunError('EINTERNAL', `${path} is damaged: ${(err as Error).message}`, { cause: err });
  }
}

/** Replaced whole (rename); the caller holds the container's lock. */
export function writeJoined(paths: ContainerPaths, joined: JoinedNetwork[]): void {
  if (joined.length === 0) rmSync(joinedPath(paths), { force: true });
  else writeJsonAtomic(joinedPath(paths), joined);
}

/** One of docker's NetworkSettings.Networks entries (EndpointSettings), with the fields tsrun has. */
export interface EndpointSettings {
  IPAMConfig: { IPv4Address: string } | null;
  Aliases: string[] | null;
  NetworkID: string;
  EndpointID: string;
  Gateway: string;
  IPAddress: string;
  IPPrefixLen: number;
  MacAddress: string;
}

/**
 * inspect's NetworkSettings.Networks: while the container has its network, every endpoint it has
 * (src/netns, the truth); otherwise every network it would join at start, with no address, as
 * docker shows them.
 */
export function inspectNetworks(storeRoot: string, record: ContainerRecord, attached: boolean, first: NetworkState | null): Record<string, EndpointSettings> {
  const o = record.options;
  const joined = readJoined(new ContainerPaths(storeRoot, record.id));
  if (!usesBridge(o.network) && joined.length === 0) return {};
  const asked = (network: string) => {
    const j = joined.find((x) => x.network === network);
    const ip = j ? j.ip : o.ip;
    const aliases = j ? j.aliases : o.networkAliases;
    return { IPAMConfig: ip ? { IPv4Address: ip } : null, Aliases: aliases.length > 0 ? aliases : null };
  };
  const out: Record<string, EndpointSettings> = {};
  if (attached) {
    for (const ep of readContainerEndpoints(storeRoot, record.id)) {
      // A connect that was killed half-way: its address may not exist in the namespace.
      if (connectKilled(ep)) continue;
      out[ep.network] = {
        ...asked(ep.network),
        NetworkID: findNetwork(storeRoot, ep.network)?.id ?? '',
        EndpointID: endpointId(ep),
        Gateway: ep.gateway,
        IPAddress: ep.ip,
        IPPrefixLen: ep.prefixLen,
        MacAddress: ep.mac,
      };
    }
    // The record, should its endpoint file be missing (a store from before endpoints were kept).
    if (first && !out[first.name]) {
      out[first.name] = { ...asked(first.name), NetworkID: '', EndpointID: '', Gateway: first.gateway, IPAddress: first.ip, IPPrefixLen: first.prefixLen, MacAddress: first.mac };
    }
    return out;
  }
  const names = [...(usesBridge(o.network) ? [findNetwork(storeRoot, o.network)?.name ?? o.network] : []), ...joined.map((j) => j.network)];
  for (const n of names) {
    out[n] = { ...asked(n), NetworkID: findNetwork(storeRoot, n)?.id ?? '', EndpointID: '', Gateway: '', IPAddress: '', IPPrefixLen: 0, MacAddress: '' };
  }
  return out;
}
