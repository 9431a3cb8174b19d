// The tars tsrun writes from trees walked by fd (walk.ts): export, commit's layers, `cp ... -`.
// It loads tar-stream (image/tar.ts) when imported: `run` and the volume copy-up must not.
import * as fs from 'node:fs';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { errnoOf } from '../errors.js';
import { pack as tarPack, xattrPax, type Pack, type PackHeader } from '../image/tar.js';
import { O_CLOEXEC } from '../sys/libc.js';
import { devNumbers, type WalkEntry } from './walk.js';
import { carriedXattrs } from './xattrs.js';

const { O_RDONLY, O_NOFOLLOW } = fs.constants;

export interface Owner {
  uid: number;
  gid: number;
}

/** The owner a file's entry gets from the owner it has on disk. */
export type OwnerMap = (onDisk: Owner) => Owner;

/**
 * Writes walked entries into a tar: hardlinks as links, file contents read by fd, carried
 * extended attributes as `SCHILY.xattr.*` PAX records (as docker, GNU tar and Go write them).
 */
export class TarWriter {
  readonly pack: Pack = tarPack();
  private readonly links = new Map<string, string>();

  /** `owner`: where the files carry host ids and the tar gets the container's (user namespaces). */
  constructor(private readonly owner?: OwnerMap) {}

  /** `name` is the entry's name in the tar; `empty`: a mount point, shown without content. */
  async add(e: WalkEntry, name: string, opts: { empty?: boolean } = {}): Promise<void> {
    const { st } = e;
    // The full st_mode (tar keeps its low 12 bits): tar-stream would turn a mode of 0 into 0644.
    const { uid, gid } = this.owner ? this.owner(st) : st;
    const base: PackHeader = { name, mode: st.mode, uid, gid, mtime: st.mtime, uname: '', gname: '' };
    // A mount point's attributes are those of what is mounted there; symlinks and devices
    // cannot hold the attributes carried.
    const xattrs = () => {
      const found = opts.empty ? [] : e.followed ? followedXattrs(e.path) : carriedXattrs(e.path);
      return found.length > 0 ? { pax: xattrPax(found) } : {};
    };
    if (st.isDirectory()) return this.entry({ ...base, ...xattrs(), name: `${name}/`, type: 'directory' });
    if (st.isSymbolicLink()) return this.entry({ ...base, type: 'symlink', linkname: fs.readlinkSync(e.path) });
    if (st.isCharacterDevice() || st.isBlockDevice()) {
      const { major, minor } = devNumbers(st.rdev);
      return this.entry({ ...base, type: st.isCharacterDevice() ? 'character-device' : 'block-device', devmajor: major, devminor: minor });
    }
    if (st.isFIFO()) return this.entry({ ...base, type: 'fifo' });
    if (!st.isFile()) return; // sockets do not go into tars
    if (opts.empty) return this.entry({ ...base, type: 'file', size: 0 });
    if (st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`;
      const first = this.links.get(key);
      if (first !== undefined) return this.entry({ ...base, type: 'link', linkname: first, size: 0 });
      this.links.set(key, name);
    }
    let fd: number;
    try {
      fd = fs.openSync(e.path, O_RDONLY | (e.followed ? 0 : O_NOFOLLOW) | O_CLOEXEC);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return; // deleted meanwhile (a running container)
      throw err;
    }
    try {
      const size = fs.fstatSync(fd).size;
      const header = { ...base, ...xattrs(), type: 'file' as const, size };
      await new Promise<void>((resolve, reject) => {
        const sink = this.pack.entry(header, undefined, (err) => (err ? reject(err) : resolve()));
        (async () => {
          for await (const chunk of readExactly(fd, size)) {
            if (!sink.write(chunk)) await new Promise((r) => sink.once('drain', r));
          }
          sink.end();
        })().catch(reject);
      });
    } finally {
      fs.closeSync(fd);
    }
  }

  /** An entry with no content (whiteouts are empty files). */
  async entry(header: PackHeader): Promise<void> {
    const h = { ...header, size: 0 };
    const body = h.type === 'file' ? Buffer.alloc(0) : undefined;
    await new Promise<void>((resolve, reject) => this.pack.entry(h, body, (err) => (err ? reject(err) : resolve())));
  }

  finalize(): void {
    this.pack.finalize();
  }
}

/** `size` bytes from fd: a file that shrinks meanwhile is padded, one that grows is cut. */
async function* readExactly(fd: number, size: number): AsyncGenerator<Buffer> {
  let left = size;
  while (left > 0) {
    const buf = Buffer.alloc(Math.min(left, 1 << 20));
    const n = fs.readSync(fd, buf, 0, buf.length, null);
    if (n === 0) {
      yield Buffer.alloc(left);
      return;
    }
    left -= n;
    yield n === buf.length ? buf : buf.subarray(0, n);
  }
}

/**
 * Runs `produce` (which adds entries to the writer) while the tar streams into `out`; rejects
 * with the first failure of either side.
 */
export async function writeTar(
  out: Writable | ((tar: Readable) => Promise<void>),
  produce: (w: TarWriter) => Promise<void>,
  owner?: OwnerMap,
): Promise<void> {
  const w = new TarWriter(owner);
  // tar-stream's streams are streamx ones: Node's pipeline reads them as async iterables.
  const tar = Readable.from(w.pack);
  const consumed = typeof out === 'function' ? out(tar) : pipeline(tar, out);
  try {
    await produce(w);
    w.finalize();
  } catch (err) {
    (w.pack as unknown as { destroy(e: Error): void }).destroy(err as Error);
    await consumed.catch(() => {});
    throw err;
  }
  await consumed;
}

/**
 * The attributes of what a followed `/proc/self/fd/N` link names: read through an fd, since
 * llistxattr of the link would read the link itself (which has none).
 */
function followedXattrs(path: string): Array<[string, Buffer]> {
  const fd = fs.openSync(path, O_RDONLY | O_CLOEXEC);
  try {
    return carriedXattrs(fd);
  } finally {
    fs.closeSync(fd);
  }
}
