// COPY and ADD of files from the context, a heredoc or a URL, straight into a layer: the step's
// tar is written with its names already resolved against the image (what `cp -` into a
// container would do through the kernel), then stored as a layer by the safe unpack — no
// container, no copy into an upper dir and back out of it. (Archives and --from still go
// through a container: copy.ts.)
//
// What "resolved against the image" means, as the extractor into a container's root does it:
//   - a parent directory that is a symlink in the image is followed, inside the image's root
//     (`COPY x /usr/lib/` with /usr/lib -> lib lands in /lib; ../ stops at /);
//   - a directory the image already has keeps its owner, mode and times: its entry is left out,
//     and the unpacker gives such implied directories the attributes of the one below;
//   - a file over a directory is refused (`cannot overwrite directory`), as cp refuses it.
import { Readable } from 'node:stream';
import { removeTree } from '../image/fsutil.js';
import { storeLayerStream, type StoredLayer } from '../image/layer-tar.js';
import type { ImageStore } from '../image/store.js';
import { pack as tarPack } from '../image/tar.js';
import type { Digest } from '../image/types.js';
import type { LowerLayers } from '../overlay/lower-layers.js';
import { itemsOf, write, type CopySource, type CopyTarget } from './copy.js';
import { ImagePaths } from './image-paths.js';

export async function copyAsLayer(
  store: ImageStore,
  lowers: LowerLayers,
  parentDiffIds: Digest[],
  copy: { sources: CopySource[]; target: CopyTarget; destDir: boolean },
  created: { layers: Digest[]; blobs: Digest[] },
): Promise<StoredLayer> {
  const tmp = await store.makeTempDir('copy');
  try {
    const pack = tarPack();
    const source = Readable.from(pack);
    const paths = new ImagePaths(lowers);
    const writing = (async () => {
      try {
        for await (const item of itemsOf(copy.sources, copy.target, copy.destDir)) {
          const header = paths.place(item.header);
          if (header) await write(pack, { ...item, header });
        }
        pack.finalize();
      } catch (err) {
        source.destroy(err as Error);
        throw err;
      }
    })();
    const [made, stored] = await Promise.allSettled([writing, storeLayerStream(store, source, parentDiffIds, tmp, created)]);
    if (made.status === 'rejected') throw made.reason;
    if (stored.status === 'rejected') throw stored.reason;
    return stored.value;
  } finally {
    await removeTree(tmp).catch(() => {});
  }
}
