// The image store's data types, shared by the store, `load`, the registry client and `run`.
// OCI image-spec names are kept (diff_ids, rootfs, config) so the JSON reads like the spec.

export type Digest = `sha256:${string}`;

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  annotations?: Record<string, string>;
  platform?: Platform;
  urls?: string[];
}

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
}

/** The `config` object inside an OCI image config (the part `run` uses). */
export interface ImageRunConfig {
  User?: string;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  WorkingDir?: string;
  ExposedPorts?: Record<string, object>;
  Volumes?: Record<string, object>;
  Labels?: Record<string, string>;
  StopSignal?: string;
  /** docker's image config keeps these three (OCI's drops them); `tsrun build` writes them. */
  Healthcheck?: { Test: string[]; Interval?: number; Timeout?: number; StartPeriod?: number; StartInterval?: number; Retries?: number };
  OnBuild?: string[] | null;
  Shell?: string[];
}

/** application/vnd.oci.image.config.v1+json (Docker's is the same shape). */
export interface ImageConfig {
  architecture: string;
  os: string;
  variant?: string;
  created?: string;
  author?: string;
  config?: ImageRunConfig;
  rootfs: { type: 'layers'; diff_ids: Digest[] };
  history?: Array<Record<string, unknown>>;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

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
