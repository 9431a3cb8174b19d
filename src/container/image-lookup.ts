// Find the image `run` was given — a name (normalized as docker does) or an image ID prefix —
// and pull it when it is missing, as `docker run` does.
import { TsrunError } from '../errors.js';
import type { ImageRecord } from '../image/types.js';
import type { PullEvent } from '../image/pull.js';
import { findImage } from './image-find.js';
import { parseReference } from '../registry-client/reference.js';

export interface LookupContext {
  root: string;
  insecureRegistry: string[];
}

export interface PullHooks {
  /** Called once before pulling, with docker's wording ("Unable to find image ... locally"). */
  onPull?: (message: string) => void;
  onProgress?: (e: PullEvent) => void;
  onWarning?: (message: string) => void;
}

export async function findOrPullImage(
  ctx: LookupContext,
  input: string,
  /** `lastUnpack`: nothing more is unpacked after (`run`, `create`; not `build`), see PullOptions. */
  opts: { pull: string; platform?: string | undefined; lastUnpack?: boolean },
  hooks: PullHooks = {},
): Promise<ImageRecord> {
  let workers: typeof import('../image/unpack-worker.js') | undefined;
  if (opts.pull !== 'always') {
    const found = await findImage(ctx.root, input);
    if (found) return found;
    if (opts.pull === 'never') {
      throw new TsrunError('ENOIMAGE', `no such image: ${input} (not in ${ctx.root}, and --pull never)`);
    }
    hooks.onPull?.(`Unable to find image '${input}' locally`);
    // Missing: its layers will unpack, in workers that boot meanwhile (startUnpackWorkers).
    // Not for a name that is none, whose error the pull gives.
    if (isReference(input)) {
      workers = await import('../image/unpack-worker.js');
      workers.startUnpackWorkers();
    }
  }
  const [{ pullImage }, { ImageStore }] = await Promise.all([import('../image/pull.js'), import('../image/store.js')]);
  const store = await ImageStore.open(ctx.root, { writer: true });
  try {
    const result = await pullImage(
      store,
      input,
      {
        insecureRegistries: ctx.insecureRegistry,
        ...(opts.platform && { platform: opts.platform }),
        ...(hooks.onWarning && { onWarning: hooks.onWarning }),
        ...(opts.lastUnpack && { lastUnpack: true }),
      },
      hooks.onProgress,
    );
    return result.image;
  } finally {
    // Recorded (or failed and discarded): the container that runs next may run for hours.
    store.releaseLease();
    if (opts.lastUnpack) workers?.stopIdleUnpackWorkers(); // started for layers all here, or a pull that failed
  }
}

function isReference(input: string): boolean {
  try {
    parseReference(input);
    return true;
  } catch {
    return false;
  }
}
