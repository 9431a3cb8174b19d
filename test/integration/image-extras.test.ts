// The image commands around containers: rmi refuses an image a container uses (unless -f,
// which only untags), image prune (dangling images, then layers and blobs nothing reaches,
// never a layer a container mounts), system df, save → load (and skopeo reads the archive),
// image inspect, and commit → push → pull.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describePrivileged, repoRoot, TestEnv, type Result } from './helpers/env.js';
import { loadBusybox } from './helpers/images.js';
import { startRegistry, type TestRegistry } from './helpers/registry.js';

const run = promisify(execFile);
const NO_CREDENTIALS = { DOCKER_CONFIG: '/nonexistent', TSRUN_CONFIG: '/nonexistent' };

describePrivileged('image extras', () => {
  let env: TestEnv;
  let work: string;
  const t = (...args: string[]): Result => env.run(args, { timeout: 60_000, env: NO_CREDENTIALS });
  const ok = (...args: string[]): string => {
    const r = t(...args);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    return r.stdout;
  };
  const imageId = (name: string): string => JSON.parse(ok('image', 'inspect', name))[0].Id;
  const db = () => JSON.parse(readFileSync(join(env.root, 'images.json'), 'utf8'));
  /** Makes everything in the store look old (age has no say in what prune takes). */
  const age = () => {
    const old = new Date(Date.now() - 3 * 3600_000);
    for (const dir of ['layers', 'blobs/sha256']) {
      for (const name of readdirHex(join(env.root, dir))) utimesSync(join(env.root, dir, name), old, old);
    }
  };

  /**
   * A two-layer image from an OCI layout (another image ID than busybox's): its compressed
   * layer blobs are kept, so it can be pushed and saved.
   */
  function loadOciBusybox(name: string): void {
    const layout = join(work, `oci-${name.replace(/[^a-z0-9]/g, '_')}`);
    rmSync(layout, { recursive: true, force: true });
    execFileSync(process.execPath, [join(repoRoot, 'scripts', 'make-busybox-image.mjs'), '--out', layout, '--format', 'oci', '--layers', '2', '--name', `docker.io/library/${name}`]);
    ok('load', '-q', '-i', layout);
  }

  beforeAll(() => {
    env = new TestEnv('imgx');
    work = mkdtempSync(join(tmpdir(), 'tsrun-imgx-'));
    loadBusybox(env);
    loadOciBusybox('obox:latest');
  });
  afterAll(async () => {
    const ids = t('ps', '-aq').stdout.split('\n').filter(Boolean);
    if (ids.length) t('rm', '-f', ...ids);
    rmSync(work, { recursive: true, force: true });
    await env.cleanup();
  });

  describe('rmi', () => {
    it('refuses an image a container uses, with docker\'s message; -f only untags it', () => {
      ok('run', '--name', 'maker', '--network', 'none', 'busybox', 'sh', '-c', 'echo v > /v');
      const id = ok('commit', 'maker', 'inuse:v1').trim();
      ok('tag', 'inuse:v1', 'inuse:other');
      const cid = ok('create', '--name', 'user', '--network', 'none', 'inuse:v1', 'cat', '/v').trim();
      // Another name remains: untagging one is fine.
      expect(ok('rmi', 'inuse:other')).toBe('Untagged: inuse:other\n');
      const refused = t('rmi', 'inuse:v1');
      expect(refused.status).toBe(1);
      expect(refused.stderr).toBe(
        `tsrun: conflict: unable to remove repository reference "inuse:v1" (must force) - container ${cid.slice(0, 12)} is using its referenced image ${id.slice(7, 19)}\n`,
      );
      expect(t('rmi', id.slice(7, 19)).stderr).toBe(
        `tsrun: conflict: unable to delete ${id.slice(7, 19)} (must be forced) - image is being used by stopped container ${cid.slice(0, 12)}\n`,
      );
      expect(ok('rmi', '-f', 'inuse:v1')).toBe('Untagged: inuse:v1\n');
      // The image stays (untagged) while the container needs it: the container still runs.
      expect(ok('images', '-q')).toContain(id.slice(7, 19));
      expect(ok('start', '-a', 'user')).toBe('v\n');
      ok('rm', 'user');
      // Nothing uses it now: prune takes it.
      expect(ok('image', 'prune')).toContain(`deleted: ${id}`);
      expect(ok('images', '-q')).not.toContain(id.slice(7, 19));
    });
  });

  describe('image prune', () => {
    it('deletes unreferenced layers and blobs but keeps every layer a container mounts, and all while a writer lives', async () => {
      // Two images on top of busybox; a container runs from the first.
      ok('run', '--name', 'base1', '--network', 'none', 'busybox', 'sh', '-c', 'echo one > /one');
      ok('commit', 'base1', 'layered:one');
      ok('run', '--name', 'base2', '--network', 'none', 'busybox', 'sh', '-c', 'echo two > /two');
      ok('commit', 'base2', 'layered:two');
      ok('run', '--name', 'onuser', '--network', 'none', 'layered:one', 'true');
      const one = JSON.parse(ok('image', 'inspect', 'layered:one'))[0];
      const two = JSON.parse(ok('image', 'inspect', 'layered:two'))[0];
      const layerDir = (info: { GraphDriver: { Data: { LowerDir: string } } }) => info.GraphDriver.Data.LowerDir.split(':')[0]!;
      // Both images vanish from images.json (as after a crash or an older tsrun's rmi -f).
      const d = db();
      for (const [m, e] of Object.entries(d.images) as Array<[string, { id: string }]>) {
        if (e.id === one.Id || e.id === two.Id) delete d.images[m];
      }
      for (const [n, m] of Object.entries(d.names)) if (!d.images[m as string]) delete d.names[n];
      writeFileSync(join(env.root, 'images.json'), JSON.stringify(d));

      // While a writer lives (a pull, load, commit or build holds a lease), unrecorded content
      // is left alone, however old: the writer may be about to record or reuse it.
      const writer = spawn('sleep', ['60'], { stdio: 'ignore' });
      try {
        const start = readFileSync(`/proc/${writer.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[19];
        mkdirSync(join(env.root, 'leases'), { recursive: true });
        writeFileSync(join(env.root, 'leases', `${writer.pid}@${start}`), '');
        age();
        const kept = t('image', 'prune');
        expect(kept.stdout).toMatch(/Total reclaimed space: 0B\n$/);
        expect(kept.stderr).toBe(`tsrun: layers and blobs no image uses were kept: a pull, load, commit, push or build is writing (pid ${writer.pid}); prune again once done\n`);
        expect(existsSync(layerDir(two))).toBe(true);
      } finally {
        writer.kill('SIGKILL');
        await once(writer, 'exit');
      }
      // Its writer gone (as after a kill -9), nothing will record it: prune takes it, at any age.
      const out = ok('image', 'prune');
      expect(out).toMatch(/Total reclaimed space: [1-9][\d.]*[kM]?B\n$/);
      expect(existsSync(layerDir(two))).toBe(false);
      expect(existsSync(layerDir(one))).toBe(true);
      expect(ok('start', '-a', 'onuser')).toBe('');
      expect(ok('run', '--rm', '--network', 'none', 'busybox', 'true')).toBe('');
    });

    it('-a removes every image no container uses', () => {
      ok('tag', 'busybox', 'unused:tag');
      ok('run', '--name', 'keeper', '--network', 'none', 'busybox', 'true');
      const out = ok('image', 'prune', '-a');
      expect(out).toContain('untagged: obox:latest');
      expect(out).not.toContain('untagged: busybox:latest');
      const left = ok('images', '--format', 'json').trim().split('\n').map((l) => JSON.parse(l));
      expect(left.map((i: { Repository: string }) => i.Repository).sort()).toEqual(['busybox', 'unused']);
    });
  });

  it('system df has docker\'s rows and columns', () => {
    detach('dfrun');
    const out = ok('system', 'df');
    const lines = out.trim().split('\n');
    expect(lines[0]).toMatch(/^TYPE\s+TOTAL\s+ACTIVE\s+SIZE\s+RECLAIMABLE$/);
    expect(lines[1]).toMatch(/^Images\s+\d+\s+\d+\s+[\d.]+[kMG]?B\s+[\d.]+[kMG]?B \(\d+%\)$/);
    expect(lines[2]).toMatch(/^Containers\s+\d+\s+1\s+/);
    expect(lines[3]).toMatch(/^Local Volumes\s+0\s+0\s+0B\s+0B$/);
    expect(lines[4]).toMatch(/^Build Cache\s+0\s+0\s+0B\s+0B$/);
    ok('rm', '-f', 'dfrun');
  });

  function detach(name: string): void {
    ok('run', '-d', '--name', name, '--network', 'none', 'busybox', 'sleep', '300');
  }

  it('save → load round trip, and skopeo reads the archive', async () => {
    loadOciBusybox('obox:latest');
    ok('run', '--name', 'forsave', '--network', 'none', 'obox', 'sh', '-c', 'echo saved > /etc/saved; rm /etc/group');
    ok('commit', 'forsave', 'saved:v1');
    const archive = join(work, 'saved.tar');
    ok('save', '-o', archive, 'saved:v1', 'obox');
    const manifest = JSON.parse((await run('tar', ['xOf', archive, 'manifest.json'])).stdout);
    expect(manifest.map((m: { RepoTags: string[] }) => m.RepoTags)).toEqual([['saved:v1'], ['obox:latest']]);
    const inspected = JSON.parse((await run('skopeo', ['inspect', `docker-archive:${archive}:saved:v1`])).stdout);
    expect(inspected.Layers).toHaveLength(3);
    // The OCI side too (ref.name is the tag, the full name in io.containerd.image.name, as docker writes them).
    const oci = JSON.parse((await run('skopeo', ['inspect', `oci-archive:${archive}:v1`])).stdout);
    expect(oci.Digest).toMatch(/^sha256:/);

    const other = new TestEnv('imgx2');
    try {
      const r = other.run(['load', '-i', archive]);
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe('Loaded image: docker.io/library/saved:v1\nLoaded image: docker.io/library/obox:latest\n');
      expect(JSON.parse(other.run(['image', 'inspect', 'saved:v1']).stdout)[0].Id).toBe(imageId('saved:v1'));
      expect(other.run(['run', '--rm', '--network', 'none', 'saved:v1', 'sh', '-c', 'cat /etc/saved; test -e /etc/group || echo gone']).stdout).toBe('saved\ngone\n');
    } finally {
      await other.cleanup();
    }
    // An image loaded from a docker-archive keeps each layer's tar, the blob its manifest names
    // (by the diff_id, as docker's does): it saves again, and skopeo reads what it saved.
    const bb = t('save', '-o', join(work, 'bb.tar'), 'busybox');
    expect(bb.stderr).toBe('');
    expect(bb.status).toBe(0);
    const layers = JSON.parse(ok('image', 'inspect', 'busybox'))[0].RootFS.Layers;
    const bbInspected = JSON.parse((await run('skopeo', ['inspect', `docker-archive:${join(work, 'bb.tar')}`])).stdout);
    expect(bbInspected.Layers).toEqual(layers);
  });

  describe('commit → push', () => {
    let reg: TestRegistry;
    beforeAll(async () => {
      reg = await startRegistry({ mode: 'http' });
    });
    afterAll(async () => {
      await reg?.stop();
    });

    it('pushes the committed image and pulls it back', () => {
      loadOciBusybox('obox:latest');
      ok('run', '--name', 'forpush', '--network', 'none', 'obox', 'sh', '-c', 'echo pushed > /pushed');
      const name = `${reg.host}/test/committed:v1`;
      ok('commit', 'forpush', name);
      const push = t('push', name);
      expect(push.status).toBe(0);
      ok('rmi', name);
      const pull = t('pull', name);
      expect(pull.status).toBe(0);
      expect(ok('run', '--rm', '--network', 'none', name, 'cat', '/pushed')).toBe('pushed\n');
    });

    it('pushes an image loaded from a docker-archive, its layers gzipped as docker pushes them', async () => {
      const name = `${reg.host}/test/loaded:v1`;
      ok('tag', 'busybox', name);
      const push = t('push', name);
      expect(push.stderr).toBe('');
      expect(push.status).toBe(0);
      const raw = JSON.parse((await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${name}`])).stdout);
      expect(raw.layers.map((l: { mediaType: string }) => l.mediaType)).toEqual(raw.layers.map(() => 'application/vnd.docker.image.rootfs.diff.tar.gzip'));
      ok('rmi', name);
      expect(t('pull', name).status).toBe(0);
      expect(ok('run', '--rm', '--network', 'none', name, 'echo', 'loaded')).toBe('loaded\n');
    });
  });
});

function readdirHex(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((n) => /^[a-f0-9]{64}$/.test(n)) : [];
}
