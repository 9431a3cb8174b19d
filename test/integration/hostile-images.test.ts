// Hostile images, through every command that writes a tar into a tree: `pull` from a real
// registry (skopeo pushes the crafted layer unchanged), `load` of an archive, `cp -` into a
// container. Each case writes through an entry that names the tree's root (issue 13's first
// escape) towards a host directory, and the host directory must stay empty.
import * as fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { makeTar, type TarEntry } from '../fixtures/tar.js';
import { describePrivileged, TestEnv } from './helpers/env.js';
import { loadBusybox } from './helpers/images.js';
import { buildImage, pushLayout, startRegistry, type TestRegistry } from './helpers/registry.js';

/** Every way to name a layer's root: each goes through pull, load and cp - (issue 13). */
const SPELLINGS = ['.', './', '/', '', '//', 'a/..'];

describePrivileged('hostile layers and tars', () => {
  let env: TestEnv;
  let reg: TestRegistry;
  let victim: string;
  const layouts: string[] = [];

  beforeAll(async () => {
    env = new TestEnv('hostile');
    reg = await startRegistry({ mode: 'http' });
    loadBusybox(env);
  });
  afterAll(async () => {
    await reg?.stop();
    for (const l of layouts) fs.rmSync(l, { recursive: true, force: true });
    await env.cleanup();
  });

  /** A host directory the layer points at; every test checks it stays empty. */
  function freshVictim(): string {
    victim = fs.mkdtempSync(path.join(env.root, 'victim-'));
    return victim;
  }

  const rootSymlink = (spelling: string): TarEntry[] => [
    { name: 'ok', content: 'before' },
    { name: spelling, type: 'symlink', linkname: victim },
    { name: 'x', content: 'pwned' },
    { name: './y', content: 'pwned' },
    { name: '/z', content: 'pwned' },
  ];

  function expectRefused(r: { status: number | null; stderr: string }, spelling: string): void {
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('names the layer root itself');
    expect(r.stderr).toContain(`symlink ${spelling}: names the layer root itself`);
    expect(fs.readdirSync(victim)).toEqual([]);
  }

  /** Nothing of the refused image stays: no image record, no layer, no temporary directory. */
  function expectNothingStored(): void {
    const db = JSON.parse(fs.readFileSync(path.join(env.root, 'images.json'), 'utf8')) as { names: Record<string, string> };
    expect(Object.keys(db.names).filter((n) => n.includes('evil'))).toEqual([]);
    expect(fs.readdirSync(path.join(env.root, 'tmp'))).toEqual([]);
  }

  for (const spelling of SPELLINGS) {
    it(`pull refuses a layer whose ${JSON.stringify(spelling)} is a symlink to a host directory`, async () => {
      freshVictim();
      const layers = fs.readdirSync(path.join(env.root, 'layers')).sort();
      const image = await buildImage({ layers: [makeTar(rootSymlink(spelling))] });
      layouts.push(image.layoutDir);
      await pushLayout(reg, image.layoutDir, `evil${SPELLINGS.indexOf(spelling)}:latest`);
      const r = env.run(['pull', `${reg.host}/evil${SPELLINGS.indexOf(spelling)}:latest`]);
      expectRefused(r, spelling);
      expectNothingStored();
      expect(fs.readdirSync(path.join(env.root, 'layers')).sort()).toEqual(layers);
    });

    it(`load refuses a layer whose ${JSON.stringify(spelling)} is a symlink to a host directory`, () => {
      freshVictim();
      const layer = makeTar(rootSymlink(spelling));
      const diffId = `sha256:${createHash('sha256').update(layer).digest('hex')}`;
      const archive = path.join(env.root, 'evil.tar');
      fs.writeFileSync(
        archive,
        makeTar([
          { name: 'config.json', content: JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [diffId] } }) },
          { name: 'l/layer.tar', content: layer },
          { name: 'manifest.json', content: JSON.stringify([{ Config: 'config.json', RepoTags: ['evil:load'], Layers: ['l/layer.tar'] }]) },
        ]),
      );
      expectRefused(env.run(['load', '-i', archive]), spelling);
      expectNothingStored();
    });

    it(`cp - refuses a tar whose ${JSON.stringify(spelling)} is a symlink to a host directory`, () => {
      freshVictim();
      const name = `cp-target-${SPELLINGS.indexOf(spelling)}`;
      expect(env.run(['create', '--name', name, 'busybox', 'true']).status).toBe(0);
      const r = env.run(['cp', '-', `${name}:/tmp`], { input: makeTar(rootSymlink(spelling)) });
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain('names the destination directory itself');
      expect(fs.readdirSync(victim)).toEqual([]);
      // What came before the refused entry is in the container's /tmp, nothing after it.
      const out = env.run(['cp', `${name}:/tmp`, '-']);
      expect(out.status).toBe(0);
      expect(out.stdout).toContain('tmp/ok');
      expect(out.stdout).not.toContain('tmp/x');
      expect(env.run(['rm', name]).status).toBe(0);
    });
  }

  it('-u looks the user up in the image, never in a host directory the image points /etc at', () => {
    freshVictim();
    fs.writeFileSync(path.join(victim, 'passwd'), 'hostonly:x:4242:4242::/hostonly:/bin/sh\n');
    const layer = makeTar([{ name: 'etc', type: 'symlink', linkname: victim }]);
    const diffId = `sha256:${createHash('sha256').update(layer).digest('hex')}`;
    const archive = path.join(env.root, 'etclink.tar');
    fs.writeFileSync(
      archive,
      makeTar([
        { name: 'config.json', content: JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['/x'] }, rootfs: { type: 'layers', diff_ids: [diffId] } }) },
        { name: 'l/layer.tar', content: layer },
        { name: 'manifest.json', content: JSON.stringify([{ Config: 'config.json', RepoTags: ['evil:etclink'], Layers: ['l/layer.tar'] }]) },
      ]),
    );
    expect(env.run(['load', '-i', archive]).status).toBe(0);
    const r = env.run(['create', '-u', 'hostonly', 'evil:etclink']);
    expect(r.status).toBe(125);
    expect(r.stderr).toContain('unable to find user hostonly');
    expect(env.run(['rmi', 'evil:etclink']).status).toBe(0);
  });

  it('volume copy-up never reads through a symlink the image points at a host directory', () => {
    freshVictim();
    fs.writeFileSync(path.join(victim, 'secret'), 'host data');
    // The image has the link and, at the same path, a directory of its own for it to lead to.
    expect(env.run(['run', '--name', 'mklink', 'busybox', 'sh', '-c', `ln -s ${victim} /data && mkdir -p ${victim}`]).status).toBe(0);
    expect(env.run(['commit', 'mklink', 'evil:link']).status).toBe(0);
    expect(env.run(['rm', 'mklink']).status).toBe(0);
    const r = env.run(['run', '--rm', '-v', 'linkvol:/data', 'evil:link', 'sh', '-c', 'touch /data/new; ls -A /data/']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('new\n');
    const data = JSON.parse(env.run(['volume', 'inspect', 'linkvol']).stdout)[0].Mountpoint as string;
    expect(fs.readdirSync(data)).toEqual(['new']);
    expect(fs.readdirSync(victim)).toEqual(['secret']);
    expect(env.run(['volume', 'rm', 'linkvol']).status).toBe(0);
    expect(env.run(['rmi', 'evil:link']).status).toBe(0);
  });
});
