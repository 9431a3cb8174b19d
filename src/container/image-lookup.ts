// Find the image `run` was given: a name (normalized as docker does) or an image ID prefix.
import { TsrunError } from '../errors.js';
import type { ImageRecord } from '../image/types.js';
import { normalizeName } from '../registry-client/reference.js';

export interface LookupContext {
  root: string;
  insecureRegistry: string[];
}

export async function findImage(root: string, input: string): Promise<ImageRecord | undefined> {
  const { ImageStore } = await import('../image/store.js');
  const store = await ImageStore.open(root);
  let name: string | undefined;
  try {
    name = normalizeName(input);
  } catch {
    // not a valid name: maybe an ID
  }
  return (name !== undefined ? await store.resolve(name) : undefined) ?? (await store.resolve(input));
}

export async function findOrPullImage(
  ctx: LookupContext,
  input: string,
  opts: { pull: string; platform?: string | undefined },
): Promise<ImageRecord> {
  if (opts.pull !== 'always') {
    const found = await findImage(ctx.root, input);
    if (found) return found;
    if (opts.pull === 'never') {
      throw new TsrunError('ENOIMAGE', `no such image: ${input} (not in ${ctx.root}, and --pull never)`);
    }
  }
  throw new TsrunError('ENOIMAGE', `unable to find image '${input}' locally; load it with \`tsrun load\``);
}
