// Real registries behind TLS and authentication: HTTPS with our own CA, htpasswd Basic auth,
// Bearer tokens from a token server; insecure declarations; login and logout.
import { mkdtemp, mkdir, copyFile, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pullImage } from '../../src/image/pull.js';
import { login, logout } from '../../src/registry-client/login.js';
import { buildImage, pushLayout, startRegistry, testDecompressor, TestStore, type BuiltImage, type TestRegistry } from './helpers/registry.js';

let image: BuiltImage;
let tmp: string;
const base = { decompressor: testDecompressor };

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'tsrun-auth-test-'));
  image = await buildImage({ layers: [{ 'etc/os-release': 'ID=test\n' }, { 'bin/tool': 'x'.repeat(5000) }] });
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
  await rm(image.layoutDir, { recursive: true, force: true });
});

/** An env with no config file, no docker config and nothing declared insecure. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: tmp, TSRUN_CONFIG: join(tmp, 'no-config.json'), DOCKER_CONFIG: join(tmp, 'no-docker'), TSRUN_CERTS_D: join(tmp, 'no-certs'), ...extra };
}

async function withStore<T>(fn: (s: TestStore) => Promise<T>): Promise<T> {
  const s = await TestStore.create();
  try {
    return await fn(s);
  } finally {
    await s.destroy();
  }
}

describe('plain HTTP registry and the insecure declarations', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry({ mode: 'http' });
    await pushLayout(reg, image.layoutDir, 'app:latest');
  });
  afterAll(() => reg?.stop());

  it('refuses an HTTP-only registry that is not declared insecure, naming the exact fix', async () => {
    await withStore(async (store) => {
      const err = await pullImage(store, `${reg.host}/app`, { ...base, env: cleanEnv(), implicitLoopback: false }).catch((e) => e);
      expect(err.code).toBe('EINSECURE');
      expect(err.message).toBe(
        `pull ${reg.host}/app: the registry at ${reg.host} answered over plain HTTP ("server gave HTTP response to HTTPS client"). ` +
          `If you trust it, declare it insecure: tsrun --insecure-registry ${reg.host} pull ..., ` +
          `or add "insecure-registries": ["${reg.host}"] to /etc/tsrun/config.json`,
      );
    });
  });

  it('accepts it when declared by flag, CIDR, env or config file', async () => {
    const config = join(tmp, 'config.json');
    await writeFile(config, JSON.stringify({ 'insecure-registries': [reg.host] }));
    await withStore(async (store) => {
      const cases = [
        { insecureRegistries: [reg.host], env: cleanEnv() },
        { insecureRegistries: ['127.0.0.0/8'], env: cleanEnv() },
        { insecureRegistries: ['127.0.0.1'], env: cleanEnv() },
        { env: cleanEnv({ TSRUN_INSECURE_REGISTRIES: `example.com, ${reg.host}` }) },
        { env: cleanEnv({ TSRUN_CONFIG: config }) },
      ];
      for (const c of cases) {
        const r = await pullImage(store, `${reg.host}/app`, { ...base, ...c, implicitLoopback: false });
        expect(r.manifestDigest).toBe(image.manifestDigest);
      }
    });
  });
});

describe('HTTPS registry with its own CA', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry({ mode: 'https' });
    await pushLayout(reg, image.layoutDir, 'app:latest');
  });
  afterAll(() => reg?.stop());

  it('names certs.d/<host:port>/ca.crt and the insecure option when the CA is unknown', async () => {
    await withStore(async (store) => {
      const err = await pullImage(store, `${reg.host}/app`, { ...base, env: cleanEnv(), implicitLoopback: false }).catch((e) => e);
      expect(err.code).toBe('EINSECURE');
      expect(err.message).toContain(`${join(tmp, 'no-certs')}/${reg.host}/ca.crt`);
      expect(err.message).toContain(`tsrun --insecure-registry ${reg.host} pull`);
    });
  });

  it('verifies against certs.d/<host:port>/ca.crt', async () => {
    const certs = join(tmp, 'certs.d');
    await mkdir(join(certs, reg.host), { recursive: true });
    await copyFile(reg.caFile!, join(certs, reg.host, 'ca.crt'));
    await withStore(async (store) => {
      const r = await pullImage(store, `${reg.host}/app`, { ...base, env: cleanEnv({ TSRUN_CERTS_D: certs }), implicitLoopback: false });
      expect(r.manifestDigest).toBe(image.manifestDigest);
    });
  });

  it('talks unverified TLS to an insecure registry and never downgrades it to HTTP', async () => {
    await withStore(async (store) => {
      const r = await pullImage(store, `${reg.host}/app`, { ...base, env: cleanEnv() }); // loopback: implicitly insecure
      expect(r.manifestDigest).toBe(image.manifestDigest);
      // TLS worked; a missing tag is a 404 over TLS, not a reason to try plain HTTP.
      const err = await pullImage(store, `${reg.host}/app:missing`, { ...base, env: cleanEnv() }).catch((e) => e);
      expect(err.code).toBe('ENOIMAGE');
    });
  });
});

describe('HTTPS registry that wants a client certificate', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry({ mode: 'mtls' });
    await pushLayout(reg, image.layoutDir, 'app:latest');
  });
  afterAll(() => reg?.stop());

  it('presents certs.d/<host:port>/client.cert and client.key', async () => {
    const certs = join(tmp, 'certs-mtls');
    await mkdir(join(certs, reg.host), { recursive: true });
    await copyFile(reg.caFile!, join(certs, reg.host, 'ca.crt'));
    await withStore(async (store) => {
      const env = cleanEnv({ TSRUN_CERTS_D: certs });
      const err = await pullImage(store, `${reg.host}/app`, { ...base, env, implicitLoopback: false, retry: { retries: 0, baseDelayMs: 1, maxDelayMs: 1 } }).catch((e) => e);
      expect(err.message).toContain(`${certs}/${reg.host}/client.cert and client.key`);
      await copyFile(reg.clientCert!, join(certs, reg.host, 'client.cert'));
      await copyFile(reg.clientKey!, join(certs, reg.host, 'client.key'));
      const r = await pullImage(store, `${reg.host}/app`, { ...base, env, implicitLoopback: false });
      expect(r.manifestDigest).toBe(image.manifestDigest);
    });
  });
});

describe('Basic auth (htpasswd)', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry({ mode: 'basic' });
    await pushLayout(reg, image.layoutDir, 'app:latest');
  });
  afterAll(() => reg?.stop());

  it('is refused without credentials, with a hint to log in', async () => {
    await withStore(async (store) => {
      const err = await pullImage(store, `${reg.host}/app`, { ...base, env: cleanEnv() }).catch((e) => e);
      expect(err.code).toBe('EAUTH');
      expect(err.message).toMatch(/tsrun login/);
    });
  });

  it('login checks the password, writes config.json 0600 keeping other keys; pull uses it; logout removes it', async () => {
    const dockerDir = join(tmp, 'docker-basic');
    await mkdir(dockerDir, { recursive: true });
    await writeFile(join(dockerDir, 'config.json'), JSON.stringify({ auths: { 'other.example:5000': { auth: 'eDp5' } }, psFormat: 'table' }));
    const env = cleanEnv({ DOCKER_CONFIG: dockerDir });
    const bad = await login(reg.host, { username: reg.user!, password: 'wrong' }, { env }).catch((e) => e);
    expect(bad.code).toBe('EAUTH');
    expect(bad.message).toMatch(/incorrect username or password/);

    const warnings: string[] = [];
    const r = await login(reg.host, { username: reg.user!, password: reg.password! }, { env, onWarning: (w) => warnings.push(w) });
    expect(r.verified).toBe(true);
    expect(warnings.join('\n')).toMatch(/over plain HTTP/);
    const file = join(dockerDir, 'config.json');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const written = JSON.parse(await readFile(file, 'utf8'));
    expect(written.psFormat).toBe('table');
    expect(written.auths['other.example:5000']).toEqual({ auth: 'eDp5' });
    expect(Buffer.from(written.auths[reg.host].auth, 'base64').toString()).toBe(`${reg.user}:${reg.password}`);

    await withStore(async (store) => {
      const pulled = await pullImage(store, `${reg.host}/app`, { ...base, env });
      expect(pulled.manifestDigest).toBe(image.manifestDigest);
    });

    expect((await logout(reg.host, env)).removed).toBe(true);
    expect((await logout(reg.host, env)).removed).toBe(false);
    const after = JSON.parse(await readFile(file, 'utf8'));
    expect(after.auths[reg.host]).toBeUndefined();
    expect(after.auths['other.example:5000']).toEqual({ auth: 'eDp5' });
  });
});

describe('Bearer tokens', () => {
  let reg: TestRegistry;
  let noPost: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry({ mode: 'token', anonymousPull: true });
    noPost = await startRegistry({ mode: 'token', tokenRejectPost: true });
    await pushLayout(reg, image.layoutDir, 'app:latest');
    await pushLayout(noPost, image.layoutDir, 'app:latest');
  });
  afterAll(async () => {
    await reg?.stop();
    await noPost?.stop();
  });

  it('pulls anonymously with one token for the whole pull', async () => {
    await withStore(async (store) => {
      reg.token!.requests.length = 0;
      const r = await pullImage(store, `${reg.host}/app`, { ...base, env: cleanEnv() });
      expect(r.manifestDigest).toBe(image.manifestDigest);
      expect(reg.token!.requests).toEqual([{ method: 'GET', scopes: ['repository:app:pull'], user: '' }]);
    });
  });

  it('uses credentials with an OAuth2 POST', async () => {
    const dockerDir = join(tmp, 'docker-token');
    await mkdir(dockerDir, { recursive: true });
    const auth = Buffer.from(`${reg.user}:${reg.password}`).toString('base64');
    await writeFile(join(dockerDir, 'config.json'), JSON.stringify({ auths: { [`https://${reg.host}/v2/`]: { auth } } }));
    await withStore(async (store) => {
      reg.token!.requests.length = 0;
      await pullImage(store, `${reg.host}/app`, { ...base, env: cleanEnv({ DOCKER_CONFIG: dockerDir }) });
      expect(reg.token!.requests).toEqual([{ method: 'POST', scopes: ['repository:app:pull'], user: reg.user }]);
    });
  });

  it('falls back to GET with Basic when the token server refuses POST; refuses anonymous pulls', async () => {
    await withStore(async (store) => {
      const cred = async () => ({ username: noPost.user!, password: noPost.password! });
      noPost.token!.requests.length = 0;
      const r = await pullImage(store, `${noPost.host}/app`, { ...base, env: cleanEnv(), credential: cred });
      expect(r.manifestDigest).toBe(image.manifestDigest);
      expect(noPost.token!.requests.map((q) => q.method)).toEqual(['POST', 'GET']);
      expect(noPost.token!.requests[1]!.user).toBe(noPost.user);

      const err = await pullImage(store, `${noPost.host}/app`, { ...base, env: cleanEnv() }).catch((e) => e);
      expect(err.code).toBe('EAUTH');
    });
  });

  it('login verifies against the token server', async () => {
    const env = cleanEnv({ DOCKER_CONFIG: join(tmp, 'docker-login-token') });
    await expect(login(reg.host, { username: reg.user!, password: 'nope' }, { env })).rejects.toMatchObject({ code: 'EAUTH' });
    const r = await login(reg.host, { username: reg.user!, password: reg.password! }, { env });
    expect(r.verified).toBe(true);
  });
});

describe('through an HTTP(S)_PROXY', () => {
  let reg: TestRegistry;
  let proxy: import('node:http').Server;
  const seen: string[] = [];
  const saved: Record<string, string | undefined> = {};
  const vars = ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'NO_PROXY', 'no_proxy'];

  beforeAll(async () => {
    const http = await import('node:http');
    const net = await import('node:net');
    reg = await startRegistry({ mode: 'http' });
    await pushLayout(reg, image.layoutDir, 'app:latest');
    // A forward proxy that knows "registry.test" as 127.0.0.1: only through it can the name resolve.
    proxy = http.createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      const target = new URL(req.url!);
      const up = http.request({ host: '127.0.0.1', port: target.port, path: target.pathname + target.search, method: req.method, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode!, r.headers);
        r.pipe(res);
      });
      req.pipe(up);
    });
    proxy.on('connect', (req, socket, head) => {
      seen.push(`CONNECT ${req.url}`);
      const port = Number(req.url!.split(':').pop());
      const up = net.connect(port, '127.0.0.1', () => {
        socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        up.write(head);
        up.pipe(socket);
        socket.pipe(up);
      });
      up.on('error', () => socket.destroy());
      socket.on('error', () => up.destroy());
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(proxy.address() as import('node:net').AddressInfo).port}`;
    for (const v of vars) saved[v] = process.env[v];
    Object.assign(process.env, { HTTP_PROXY: url, http_proxy: url, HTTPS_PROXY: url, https_proxy: url, NO_PROXY: '', no_proxy: '' });
  });
  afterAll(async () => {
    for (const v of vars) if (saved[v] === undefined) delete process.env[v];
    else process.env[v] = saved[v];
    proxy.closeAllConnections();
    await new Promise((r) => proxy.close(r));
    await reg?.stop();
  });

  it('tunnels HTTPS with CONNECT, then (declared insecure) goes plain HTTP through the proxy', async () => {
    const name = `registry.test:${reg.port}`;
    await withStore(async (store) => {
      const r = await pullImage(store, `${name}/app`, { ...base, env: cleanEnv(), insecureRegistries: ['registry.test'] });
      expect(r.manifestDigest).toBe(image.manifestDigest);
    });
    expect(seen[0]).toBe(`CONNECT ${name}`);
    expect(seen).toContain(`GET http://${name}/v2/`);
    expect(seen.filter((s) => s.includes('/blobs/'))).toHaveLength(3);
  });
});
