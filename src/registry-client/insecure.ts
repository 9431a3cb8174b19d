// Which registries may be reached over plain HTTP or unverified TLS.
//
// As in docker, a registry is "insecure" only when the user says so — `--insecure-registry`
// (repeatable), env TSRUN_INSECURE_REGISTRIES (comma-separated) or "insecure-registries" in
// /etc/tsrun/config.json (env TSRUN_CONFIG) — or when it is on loopback (127.0.0.0/8, ::1,
// localhost), which docker also trusts implicitly: traffic to it never leaves the machine.
//
// An entry is `host`, `host:port` or a CIDR (`10.0.0.0/8`, `fd00::/8`). Unlike docker, an entry
// without a port matches the host on every port (docker wants the exact `host:port`).
import { BlockList, isIP } from 'node:net';
import { lookup } from 'node:dns/promises';
import { TsrunError } from '../errors.js';
import { configPath, readConfig, type TsrunConfig } from './config.js';

export type InsecureEntry =
  | { kind: 'host'; host: string; port?: number }
  | { kind: 'cidr'; text: string; list: BlockList };

export interface InsecurePolicyOptions {
  /** Treat loopback as insecure, as docker does (default true). Tests turn it off to see the
   * errors a user on a remote registry would get. */
  implicitLoopback?: boolean;
  /** Resolves a host name to addresses for CIDR entries (default: dns.lookup). */
  resolve?: (host: string) => Promise<string[]>;
}

/** Split `host:port`, `[v6]:port`, `host`, `[v6]` into host and optional port. */
export function splitHostPort(hostPort: string): { host: string; port?: number } {
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(hostPort);
  if (bracket) return { host: bracket[1]!.toLowerCase(), ...(bracket[2] && { port: Number(bracket[2]) }) };
  const colon = hostPort.lastIndexOf(':');
  // A bare IPv6 address has several colons and no port.
  if (colon >= 0 && hostPort.indexOf(':') === colon && /^\d+$/.test(hostPort.slice(colon + 1))) {
    return { host: hostPort.slice(0, colon).toLowerCase(), port: Number(hostPort.slice(colon + 1)) };
  }
  return { host: hostPort.toLowerCase() };
}

export function parseInsecureEntry(text: string): InsecureEntry {
  const s = text.trim().replace(/^https?:\/\//, '').replace(/\/+$/, '');
  const slash = s.indexOf('/');
  if (slash >= 0) {
    const addr = s.slice(0, slash);
    const bits = Number(s.slice(slash + 1));
    const family = isIP(addr);
    if (family === 0 || !Number.isInteger(bits) || bits < 0 || bits > (family === 4 ? 32 : 128)) {
      throw new TsrunError('EINVAL_FLAG', `invalid insecure registry "${text}": expected host, host:port or a CIDR such as 10.0.0.0/8`);
    }
    const list = new BlockList();
    list.addSubnet(addr, bits, family === 4 ? 'ipv4' : 'ipv6');
    return { kind: 'cidr', text: s, list };
  }
  if (s === '') throw new TsrunError('EINVAL_FLAG', `invalid insecure registry "${text}": empty`);
  const { host, port } = splitHostPort(s);
  return { kind: 'host', host, ...(port !== undefined && { port }) };
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

function inList(list: BlockList, address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  return list.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

export class InsecurePolicy {
  readonly entries: InsecureEntry[];
  private readonly implicitLoopback: boolean;
  private readonly resolve: (host: string) => Promise<string[]>;
  private readonly cache = new Map<string, Promise<string | undefined>>();

  constructor(entries: Array<string | InsecureEntry>, options: InsecurePolicyOptions = {}) {
    this.entries = entries.map((e) => (typeof e === 'string' ? parseInsecureEntry(e) : e));
    this.implicitLoopback = options.implicitLoopback ?? true;
    this.resolve = options.resolve ?? (async (host) => (await lookup(host, { all: true })).map((a) => a.address));
  }

  /**
   * Collects the declarations from the flags, TSRUN_INSECURE_REGISTRIES and the config file
   * (`config` when the caller has read it already, else the one env TSRUN_CONFIG names).
   */
  static async load(
    flags: string[] = [],
    options: InsecurePolicyOptions & { env?: NodeJS.ProcessEnv; config?: TsrunConfig } = {},
  ): Promise<InsecurePolicy> {
    const env = options.env ?? process.env;
    const fromEnv = (env.TSRUN_INSECURE_REGISTRIES ?? '').split(',').filter((s) => s.trim() !== '');
    const fromFile = insecureFromConfig(options.config ?? (await readConfig(configPath(env))));
    return new InsecurePolicy([...flags, ...fromEnv, ...fromFile], options);
  }

  /** Is `registry` (host[:port], as in a reference) allowed plain HTTP / unverified TLS? */
  async isInsecure(registry: string): Promise<boolean> {
    return (await this.why(registry)) !== undefined;
  }

  /**
   * Why `registry` is treated as insecure, in words for a warning ("declared insecure", "on
   * loopback, which is trusted as docker trusts it"), or undefined when it is not.
   */
  why(registry: string): Promise<string | undefined> {
    let p = this.cache.get(registry);
    if (!p) {
      p = this.check(registry);
      this.cache.set(registry, p);
    }
    return p;
  }

  private async check(registry: string): Promise<string | undefined> {
    const declared = 'it is declared insecure (--insecure-registry, TSRUN_INSECURE_REGISTRIES or insecure-registries)';
    const loopback = 'it is on loopback, which tsrun, as docker, treats as insecure without being told';
    const { host, port } = splitHostPort(registry);
    for (const e of this.entries) {
      if (e.kind === 'host' && e.host === host && (e.port === undefined || e.port === port)) return declared;
    }
    if (this.implicitLoopback && (host === 'localhost' || inList(LOOPBACK, host))) return loopback;
    const cidrs = this.entries.filter((e): e is Extract<InsecureEntry, { kind: 'cidr' }> => e.kind === 'cidr');
    if (cidrs.length === 0 && !this.implicitLoopback) return undefined;
    // Host names match CIDRs through their addresses, as docker does.
    let addresses = [host];
    if (isIP(host) === 0) {
      if (host === 'docker.io' || host.endsWith('.docker.io')) return undefined;
      addresses = await this.resolve(host).catch(() => []);
    }
    if (addresses.some((a) => cidrs.some((c) => inList(c.list, a)))) return declared;
    if (this.implicitLoopback && addresses.some((a) => inList(LOOPBACK, a))) return loopback;
    return undefined;
  }
}

/** "insecure-registries": an array of strings, each an entry as parseInsecureEntry reads it. */
export function insecureFromConfig(config: TsrunConfig): string[] {
  const list = config.values['insecure-registries'];
  if (list === undefined) return [];
  if (!Array.isArray(list) || !list.every((x) => typeof x === 'string')) {
    throw new TsrunError('EINVAL_FLAG', `${config.path}: "insecure-registries" must be an array of strings`);
  }
  return list;
}
