// Image references parse as docker's distribution/reference parses them.
import { describe, expect, it } from 'vitest';
import { familiarRepository, formatReference, normalizeName, parseReference } from '../../src/registry-client/reference.js';

const D = `sha256:${'a'.repeat(64)}`;

describe('parseReference (docker normalize_test cases)', () => {
  it.each([
    ['busybox', 'docker.io/library/busybox:latest'],
    ['busybox:1.36', 'docker.io/library/busybox:1.36'],
    ['library/busybox', 'docker.io/library/busybox:latest'],
    ['docker.io/busybox', 'docker.io/library/busybox:latest'],
    ['index.docker.io/busybox', 'docker.io/library/busybox:latest'],
    ['docker.io/library/busybox', 'docker.io/library/busybox:latest'],
    ['foo/bar', 'docker.io/foo/bar:latest'],
    ['foo/bar/baz', 'docker.io/foo/bar/baz:latest'],
    ['localhost/foo', 'localhost/foo:latest'],
    ['localhost:5000/foo:tag', 'localhost:5000/foo:tag'],
    ['127.0.0.1:5000/busybox', '127.0.0.1:5000/busybox:latest'],
    ['10.0.0.5:5000/team/app:v1', '10.0.0.5:5000/team/app:v1'],
    ['ghcr.io/o/r', 'ghcr.io/o/r:latest'],
    ['example.com/a_b/c-d/e.f__g', 'example.com/a_b/c-d/e.f__g:latest'],
    ['[::1]:5000/foo', '[::1]:5000/foo:latest'],
    [`busybox@${D}`, `docker.io/library/busybox@${D}`],
    [`127.0.0.1:5000/busybox:1.36@${D}`, `127.0.0.1:5000/busybox:1.36@${D}`],
  ])('%s → %s', (input, full) => {
    expect(normalizeName(input)).toBe(full);
  });

  it('splits registry, repository, tag and digest', () => {
    expect(parseReference('localhost:5000/team/app:v1')).toEqual({ registry: 'localhost:5000', repository: 'team/app', tag: 'v1' });
    expect(parseReference(`app@${D}`)).toEqual({ registry: 'docker.io', repository: 'library/app', digest: D });
  });

  it.each([
    [''],
    ['UPPER'],
    ['busybox:'],
    ['-busybox'],
    ['busybox@sha256:abc'],
    ['busybox:a b'],
    ['a//b'],
    ['foo/Bar'],
    ['host:99999/app'],
    [`busybox:${'t'.repeat(129)}`],
    ['http://example.com/app'],
  ])('rejects %j', (input) => {
    expect(() => parseReference(input)).toThrow(expect.objectContaining({ code: 'EINVAL_REF' }));
  });

  it('shows familiar names as docker does', () => {
    expect(familiarRepository(parseReference('busybox'))).toBe('busybox');
    expect(familiarRepository(parseReference('foo/bar'))).toBe('foo/bar');
    expect(familiarRepository(parseReference('127.0.0.1:5000/busybox'))).toBe('127.0.0.1:5000/busybox');
    expect(formatReference({ registry: 'docker.io', repository: 'library/busybox', tag: 'latest' })).toBe('docker.io/library/busybox:latest');
  });
});
