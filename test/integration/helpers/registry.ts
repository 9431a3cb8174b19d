// Real registries for tests: Debian's docker-registry (CNCF distribution) on 127.0.0.1, each in
// its own temp dir on its own port, in one of four modes — plain HTTP, HTTPS with a CA made
// here by openssl, htpasswd Basic auth, or Bearer tokens from a small token server written
// below (RS256 JWTs signed with node:crypto). Plus: a tiny OCI image builder, pushing with
// skopeo, and a temp-dir stand-in for the image store.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, createSign, randomBytes } from 'node:crypto';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGunzip, gzipSync } from 'node:zlib';
import type { Transform } from 'node:stream';
import { promisify } from 'node:util';
import tarStream from 'tar-stream';

const run = promisify(execFile);

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export type RegistryMode = 'http' | 'https' | 'mtls' | 'basic' | 'token';

export interface TestRegistry {
  /** 127.0.0.1:<port> */
  host: string;
  port: number;
  dir: string;
  mode: RegistryMode;
  /** HTTPS: the CA's PEM file (put it in certs.d/<host>/ca.crt to trust the registry). */
  caFile?: string;
  /** mtls: a client certificate and key the registry accepts (certs.d/<host>/client.cert, .key). */
  clientCert?: string;
  clientKey?: string;
  user?: string;
  password?: string;
  token?: TokenServer;
  /** skopeo's flags to push/inspect this registry. */
  skopeoDest: string[];
  stop(): Promise<void>;
}

export interface RegistryOptions {
  mode: RegistryMode;
  user?: string;
  password?: string;
  /** Token mode: the token server refuses OAuth2 POST (tests the GET fallback). */
  tokenRejectPost?: boolean;
  /** Token mode: anonymous clients may pull. */
  anonymousPull?: boolean;
}

async function makeCert(dir: string, name: string): Promise<{ cert: string; key: string; ca: string }> {
  const ca = join(dir, `${name}-ca.pem`);
  const caKey = join(dir, `${name}-ca.key`);
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.pem`);
  const ext = join(dir, `${name}.ext`);
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', caKey, '-out', ca, '-days', '2', '-subj', `/CN=tsrun test CA ${name}`]);
  await run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', csr, '-subj', '/CN=127.0.0.1']);
  await writeFile(ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n');
  await run('openssl', ['x509', '-req', '-in', csr, '-CA', ca, '-CAkey', caKey, '-CAcreateserial', '-out', cert, '-days', '2', '-extfile', ext]);
  return { cert, key, ca };
}

/** A client certificate signed by the registry's CA (for http.tls.clientcas). */
async function makeClientCert(dir: string, ca: string): Promise<{ cert: string; key: string }> {
  const key = join(dir, 'client.key');
  const csr = join(dir, 'client.csr');
  const cert = join(dir, 'client.cert');
  const ext = join(dir, 'client.ext');
  await run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', csr, '-subj', '/CN=tsrun test client']);
  await writeFile(ext, 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n');
  await run('openssl', ['x509', '-req', '-in', csr, '-CA', ca, '-CAkey', ca.replace(/\.pem$/, '.key'), '-CAcreateserial', '-out', cert, '-days', '2', '-extfile', ext]);
  // skopeo reads the same docker layout: *.cert + *.key, and *.crt as CAs.
  const skopeoDir = join(dir, 'skopeo-certs');
  await mkdir(skopeoDir);
  await writeFile(join(skopeoDir, 'client.cert'), await readFile(cert));
  await writeFile(join(skopeoDir, 'client.key'), await readFile(key));
  await writeFile(join(skopeoDir, 'ca.crt'), await readFile(ca));
  return { cert, key };
}

/** A bcrypt htpasswd line, through libcrypt (perl's crypt), so no apache2-utils is needed. */
async function htpasswdLine(user: string, password: string): Promise<string> {
  const alphabet = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const salt = Array.from(randomBytes(21), (b) => alphabet[b % 64]).join('') + '.';
  const { stdout } = await run('perl', ['-e', 'print crypt($ARGV[0], $ARGV[1])', password, `$2b$05$${salt}`]);
  if (!stdout.startsWith('$2b$')) throw new Error(`libcrypt has no bcrypt: ${stdout}`);
  return `${user}:${stdout}\n`;
}

export async function startRegistry(options: RegistryOptions): Promise<TestRegistry> {
  const dir = await mkdtemp(join(tmpdir(), `tsrun-registry-${options.mode}-`));
  const port = await freePort();
  const user = options.user ?? 'alice';
  const password = options.password ?? 'wonderland';
  const lines = [
    'version: 0.1',
    'log: {level: error, accesslog: {disabled: true}}',
    `storage: {filesystem: {rootdirectory: ${join(dir, 'data')}}, delete: {enabled: true}}`,
  ];
  let caFile: string | undefined;
  let token: TokenServer | undefined;
  const skopeoDest = ['--dest-tls-verify=false'];
  const tls = options.mode === 'https' || options.mode === 'mtls';
  let client: { cert: string; key: string } | undefined;
  if (tls) {
    const c = await makeCert(dir, 'registry');
    caFile = c.ca;
    let clientCas = '';
    if (options.mode === 'mtls') {
      client = await makeClientCert(dir, c.ca);
      clientCas = `, clientcas: [${c.ca}]`;
      skopeoDest.push(`--dest-cert-dir=${join(dir, 'skopeo-certs')}`);
    }
    lines.push(`http: {addr: "127.0.0.1:${port}", tls: {certificate: ${c.cert}, key: ${c.key}${clientCas}}}`);
  } else {
    lines.push(`http: {addr: "127.0.0.1:${port}"}`);
  }
  if (options.mode === 'basic') {
    await writeFile(join(dir, 'htpasswd'), await htpasswdLine(user, password));
    lines.push(`auth: {htpasswd: {realm: tsrun-test, path: ${join(dir, 'htpasswd')}}}`);
    skopeoDest.push(`--dest-creds=${user}:${password}`);
  }
  if (options.mode === 'token') {
    token = await startTokenServer(dir, {
      users: { [user]: password },
      rejectPost: options.tokenRejectPost ?? false,
      anonymousPull: options.anonymousPull ?? false,
    });
    lines.push(`auth: {token: {realm: "${token.realm}", service: ${token.service}, issuer: ${token.issuer}, rootcertbundle: ${token.certFile}}}`);
    skopeoDest.push(`--dest-creds=${user}:${password}`);
  }
  const configFile = join(dir, 'config.yml');
  await writeFile(configFile, lines.join('\n') + '\n');
  const child = spawn('/usr/bin/docker-registry', ['serve', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  await waitReady(port, tls, child, () => stderr);
  const stop = async () => {
    await stopChild(child);
    await token?.close();
    await rm(dir, { recursive: true, force: true });
  };
  return {
    host: `127.0.0.1:${port}`,
    port,
    dir,
    mode: options.mode,
    ...(caFile && { caFile }),
    ...(client && { clientCert: client.cert, clientKey: client.key }),
    ...((options.mode === 'basic' || options.mode === 'token') && { user, password }),
    ...(token && { token }),
    skopeoDest,
    stop,
  };
}

async function waitReady(port: number, tls: boolean, child: ChildProcess, stderr: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited ${child.exitCode}: ${stderr()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => (s.end(), resolve(true)));
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  void tls;
  throw new Error(`docker-registry did not listen on ${port}: ${stderr()}`);
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(t);
}

// ---------------------------------------------------------------------------------------------
// A token server for the registry's `auth.token` mode.

export interface TokenServer {
  realm: string;
  service: string;
  issuer: string;
  certFile: string;
  /** Every request it got: method, scope(s), user (or '' for anonymous). */
  requests: Array<{ method: string; scopes: string[]; user: string }>;
  close(): Promise<void>;
}

function b64url(b: Buffer | string): string {
  return Buffer.from(b).toString('base64url');
}

async function startTokenServer(
  dir: string,
  o: { users: Record<string, string>; rejectPost: boolean; anonymousPull: boolean },
): Promise<TokenServer> {
  const keyFile = join(dir, 'token.key');
  const certFile = join(dir, 'token.pem');
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=tsrun test token issuer']);
  const key = await readFile(keyFile, 'utf8');
  const der = Buffer.from((await readFile(certFile, 'utf8')).replace(/-----[^-]+-----|\s/g, ''), 'base64');
  const service = 'tsrun-test-registry';
  const issuer = 'tsrun-test-issuer';
  const requests: TokenServer['requests'] = [];

  const sign = (user: string, scopes: string[]) => {
    const now = Math.floor(Date.now() / 1000);
    const access = scopes
      .map((s) => s.split(':'))
      .filter((p) => p.length >= 3 && p[0] === 'repository')
      .map((p) => {
        const actions = p[p.length - 1]!.split(',');
        const name = p.slice(1, -1).join(':');
        return { type: 'repository', name, actions: user ? actions : actions.filter((a) => a === 'pull' && o.anonymousPull) };
      });
    const header = { typ: 'JWT', alg: 'RS256', x5c: [der.toString('base64')] };
    const claims = { iss: issuer, sub: user, aud: service, exp: now + 300, nbf: now - 10, iat: now, jti: randomBytes(8).toString('hex'), access };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const signature = createSign('RSA-SHA256').update(input).sign(key);
    return `${input}.${b64url(signature)}`;
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      let user = '';
      let pass: string | undefined;
      let scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
      if (req.method === 'POST') {
        if (o.rejectPost) {
          requests.push({ method: 'POST', scopes: [], user: '' });
          res.writeHead(405).end();
          return;
        }
        const form = new URLSearchParams(Buffer.concat(chunks).toString());
        user = form.get('username') ?? '';
        pass = form.get('password') ?? undefined;
        scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
      } else {
        const auth = req.headers.authorization;
        if (auth?.startsWith('Basic ')) {
          const decoded = Buffer.from(auth.slice(6), 'base64').toString();
          user = decoded.slice(0, decoded.indexOf(':'));
          pass = decoded.slice(decoded.indexOf(':') + 1);
        }
      }
      requests.push({ method: req.method ?? '', scopes, user });
      if (user && o.users[user] !== pass) {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"incorrect username or password"}');
        return;
      }
      const t = sign(user, scopes);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(req.method === 'POST' ? { access_token: t, expires_in: 300 } : { token: t, expires_in: 300, issued_at: new Date().toISOString() }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    certFile,
    requests,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

// ---------------------------------------------------------------------------------------------
// Test images: an OCI layout built here (the busybox fixture builder may replace it).

export interface BuiltLayer {
  digest: `sha256:${string}`;
  diffId: `sha256:${string}`;
  size: number;
  files: string[];
}

export interface BuiltImage {
  layoutDir: string;
  /** Tag in the layout (oci:<dir>:<tag>). */
  tag: string;
  manifestDigest: `sha256:${string}`;
  configDigest: `sha256:${string}`;
  layers: BuiltLayer[];
}

function sha(b: Buffer): `sha256:${string}` {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

async function tarOf(files: Record<string, Buffer | string>): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => void chunks.push(c as Buffer));
  const done = new Promise<void>((r) => pack.on('end', () => r()));
  for (const [name, content] of Object.entries(files)) {
    await new Promise<void>((resolve, reject) =>
      pack.entry({ name, mode: 0o644, mtime: new Date(0), uid: 0, gid: 0 }, Buffer.from(content), (err) => (err ? reject(err) : resolve())),
    );
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export interface ImageSpec {
  /** One object per layer: path → content; or the layer's tar exactly as given (a crafted one). */
  layers: Array<Record<string, Buffer | string> | Buffer>;
  architecture?: string;
  os?: string;
  variant?: string;
  /** Gzip the layers (default) or store them plain. */
  gzip?: boolean;
}

async function writeBlob(layout: string, bytes: Buffer): Promise<`sha256:${string}`> {
  const d = sha(bytes);
  await writeFile(join(layout, 'blobs', 'sha256', d.slice(7)), bytes);
  return d;
}

/** Writes one image's blobs into `layout` and returns its manifest descriptor parts. */
async function addImage(layout: string, spec: ImageSpec): Promise<{ manifest: Buffer; manifestDigest: `sha256:${string}`; configDigest: `sha256:${string}`; layers: BuiltLayer[] }> {
  const layers: BuiltLayer[] = [];
  const descs = [];
  for (const files of spec.layers) {
    const tar = Buffer.isBuffer(files) ? files : await tarOf(files);
    const blob = spec.gzip === false ? tar : gzipSync(tar);
    const digest = await writeBlob(layout, blob);
    layers.push({ digest, diffId: sha(tar), size: blob.length, files: Buffer.isBuffer(files) ? [] : Object.keys(files) });
    descs.push({
      mediaType: spec.gzip === false ? 'application/vnd.oci.image.layer.v1.tar' : 'application/vnd.oci.image.layer.v1.tar+gzip',
      digest,
      size: blob.length,
    });
  }
  const config = Buffer.from(
    JSON.stringify({
      architecture: spec.architecture ?? 'amd64',
      os: spec.os ?? 'linux',
      ...(spec.variant && { variant: spec.variant }),
      config: { Cmd: ['/bin/sh'], Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    }),
  );
  const configDigest = await writeBlob(layout, config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: descs,
    }),
  );
  const manifestDigest = await writeBlob(layout, manifest);
  return { manifest, manifestDigest, configDigest, layers };
}

async function newLayout(): Promise<string> {
  const layout = await mkdtemp(join(tmpdir(), 'tsrun-oci-'));
  await mkdir(join(layout, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  return layout;
}

/** A single-platform OCI layout with tag `latest`. */
export async function buildImage(spec: ImageSpec): Promise<BuiltImage> {
  const layout = await newLayout();
  const img = await addImage(layout, spec);
  const index = {
    schemaVersion: 2,
    manifests: [
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: img.manifestDigest,
        size: img.manifest.length,
        annotations: { 'org.opencontainers.image.ref.name': 'latest' },
      },
    ],
  };
  await writeFile(join(layout, 'index.json'), JSON.stringify(index));
  return { layoutDir: layout, tag: 'latest', manifestDigest: img.manifestDigest, configDigest: img.configDigest, layers: img.layers };
}

/** A multi-platform layout: an image index (tag `latest`) over one image per spec. */
export async function buildIndex(specs: ImageSpec[]): Promise<{ layoutDir: string; indexDigest: `sha256:${string}`; images: Array<Omit<BuiltImage, 'layoutDir' | 'tag'> & { platform: string }> }> {
  const layout = await newLayout();
  const images = [];
  const manifests = [];
  for (const spec of specs) {
    const img = await addImage(layout, spec);
    const platform = { architecture: spec.architecture ?? 'amd64', os: spec.os ?? 'linux', ...(spec.variant && { variant: spec.variant }) };
    manifests.push({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: img.manifestDigest, size: img.manifest.length, platform });
    images.push({ manifestDigest: img.manifestDigest, configDigest: img.configDigest, layers: img.layers, platform: [platform.os, platform.architecture, platform.variant].filter(Boolean).join('/') });
  }
  const indexBytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }));
  const indexDigest = await writeBlob(layout, indexBytes);
  await writeFile(
    join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: 'application/vnd.oci.image.index.v1+json', digest: indexDigest, size: indexBytes.length, annotations: { 'org.opencontainers.image.ref.name': 'latest' } }],
    }),
  );
  return { layoutDir: layout, indexDigest, images };
}

/** skopeo copy oci:<layout>:<tag> docker://<registry>/<repo> (--all keeps an index whole). */
export async function pushLayout(reg: TestRegistry, layoutDir: string, target: string, all = false): Promise<void> {
  await run('skopeo', ['copy', '--quiet', ...(all ? ['--all'] : []), ...reg.skopeoDest, '--preserve-digests', `oci:${layoutDir}:latest`, `docker://${reg.host}/${target}`], {
    timeout: 60_000,
  }).catch(async (err: Error & { stderr?: string }) => {
    // Older skopeo has no --preserve-digests; OCI layouts are copied unchanged anyway.
    if (!/preserve-digests/.test(err.stderr ?? '')) throw new Error(`skopeo copy: ${err.stderr ?? err.message}`);
    await run('skopeo', ['copy', '--quiet', ...(all ? ['--all'] : []), ...reg.skopeoDest, `oci:${layoutDir}:latest`, `docker://${reg.host}/${target}`], { timeout: 60_000 });
  });
}

/** skopeo inspect --raw: the manifest bytes exactly as the registry stores them. */
export async function inspectRaw(reg: TestRegistry, target: string): Promise<Buffer> {
  const creds = reg.user ? [`--creds=${reg.user}:${reg.password}`] : [];
  if (reg.clientCert) creds.push(`--cert-dir=${join(reg.dir, 'skopeo-certs')}`);
  const { stdout } = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', ...creds, `docker://${reg.host}/${target}`], {
    encoding: 'buffer',
    timeout: 30_000,
  });
  return stdout as unknown as Buffer;
}

export { sha as sha256Of };

// ---------------------------------------------------------------------------------------------
// A stand-in for src/image/store.ts (same API, files in a temp dir; unpacking only lists the
// tar's entries). It keeps the registry tests independent of the real unpacker and of root.

export interface TestLayer {
  chainId: `sha256:${string}`;
  diffId: `sha256:${string}`;
  size: number;
  dir: string;
  link: string;
  files: string[];
}

export class TestStore {
  /** Most layers seen unpacking at the same time. */
  maxParallelUnpacks = 0;
  private active = 0;
  unpacked: string[] = [];
  blobWrites: string[] = [];

  private constructor(readonly root: string) {}

  static async create(): Promise<TestStore> {
    const root = await mkdtemp(join(tmpdir(), 'tsrun-store-'));
    await mkdir(join(root, 'blobs', 'sha256'), { recursive: true });
    await mkdir(join(root, 'layers'), { recursive: true });
    return new TestStore(root);
  }

  blobPath(d: string): string {
    return join(this.root, 'blobs', 'sha256', d.slice(7));
  }
  async hasBlob(d: string): Promise<boolean> {
    return readFile(this.blobPath(d)).then(
      () => true,
      () => false,
    );
  }
  readBlob(d: string): Promise<Buffer> {
    return readFile(this.blobPath(d));
  }
  async writeBlob(source: AsyncIterable<Uint8Array>, expected: { digest: `sha256:${string}`; size?: number }): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of source) chunks.push(Buffer.from(c));
    await this.writeBlobBytes(Buffer.concat(chunks), expected);
  }
  async writeBlobBytes(bytes: Uint8Array, expected?: { digest: `sha256:${string}`; size?: number }): Promise<`sha256:${string}`> {
    const b = Buffer.from(bytes);
    const d = sha(b);
    if (expected && (expected.digest !== d || (expected.size !== undefined && expected.size !== b.length))) {
      const { TsrunError } = await import('../../../src/errors.js');
      throw new TsrunError('EDIGEST', `blob digest mismatch: expected ${expected.digest}, got ${d}`);
    }
    await writeFile(this.blobPath(d), b);
    this.blobWrites.push(d);
    return d;
  }
  async layer(chainId: string): Promise<TestLayer | undefined> {
    return readFile(join(this.root, 'layers', chainId.slice(7) + '.json'), 'utf8').then(
      (t) => JSON.parse(t) as TestLayer,
      () => undefined,
    );
  }
  async unpackLayer(diffId: `sha256:${string}`, parent: `sha256:${string}` | null, tar: AsyncIterable<Uint8Array>, before?: Promise<unknown>): Promise<TestLayer> {
    this.active++;
    this.maxParallelUnpacks = Math.max(this.maxParallelUnpacks, this.active);
    try {
      const chunks: Buffer[] = [];
      for await (const c of tar) chunks.push(Buffer.from(c));
      const bytes = Buffer.concat(chunks);
      const { TsrunError } = await import('../../../src/errors.js');
      if (sha(bytes) !== diffId) throw new TsrunError('EDIGEST', `layer diff_id mismatch: expected ${diffId}, got ${sha(bytes)}`);
      const files: string[] = [];
      const extract = tarStream.extract();
      const done = new Promise<void>((resolve, reject) => {
        extract.on('entry', (h, stream, next) => {
          files.push(h.name);
          stream.on('end', next);
          stream.resume();
        });
        extract.on('finish', resolve);
        extract.on('error', reject);
      });
      extract.end(bytes);
      await done;
      await before;
      const chainId = parent === null ? diffId : sha(Buffer.from(`${parent} ${diffId}`));
      const rec: TestLayer = { chainId, diffId, size: bytes.length, dir: join(this.root, 'layers', chainId.slice(7)), link: 'l/x', files };
      await writeFile(join(this.root, 'layers', chainId.slice(7) + '.json'), JSON.stringify(rec));
      this.unpacked.push(diffId);
      return rec;
    } finally {
      this.active--;
    }
  }
  private async images(): Promise<Record<string, { manifestDigest: string; configDigest: string; names: string[] }>> {
    return readFile(join(this.root, 'images.json'), 'utf8').then(
      (t) => JSON.parse(t),
      () => ({}),
    );
  }
  async putImage(p: { manifestDigest: `sha256:${string}`; manifest: { layers: unknown[] }; configDigest: `sha256:${string}`; names: string[] }): Promise<any> {
    const all = await this.images();
    for (const n of p.names) all[n] = { manifestDigest: p.manifestDigest, configDigest: p.configDigest, names: p.names };
    await writeFile(join(this.root, 'images.json'), JSON.stringify(all));
    return (await this.resolve(p.names[0]!))!;
  }
  async resolve(nameOrId: string): Promise<any> {
    const all = await this.images();
    const hit = all[nameOrId] ?? Object.values(all).find((i) => i.manifestDigest === nameOrId || i.configDigest === nameOrId);
    if (!hit) return undefined;
    const config = JSON.parse((await this.readBlob(hit.configDigest)).toString());
    const manifest = JSON.parse((await this.readBlob(hit.manifestDigest)).toString());
    return { id: hit.configDigest, manifestDigest: hit.manifestDigest, names: hit.names, config, layers: manifest.layers, size: 0 };
  }
  destroy(): Promise<void> {
    return rm(this.root, { recursive: true, force: true });
  }
}

/** gzip and plain layers, as src/image/compression.ts does (until it lands). */
export function testDecompressor(mediaType: string): Transform | null {
  if (mediaType.endsWith('gzip')) return createGunzip();
  return null;
}
