import { describe, expect, it } from 'vitest';
import { formatPort, formatPsPort, parsePublish } from '../../src/netns/publish.js';

describe('parsePublish (-p)', () => {
  it.each([
    ['80', [{ hostIp: '', hostPort: 0, containerPort: 80, protocol: 'tcp' }]],
    ['8080:80', [{ hostIp: '', hostPort: 8080, containerPort: 80, protocol: 'tcp' }]],
    ['127.0.0.1:8080:80', [{ hostIp: '127.0.0.1', hostPort: 8080, containerPort: 80, protocol: 'tcp' }]],
    ['127.0.0.1::80', [{ hostIp: '127.0.0.1', hostPort: 0, containerPort: 80, protocol: 'tcp' }]],
    ['0.0.0.0:53:53/udp', [{ hostIp: '', hostPort: 53, containerPort: 53, protocol: 'udp' }]],
    ['8080:80/TCP', [{ hostIp: '', hostPort: 8080, containerPort: 80, protocol: 'tcp' }]],
    [
      '8000-8001:80-81',
      [
        { hostIp: '', hostPort: 8000, containerPort: 80, protocol: 'tcp' },
        { hostIp: '', hostPort: 8001, containerPort: 81, protocol: 'tcp' },
      ],
    ],
    [
      '80-81',
      [
        { hostIp: '', hostPort: 0, containerPort: 80, protocol: 'tcp' },
        { hostIp: '', hostPort: 0, containerPort: 81, protocol: 'tcp' },
      ],
    ],
    ['8000-8010:80', [{ hostIp: '', hostPort: 8000, hostPortEnd: 8010, containerPort: 80, protocol: 'tcp' }]],
  ])('%s', (spec, expected) => {
    expect(parsePublish(spec)).toEqual(expected);
  });

  it.each([
    ['', /no container port/],
    ['abc', /invalid container port "abc"/],
    ['8080:0', /invalid container port 0/],
    ['70000:80', /invalid host port 70000/],
    ['80/sctp', /unsupported protocol "sctp"/],
    ['1.2.3:80:80', /"1.2.3" is not an IPv4 address/],
    ['[::1]:80:80', /IPv6 host addresses are not supported/],
    ['8000-8002:80-81', /must be the same length/],
    ['81-80', /the end is before the start/],
    ['1:2:3:4', /expected \[ip:\]\[hostPort:\]containerPort/],
  ])('rejects %j', (spec, why) => {
    expect(() => parsePublish(spec)).toThrow(why);
    expect(() => parsePublish(spec)).toThrow(`invalid argument "${spec}" for "-p" flag: `);
  });

  it('formats like docker port', () => {
    expect(formatPort({ hostIp: '', hostPort: 32768, containerPort: 80, protocol: 'tcp' })).toBe('80/tcp -> 0.0.0.0:32768');
    // docker ps: host side first, with an arrow and no spaces.
    expect(formatPsPort({ hostIp: '', hostPort: 32768, containerPort: 80, protocol: 'tcp' })).toBe('0.0.0.0:32768->80/tcp');
    expect(formatPsPort({ hostIp: '127.0.0.1', hostPort: 53, containerPort: 53, protocol: 'udp' })).toBe('127.0.0.1:53->53/udp');
  });
});

describe('-P takes only what is a port in the image\'s ExposedPorts', () => {
  it('passes over anything else', async () => {
    const { portsToPublish } = await import('../../src/container/network.js');
    const exposed = { '80/tcp': {}, '53/udp': {}, '0/tcp': {}, '70000/tcp': {}, '-1/tcp': {}, '1e3/tcp': {}, '443/sctp': {}, '8080': {}, '22/tcp\n-A INPUT -j ACCEPT': {} };
    const opts = { publish: [], publishAll: true } as unknown as Parameters<typeof portsToPublish>[0];
    expect(portsToPublish(opts, { config: { ExposedPorts: exposed } } as never).map((p) => `${p.containerPort}/${p.protocol}`).sort()).toEqual(['53/udp', '80/tcp', '8080/tcp']);
  });
});
