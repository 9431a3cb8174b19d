import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { resolveHostPorts } from '../../src/netns/host-ports.js';
import { parsePublish } from '../../src/netns/publish.js';

describe('choosing host ports', () => {
  it('picks free, distinct ports for -p without a host port', async () => {
    const got = await resolveHostPorts([...parsePublish('80-82'), ...parsePublish('53/udp')], []);
    expect(new Set(got.map((m) => `${m.hostPort}/${m.protocol}`)).size).toBe(4);
    for (const m of got) expect(m.hostPort).toBeGreaterThan(1023);
  });

  it('refuses a port another container publishes, on any overlapping address', async () => {
    const taken = [{ hostIp: '', hostPort: 40001, containerPort: 80, protocol: 'tcp' as const }];
    await expect(resolveHostPorts(parsePublish('127.0.0.1:40001:80'), taken)).rejects.toThrow('Bind for 127.0.0.1:40001/tcp failed: port is already allocated');
    await expect(resolveHostPorts(parsePublish('40001:80/udp'), taken)).resolves.toHaveLength(1);
  });

  it('refuses a port a host process listens on, and takes the next one of a range', async () => {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      await expect(resolveHostPorts(parsePublish(`127.0.0.1:${port}:80`), [])).rejects.toThrow('address already in use');
      const [m] = await resolveHostPorts(parsePublish(`127.0.0.1:${port}-${port + 5}:80`), []);
      expect(m!.hostPort).toBeGreaterThan(port);
      expect(m).not.toHaveProperty('hostPortEnd');
    } finally {
      server.close();
    }
  });
});
