// The one place `run` and `create` turn their flags into what a container is made with: every
// flag is checked here, in this order, before either command touches the disk (--cidfile) or
// the image store (a pull). Both commands call it, so the same bad flag gives the same error.
import type { ContainerOptions } from '../namespaces/options.js';
import type { LogConfig, RestartPolicy } from './record.js';
import { parseLogConfig, parseRestartPolicy, parseRunOptions, type HostAccess, type RunFlagValues } from './run-options.js';

/** The flags `run` and `create` share, as commander hands them over. */
export interface CreateFlagValues extends RunFlagValues {
  /** --net, docker's hidden alias of --network. */
  net?: string;
  restart: string;
  logDriver?: string;
  logOpt?: string[];
}

/** A create request without its image (looked up last, as it may mean a pull). */
export interface CreateFlags {
  options: ContainerOptions;
  restartPolicy: RestartPolicy;
  logConfig: LogConfig;
}

export function parseCreateFlags(flags: CreateFlagValues, args: string[], host: HostAccess): CreateFlags {
  const options = parseRunOptions({ ...flags, network: flags.net ?? flags.network }, args, host);
  const restartPolicy = parseRestartPolicy(flags.restart, options.remove);
  const logConfig = parseLogConfig(flags.logDriver, flags.logOpt ?? []);
  return { options, restartPolicy, logConfig };
}
