// The kernel side of a network: a Linux bridge with the gateway address, the sysctls that
// make it route, and its firewall rules. Created on the first attach (as podman does), so
// `tsrun network create` itself changes nothing in the kernel.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { TsrunError } from '../errors.js';
import { observeEquivalent, runCommand } from './exec.js';
import { setupNetworkFirewall, teardownNetworkFirewall } from './firewall.js';
import { macForIp, parseCidr, parseIp, type Cidr } from './ipv4.js';
import type { NetworkConfig } from './store.js';

export const linkExists = (name: string) => existsSync(`/sys/class/net/${name}`);

function sysctl(path: string, value: string): void {
  const file = `/proc/sys/${path.replaceAll('.', '/')}`;
  try {
    if (readFileSync(file, 'utf8').trim() === value) return;
    observeEquivalent(['sysctl', '-w', `${path}=${value}`]);
    writeFileSync(file, value);
  } catch (err) {
    throw new TsrunError('ENETWORK', `set ${path}=${value} (${file})`, { cause: err });
  }
}

/** Lines for `ip -batch -` that create the bridge. Its MAC is fixed (from the gateway address):
 * a bridge otherwise takes the lowest MAC of its ports, which changes as containers come and go. */
export function bridgeBatch(net: NetworkConfig): string {
  const cidr = parseCidr(net.subnet)!;
  return [
    `link add name ${net.bridge} address ${macForIp(parseIp(net.gateway)!)} mtu ${net.mtu} type bridge`,
    `addr add ${net.gateway}/${cidr.prefixLen} brd + dev ${net.bridge}`,
    `link set ${net.bridge} up`,
  ].join('\n') + '\n';
}

/**
 * Make sure the network exists in the kernel. Called under the state dir's lock. The firewall
 * rules go first, the bridge last: the bridge's existence means "set up", so a crash half-way
 * is repaired by the next attach.
 */
export async function ensureBridge(net: NetworkConfig): Promise<void> {
  if (!linkExists(net.bridge)) {
    await setupNetworkFirewall(net);
    try {
      await runCommand(['ip', '-batch', '-'], bridgeBatch(net), `create bridge ${net.bridge} for network ${net.name}`);
    } catch (err) {
      if (!linkExists(net.bridge)) throw err;
      // Another tsrun (another state dir with the same bridge) created it at the same moment.
    }
  }
  // Checked every time (two reads): someone may have reset them since.
  // A Linux host does not forward packets between interfaces unless told to.
  sysctl('net.ipv4.ip_forward', '1');
  // Lets 127.0.0.1 traffic be DNATed out of this bridge: publishing on 127.0.0.1 without a proxy process.
  sysctl(`net.ipv4.conf.${net.bridge}.route_localnet`, '1');
}

/** Remove the bridge and its firewall rules; nothing missing is an error. */
export async function removeBridge(bridge: string): Promise<void> {
  if (linkExists(bridge)) await runCommand(['ip', 'link', 'del', bridge], '', `delete bridge ${bridge}`);
  await teardownNetworkFirewall(bridge);
}

interface Route {
  iface: string;
  cidr: Cidr;
}

/** IPv4 routes of the host's main table, from /proc/net/route (no process to spawn). */
export function hostRoutes(text = readFileSync('/proc/net/route', 'utf8')): Route[] {
  // Addresses are hex in host byte order (little-endian on x86 and arm64): 0100A8C0 = 192.168.0.1.
  const le = (hex: string) => {
    const n = parseInt(hex, 16);
    return (((n & 255) << 24) | (((n >>> 8) & 255) << 16) | (((n >>> 16) & 255) << 8) | (n >>> 24)) >>> 0;
  };
  return text
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 8)
    .map((f) => {
      const mask = le(f[7]!);
      const prefixLen = mask.toString(2).replace(/0/g, '').length;
      return { iface: f[0]!, cidr: { base: le(f[1]!), prefixLen } };
    });
}

/** The MTU of the interface with the default route (1500 if none): containers should not exceed it. */
export function defaultMtu(): number {
  try {
    const def = hostRoutes().find((r) => r.cidr.prefixLen === 0);
    if (def) return Number(readFileSync(`/sys/class/net/${def.iface}/mtu`, 'utf8').trim()) || 1500;
  } catch {
    // no /proc/net/route: keep the Ethernet default
  }
  return 1500;
}
