// The image store's data types, shared by the store, `load` and `run`; the OCI types they are
// made of live in src/oci/types.ts (the registry client uses those too).
import type { Digest, ImageConfig } from '../oci/types.js';
export type { Descriptor, Digest, ImageConfig, ImageManifest, ImageRunConfig, Platform } from '../oci/types.js';

/** One unpacked layer: an overlay lower directory shared by every image that has it. */
export interface LayerRecord {
  chainId: Digest;
  diffId: Digest;
  /** Bytes of the uncompressed tar. */
  size: number;
  /** Absolute path of the unpacked tree (an overlay lowerdir). */
  dir: string;
  /** Short path relative to the store root (`l/<26 chars>`) that points at `dir`; keeps
   * overlay mount options under a page for images with many layers. */
  link: string;
}

/** An image in the store, as `run` needs it. */
export interface ImageRecord {
  /** Config digest: docker's IMAGE ID. */
  id: Digest;
  manifestDigest: Digest;
  /** Every name:tag pointing at it, fully qualified (docker.io/library/busybox:latest). */
  names: string[];
  config: ImageConfig;
  /** Bottom layer first. */
  layers: LayerRecord[];
  /** Sum of the layers' unpacked sizes. */
  size: number;
}
