// The storage part of `tsrun info`: can this kernel mount overlayfs, where the store is, what
// filesystem holds it, how much it uses (layers, blobs, containers' upper dirs) and how much
// room is left. Reading never creates the store: `tsrun info` on a fresh machine changes nothing.
import { existsSync, lstatSync, readdirSync, readFileSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { ImageStore } from '../image/store.js';

export interface StorageInfo {
  driver: 'overlay';
  /** "overlay" is in /proc/filesystems. If the module is not loaded yet, the first mount loads it. */
  overlayInKernel: boolean;
  root: string;
  rootExists: boolean;
  /** statfs(2) of the root (or its nearest existing parent). */
  backingFilesystem: string;
  filesystem: { size: number; available: number } | undefined;
  images: number;
  layers: { count: number; size: number };
  blobs: { count: number; size: number };
  /** Each container's upper/ (what it wrote); its rootfs is only mounted inside it. */
  containers: { count: number; size: number };
}

/** Is `name` (default overlay) a filesystem type in /proc/filesystems' text? */
export function filesystemSupported(text: string, name = 'overlay'): boolean {
  return text.split('\n').some((line) => line.split(/\s+/).filter(Boolean).at(-1) === name);
}

/** statfs f_type → the name docker prints as "Backing Filesystem" (magic numbers: statfs(2)). */
export function filesystemName(type: number): string {
  const names: Record<number, string> = {
    0xef53: 'extfs',
    0x58465342: 'xfs',
    0x9123683e: 'btrfs',
    0x01021994: 'tmpfs',
    0x794c7630: 'overlayfs',
    0x2fc12fc1: 'zfs',
    0xf2f52010: 'f2fs',
    0x6969: 'nfs',
  };
  return names[type] ?? `0x${type.toString(16)}`;
}

/** Disk usage of a tree in bytes, counted like du: allocated blocks, hard links once. */
export function diskUsage(dir: string, seen = new Set<string>()): number {
  let total = 0;
  let st;
  try {
    st = lstatSync(dir);
  } catch {
    return 0;
  }
  const key = `${st.dev}:${st.ino}`;
  if (seen.has(key)) return 0;
  seen.add(key);
  total += st.blocks * 512;
  if (!st.isDirectory()) return total;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return total;
  }
  for (const name of names) total += diskUsage(join(dir, name), seen);
  return total;
}

function nearestExisting(path: string): string {
  let p = path;
  while (!existsSync(p) && p !== '/') p = join(p, '..');
  return p;
}

export async function storageInfo(root: string): Promise<StorageInfo> {
  let overlayInKernel = false;
  try {
    overlayInKernel = filesystemSupported(readFileSync('/proc/filesystems', 'utf8'));
  } catch {
    // no /proc: leave false
  }
  const base = nearestExisting(root);
  let backingFilesystem = 'unknown';
  let filesystem: StorageInfo['filesystem'];
  try {
    const fs = statfsSync(base);
    backingFilesystem = filesystemName(fs.type);
    filesystem = { size: fs.blocks * fs.bsize, available: fs.bavail * fs.bsize };
  } catch {
    // leave unknown
  }
  const info: StorageInfo = {
    driver: 'overlay',
    overlayInKernel,
    root,
    rootExists: existsSync(root),
    backingFilesystem,
    filesystem,
    images: 0,
    layers: { count: 0, size: 0 },
    blobs: { count: 0, size: 0 },
    containers: { count: 0, size: 0 },
  };
  // Only an existing store is opened: ImageStore.open would create one.
  if (existsSync(join(root, 'images.json'))) {
    const store = await ImageStore.open(root);
    const usage = await store.usage();
    info.images = (await store.list()).length;
    info.layers = usage.layers;
    info.blobs = usage.blobs;
  }
  const containersDir = join(root, 'containers');
  if (existsSync(containersDir)) {
    const ids = readdirSync(containersDir).filter((n) => /^[0-9a-f]{64}$/.test(n));
    const seen = new Set<string>();
    info.containers = { count: ids.length, size: ids.reduce((sum, id) => sum + diskUsage(join(containersDir, id, 'upper'), seen), 0) };
  }
  return info;
}
