// testBind (src/sys/libc.ts, native/node/sys.c): -p's check that no host process has a port,
// made by the addon as Node's listen() and dgram's bind() would make it, so that `run -p` loads
// neither node:net nor node:dgram. Each answer is compared with what Node's own bind says.
import { createSocket } from 'node:dgram';
import { createServer, type AddressInfo } from 'node:net';
import { expect, it } from 'vitest';
import { testBind } from '../../src/sys/libc.js';

/** What Node's listen() says of this address and port: the port, or the errno's code. */
function nodeListen(host: string, port: number): Promise<number | string> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    s.listen({ host, port, exclusive: true }, () => {
      const got = (s.address() as AddressInfo).port;
      s.close(() => resolve(got));
    });
  });
}

function addon(protocol: 'tcp' | 'udp', host: string, port: number): number | string | undefined {
  try {
    return testBind(protocol, host, port);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code;
  }
}

it('refuses a TCP port a host process listens on, as listen() does, and takes it once free', async () => {
  const server = createServer();
  await new Promise<void>((r) => server.listen({ host: '0.0.0.0', port: 0 }, r));
  const port = (server.address() as AddressInfo).port;
  try {
    for (const host of ['0.0.0.0', '127.0.0.1']) {
      expect(addon('tcp', host, port)).toBe('EADDRINUSE');
      expect(await nodeListen(host, port)).toBe('EADDRINUSE');
    }
  } finally {
    await new Promise((r) => server.close(r));
  }
  expect(addon('tcp', '127.0.0.1', port)).toBe(port);
});

it('refuses a UDP port a host process has bound, and lets it go after', async () => {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind({ address: '127.0.0.1', port: 0 }, r));
  const port = s.address().port;
  try {
    expect(addon('udp', '127.0.0.1', port)).toBe('EADDRINUSE');
  } finally {
    await new Promise<void>((r) => s.close(r));
  }
  expect(addon('udp', '127.0.0.1', port)).toBe(port);
});

it('gives the kernel\'s choice for port 0, refuses an address not of this host, and leaves names to Node', async () => {
  const chosen = addon('tcp', '127.0.0.1', 0);
  expect(typeof chosen === 'number' && chosen > 0).toBe(true);
  // TEST-NET-1 (RFC 5737): no host has it.
  expect(addon('tcp', '192.0.2.1', 8080)).toBe('EADDRNOTAVAIL');
  expect(await nodeListen('192.0.2.1', 8080)).toBe('EADDRNOTAVAIL');
  expect(addon('tcp', 'localhost', 8080)).toBeUndefined();
  expect(addon('tcp', '1.2.3.4.5', 8080)).toBeUndefined();
  expect(() => testBind('sctp' as 'tcp', '127.0.0.1', 1)).toThrow(TypeError);
  expect(() => testBind('tcp', '127.0.0.1', 70000)).toThrow(TypeError);
});
