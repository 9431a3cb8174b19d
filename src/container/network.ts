// A container's network: its endpoint on a bridge network (src/netns), and the /etc/hosts and
// /etc/resolv.conf it sees. The hosts file is rewritten in place, never replaced: the
// container's bind mount pins the inode.
import { readFileSync } from 'node:fs';
import { writeFileNamed } from '../sys/atomic.js';
import type { ImageConfig } from '../image/types.js';
import type { ContainerOptions } from '../namespaces/options.js';
import type { Attachment } from '../netns/endpoint.js';
import { addHostEntries, hostResolvConf } from '../netns/dns.js';
import { hostsEntries, networkPeers } from '../netns/peers.js';
import type { PortMapping } from '../netns/publish.js';
import { hostsFile } from './etc-files.js';
import { ContainerPaths } from './paths.js';

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
  if (recipe.ip) extra.push([recipe.ip, recipe.hostname], ...hostsEntries(storeRoot, id));
  extra.push(...addHostEntries(recipe.addHosts, recipe.gateway ?? '127.0.0.1'));
  // In place (no rename): the container's bind mount holds this inode.
  writeFileNamed(paths.hosts, hostsFile(recipe.hostname, extra));
}

/** After a container joins or leaves a network, its peers learn its name (user networks only). */
export function refreshPeers(storeRoot: string, network: string, except: string): void {
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
