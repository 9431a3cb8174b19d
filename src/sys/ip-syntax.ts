// node:net's address checks, with node:net loaded on first use: importing it (with stream and
// the rest of the socket machinery) costs every command that loads a network module ~3 ms,
// `ps` and `inspect` included, which only print addresses.
import { createRequire } from 'node:module';

type Net = typeof import('node:net');
let net: Net | undefined;
const load = (): Net => (net ??= createRequire(import.meta.url)('node:net') as Net);

export const isIP = (s: string): number => load().isIP(s);
export const isIPv4 = (s: string): boolean => load().isIPv4(s);
export const isIPv6 = (s: string): boolean => load().isIPv6(s);
