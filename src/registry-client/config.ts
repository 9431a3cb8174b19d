// /etc/tsrun/config.json (env TSRUN_CONFIG names another file): the registry settings a user
// makes once for the machine — "insecure-registries" (insecure.ts) and "registry-timeout"
// (timeout.ts). Read once per command and handed to whoever needs a key, so the file is parsed
// once and a broken one is reported the same way everywhere.
import { readFile } from 'node:fs/promises';
import { TsrunError, errnoOf } from '../errors.js';

export const DEFAULT_CONFIG_PATH = '/etc/tsrun/config.json';

export interface TsrunConfig {
  path: string;
  /** False when the file does not exist: every key has its default. */
  exists: boolean;
  values: Record<string, unknown>;
}

export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.TSRUN_CONFIG ?? DEFAULT_CONFIG_PATH;
}

export async function readConfig(path: string): Promise<TsrunConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return { path, exists: false, values: {} };
    throw new TsrunError('EINVAL_FLAG', `read ${path}: ${(err as Error).message}`, { cause: err });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new TsrunError('EINVAL_FLAG', `parse ${path}: ${(err as Error).message}`, { cause: err });
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new TsrunError('EINVAL_FLAG', `${path}: expected a JSON object such as {"insecure-registries": ["10.0.0.5:5000"]}`);
  }
  return { path, exists: true, values: parsed as Record<string, unknown> };
}
