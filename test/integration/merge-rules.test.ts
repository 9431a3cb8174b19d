// The OCI image spec's merge rules, as a container sees them: images of crafted layers go
// through `tsrun load` (the same store and unpacker as pull), the layers are merged by the
// kernel's overlayfs, and the tree must be the one the spec's model gives
// (test/fixtures/changeset-model.ts). Two rules docker and podman get wrong:
//   - a directory a layer implies (`tmp/x`, no `tmp/`) keeps what the layers below give it;
//   - a whiteout removes only what the layers below have, never what its own layer adds.
// umoci unpacks the same images for comparison (an independent producer).
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { applyLayers, describeModel } from '../fixtures/changeset-model.js';
import { makeTar, type TarEntry } from '../fixtures/tar.js';
import { describePrivileged, TestEnv } from './helpers/env.js';
import { buildImage } from './helpers/registry.js';
import { describeTree, treeDiff, withMergedLayers } from './helpers/tree.js';

const T = 1_600_000_000;

/** Layer 1: what the layers above change. */
const base: TarEntry[] = [
  { name: 'tmp/', type: 'dir', mode: 0o1777, mtime: T },
  { name: 'home/', type: 'dir', mode: 0o755, mtime: T },
  { name: 'home/user/', type: 'dir', mode: 0o700, uid: 1000, gid: 1000, mtime: T + 1, pax: { 'SCHILY.xattr.user.who': 'user' } },
  { name: 'etc/', type: 'dir', mtime: T },
  { name: 'etc/keep', content: 'lower keep', mtime: T },
  { name: 'etc/gone', content: 'lower gone', mtime: T },
  { name: 'd/', type: 'dir', mtime: T },
  { name: 'd/old', content: 'lower d/old', mtime: T },
  { name: 'x/', type: 'dir', mtime: T },
  { name: 'x/old', content: 'lower x/old', mtime: T },
  { name: 'o/', type: 'dir', mode: 0o750, mtime: T },
  { name: 'o/old', content: 'lower o/old', mtime: T },
  { name: 'top', content: 'lower top', mtime: T },
];

const cases: Array<{ name: string; layers: TarEntry[][] }> = [
  {
    name: 'implied directories keep the mode, owner, times and attributes below them',
    layers: [base, [{ name: 'tmp/x', content: 'new', mtime: T + 9 }, { name: 'home/user/.profile', content: 'p', uid: 1000, gid: 1000, mtime: T + 9 }]],
  },
  {
    name: 'a whiteout hides only lower entries; this layer\'s own stay, before or after it',
    layers: [
      base,
      [
        { name: 'etc/keep', content: 'this layer keep', mtime: T + 9 },
        { name: 'etc/.wh.keep' },
        { name: 'etc/.wh.gone' },
        { name: '.wh.d' },
        { name: 'd/new', content: 'this layer d/new', mtime: T + 9 },
        { name: 'x', content: 'a file first', mtime: T + 9 },
        { name: 'x/', type: 'dir', mode: 0o711, mtime: T + 9 },
        { name: 'x/n', content: 'then a dir', mtime: T + 9 },
      ],
    ],
  },
  {
    name: 'an opaque marker hides lower children only, at any depth and at the root',
    layers: [
      base,
      [{ name: 'o/n', content: 'n', mtime: T + 9 }, { name: 'o/.wh..wh..opq' }],
      [{ name: '.wh..wh..opq' }, { name: 'etc/fresh', content: 'f', mtime: T + 9 }, { name: 'o/', type: 'dir', mtime: T + 9 }],
    ],
  },
];

describePrivileged('the spec\'s merge rules, through tsrun load and overlayfs', () => {
  let env: TestEnv;
  const layouts: string[] = [];

  beforeAll(() => {
    env = new TestEnv('merge');
  });
  afterAll(async () => {
    for (const l of layouts) fs.rmSync(l, { recursive: true, force: true });
    await env.cleanup();
  });

  /** `tsrun load` of a docker-archive holding these layers; returns the unpacked layer dirs. */
  function load(layers: TarEntry[][], tag: string): string[] {
    const tars = layers.map((l) => makeTar(l));
    const diffIds = tars.map((t) => `sha256:${createHash('sha256').update(t).digest('hex')}`);
    const archive = path.join(env.root, `${tag}.tar`);
    fs.writeFileSync(
      archive,
      makeTar([
        { name: 'config.json', content: JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: diffIds } }) },
        ...tars.map((t, i) => ({ name: `l${i}/layer.tar`, content: t })),
        { name: 'manifest.json', content: JSON.stringify([{ Config: 'config.json', RepoTags: [`merge:${tag}`], Layers: tars.map((_, i) => `l${i}/layer.tar`) }]) },
      ]),
    );
    const r = env.run(['load', '-i', archive]);
    expect(r.stderr).toBe('');
    const db = JSON.parse(fs.readFileSync(path.join(env.root, 'images.json'), 'utf8')) as { names: Record<string, string>; images: Record<string, { layers: string[] }> };
    const chains = db.images[db.names[`docker.io/library/merge:${tag}`]!]!.layers;
    return chains.map((c) => path.join(env.root, 'layers', c.slice(7), 'diff'));
  }

  cases.forEach((c, i) => {
    it(c.name, async () => {
      const want = describeModel(applyLayers(c.layers));
      const got = await withMergedLayers(load(c.layers, `case${i}`), env.root, describeTree);
      expect(treeDiff(got, want)).toEqual([]);

      // umoci, an independent producer, unpacks the same image to the same tree: if it ever
      // stops agreeing, the model (or umoci) is wrong, and this says where.
      const image = await buildImage({ layers: c.layers.map((l) => makeTar(l)), gzip: false });
      layouts.push(image.layoutDir);
      const bundle = path.join(env.root, `umoci-${i}`);
      execFileSync('umoci', ['unpack', '--image', `${image.layoutDir}:latest`, bundle], { stdio: 'pipe' });
      const umoci = treeDiff(describeTree(path.join(bundle, 'rootfs')), want);
      fs.rmSync(bundle, { recursive: true, force: true });
      expect(umoci).toEqual([]);
    });
  });
});
