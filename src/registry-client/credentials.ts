// Credentials from the file users already have: ~/.docker/config.json ($DOCKER_CONFIG/config.json).
//   "auths":       { "<registry>": { "auth": base64("user:password"), "identitytoken": ... } }
//   "credHelpers": { "<registry>": "<x>" }   → run `docker-credential-<x> get`
//   "credsStore":  "<x>"                     → the same, for every registry
// A helper reads the server URL on stdin and prints {"ServerURL","Username","Secret"}.
import { execFile } from 'node:child_process';
import { access, chmod, mkdir, readFile, rename, writeFile, constants } from 'node:fs/promises';
import { homedir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { TsrunError, errnoOf } from '../errors.js';
import type { AuthConfig } from './auth.js';
import { DEFAULT_REGISTRY } from './reference.js';

/** The key docker uses for Docker Hub in config.json. */
export const DOCKER_HUB_KEY = 'https://index.docker.io/v1/';

export interface DockerAuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
  registrytoken?: string;
  [key: string]: unknown;
}

export interface DockerConfigFile {
  auths?: Record<string, DockerAuthEntry>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
  [key: string]: unknown;
}

export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.DOCKER_CONFIG ?? join(env.HOME ?? homedir(), '.docker'), 'config.json');
}

/** `https://index.docker.io/v1/`, `http://host:5000/v2/`, `host:5000` → the registry name. */
export function normalizeRegistryKey(key: string): string {
  let s = key.trim().replace(/^[a-z]+:\/\//i, '');
  const slash = s.indexOf('/');
  if (slash >= 0) s = s.slice(0, slash);
  s = s.toLowerCase();
  if (s === 'index.docker.io' || s === 'registry-1.docker.io' || s === 'registry.hub.docker.com') return DEFAULT_REGISTRY;
  return s;
}

/** The key to write for a registry (docker's: the Hub has its historical URL). */
export function credentialKey(registry: string): string {
  return registry === DEFAULT_REGISTRY ? DOCKER_HUB_KEY : registry;
}

export async function readDockerConfig(path: string): Promise<DockerConfigFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return {};
    throw new TsrunError('EAUTH', `read ${path}: ${(err as Error).message}`, { cause: err });
  }
  if (text.trim() === '') return {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not a JSON object');
    return parsed as DockerConfigFile;
  } catch (err) {
    throw new TsrunError('EAUTH', `parse ${path}: ${(err as Error).message}`, { cause: err });
  }
}

function fromEntry(entry: DockerAuthEntry): AuthConfig | undefined {
  const out: AuthConfig = {};
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) throw new TsrunError('EAUTH', 'invalid "auth" in docker config.json: not base64 of user:password');
    out.username = decoded.slice(0, colon);
    out.password = decoded.slice(colon + 1);
  } else if (entry.username !== undefined) {
    out.username = entry.username;
    out.password = entry.password ?? '';
  }
  if (entry.identitytoken) out.identityToken = entry.identitytoken;
  if (entry.registrytoken) out.registryToken = entry.registrytoken;
  return Object.keys(out).length ? out : undefined;
}

export interface CredentialOptions {
  env?: NodeJS.ProcessEnv;
  /** Runs a credential helper (tests replace it). */
  runHelper?: (helper: string, serverUrl: string) => Promise<AuthConfig | undefined>;
}

/** Credentials for `registry`, or undefined for anonymous access. */
export async function lookupCredential(registry: string, options: CredentialOptions = {}): Promise<AuthConfig | undefined> {
  const env = options.env ?? process.env;
  const config = await readDockerConfig(dockerConfigPath(env));
  const run = options.runHelper ?? ((h, u) => runCredentialHelper(h, u, env));
  const helperKey = Object.keys(config.credHelpers ?? {}).find((k) => normalizeRegistryKey(k) === registry);
  if (helperKey) return run(config.credHelpers![helperKey]!, credentialKey(registry));
  for (const [key, entry] of Object.entries(config.auths ?? {})) {
    if (normalizeRegistryKey(key) !== registry) continue;
    const cred = fromEntry(entry);
    if (cred) return cred;
  }
  if (config.credsStore) return run(config.credsStore, credentialKey(registry));
  return undefined;
}

async function findInPath(name: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** `docker-credential-<helper> get`; a missing helper binary means no credentials, as in docker. */
export async function runCredentialHelper(helper: string, serverUrl: string, env: NodeJS.ProcessEnv = process.env): Promise<AuthConfig | undefined> {
  const bin = await findInPath(`docker-credential-${helper}`, env);
  if (!bin) return undefined;
  const { stdout, code, stderr } = await new Promise<{ stdout: string; stderr: string; code: number }>((resolve, reject) => {
    const child = execFile(bin, ['get'], { env, timeout: 30_000, maxBuffer: 1 << 20 }, (err, out, errOut) => {
      if (err && typeof (err as { code?: unknown }).code !== 'number') return reject(err);
      resolve({ stdout: out, stderr: errOut, code: err ? Number((err as { code?: unknown }).code) : 0 });
    });
    child.stdin?.end(serverUrl);
  }).catch((err: unknown) => {
    throw new TsrunError('EAUTH', `run ${bin}: ${(err as Error).message}`, { cause: err });
  });
  if (code !== 0) {
    if (/credentials not found/i.test(stdout + stderr)) return undefined;
    throw new TsrunError('EAUTH', `${bin} get ${serverUrl} failed (exit ${code}): ${(stderr || stdout).trim()}`);
  }
  let parsed: { Username?: string; Secret?: string };
  try {
    parsed = JSON.parse(stdout);
  } catch {
    throw new TsrunError('EAUTH', `${bin} get ${serverUrl} printed something that is not JSON`);
  }
  if (!parsed.Secret) return undefined;
  // docker's convention: Username "<token>" means Secret is an identity (refresh) token.
  if (parsed.Username === '<token>') return { identityToken: parsed.Secret };
  return { username: parsed.Username ?? '', password: parsed.Secret };
}

/** Rewrites config.json atomically, mode 0600, keeping every key we do not manage. */
async function writeDockerConfig(path: string, config: DockerConfigFile): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, JSON.stringify(config, null, '\t') + '\n', { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, path);
}

/** `tsrun login`: store user and password for `registry` in auths. Returns the file written. */
export async function storeCredential(registry: string, cred: { username: string; password: string }, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const path = dockerConfigPath(env);
  const config = await readDockerConfig(path);
  const auths = { ...config.auths };
  for (const key of Object.keys(auths)) if (normalizeRegistryKey(key) === registry) delete auths[key];
  auths[credentialKey(registry)] = { auth: Buffer.from(`${cred.username}:${cred.password}`).toString('base64') };
  await writeDockerConfig(path, { ...config, auths });
  return path;
}

/** `tsrun logout`: remove `registry` from auths. False when it was not there. */
export async function removeCredential(registry: string, env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  const path = dockerConfigPath(env);
  const config = await readDockerConfig(path);
  const auths = { ...config.auths };
  const keys = Object.keys(auths).filter((k) => normalizeRegistryKey(k) === registry);
  if (keys.length === 0) return false;
  for (const k of keys) delete auths[k];
  await writeDockerConfig(path, { ...config, auths });
  return true;
}
