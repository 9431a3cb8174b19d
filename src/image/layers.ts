// Unpacked layers: `layers/<chain-id hex>/diff` (an overlay lower dir) and `layer.json`, plus
// a short link `l/<26 chars>` → `../layers/<hex>/diff` so that overlay mount options
// (`lowerdir=l/A:l/B:...`, relative to the store root: overlay/mount-options.ts) stay under a
// page for many layers — the trick containers/storage uses.
//
// A layer is trusted only once `layers/<hex>` exists: it is unpacked and described in a temp
// dir `layers/.tmp-<pid>-<rand>` and renamed into place in one step. Two pulls of the same
// layer (even in two processes) both unpack; the first rename wins and the other reuses it.
// A killed unpack leaves a temp dir that nothing trusts and that the next open removes.
import { randomInt } from '../sys/random.js';
// fs.promises rather than node:fs/promises: loaded on first use, not by every `run` (~2 ms).
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { TsrunError, errnoOf, wrap } from '../errors.js';
import { Hasher, chainIdOf, hexOf, isDigest, mismatch } from './digest.js';
import { ownerPid, readJson, removeTree, tempName, writeFileAtomic } from './fsutil.js';
import { ownerGone } from '../sys/proc.js';
import type { Digest, LayerRecord } from './types.js';
// The unpacker (tar-stream, koffi, worker threads) loads only when a layer is unpacked: `run`
// never needs it.
import type { UnpackOptions } from './unpack.js';
import { LowerLayers } from '../overlay/lower-layers.js';
import { applyFromBelow, needsBelow, type FromBelow } from '../overlay/inherit.js';

/** What `layers/<hex>/layer.json` holds. */
interface LayerMeta {
  chainId: Digest;
  diffId: Digest;
  parent: Digest | null;
  /** Bytes of the uncompressed tar. */
  size: number;
  /** Sum of the regular files' sizes. */
  contentSize: number;
  link: string;
  created: string;
  /** What the layer still takes from the chain below it (overlay/inherit.ts); gone once applied. */
  fromBelow?: FromBelow;
}

const TMP = '.tmp-';
const RM = '.rm-';
const LINK_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const LINK = /^l\/[A-Z0-9]{26}$/;
/** A temp dir whose owner is alive is left alone unless it is older than this (pid reuse). */
const STALE_MS = 24 * 3600 * 1000;

export class Layers {
  constructor(private readonly root: string) {}

  dir(chainId: Digest): string {
    return path.join(this.root, 'layers', hexOf(chainId));
  }

  async get(chainId: Digest): Promise<LayerRecord | undefined> {
    const meta = await readJson<LayerMeta>(path.join(this.dir(chainId), 'layer.json'));
    if (!meta) return undefined;
    if (meta.chainId !== chainId || !isDigest(meta.diffId) || !LINK.test(meta.link)) {
      throw new TsrunError('EBADIMAGE', `layer ${chainId}: corrupt layer.json in ${this.dir(chainId)}`);
    }
    return { chainId, diffId: meta.diffId, size: meta.size, dir: path.join(this.dir(chainId), 'diff'), link: meta.link };
  }

  /**
   * Unpacks `tar` in a worker thread (unpack-worker.ts). A CompressedTar (compression.ts) goes
   * to the worker compressed, and is decompressed there too. `diffId` undefined: a tar tsrun
   * makes itself as it goes (a build step), named by what it hashes to once it is all read.
   */
  /** `before`: settles when the layer may go into place (a pull's blob, verified and stored);
   * if it rejects, the unpacked copy is removed and that error thrown. */
  async unpack(
    expected: Digest | undefined,
    parent: Digest | null,
    tar: AsyncIterable<Uint8Array>,
    options: UnpackOptions = {},
    before?: Promise<unknown>,
  ): Promise<LayerRecord> {
    before?.catch(() => {}); // awaited below, or not at all when the unpack fails first
    const existing = expected === undefined ? undefined : await this.get(chainIdOf(parent, expected));
    if (existing && expected) {
      // Already here (another image, or a concurrent pull won): read the stream anyway, so the
      // caller's pipeline completes, and check it is what it claims to be.
      await drainAndVerify(tar, expected);
      return existing;
    }

    const tmp = path.join(this.root, 'layers', tempName(TMP));
    const link = `l/${Array.from({ length: 26 }, () => LINK_CHARS[randomInt(LINK_CHARS.length)]).join('')}`;
    const linkPath = path.join(this.root, link);
    let linked = false;
    try {
      await fs.mkdir(tmp, { mode: 0o700 });
      await fs.mkdir(path.join(tmp, 'diff'), { mode: 0o755 });
      const [{ unpackInWorker }, { CompressedTar }] = await Promise.all([import('./unpack-worker.js'), import('./compression.js')]);
      const result =
        tar instanceof CompressedTar
          ? await unpackInWorker(tar.compressed, tar.compression, path.join(tmp, 'diff'), options)
          : await unpackInWorker(tar, 'none', path.join(tmp, 'diff'), options);
      const diffId = expected ?? result.diffId;
      const chainId = chainIdOf(parent, diffId);
      const bad = mismatch(`layer ${diffId}`, { digest: diffId }, { digest: result.diffId, size: result.tarSize });
      if (bad) throw bad;
      await before;
      const meta: LayerMeta = {
        chainId,
        diffId,
        parent,
        size: result.tarSize,
        contentSize: result.contentSize,
        link,
        created: new Date().toISOString(),
        ...(needsBelow(result.fromBelow) && { fromBelow: result.fromBelow }),
      };
      await writeFileAtomic(path.join(tmp, 'layer.json'), JSON.stringify(meta, null, 2) + '\n', 0o644);
      // The link may point at a dir that does not exist yet; it is valid once the rename is.
      await fs.symlink(`../layers/${hexOf(chainId)}/diff`, linkPath);
      linked = true;
      try {
        await fs.rename(tmp, this.dir(chainId));
      } catch (err) {
        if (errnoOf(err) !== 'ENOTEMPTY' && errnoOf(err) !== 'EEXIST') throw err;
        // Lost the race: someone else's identical layer is in place.
        await fs.unlink(linkPath);
        linked = false;
        await removeTree(tmp);
        const winner = await this.get(chainId);
        if (!winner) throw new TsrunError('EINTERNAL', `layer ${chainId}: rename lost to a layer that is not there`, { cause: err });
        return winner;
      }
      return { chainId, diffId, size: meta.size, dir: path.join(this.dir(chainId), 'diff'), link };
    } catch (err) {
      if (linked) await fs.unlink(linkPath).catch(() => {});
      await removeTree(tmp).catch(() => {});
      throw wrap('EBADIMAGE', `unpacking layer ${expected ?? 'of a build step'}`, err);
    }
  }

  /**
   * Completes each layer of a chain (bottom first) with what it takes from the layers below it
   * (overlay/inherit.ts). A layer is committed as soon as it is unpacked, while the layers below
   * may still be unpacking (a pull unpacks them side by side); so this runs once the whole chain
   * is in the store, before an image that uses it is recorded. It is idempotent, and the next
   * image recorded on this chain finishes a layer whose process was killed before it could.
   */
  async finish(chains: Digest[]): Promise<void> {
    for (let i = 0; i < chains.length; i++) {
      const metaPath = path.join(this.dir(chains[i]!), 'layer.json');
      const meta = await readJson<LayerMeta>(metaPath);
      if (!meta || !needsBelow(meta.fromBelow)) continue;
      const below = new LowerLayers(chains.slice(0, i).reverse().map((c) => path.join(this.dir(c), 'diff')));
      try {
        applyFromBelow(path.join(this.dir(chains[i]!), 'diff'), meta.fromBelow, below);
      } catch (err) {
        throw wrap('EINTERNAL', `layer ${chains[i]}: applying what it takes from the layers below`, err);
      }
      const { fromBelow: _done, ...rest } = meta;
      await writeFileAtomic(metaPath, JSON.stringify(rest, null, 2) + '\n', 0o644);
    }
  }

  /** Untrusts the layer at once (rename), then deletes it and its link. */
  /**
   * Takes a layer out of the store: renamed aside (gone for every reader) and its link removed.
   * Returns the directory left to delete (removeTree), which can take long: the caller does it
   * once it no longer holds the store's lock. A kill before that leaves it to the next open.
   */
  async remove(chainId: Digest): Promise<string | undefined> {
    const record = await this.get(chainId).catch(() => undefined);
    const doomed = path.join(this.root, 'layers', tempName(RM));
    try {
      await fs.rename(this.dir(chainId), doomed);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return undefined;
      throw err;
    }
    if (record) await fs.unlink(path.join(this.root, record.link)).catch(() => {});
    // Aside now, not a day old: another open must not take it for abandoned (isAbandoned) and
    // delete it under the process deleting it.
    const now = new Date();
    await fs.utimes(doomed, now, now).catch(() => {});
    return doomed;
  }

  async list(): Promise<Digest[]> {
    const names = await fs.readdir(path.join(this.root, 'layers'));
    return names.filter((n) => /^[a-f0-9]{64}$/.test(n)).map((n) => `sha256:${n}` as Digest);
  }

  /** Removes what killed unpacks and removals left: temp dirs whose owner is gone. */
  async cleanup(): Promise<void> {
    const dir = path.join(this.root, 'layers');
    for (const name of await fs.readdir(dir)) {
      const prefix = name.startsWith(TMP) ? TMP : name.startsWith(RM) ? RM : undefined;
      if (!prefix) continue;
      const full = path.join(dir, name);
      if (!(await isAbandoned(full, ownerPid(name, prefix)))) continue;
      const meta = await readJson<LayerMeta>(path.join(full, 'layer.json')).catch(() => undefined);
      if (meta && LINK.test(meta.link)) {
        // Its link was made before the rename that never happened: it points nowhere.
        const linkPath = path.join(this.root, meta.link);
        if (!(await fs.stat(linkPath).then(() => true, () => false))) await fs.unlink(linkPath).catch(() => {});
      }
      await removeTree(full).catch(() => {});
    }
  }
}

/** Owner dead, or (pid reused) the entry is very old. */
export async function isAbandoned(p: string, pid: number | undefined): Promise<boolean> {
  if (pid !== undefined && ownerGone(pid)) return true;
  const st = await fs.lstat(p).catch(() => undefined);
  return st !== undefined && Date.now() - st.mtimeMs > STALE_MS && pid !== process.pid;
}

async function drainAndVerify(tar: AsyncIterable<Uint8Array>, diffId: Digest): Promise<void> {
  const h = new Hasher();
  for await (const chunk of tar) h.update(chunk);
  const bad = mismatch(`layer ${diffId}`, { digest: diffId }, { digest: h.digest(), size: h.size });
  if (bad) throw bad;
}
