// Choosing host ports for -p. Publishing is done by DNAT in the kernel, not by a process that
// listens, so tsrun checks two things itself, as docker-proxy's bind would: no other tsrun
// container has the port (endpoint files, read under the lock), and no host process listens
// on it (a test bind). A port chosen at random comes from the kernel's ephemeral range.
import { createRequire } from 'node:module';
import { TsrunError, errnoOf } from '../errors.js';
import { testBind as addonTestBind } from '../sys/libc.js';
import type { PortMapping, Protocol } from './publish.js';

/** Bind and release hostIp:port; resolves to the port bound (the kernel's choice for 0). */
async function testBind(protocol: Protocol, hostIp: string, port: number): Promise<number> {
  const host = hostIp || '0.0.0.0';
  // The addon's bind, synchronous: node:net and node:dgram only where it cannot (no addon, a
  // host name).
  const bound = addonTestBind(protocol, host, port);
  if (bound !== undefined) return bound;
  const load = createRequire(import.meta.url);
  const { createSocket } = load('node:dgram') as typeof import('node:dgram');
  const { createServer } = load('node:net') as typeof import('node:net');
  return new Promise((resolve, reject) => {
    if (protocol === 'udp') {
      const s = createSocket('udp4');
      s.once('error', (err) => {
        s.close();
        reject(err);
      });
      s.bind({ address: host, port, exclusive: true }, () => {
        const got = s.address().port;
        s.close(() => resolve(got));
      });
      return;
    }
    const s = createServer();
    s.once('error', reject);
    s.listen({ host, port, exclusive: true }, () => {
      const addr = s.address();
      const got = typeof addr === 'object' && addr ? addr.port : port;
      s.close(() => resolve(got));
    });
  });
}

const clash = (a: PortMapping, b: PortMapping) =>
  a.protocol === b.protocol && a.hostPort === b.hostPort && (a.hostIp === '' || b.hostIp === '' || a.hostIp === b.hostIp);

function bindError(m: PortMapping, port: number, why: string, cause?: unknown): TsrunError {
  return new TsrunError('ENETWORK', `Bind for ${m.hostIp || '0.0.0.0'}:${port}/${m.protocol} failed: ${why}`, { cause });
}

/** Can this host port be used: not published by another container, not listened on by the host? */
async function check(m: PortMapping, port: number, taken: PortMapping[]): Promise<TsrunError | undefined> {
  if (taken.some((t) => clash(t, { ...m, hostPort: port }))) return bindError(m, port, 'port is already allocated');
  try {
    await testBind(m.protocol, m.hostIp, port);
    return undefined;
  } catch (err) {
    const code = errnoOf(err);
    if (code === 'EADDRINUSE') return bindError(m, port, 'address already in use (a host process listens on it)', err);
    if (code === 'EADDRNOTAVAIL') return bindError(m, port, `${m.hostIp} is not an address of this host`, err);
    return bindError(m, port, String(err), err);
  }
}

/** The mappings with every host port decided; `taken` holds the other containers' (decided) ones. */
export async function resolveHostPorts(requested: PortMapping[], taken: PortMapping[]): Promise<PortMapping[]> {
  const out: PortMapping[] = [];
  for (const m of requested) {
    const inUse = [...taken, ...out];
    const { hostPortEnd, ...base } = m;
    if (m.hostPort !== 0 && hostPortEnd === undefined) {
      const err = await check(m, m.hostPort, inUse);
      if (err) throw err;
      out.push(base);
    } else if (hostPortEnd !== undefined) {
      let chosen: number | undefined;
      for (let p = m.hostPort; p <= hostPortEnd && chosen === undefined; p++) {
        if (!(await check(m, p, inUse))) chosen = p;
      }
      if (chosen === undefined) throw bindError(m, m.hostPort, `no free port in ${m.hostPort}-${hostPortEnd}`);
      out.push({ ...base, hostPort: chosen });
    } else {
      let chosen: number | undefined;
      for (let attempt = 0; attempt < 20 && chosen === undefined; attempt++) {
        const p = await testBind(m.protocol, m.hostIp, 0).catch((err: unknown) => {
          throw bindError(m, 0, String(err), err);
        });
        if (!inUse.some((t) => clash(t, { ...m, hostPort: p }))) chosen = p;
      }
      if (chosen === undefined) throw bindError(m, 0, 'no free port found');
      out.push({ ...base, hostPort: chosen });
    }
  }
  return out;
}
