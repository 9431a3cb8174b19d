#!/usr/bin/env node
// Builds a small, real image from the host's static busybox (Debian: busybox-static), with no
// registry and no docker: an OCI image layout directory, an oci-archive, or a docker-archive.
//
//   node scripts/make-busybox-image.mjs --out /tmp/busybox-oci [--tag latest] [--layers 2]
//        [--format oci|oci-archive|docker-archive] [--gzip|--no-gzip|--zstd]
//        [--name docker.io/library/busybox:latest] [--index]
//
// --tag sets the OCI ref.name annotation (a tag, or a full name); --name the full name
// (OCI: io.containerd.image.name; docker-archive: the RepoTag, default busybox:<tag>).
//
// Layer 1: /bin/busybox, a symlink per applet (`busybox --list-full`), /etc/passwd and group,
// /tmp (1777), /root, /home, ... With --layers N ≥ 2, layer 2 exercises what an unpacker must
// get right: a whiteout deleting /etc/deleteme from layer 1, an opaque /opt/opaque, a hardlink,
// an xattr; layers 3..N add one file each. --index wraps the image in a multi-platform index
// (with a second, fake s390x entry). Fixed mtimes and owners: the same busybox gives the same
// digests. Used by the README (`skopeo copy oci:<dir>:latest docker://...`) and the tests.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import zlib from 'node:zlib';
import tarStream from 'tar-stream';

const MTIME = new Date('2024-01-01T00:00:00Z');
const BUSYBOX = '/bin/busybox';
const PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const MT = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: { none: 'application/vnd.oci.image.layer.v1.tar', gzip: 'application/vnd.oci.image.layer.v1.tar+gzip', zstd: 'application/vnd.oci.image.layer.v1.tar+zstd' },
};
const ARCH = { x64: ['amd64'], arm64: ['arm64', 'v8'], arm: ['arm', 'v7'], ia32: ['386'], ppc64: ['ppc64le'], s390x: ['s390x'], riscv64: ['riscv64'] };

const sha256 = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const hex = (d) => d.slice('sha256:'.length);

/** A tar (Buffer) of `entries` in order: { name, type?, content?, mode?, linkname?, pax? }. */
async function tarOf(entries) {
  const pack = tarStream.pack();
  const chunks = [];
  const done = (async () => {
    for await (const c of pack) chunks.push(c);
  })();
  for (const e of entries) {
    const header = { uid: 0, gid: 0, uname: '', gname: '', mtime: MTIME, mode: e.type === 'directory' ? 0o755 : 0o644, ...e };
    delete header.content;
    await new Promise((resolve, reject) => pack.entry(header, e.content ?? null, (err) => (err ? reject(err) : resolve())));
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

const dir = (name, mode = 0o755) => ({ name, type: 'directory', mode });
const file = (name, content, mode = 0o644, extra = {}) => ({ name, type: 'file', content: Buffer.from(content), mode, ...extra });

function baseLayer(multi) {
  const applets = execFileSync(BUSYBOX, ['--list-full'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes('/') && l !== 'bin/busybox')
    .sort();
  const entries = [
    dir('bin/'), dir('dev/'), dir('etc/'), dir('home/'), dir('proc/'), dir('root/', 0o700), dir('sbin/'), dir('sys/'),
    dir('tmp/', 0o1777), dir('usr/'), dir('usr/bin/'), dir('usr/sbin/'), dir('var/'),
    file('bin/busybox', fs.readFileSync(BUSYBOX), 0o755),
    ...applets.map((a) => ({ name: a, type: 'symlink', linkname: '/bin/busybox', mode: 0o777 })),
    file('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n'),
    file('etc/group', 'root:x:0:\nnobody:x:65534:\n'),
  ];
  if (multi) {
    entries.push(
      file('etc/deleteme', 'deleted by layer 2\n'),
      dir('opt/'), dir('opt/opaque/'),
      file('opt/opaque/old1', 'hidden by layer 2\n'),
      file('opt/opaque/old2', 'hidden by layer 2\n'),
    );
  }
  return entries;
}

function secondLayer() {
  return [
    dir('etc/'),
    file('etc/.wh.deleteme', ''),
    file('etc/motd', 'Hello from layer 2 of the tsrun busybox fixture\n', 0o644, { pax: { 'SCHILY.xattr.user.tsrun.fixture': 'motd' } }),
    { name: 'etc/motd.hardlink', type: 'link', linkname: 'etc/motd' },
    dir('opt/'), dir('opt/opaque/'),
    file('opt/opaque/.wh..wh..opq', ''),
    file('opt/opaque/new', 'only this survives\n'),
    dir('usr/'), dir('usr/local/'), dir('usr/local/bin/'),
    file('usr/local/bin/hello', '#!/bin/sh\necho hello from tsrun\n', 0o755),
    file('usr/local/bin/setuid-copy', 'not really setuid\n', 0o4755),
  ];
}

function compress(tar, compression) {
  if (compression === 'gzip') return zlib.gzipSync(tar, { level: 6 });
  if (compression === 'zstd') return execFileSync('zstd', ['-q', '-c', '-3', '--no-progress'], { input: tar, maxBuffer: 1 << 30 });
  return tar;
}

/**
 * Builds the image. Returns { path, manifestDigest, configDigest, diffIds, layers }.
 * options: out (required), format ('oci'), layers (1), tag ('latest'), name, compression
 * ('gzip' for OCI, 'none' for docker-archive), index (false).
 */
export async function makeBusyboxImage(options) {
  const format = options.format ?? 'oci';
  const nLayers = options.layers ?? 1;
  const compression = options.compression ?? (format === 'docker-archive' ? 'none' : 'gzip');
  const tag = options.tag ?? 'latest';
  if (!options.out) throw new Error('--out is required');
  if (!Number.isInteger(nLayers) || nLayers < 1) throw new Error('--layers must be a positive integer');
  if (!['oci', 'oci-archive', 'docker-archive'].includes(format)) throw new Error(`unknown --format ${format}`);
  if (!fs.existsSync(BUSYBOX)) throw new Error(`${BUSYBOX} not found: install busybox-static`);

  const layerEntries = [baseLayer(nLayers > 1)];
  if (nLayers > 1) layerEntries.push(secondLayer());
  for (let i = 3; i <= nLayers; i++) layerEntries.push([dir('etc/'), file(`etc/layer-${i}`, `${i}\n`)]);

  const blobs = new Map(); // digest → bytes
  const put = (bytes) => {
    const d = sha256(bytes);
    blobs.set(d, bytes);
    return d;
  };
  const layers = [];
  for (const entries of layerEntries) {
    const tar = await tarOf(entries);
    const blob = compress(tar, compression);
    layers.push({ tar, diffId: sha256(tar), blob, digest: put(blob) });
  }

  const [architecture, variant] = ARCH[process.arch] ?? [process.arch];
  const configFor = (arch, v) => ({
    created: MTIME.toISOString(),
    architecture: arch,
    ...(v && { variant: v }),
    os: 'linux',
    config: { Env: [PATH_ENV], Cmd: ['sh'] },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layers.map((_, i) => ({ created: MTIME.toISOString(), created_by: `make-busybox-image.mjs: layer ${i + 1}` })),
  });
  const manifestFor = (configBytes) => ({
    schemaVersion: 2,
    mediaType: MT.manifest,
    config: { mediaType: MT.config, digest: put(configBytes), size: configBytes.length },
    layers: layers.map((l) => ({ mediaType: MT.layer[compression], digest: l.digest, size: l.blob.length })),
  });
  const configBytes = Buffer.from(JSON.stringify(configFor(architecture, variant)));
  const manifestBytes = Buffer.from(JSON.stringify(manifestFor(configBytes)));
  const manifestDigest = put(manifestBytes);
  const result = { path: options.out, manifestDigest, configDigest: sha256(configBytes), diffIds: layers.map((l) => l.diffId), layers: layers.length };

  if (format === 'docker-archive') {
    const repoTag = options.name ?? (tag.includes(':') || tag.includes('/') ? tag : `busybox:${tag}`);
    const files = [
      { name: `${hex(result.configDigest)}.json`, content: configBytes },
      ...layers.flatMap((l) => [dir(`${hex(l.diffId)}/`), { name: `${hex(l.diffId)}/layer.tar`, content: l.blob }]),
      {
        name: 'manifest.json',
        content: Buffer.from(
          JSON.stringify([{ Config: `${hex(result.configDigest)}.json`, RepoTags: [repoTag], Layers: layers.map((l) => `${hex(l.diffId)}/layer.tar`) }]),
        ),
      },
    ];
    fs.writeFileSync(options.out, await tarOf(files));
    return result;
  }

  const annotations = { 'org.opencontainers.image.ref.name': tag, ...(options.name && { 'io.containerd.image.name': options.name }) };
  let top = { mediaType: MT.manifest, digest: manifestDigest, size: manifestBytes.length };
  if (options.index) {
    // A second platform the host is not: same layers, a config that says s390x.
    const other = Buffer.from(JSON.stringify(configFor(architecture === 's390x' ? 'ppc64le' : 's390x')));
    const otherManifest = Buffer.from(JSON.stringify(manifestFor(other)));
    const list = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MT.index,
        manifests: [
          { mediaType: MT.manifest, digest: put(otherManifest), size: otherManifest.length, platform: { architecture: architecture === 's390x' ? 'ppc64le' : 's390x', os: 'linux' } },
          { ...top, platform: { architecture, os: 'linux', ...(variant && { variant }) } },
        ],
      }),
    );
    top = { mediaType: MT.index, digest: put(list), size: list.length };
  }
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.index, manifests: [{ ...top, annotations }] }));
  const layoutFiles = [
    { name: 'oci-layout', content: Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })) },
    { name: 'index.json', content: index },
    ...[...blobs.keys()].sort().map((d) => ({ name: `blobs/sha256/${hex(d)}`, content: blobs.get(d) })),
  ];

  if (format === 'oci-archive') {
    fs.writeFileSync(options.out, await tarOf([dir('blobs/'), dir('blobs/sha256/'), ...layoutFiles]));
    return result;
  }
  fs.mkdirSync(path.join(options.out, 'blobs', 'sha256'), { recursive: true });
  for (const f of layoutFiles) fs.writeFileSync(path.join(options.out, f.name), f.content);
  return result;
}

function parseArgs(argv) {
  const o = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--out' || a === '-o') o.out = value();
    else if (a === '--tag') o.tag = value();
    else if (a === '--name') o.name = value();
    else if (a === '--layers') o.layers = Number(value());
    else if (a === '--format') o.format = value();
    else if (a === '--gzip') o.compression = 'gzip';
    else if (a === '--no-gzip') o.compression = 'none';
    else if (a === '--zstd') o.compression = 'zstd';
    else if (a === '--index') o.index = true;
    else if (a === '--help' || a === '-h') o.help = true;
    else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  try {
    const o = parseArgs(process.argv.slice(2));
    if (o.help || !o.out) {
      process.stdout.write(fs.readFileSync(new URL(import.meta.url), 'utf8').split('\n').slice(1, 17).map((l) => l.replace(/^\/\/ ?/, '')).join('\n') + '\n');
      process.exit(o.help ? 0 : 2);
    }
    const r = await makeBusyboxImage(o);
    process.stdout.write(`${r.path}: ${r.layers} layer(s), manifest ${r.manifestDigest}, image ID ${r.configDigest}\n`);
  } catch (err) {
    process.stderr.write(`make-busybox-image: ${err.message}\n`);
    process.exit(1);
  }
}
