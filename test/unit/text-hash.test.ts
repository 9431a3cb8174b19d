import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { sha256Text } from '../../src/sys/text-hash.js';
import { hostVethName } from '../../src/netns/endpoint.js';
import { endpointId } from '../../src/netns/store.js';

const reference = (text: string) => createHash('sha256').update(text).digest('hex');

describe('sha256Text', () => {
  it('gives the published digests', () => {
    // FIPS 180-2's examples.
    expect(sha256Text('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(sha256Text('')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(sha256Text('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')).toBe('248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1');
  });

  it('agrees with node:crypto at every length around the block boundaries, and on any characters', () => {
    for (let n = 0; n <= 200; n++) {
      const ascii = randomBytes(n).toString('base64').slice(0, n);
      expect(sha256Text(ascii), `length ${n}`).toBe(reference(ascii));
    }
    for (const text of ['é', 'ü+ß', '容器', '\u{1F433}', 'a\u0000b', '\uD800']) expect(sha256Text(text), JSON.stringify(text)).toBe(reference(text));
  });

  it('names veths and endpoints as the node:crypto code before it did', () => {
    // An older tsrun's veths must still be found: the names are the same functions of the ID.
    const id = 'f3a1c2d4e5b60718293a4b5c6d7e8f90112233445566778899aabbccddeeff00';
    expect(hostVethName(id)).toBe(`veth${reference(id).slice(0, 8)}`);
    expect(hostVethName(id, 'backend')).toBe(`veth${reference(`${id}+backend`).slice(0, 8)}`);
    const ep = { id, network: 'bridge', created: '2026-12-07T10:22:26.363Z' };
    expect(endpointId(ep)).toBe(reference(`${id}+bridge+${ep.created}`));
  });
});
