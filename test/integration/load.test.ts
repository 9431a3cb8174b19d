// `tsrun load` against an independent implementation: each fixture format is loaded into a
// fresh store, its layers are mounted as a read-only overlay (in a private mount namespace,
// so nothing stays mounted), and the tree is compared with `umoci unpack` of the same image.
// Also: several `tsrun load` processes at once on one store, and a load killed with SIGKILL.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { lgetxattr } from '../../src/sys/libc.js';
import { makeBusyboxImage, type Fixture, type FixtureFormat } from '../fixtures/images.js';
import { makeTar } from '../fixtures/tar.js';
import { cliPath, describePrivileged, TestEnv, type Result } from './helpers/env.js';
import { withMergedLayers } from './helpers/tree.js';

interface Node {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime?: number;
  size?: number;
  sha?: string;
  target?: string;
  rdev?: number;
}

/** Every path under `dir` with what a user of the tree can see of it. */
function walk(dir: string): Map<string, Node> {
  const out = new Map<string, Node>();
  const visit = (rel: string): void => {
    const p = path.join(dir, rel);
    const st = fs.lstatSync(p);
    const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : st.isCharacterDevice() ? 'char' : 'other';
    const node: Node = { type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
    // The root's mtime is not in the image (no "./" entry): each tool picks its own.
    if (rel !== '') node.mtime = Math.floor(st.mtimeMs / 1000);
    if (type === 'file') {
      node.size = st.size;
      node.sha = createHash('sha256').update(fs.readFileSync(p)).digest('hex');
    }
    if (type === 'symlink') node.target = fs.readlinkSync(p);
    if (type === 'char') node.rdev = st.rdev;
    out.set(rel || '/', node);
    if (type === 'dir') for (const name of fs.readdirSync(p).sort()) visit(rel ? `${rel}/${name}` : name);
  };
  visit('');
  return out;
}

function ok(r: Result): string {
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return r.stdout;
}

describePrivileged('tsrun load', () => {
  let env: TestEnv;
  const fixtures: Fixture[] = [];
  let reference: Map<string, Node>;
  let umociDir: string;

  const fixture = async (format: FixtureFormat, extra: object = {}): Promise<Fixture> => {
    const f = await makeBusyboxImage({ format, layers: 3, ...extra });
    fixtures.push(f);
    return f;
  };

  beforeAll(async () => {
    env = new TestEnv('load');
    const oci = await fixture('oci');
    umociDir = path.join(env.root, 'umoci-bundle');
    execFileSync('umoci', ['unpack', '--image', `${oci.path}:latest`, umociDir], { stdio: 'pipe' });
    reference = walk(path.join(umociDir, 'rootfs'));
  });

  afterAll(async () => {
    for (const f of fixtures) f.remove();
    await env.cleanup();
  });

  /** Mounts the image's layers as overlayfs in a private mount namespace and walks it. */
  async function mergedTree(root: string, image: string): Promise<Map<string, Node>> {
    const inspect = JSON.parse(fs.readFileSync(path.join(root, 'images.json'), 'utf8')) as {
      names: Record<string, string>;
      images: Record<string, { layers: string[] }>;
    };
    const manifest = inspect.names[image] ?? Object.keys(inspect.images)[0]!;
    const layers = inspect.images[manifest]!.layers.map((c) => path.join(root, 'layers', c.slice(7), 'diff'));
    return withMergedLayers(layers, env.root, walk);
  }

  for (const format of ['oci', 'oci-archive', 'docker-archive'] as const) {
    it(`loads a ${format} whose merged layers match umoci's unpack`, async () => {
      const f = format === 'oci' ? fixtures[0]! : await fixture(format, { name: 'docker.io/library/busybox:latest' });
      const root = fs.mkdtempSync(path.join(env.root, `store-${format}-`));
      const r = spawnSync(process.execPath, [cliPath, '--root', root, 'load', '-i', f.path], {
        encoding: 'utf8',
      });
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe(format === 'oci' ? `Loaded image ID: ${f.configDigest}\n` : 'Loaded image: docker.io/library/busybox:latest\n');
      const merged = await mergedTree(root, 'docker.io/library/busybox:latest');
      expect([...merged.keys()]).toEqual([...reference.keys()]);
      for (const [p, node] of reference) expect(merged.get(p), p).toEqual(node);
      // The whiteout hid etc/deleteme, the opaque dir hid old1/old2, the xattr survived.
      expect(merged.has('etc/deleteme')).toBe(false);
      expect([...merged.keys()].filter((k) => k.startsWith('opt/opaque/'))).toEqual(['opt/opaque/new']);
      const layer2 = fs.readdirSync(path.join(root, 'layers')).map((h) => path.join(root, 'layers', h, 'diff', 'etc/motd'));
      expect(layer2.map((p) => (fs.existsSync(p) ? lgetxattr(p, 'user.tsrun.fixture')?.toString() : undefined)).filter(Boolean)).toEqual(['motd']);
      expect(lgetxattr(path.join(umociDir, 'rootfs/etc/motd'), 'user.tsrun.fixture')?.toString()).toBe('motd');
      fs.rmSync(root, { recursive: true });
    });
  }

  it('loads from stdin, lists, tags and removes', async () => {
    const f = await fixture('docker-archive', { name: 'busybox:stdin' });
    const stdin = fs.openSync(f.path, 'r');
    const r = spawnSync(process.execPath, env.args(['load']), { encoding: 'utf8', stdio: [stdin, 'pipe', 'pipe'] });
    fs.closeSync(stdin);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('Loaded image: docker.io/library/busybox:stdin\n');
    const short = f.configDigest.slice(7, 19);
    expect(ok(env.run(['images']))).toMatch(new RegExp(`^REPOSITORY +TAG +IMAGE ID +CREATED +SIZE\\nbusybox +stdin +${short} +\\d+ years? ago +2\\.\\d+MB\\n$`));
    ok(env.run(['tag', 'busybox:stdin', 'localhost:5000/bb:v1']));
    expect(ok(env.run(['images', '-q']))).toBe(`${short}\n`);
    expect(ok(env.run(['rmi', 'busybox:stdin']))).toBe('Untagged: busybox:stdin\n');
    const rm = ok(env.run(['image', 'rm', 'localhost:5000/bb:v1']));
    expect(rm.split('\n')[0]).toBe('Untagged: localhost:5000/bb:v1');
    expect(rm).toContain(`Deleted: ${f.configDigest}`);
    expect(ok(env.run(['images']))).toBe('REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n');
    const bad = env.run(['rmi', 'busybox:stdin']);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/No such image/);
  });

  it('survives several loads of the same image at once', async () => {
    const f = await fixture('oci-archive', { tag: 'busybox:race' });
    const root = fs.mkdtempSync(path.join(env.root, 'store-race-'));
    const procs = [1, 2, 3, 4].map(() => spawn(process.execPath, [cliPath, '--root', root, 'load', '-i', f.path], { stdio: ['ignore', 'pipe', 'pipe'] }));
    const results = await Promise.all(
      procs.map(
        (p) =>
          new Promise<{ code: number | null; out: string }>((resolve) => {
            let out = '';
            p.stdout!.on('data', (d) => (out += d));
            p.stderr!.on('data', (d) => (out += d));
            p.on('close', (code) => resolve({ code, out }));
          }),
      ),
    );
    for (const r of results) expect(r).toEqual({ code: 0, out: 'Loaded image: docker.io/library/busybox:race\n' });
    expect(fs.readdirSync(path.join(root, 'layers')).sort()).toHaveLength(3);
    expect(fs.readdirSync(path.join(root, 'l'))).toHaveLength(3);
    for (const link of fs.readdirSync(path.join(root, 'l'))) expect(fs.existsSync(path.join(root, 'l', link, 'etc'))).toBe(true);
    expect(fs.readdirSync(path.join(root, 'tmp'))).toEqual([]);
    const db = JSON.parse(fs.readFileSync(path.join(root, 'images.json'), 'utf8'));
    expect(Object.keys(db.names)).toEqual(['docker.io/library/busybox:race']);
    fs.rmSync(root, { recursive: true });
  });

  it('leaves nothing trusted after a load killed with SIGKILL, and cleans up on the next run', async () => {
    // One big layer (20,000 files), so the kill lands in the middle of unpacking it.
    const entries = Array.from({ length: 20_000 }, (_, i) => ({ name: `d${i % 100}/f${i}`, content: `file ${i}` }));
    const layer = makeTar(entries);
    const diffId = `sha256:${createHash('sha256').update(layer).digest('hex')}`;
    const config = JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [diffId] } });
    const archive = path.join(env.root, 'big.tar');
    fs.writeFileSync(
      archive,
      makeTar([
        { name: 'config.json', content: config },
        { name: 'big/layer.tar', content: layer },
        { name: 'manifest.json', content: JSON.stringify([{ Config: 'config.json', RepoTags: ['big:1'], Layers: ['big/layer.tar'] }]) },
      ]),
    );
    const root = fs.mkdtempSync(path.join(env.root, 'store-kill-'));
    const p = spawn(process.execPath, [cliPath, '--root', root, 'load', '-i', archive], { stdio: 'ignore' });
    const layers = path.join(root, 'layers');
    const deadline = Date.now() + 20_000;
    while (!(fs.existsSync(layers) && fs.readdirSync(layers).some((n) => n.startsWith('.tmp-'))) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 2));
    }
    p.kill('SIGKILL');
    await new Promise((r) => p.once('close', r));
    expect(fs.readdirSync(layers).filter((n) => !n.startsWith('.tmp-'))).toEqual([]);

    // The next command opens the store and removes what the dead process left.
    const listed = spawnSync(process.execPath, [cliPath, '--root', root, 'images', '-q'], { encoding: 'utf8' });
    expect(listed.stdout).toBe('');
    expect(fs.readdirSync(layers)).toEqual([]);
    expect(fs.readdirSync(path.join(root, 'l'))).toEqual([]);
    expect(fs.readdirSync(path.join(root, 'tmp'))).toEqual([]);
    const again = spawnSync(process.execPath, [cliPath, '--root', root, 'load', '-i', archive], { encoding: 'utf8' });
    expect(again.stdout).toBe('Loaded image: docker.io/library/big:1\n');
    fs.rmSync(root, { recursive: true });
  });
});
