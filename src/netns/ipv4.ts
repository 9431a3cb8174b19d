// IPv4 addresses as 32-bit numbers: enough arithmetic for subnets, gateways and allocation.
// (tsrun's networks are IPv4 only; see README "Networking".)
import { isIPv4 } from '../sys/ip-syntax.js';

export interface Cidr {
  /** The network address (all host bits zero), as a number. */
  base: number;
  prefixLen: number;
}

export function parseIp(text: string): number | undefined {
  if (!isIPv4(text)) return undefined;
  return text.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
}

export function formatIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** The netmask of a prefix length as a number (/24 → 0xffffff00). */
export function maskOf(prefixLen: number): number {
  return prefixLen === 0 ? 0 : (0xffffffff << (32 - prefixLen)) >>> 0;
}

/** "10.89.0.0/24" → { base, prefixLen }; undefined when it is not an IPv4 CIDR. */
export function parseCidr(text: string): (Cidr & { hostBitsSet: boolean }) | undefined {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(text);
  if (!m) return undefined;
  const ip = parseIp(m[1]!);
  const prefixLen = Number(m[2]);
  if (ip === undefined || prefixLen > 32) return undefined;
  const base = (ip & maskOf(prefixLen)) >>> 0;
  return { base, prefixLen, hostBitsSet: base !== ip };
}

export function formatCidr(c: Cidr): string {
  return `${formatIp(c.base)}/${c.prefixLen}`;
}

export function size(c: Cidr): number {
  return 2 ** (32 - c.prefixLen);
}

export function contains(c: Cidr, ip: number): boolean {
  return ((ip & maskOf(c.prefixLen)) >>> 0) === c.base;
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  const p = Math.min(a.prefixLen, b.prefixLen);
  return ((a.base & maskOf(p)) >>> 0) === ((b.base & maskOf(p)) >>> 0);
}

/** Usable host addresses: not the network address, not the broadcast address. */
export function isHostAddress(c: Cidr, ip: number): boolean {
  return contains(c, ip) && ip !== c.base && ip !== c.base + size(c) - 1;
}

/**
 * A MAC address derived from the IP (as docker does with 02:42:...): locally administered
 * (bit 1 of the first octet), unicast, and stable, so a reused address keeps its MAC and
 * the neighbours' ARP caches stay right. 0x74 is "t".
 */
export function macForIp(ip: number): string {
  const octets = [0x02, 0x74, ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255];
  return octets.map((o) => o.toString(16).padStart(2, '0')).join(':');
}
