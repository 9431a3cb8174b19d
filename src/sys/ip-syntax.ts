// node:net's address checks, with node:net loaded on first use: importing it (with stream and
// the rest of the socket machinery) costs every command that loads a network module ~3 ms,
// `ps` and `inspect` included, which only print addresses.
import { createRequire } from 'node:module';

type Net = typeof import('node:net');
let net: Net | undefined;
const load = (): Net => (net ??= createRequire(import.meta.url)('node:net') as Net);

// IPv4 is node:net's own pattern (lib/internal/net.js), so `run`, which checks the host's
// nameservers, loads no socket code at all; IPv6 is left to node:net.
const V4_PART = '(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])';
const V4 = new RegExp(`^${V4_PART}(?:\\.${V4_PART}){3}$`);

export const isIPv4 = (s: string): boolean => V4.test(s);
export const isIPv6 = (s: string): boolean => load().isIPv6(s);
export const isIP = (s: string): number => (isIPv4(s) ? 4 : isIPv6(s) ? 6 : 0);
