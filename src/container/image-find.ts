// Find an image in the store by name (normalized as docker does) or ID prefix. Apart from
// image-lookup.ts, whose pull would bring the registry client into every bundle that only looks
// (inspect, history): a bundle holds whatever its modules import, even lazily.
import type { ImageRecord } from '../image/types.js';
import { normalizeName } from '../registry-client/reference.js';

export async function findImage(root: string, input: string): Promise<ImageRecord | undefined> {
  const { ImageStore } = await import('../image/store.js');
  const store = await ImageStore.open(root, { sweep: false });
  let name: string | undefined;
  try {
    name = normalizeName(input);
  } catch {
    // not a valid name: maybe an ID
  }
  return (name !== undefined ? await store.resolve(name) : undefined) ?? (await store.resolve(input));
}
