// `-p/--publish`: which host port forwards to which container port, in docker's syntax:
//   -p 80                  container port 80, a free host port chosen at start
//   -p 8080:80             host port 8080 on every host address
//   -p 127.0.0.1:8080:80   only on 127.0.0.1;   -p 127.0.0.1::80   a free port on 127.0.0.1
//   -p 8080:80/udp         UDP (tcp is the default)
//   -p 8000-8001:80-81     ranges of equal length, port by port
//   -p 8000-8010:80        one free host port out of the range
import { isIPv4, isIPv6 } from '../sys/ip-syntax.js';
import { TsrunError } from '../errors.js';

export type Protocol = 'tcp' | 'udp';

export interface PortMapping {
  /** The host address the port is published on; '' means every address (docker's 0.0.0.0). */
  hostIp: string;
  /** 0 until attach() picks a free port. */
  hostPort: number;
  /** With hostPort: attach() picks one free port in hostPort..hostPortEnd. */
  hostPortEnd?: number;
  containerPort: number;
  protocol: Protocol;
}

function flagError(spec: string, why: string): TsrunError {
  return new TsrunError('EINVAL_FLAG', `invalid argument "${spec}" for "-p" flag: ${why}`);
}

/** "8000-8010" → [8000, 8010]; "80" → [80, 80]. */
function parseRange(spec: string, text: string, what: string): [number, number] {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  if (!m) throw flagError(spec, `invalid ${what} port "${text}": expected a number or a range like 8000-8010`);
  const start = Number(m[1]);
  const end = m[2] === undefined ? start : Number(m[2]);
  const min = what === 'host' ? 0 : 1;
  for (const p of [start, end]) {
    if (p < min || p > 65535) throw flagError(spec, `invalid ${what} port ${p}: ports are ${min}-65535`);
  }
  if (end < start) throw flagError(spec, `invalid ${what} port range "${text}": the end is before the start`);
  return [start, end];
}

export function parsePublish(spec: string): PortMapping[] {
  let rest = spec.trim();
  let protocol: Protocol = 'tcp';
  const slash = rest.lastIndexOf('/');
  if (slash >= 0) {
    const proto = rest.slice(slash + 1).toLowerCase();
    if (proto !== 'tcp' && proto !== 'udp') throw flagError(spec, `unsupported protocol "${proto}": expected tcp or udp`);
    protocol = proto;
    rest = rest.slice(0, slash);
  }

  // [ip:][hostPort:]containerPort — the address may be IPv6 in brackets, which has colons of its own.
  let hostIp = '';
  const bracket = /^\[([^\]]*)\]:(.*)$/.exec(rest);
  if (bracket) {
    hostIp = bracket[1]!;
    rest = bracket[2]!;
  }
  const parts = rest.split(':');
  if (parts.length > 3 || (bracket && parts.length !== 2)) throw flagError(spec, 'expected [ip:][hostPort:]containerPort[/protocol]');
  if (parts.length === 3) hostIp = parts.shift()!;
  const hostText = parts.length === 2 ? parts[0]! : '';
  const containerText = parts[parts.length - 1]!;

  if (hostIp === '0.0.0.0') hostIp = '';
  if (hostIp !== '' && !isIPv4(hostIp)) {
    const why = isIPv6(hostIp) ? 'IPv6 host addresses are not supported (tsrun networks are IPv4 only)' : `"${hostIp}" is not an IPv4 address`;
    throw flagError(spec, why);
  }
  if (containerText === '') throw flagError(spec, 'no container port');
  const [cStart, cEnd] = parseRange(spec, containerText, 'container');
  const [hStart, hEnd] = hostText === '' ? [0, 0] : parseRange(spec, hostText, 'host');

  const cCount = cEnd - cStart + 1;
  const hCount = hEnd - hStart + 1;
  if (hStart === 0 && hEnd !== 0) throw flagError(spec, 'a host port range cannot start at 0');
  // A single container port may take any one port of a host range; otherwise the ranges pair up.
  if (hostText !== '' && hStart !== 0 && cCount > 1 && hCount !== cCount) {
    throw flagError(spec, `the host range has ${hCount} ports and the container range ${cCount}; they must be the same length`);
  }
  if (cCount === 1 && hCount > 1) {
    return [{ hostIp, hostPort: hStart, hostPortEnd: hEnd, containerPort: cStart, protocol }];
  }
  const mappings: PortMapping[] = [];
  for (let i = 0; i < cCount; i++) {
    mappings.push({ hostIp, hostPort: hStart === 0 ? 0 : hStart + i, containerPort: cStart + i, protocol });
  }
  return mappings;
}

/** docker port's format: "80/tcp -> 0.0.0.0:8080". */
/** As `docker port` prints a mapping: `80/tcp -> 0.0.0.0:8080`. */
export function formatPort(m: PortMapping): string {
  return `${m.containerPort}/${m.protocol} -> ${m.hostIp || '0.0.0.0'}:${m.hostPort}`;
}

/** As `docker ps` prints it, in its PORTS column and `{{.Ports}}`: `0.0.0.0:8080->80/tcp`. */
export function formatPsPort(m: PortMapping): string {
  return `${m.hostIp || '0.0.0.0'}:${m.hostPort}->${m.containerPort}/${m.protocol}`;
}
