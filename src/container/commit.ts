// `tsrun commit` (docker commit): the container's changes become a new image layer.
//
//   commitLayer (build commits each step's container with it too):
//     upper/ ──writeChangeset (overlay/)──▶ tar file, sha256 = diff_id   (the container frozen)
//     tar file ──gzip──▶ sha256 = blob digest ──▶ blobs/ (push sends it)  ┐ side by side
//     tar file ──unpackLayer──▶ a new layer on top of the parent chain    ┘ (run mounts it)
//   commitContainer: config = the container's config (docker's rule) + history + diff_id;
//     manifest; putImage
//
// A running container is frozen (cgroup freezer) while its upper dir is read, so the layer
// is one consistent moment, as docker's --pause=true does. Only that read: the layer's tar is
// a file by then, and gzip and the unpack read it after the container is thawed.
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { TsrunError } from '../errors.js';
import { detectCgroups, openDriver } from '../cgroups/index.js';
import { Hasher, sha256 } from '../image/digest.js';
import { storeLayerTar, tap } from '../image/layer-tar.js';
import { removeTree } from '../image/fsutil.js';
import { compressionOf } from '../image/compression.js';
import { layerBlob } from '../image/save.js';
import type { ImageStore } from '../image/store.js';
import type { Descriptor, Digest, ImageConfig, ImageManifest, ImageRunConfig } from '../image/types.js';
import { normalizeName, parseReference } from '../registry-client/reference.js';
import { MediaType } from '../registry-client/manifest.js';
import { toContainerIds } from '../namespaces/userns-files.js';
import { withLock } from '../sys/lock.js';
import { crashPoint } from '../sys/crash.js';
import { LowerLayers, writeChangeset } from '../overlay/index.js';
import { isPlaceholder, mountTargets } from './diff.js';
import { diskIdShift, failure } from './export.js';
import type { Found } from './lookup.js';
import { readState, type ContainerRecord } from './record.js';
import { observe } from './status.js';

export interface CommitOptions {
  /** REPO[:TAG]; none: an untagged image. */
  reference?: string;
  message?: string;
  author?: string;
  /** Dockerfile instructions (`CMD ["x"]`, `ENV A=b`...), applied to the new config. */
  changes: string[];
  /** Freeze a running container while its changes are read (docker's default). */
  pause: boolean;
}

export interface CommitResult {
  id: Digest;
  manifestDigest: Digest;
  diffId: Digest;
  /** Compressed size of the new layer. */
  layerSize: number;
}

export interface NewLayer {
  /** sha256 of the uncompressed tar. */
  diffId: Digest;
  /** sha256 of the gzip blob (stored in the blob store). */
  digest: Digest;
  /** Bytes of the gzip blob. */
  size: number;
  /** 'application/vnd.oci.image.layer.v1.tar+gzip'. */
  mediaType: string;
  /** Chain ID of the new layer on top of parentDiffIds. */
  chainId: Digest;
  /**
   * The upper dir had no changes: nothing in the tar changes what the lower layers show (it
   * holds at most directories overlayfs copied up unchanged to hold the runtime's mount points,
   * overlay/changeset.ts). build then records an empty_layer history entry instead of a layer.
   */
  empty: boolean;
}


export async function commitContainer(store: ImageStore, found: Found, opts: CommitOptions): Promise<CommitResult> {
  const { record } = found;
  const names = opts.reference === undefined ? [] : [commitName(opts.reference)];
  const parent = await store.resolve(record.imageId);
  if (!parent) throw new TsrunError('ENOIMAGE', `the image of container ${record.name} (${record.imageId}) is no longer in the store`);
  const config = applyChanges(containerConfig(parent.config, record), opts.changes);

  const created = { layers: [] as Digest[], blobs: [] as Digest[] };
  try {
    // Even an empty layer is added, as docker commit does.
    const layer = await commitLayer(store, found, parent.config.rootfs.diff_ids, { pause: opts.pause }, created);
    const { diffId } = layer;
    crashPoint('commit:layer-written');

    const now = new Date().toISOString();
    const imageConfig: ImageConfig & { container: string } = {
      ...parent.config,
      created: now,
      container: record.id,
      config,
      rootfs: { type: 'layers', diff_ids: [...parent.config.rootfs.diff_ids, diffId] },
      history: [
        ...(parent.config.history ?? []),
        {
          created: now,
          created_by: [record.path, ...record.args].join(' '),
          ...(opts.author !== undefined && { author: opts.author }),
          ...(opts.message !== undefined && { comment: opts.message }),
        },
      ],
    };
    // The parent's author is not the commit's.
    if (opts.author !== undefined) imageConfig.author = opts.author;
    else delete imageConfig.author;
    const configBytes = Buffer.from(JSON.stringify(imageConfig));
    const configDigest = await putBlob(store, configBytes, created.blobs);

    // The parent's layers as its manifest lists them; one it holds no blob for (a docker-archive
    // loaded by an older tsrun) is taken from another image with the same layer, so push can send it.
    const parentManifest = JSON.parse((await store.readBlob(parent.manifestDigest)).toString('utf8')) as ImageManifest;
    const docker = parentManifest.mediaType === MediaType.dockerManifest;
    const layers: Descriptor[] = [];
    for (const [i, d] of parentManifest.layers.entries()) {
      const found = (await layerBlob(store, d, parent.config.rootfs.diff_ids[i]!)) ?? d;
      layers.push({ ...found, mediaType: layerMediaType(found.mediaType, docker) });
    }
    layers.push({ mediaType: layerMediaType(layer.mediaType, docker), digest: layer.digest, size: layer.size });
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: docker ? MediaType.dockerManifest : MediaType.ociManifest,
      config: { mediaType: docker ? MediaType.dockerConfig : MediaType.ociConfig, digest: configDigest, size: configBytes.length },
      layers,
    };
    const manifestBytes = Buffer.from(JSON.stringify(manifest));
    const manifestDigest = await putBlob(store, manifestBytes, created.blobs);
    await store.putImage({ manifestDigest, manifest, configDigest, names });
    return { id: configDigest, manifestDigest, diffId, layerSize: layer.size };
  } catch (err) {
    await store.discard(created).catch(() => {});
    throw failure(err, `committing container ${record.name}`);
  }
}

/**
 * Writes the container's changes as a layer: tar → gzip → blob store, and unpacks it on top of
 * `parentDiffIds`' chain (a layer dir run can mount). Records what it created in `created` (for
 * store.discard on failure). With `pause`, a running container is frozen while its upper dir is
 * read. An empty layer is stored too (commit keeps it); a caller that leaves it out may discard
 * it through `created`.
 */
export async function commitLayer(
  store: ImageStore,
  found: Found,
  parentDiffIds: Digest[],
  opts: { pause: boolean; compress?: boolean },
  created: { layers: Digest[]; blobs: Digest[] },
): Promise<NewLayer> {
  const tmp = await store.makeTempDir('commit');
  try {
    // The tar goes to a file first: its diff_id names the layer (chain ID) before the unpack
    // starts, and the container is thawed as soon as it is read.
    const tarPath = join(tmp, 'layer.tar');
    const tarHash = new Hasher();
    const changeset = await frozen(found, opts.pause, () => {
      const lowers = LowerLayers.of(found);
      const targets = mountTargets(found);
      const shift = diskIdShift(found, readState(found.paths)); // it reads the upper dir itself
      return writeChangeset(join(found.paths.dir, 'upper'), lowers, (tar) => pipeline(tar, tap(tarHash), createWriteStream(tarPath)), {
        skip: (e) => isPlaceholder(e, targets, lowers),
        ...(shift && { owner: (onDisk) => toContainerIds(shift, onDisk) }),
      });
    });
    const layer = await storeLayerTar(store, tarPath, tarHash.digest(), parentDiffIds, tmp, created, { compress: opts.compress !== false });
    return { ...layer, empty: !changeset.changed };
  } catch (err) {
    throw failure(err, `committing container ${found.record.name}`);
  } finally {
    await removeTree(tmp).catch(() => {});
  }
}


/** The same compression in the manifest's family: docker's `...diff.tar.gzip` or OCI's `...tar+gzip`. */
function layerMediaType(mediaType: string, docker: boolean): string {
  if (/foreign|nondistributable/.test(mediaType)) return mediaType; // pushed by reference, as is
  const c = compressionOf(mediaType);
  if (docker) return `application/vnd.docker.image.rootfs.diff.tar${c === 'none' ? '' : c === 'gzip' ? '.gzip' : '.zstd'}`;
  return `application/vnd.oci.image.layer.v1.tar${c === 'none' ? '' : `+${c}`}`;
}

function commitName(reference: string): string {
  const ref = parseReference(reference);
  if (ref.digest !== undefined) throw new TsrunError('EINVAL_REF', `invalid reference format: ${reference} (a commit is named by a tag, not a digest)`);
  return normalizeName(reference);
}

async function putBlob(store: ImageStore, bytes: Buffer, created: Digest[]): Promise<Digest> {
  const d = sha256(bytes);
  if (!(await store.hasBlob(d))) created.push(d);
  return store.writeBlobBytes(bytes);
}

/**
 * Holds the container's lock (no start, pause or unpause meanwhile) and, if it runs and
 * `pause` is set, freezes its cgroup around `fn`.
 */
async function frozen<T>(found: Found, pause: boolean, fn: () => Promise<T>): Promise<T> {
  return withLock(found.paths.lock, async () => {
    const seen = observe(found.paths);
    const cgroup = pause && seen.status === 'running' ? openDriver(detectCgroups()).open(found.record.options.cgroupParent, found.record.id) : undefined;
    if (!cgroup) return fn();
    // Thawed on every way out this process has: an error, Ctrl-C, a polite kill. A kill -9 leaves
    // it frozen, and then `ps` says paused (status.ts reads the freezer) and `unpause` thaws it.
    const onSignal = (sig: NodeJS.Signals) => {
      cgroup.thaw();
      process.kill(process.pid, sig);
    };
    const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
    for (const sig of signals) process.once(sig, onSignal);
    cgroup.freeze();
    try {
      crashPoint('commit:paused');
      return await fn();
    } finally {
      cgroup.thaw();
      for (const sig of signals) process.off(sig, onSignal);
    }
  });
}

/**
 * docker commit's base config is the container's, not the image's: its command, its -e
 * variables, -w, -u and published ports, on top of the image's config.
 */
export function containerConfig(image: ImageConfig, record: Pick<ContainerRecord, 'options'>): ImageRunConfig {
  const base = image.config ?? {};
  const o = record.options;
  const env = new Map<string, string>();
  for (const e of [...(base.Env ?? []), ...o.env]) {
    const eq = e.indexOf('=');
    if (eq > 0) env.set(e.slice(0, eq), e.slice(eq + 1));
  }
  let entrypoint = base.Entrypoint ?? null;
  let cmd = base.Cmd ?? null;
  if (o.entrypoint !== undefined) {
    entrypoint = o.entrypoint === '' ? null : [o.entrypoint];
    cmd = null;
  }
  if (o.args.length > 0) cmd = o.args;
  const exposed: Record<string, object> = { ...(base.ExposedPorts ?? {}) };
  for (const p of o.publish ?? []) exposed[`${p.containerPort}/${p.protocol}`] = {};
  const out: ImageRunConfig = { ...base, Env: [...env].map(([k, v]) => `${k}=${v}`), Entrypoint: entrypoint, Cmd: cmd };
  if (o.workdir !== undefined) out.WorkingDir = o.workdir;
  if (o.user !== undefined) out.User = o.user;
  if (Object.keys(exposed).length > 0) out.ExposedPorts = exposed;
  return out;
}


// ---- --change: the Dockerfile instructions docker commit accepts ------------------------------

const CHANGE_INSTRUCTIONS = ['CMD', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'LABEL', 'ONBUILD', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR'];

/** Applies `-c` changes in order; throws EINVAL_FLAG naming a bad one. */
export function applyChanges(config: ImageRunConfig, changes: string[]): ImageRunConfig {
  let out: ImageRunConfig = { ...config };
  for (const change of changes) out = applyChange(out, change);
  return out;
}

function applyChange(c: ImageRunConfig, change: string): ImageRunConfig {
  const m = /^\s*(\S+)\s*([\s\S]*?)\s*$/.exec(change);
  const instruction = m?.[1]?.toUpperCase() ?? '';
  const rest = m?.[2] ?? '';
  const bad = (why: string) => new TsrunError('EINVAL_FLAG', `invalid argument "${change}" for "--change" flag: ${why}`);
  if (!CHANGE_INSTRUCTIONS.includes(instruction)) throw bad(`${m?.[1] ?? change} is not a valid change command`);
  if (rest === '') throw bad(`${instruction} requires at least one argument`);
  switch (instruction) {
    case 'CMD':
      return { ...c, Cmd: commandForm(rest) };
    case 'ENTRYPOINT':
      return { ...c, Entrypoint: commandForm(rest) };
    case 'ENV': {
      const env = new Map((c.Env ?? []).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)] as [string, string]));
      for (const [k, v] of keyValues(rest, bad)) env.set(k, v);
      return { ...c, Env: [...env].map(([k, v]) => `${k}=${v}`) };
    }
    case 'LABEL':
      return { ...c, Labels: { ...(c.Labels ?? {}), ...Object.fromEntries(keyValues(rest, bad)) } };
    case 'EXPOSE': {
      const ports = { ...(c.ExposedPorts ?? {}) };
      for (const p of words(rest)) {
        if (!/^\d+(-\d+)?(\/(tcp|udp|sctp))?$/i.test(p)) throw bad(`invalid port "${p}"`);
        ports[p.includes('/') ? p.toLowerCase() : `${p}/tcp`] = {};
      }
      return { ...c, ExposedPorts: ports };
    }
    case 'VOLUME': {
      const volumes = { ...(c.Volumes ?? {}) };
      for (const v of rest.startsWith('[') ? jsonArray(rest, bad) : words(rest)) volumes[v] = {};
      return { ...c, Volumes: volumes };
    }
    case 'WORKDIR': {
      const dir = words(rest).join(' ');
      return { ...c, WorkingDir: dir.startsWith('/') ? dir : join(c.WorkingDir || '/', dir) };
    }
    case 'USER':
      return { ...c, User: rest };
    case 'STOPSIGNAL':
      return { ...c, StopSignal: rest };
    default:
      throw bad(`${instruction} is not supported by tsrun commit`);
  }
}

/** Exec form (`["a", "b"]`) as is; shell form runs under `/bin/sh -c`, as in a Dockerfile. */
function commandForm(rest: string): string[] {
  if (rest.startsWith('[')) {
    try {
      const v = JSON.parse(rest) as unknown;
      if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
    } catch {
      // not JSON: docker falls back to the shell form
    }
  }
  return ['/bin/sh', '-c', rest];
}

function jsonArray(rest: string, bad: (why: string) => TsrunError): string[] {
  try {
    const v = JSON.parse(rest) as unknown;
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  } catch {
    // reported below
  }
  throw bad('expected a JSON array of strings');
}

/** `K=V K2="v 2"`, or the legacy `K value with spaces`. */
function keyValues(rest: string, bad: (why: string) => TsrunError): Array<[string, string]> {
  const ws = words(rest);
  if (!ws[0]!.includes('=')) {
    const space = rest.search(/\s/);
    if (space < 0) throw bad('expected KEY=value or KEY value');
    return [[rest.slice(0, space), rest.slice(space).trim()]];
  }
  return ws.map((w) => {
    const eq = w.indexOf('=');
    if (eq <= 0) throw bad(`"${w}" is not KEY=value`);
    return [w.slice(0, eq), w.slice(eq + 1)];
  });
}

/** Splits on blanks; quotes group (and are removed), a backslash escapes the next character. */
export function words(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: string | undefined;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (quote) {
      if (ch === quote) quote = undefined;
      else if (ch === '\\' && quote === '"' && i + 1 < s.length) cur += s[++i];
      else cur += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      inWord = true;
    } else if (ch === '\\' && i + 1 < s.length) {
      cur += s[++i];
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  if (inWord) out.push(cur);
  return out;
}
