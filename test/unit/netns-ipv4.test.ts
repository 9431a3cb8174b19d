import { describe, expect, it } from 'vitest';
import { contains, formatCidr, formatIp, isHostAddress, macForIp, overlaps, parseCidr, parseIp } from '../../src/netns/ipv4.js';

describe('IPv4 arithmetic', () => {
  it('parses and formats addresses and CIDRs', () => {
    expect(formatIp(parseIp('10.89.0.1')!)).toBe('10.89.0.1');
    expect(parseIp('255.255.255.255')).toBe(0xffffffff);
    expect(parseIp('10.0.0')).toBeUndefined();
    expect(parseCidr('10.89.0.0/24')).toMatchObject({ prefixLen: 24, hostBitsSet: false });
    expect(parseCidr('10.89.0.7/24')).toMatchObject({ hostBitsSet: true });
    expect(formatCidr(parseCidr('10.89.0.7/24')!)).toBe('10.89.0.0/24');
    expect(parseCidr('10.89.0.0/33')).toBeUndefined();
  });

  it('answers containment and overlap', () => {
    const a = parseCidr('10.89.0.0/24')!;
    expect(contains(a, parseIp('10.89.0.255')!)).toBe(true);
    expect(contains(a, parseIp('10.89.1.0')!)).toBe(false);
    expect(overlaps(a, parseCidr('10.89.0.128/25')!)).toBe(true);
    expect(overlaps(a, parseCidr('10.0.0.0/8')!)).toBe(true);
    expect(overlaps(a, parseCidr('10.88.0.0/16')!)).toBe(false);
    expect(isHostAddress(a, parseIp('10.89.0.0')!)).toBe(false);
    expect(isHostAddress(a, parseIp('10.89.0.255')!)).toBe(false);
    expect(isHostAddress(a, parseIp('10.89.0.254')!)).toBe(true);
  });

  it('derives a locally administered unicast MAC from the address', () => {
    expect(macForIp(parseIp('10.89.0.2')!)).toBe('02:74:0a:59:00:02');
  });
});
