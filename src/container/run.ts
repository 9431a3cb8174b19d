// `run` = create + start, attached (tsrun waits for the exit) or detached (-d).
import type { ImageRecord } from '../image/types.js';
import type { ContainerOptions } from '../namespaces/options.js';
import type { TraceLine } from '../namespaces/helper.js';
import { cleanupContainer, removeFiles } from './cleanup.js';
import { createContainer } from './create.js';
import { ContainerPaths } from './paths.js';
import type { LogConfig, RestartPolicy } from './record.js';
import { startContainer, type StartOptions, type Started } from './start.js';

export interface RunRequest {
  storeRoot: string;
  image: ImageRecord;
  imageName: string;
  options: ContainerOptions;
  restartPolicy?: RestartPolicy;
  logConfig?: LogConfig;
  /** Attached: the container's stdio (the CLI's own fds). Detached when absent. */
  stdio?: [number, number, number];
  onTrace?: (line: TraceLine) => void;
  tsrunCommand: string[];
  /** Detached, with tsrun on its PTY (`run -it`): see StartOptions.terminal. */
  terminal?: StartOptions['terminal'];
}

export async function runContainer(req: RunRequest): Promise<Started> {
  const record = await createContainer({
    storeRoot: req.storeRoot,
    image: req.image,
    imageName: req.imageName,
    options: req.options,
    ...(req.restartPolicy && { restartPolicy: req.restartPolicy }),
    ...(req.logConfig && { logConfig: req.logConfig }),
  });
  const paths = new ContainerPaths(req.storeRoot, record.id);
  try {
    return await startContainer(req.storeRoot, { paths, record }, {
      ...(req.stdio && { attach: { stdio: req.stdio } }),
      ...(req.onTrace && { onTrace: req.onTrace }),
      ...(req.terminal && { terminal: req.terminal }),
      tsrunCommand: req.tsrunCommand,
      fresh: true,
    });
  } catch (err) {
    // As docker: a container that failed to start stays, as created, unless --rm.
    if (req.options.remove) {
      await cleanupContainer(req.storeRoot, record.id);
      removeFiles(req.storeRoot, record.id, record.name);
    }
    throw err;
  }
}
