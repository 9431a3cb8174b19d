// The registry timeout: the longest tsrun waits on a registry that makes no progress — gives no
// answer, sends less than 1 KiB of a body, takes none of an upload (patience.ts says exactly
// what counts). One setting rather than connect/headers/body/retry timeouts, because what a user
// needs bounded is how long a command can hang on a registry, whatever tsrun was doing:
// connecting, waiting for an answer, reading a blob, or waiting to try again. Retries and
// resumes count against the same clock, so a registry that never answers, or trickles a few
// bytes now and then, fails within it, and a slow one that keeps sending never does.
//
// env TSRUN_REGISTRY_TIMEOUT wins over "registry-timeout" in /etc/tsrun/config.json; both are
// seconds (decimals allowed). There is no "never": a registry that does not answer is the very
// case this exists for, and a patient user can say 3600.
import { TsrunError } from '../errors.js';
import type { TsrunConfig } from './config.js';

export const REGISTRY_TIMEOUT_ENV = 'TSRUN_REGISTRY_TIMEOUT';
export const REGISTRY_TIMEOUT_KEY = 'registry-timeout';
export const DEFAULT_REGISTRY_TIMEOUT_MS = 45_000;
/** A day. Node's timers also stop at 24.8 days (2^31 ms). */
const MAX_SECONDS = 86_400;

export interface RegistryTimeout {
  ms: number;
  source: 'default' | 'env' | 'config';
  /** The config file that holds, or would hold, "registry-timeout" (named in errors). */
  configFile: string;
}

export function defaultRegistryTimeout(configFile: string): RegistryTimeout {
  return { ms: DEFAULT_REGISTRY_TIMEOUT_MS, source: 'default', configFile };
}

function toMs(seconds: number, where: string, shown: string): number {
  if (!Number.isFinite(seconds) || seconds < 0.001 || seconds > MAX_SECONDS) {
    throw new TsrunError(
      'EINVAL_FLAG',
      `${where}: expected a number of seconds greater than 0 and at most ${MAX_SECONDS}, such as 45 or 2.5, got ${shown}`,
    );
  }
  return Math.round(seconds * 1000);
}

/** TSRUN_REGISTRY_TIMEOUT, else "registry-timeout" in the config file, else 45 s. */
export function registryTimeout(env: NodeJS.ProcessEnv, config: TsrunConfig): RegistryTimeout {
  const text = env[REGISTRY_TIMEOUT_ENV];
  if (text !== undefined && text.trim() !== '') {
    const seconds = /^\s*\d+(\.\d+)?\s*$/.test(text) ? Number(text) : NaN;
    return { ms: toMs(seconds, REGISTRY_TIMEOUT_ENV, JSON.stringify(text)), source: 'env', configFile: config.path };
  }
  const value = config.values[REGISTRY_TIMEOUT_KEY];
  if (value === undefined) return defaultRegistryTimeout(config.path);
  const where = `${config.path}: "${REGISTRY_TIMEOUT_KEY}"`;
  return { ms: toMs(typeof value === 'number' ? value : NaN, where, JSON.stringify(value)), source: 'config', configFile: config.path };
}

/** 45000 → "45 s", 2500 → "2.5 s": tenths at most. */
export function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}

/** The end of every timeout error: which setting allows more, and what it is now. */
export function howToWaitLonger(t: RegistryTimeout): string {
  const now = t.source === 'default' ? 'the default' : t.source === 'env' ? `from ${REGISTRY_TIMEOUT_ENV}` : `from ${t.configFile}`;
  return (
    `to wait longer, set ${REGISTRY_TIMEOUT_ENV}=<seconds> or "${REGISTRY_TIMEOUT_KEY}": <seconds> in ${t.configFile} ` +
    `(now ${String(t.ms / 1000)} s, ${now})`
  );
}
