// The registry part of `tsrun info`: which registries may be reached over plain HTTP or
// unverified TLS, and where each declaration comes from (the same three places
// InsecurePolicy.load reads: --insecure-registry, TSRUN_INSECURE_REGISTRIES, the config file),
// plus the certs.d directories that hold per-registry CAs, and the registry timeout with where
// it is set (TSRUN_REGISTRY_TIMEOUT, the config file, or the default).
import { existsSync, readdirSync } from 'node:fs';
import { certsDirs } from '../registry-client/certs.js';
import { configPath, readConfig, type TsrunConfig } from '../registry-client/config.js';
import { InsecurePolicy, insecureFromConfig, type InsecureEntry } from '../registry-client/insecure.js';
import { registryTimeout } from '../registry-client/timeout.js';

export interface InsecureDeclaration {
  /** host, host:port or CIDR, as it would be written in the config file. */
  registry: string;
  source: 'flag' | 'env' | 'config' | 'loopback';
}

export interface RegistriesInfo {
  configFile: string;
  configExists: boolean;
  insecure: InsecureDeclaration[];
  /** certs.d directories and the registries (host:port) that have a directory there. */
  certs: Array<{ dir: string; registries: string[] }>;
  /** The registry timeout pull, push and login use; absent when its setting does not parse. */
  timeout?: { seconds: number; source: 'default' | 'env' | 'config' };
  /** A config file or variable that does not parse: tsrun pull would fail on it. */
  errors: string[];
}

export function entryText(e: InsecureEntry): string {
  if (e.kind === 'cidr') return e.text;
  const host = e.host.includes(':') ? `[${e.host}]` : e.host;
  return e.port === undefined ? host : `${host}:${e.port}`;
}

/** docker trusts loopback implicitly, and so does tsrun (see insecure.ts). */
const LOOPBACK = ['127.0.0.0/8', '::1/128', 'localhost'];

export async function registriesInfo(flags: string[], env: NodeJS.ProcessEnv = process.env): Promise<RegistriesInfo> {
  const configFile = configPath(env);
  const errors: string[] = [];
  // A file that does not parse is reported once; its keys then take their defaults here.
  const config: TsrunConfig = await readConfig(configFile).catch((err: Error) => {
    errors.push(err.message);
    return { path: configFile, exists: true, values: {} };
  });
  const insecure: InsecureDeclaration[] = [];
  const add = (source: InsecureDeclaration['source'], load: () => InsecureEntry[] | Promise<InsecureEntry[]>) =>
    Promise.resolve()
      .then(load)
      .then((entries) => insecure.push(...entries.map((e) => ({ registry: entryText(e), source }))))
      .catch((err: Error) => errors.push(err.message));

  await add('flag', () => new InsecurePolicy(flags).entries);
  await add('env', () => new InsecurePolicy((env.TSRUN_INSECURE_REGISTRIES ?? '').split(',').filter((s) => s.trim() !== '')).entries);
  await add('config', () => new InsecurePolicy(insecureFromConfig(config)).entries);
  for (const registry of LOOPBACK) insecure.push({ registry, source: 'loopback' });

  let timeout: RegistriesInfo['timeout'];
  try {
    const t = registryTimeout(env, config);
    timeout = { seconds: t.ms / 1000, source: t.source };
  } catch (err) {
    errors.push((err as Error).message);
  }

  const certs = certsDirs(env).map((dir) => {
    let registries: string[] = [];
    try {
      registries = readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();
    } catch {
      // absent: nothing configured
    }
    return { dir, registries };
  });
  return { configFile, configExists: existsSync(configFile), insecure, certs, ...(timeout && { timeout }), errors };
}

