// WWW-Authenticate parsing, token caching, docker config.json and credential helpers.
import { chmod, mkdtemp, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenCache, parseWWWAuthenticate, scopeFor } from '../../src/registry-client/auth.js';
import { lookupCredential, normalizeRegistryKey, removeCredential, storeCredential } from '../../src/registry-client/credentials.js';

describe('parseWWWAuthenticate', () => {
  it('reads a Bearer challenge', () => {
    expect(parseWWWAuthenticate('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"')).toEqual([
      { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' } },
    ]);
  });
  it('reads Basic, spaces, unquoted values, escapes and case', () => {
    expect(parseWWWAuthenticate('Basic realm="Registry Realm"')).toEqual([{ scheme: 'basic', params: { realm: 'Registry Realm' } }]);
    expect(parseWWWAuthenticate('BEARER  Realm = "https://a/t" , service=reg , error="invalid_token"')).toEqual([
      { scheme: 'bearer', params: { realm: 'https://a/t', service: 'reg', error: 'invalid_token' } },
    ]);
    expect(parseWWWAuthenticate('Bearer realm="a\\"b",scope="repository:x:pull,push"')[0]!.params).toEqual({ realm: 'a"b', scope: 'repository:x:pull,push' });
  });
  it('reads several challenges in one header', () => {
    const c = parseWWWAuthenticate('Basic realm="r1", Bearer realm="https://t/token",service="s"');
    expect(c.map((x) => x.scheme)).toEqual(['basic', 'bearer']);
    expect(c[1]!.params).toEqual({ realm: 'https://t/token', service: 's' });
  });
  it('survives garbage', () => {
    expect(parseWWWAuthenticate('')).toEqual([]);
    expect(parseWWWAuthenticate('Bearer')).toEqual([{ scheme: 'bearer', params: {} }]);
    expect(() => parseWWWAuthenticate('Bearer realm="unterminated')).not.toThrow();
    expect(() => parseWWWAuthenticate('"=,=')).not.toThrow();
  });
});

describe('TokenCache', () => {
  it('keeps a token until it expires', () => {
    const c = new TokenCache();
    c.set('k', 't', 1000);
    expect(c.get('k', 999)).toBe('t');
    expect(c.get('k', 1000)).toBeUndefined();
    expect(scopeFor('library/busybox', ['pull', 'push'])).toBe('repository:library/busybox:pull,push');
  });
});

describe('docker config.json', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tsrun-cred-test-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('normalizes the keys docker writes', () => {
    expect(normalizeRegistryKey('https://index.docker.io/v1/')).toBe('docker.io');
    expect(normalizeRegistryKey('registry-1.docker.io')).toBe('docker.io');
    expect(normalizeRegistryKey('http://10.0.0.5:5000/v2/')).toBe('10.0.0.5:5000');
    expect(normalizeRegistryKey('Ghcr.io')).toBe('ghcr.io');
  });

  it('reads auths (base64 auth, identity tokens) and honours DOCKER_CONFIG', async () => {
    const d = join(dir, 'a');
    await mkdir(d);
    await writeFile(
      join(d, 'config.json'),
      JSON.stringify({
        auths: {
          'https://index.docker.io/v1/': { auth: Buffer.from('hubuser:hub:pass').toString('base64') },
          'ghcr.io': { auth: Buffer.from('u:x').toString('base64'), identitytoken: 'refresh-me' },
        },
      }),
    );
    const env = { DOCKER_CONFIG: d, PATH: '' };
    expect(await lookupCredential('docker.io', { env })).toEqual({ username: 'hubuser', password: 'hub:pass' });
    expect(await lookupCredential('ghcr.io', { env })).toEqual({ username: 'u', password: 'x', identityToken: 'refresh-me' });
    expect(await lookupCredential('quay.io', { env })).toBeUndefined();
    expect(await lookupCredential('quay.io', { env: { DOCKER_CONFIG: join(dir, 'missing') } })).toBeUndefined();
  });

  it('runs docker-credential-<helper> get for credHelpers and credsStore, when it exists', async () => {
    const d = join(dir, 'b');
    const bin = join(dir, 'bin');
    await mkdir(d);
    await mkdir(bin);
    const helper = join(bin, 'docker-credential-fake');
    await writeFile(
      helper,
      '#!/bin/sh\nread server\ncase "$server" in\n' +
        '  private.example) echo \'{"ServerURL":"private.example","Username":"robot","Secret":"s3cret"}\' ;;\n' +
        '  token.example) echo \'{"Username":"<token>","Secret":"idtok"}\' ;;\n' +
        '  *) echo "credentials not found in native keychain"; exit 1 ;;\nesac\n',
    );
    await chmod(helper, 0o755);
    await writeFile(join(d, 'config.json'), JSON.stringify({ credHelpers: { 'private.example': 'fake', 'token.example': 'fake', 'gone.example': 'absent' }, credsStore: 'fake' }));
    const env = { DOCKER_CONFIG: d, PATH: bin };
    expect(await lookupCredential('private.example', { env })).toEqual({ username: 'robot', password: 's3cret' });
    expect(await lookupCredential('token.example', { env })).toEqual({ identityToken: 'idtok' });
    expect(await lookupCredential('other.example', { env })).toBeUndefined(); // credsStore: not found
    expect(await lookupCredential('gone.example', { env })).toBeUndefined(); // helper binary missing
  });

  it('stores and removes credentials, mode 0600, keeping the other keys', async () => {
    const d = join(dir, 'c');
    await mkdir(d);
    const file = join(d, 'config.json');
    await writeFile(file, JSON.stringify({ auths: { 'a.example': { auth: 'YTpi' } }, credHelpers: { 'x.example': 'y' }, detachKeys: 'ctrl-e' }));
    const env = { DOCKER_CONFIG: d };
    await storeCredential('docker.io', { username: 'me', password: 'pw' }, env);
    const c = JSON.parse(await readFile(file, 'utf8'));
    expect(c.auths['https://index.docker.io/v1/']).toEqual({ auth: Buffer.from('me:pw').toString('base64') });
    expect(c.auths['a.example']).toEqual({ auth: 'YTpi' });
    expect(c.detachKeys).toBe('ctrl-e');
    expect(c.credHelpers).toEqual({ 'x.example': 'y' });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await removeCredential('docker.io', env)).toBe(true);
    expect(JSON.parse(await readFile(file, 'utf8')).auths).toEqual({ 'a.example': { auth: 'YTpi' } });
  });
});
