// sys/ip-syntax.ts checks IPv4 addresses without loading node:net: it must agree with node:net.
import { isIP as netIsIP, isIPv4 as netIsIPv4 } from 'node:net';
import { expect, it } from 'vitest';
import { isIP, isIPv4 } from '../../src/sys/ip-syntax.js';

const cases = [
  '0.0.0.0', '1.2.3.4', '10.0.0.1', '127.0.0.1', '192.168.1.254', '255.255.255.255',
  '256.1.1.1', '1.256.1.1', '1.2.3.256', '01.2.3.4', '1.02.3.4', '00.0.0.0', '1.2.3', '1.2.3.4.5',
  '1..2.3', '.1.2.3', '1.2.3.', ' 1.2.3.4', '1.2.3.4 ', '1.2.3.4\n', '1.2.3.-4', '+1.2.3.4',
  '1.2.3.4/24', '0x1.2.3.4', '１.2.3.4', '', '::1', '::ffff:1.2.3.4', 'fe80::1%eth0', 'example.com',
];

it('agrees with node:net on every address', () => {
  for (const s of cases) {
    expect([s, isIPv4(s)]).toEqual([s, netIsIPv4(s)]);
    expect([s, isIP(s)]).toEqual([s, netIsIP(s)]);
  }
});
