// Credentials from the file users already have: ~/.docker/config.json ($DOCKER_CONFIG/config.json).
//   "auths":       { "<registry>": { "auth": base64("user:password"), "identitytoken": ... } }
//   "credHelpers": { "<registry>": "<x>" }   → the program docker-credential-<x> keeps them
//   "credsStore":  "<x>"                     → the same, for every registry credHelpers does not name
// Where to store is docker's choice: credHelpers, else credsStore, else "auths" in the file. With a
// helper, "auths" keeps only an empty entry `{}` for the registry: no secret, but docker's and our
// `logout` see that there is something to erase.
//
// The helper protocol (github.com/docker/docker-credential-helpers): one process per request, the
// action its only argument, the request on stdin, the answer on stdout, exit status 0 for success.
//
//   tsrun                                                   docker-credential-<x>
//     get    <server URL>                               ──▶
//                                                       ◀──  {"ServerURL","Username","Secret"}
//     store  {"ServerURL","Username","Secret"}          ──▶
//                                                       ◀──  (nothing)
//     erase  <server URL>                               ──▶
//                                                       ◀──  (nothing)
//   failure: exit status ≠ 0, the reason on stdout; "credentials not found in native keychain"
//   for a server it does not know. Username "<token>" means Secret is an identity token.
//
// What a helper prints is not trusted: at most 1 MiB in 30 s, and only a cleaned excerpt of it
// goes into our messages.
import { spawn } from 'node:child_process';
import { access, mkdir, readFile, realpath, constants } from 'node:fs/promises';
import { homedir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { TsrunError, errnoOf } from '../errors.js';
import { writeFileAtomic } from '../sys/atomic.js';
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

/** Where a registry's credentials are kept: a helper program (named by which setting), or "auths". */
export type CredentialStore = { kind: 'helper'; helper: string; setting: 'credHelpers' | 'credsStore' } | { kind: 'file' };

/** docker's choice of store for `registry`: credHelpers, else credsStore, else the file. */
export function credentialStoreFor(config: DockerConfigFile, registry: string): CredentialStore {
  const key = Object.keys(config.credHelpers ?? {}).find((k) => normalizeRegistryKey(k) === registry);
  if (key !== undefined) return helperStore(config.credHelpers![key], 'credHelpers');
  return config.credsStore === undefined ? { kind: 'file' } : helperStore(config.credsStore, 'credsStore');
}

function helperStore(helper: unknown, setting: 'credHelpers' | 'credsStore'): CredentialStore {
  // An empty name is docker's way to keep one registry in the file despite a credsStore.
  if (helper === '') return { kind: 'file' };
  // The name becomes part of a program name looked up in PATH: no slashes, no surprises.
  if (typeof helper !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$/.test(helper)) {
    throw new TsrunError('EAUTH', `"${setting}" in docker's config.json names ${JSON.stringify(helper)?.slice(0, 100)}, which is not a credential helper name (docker-credential-<name>)`);
  }
  return { kind: 'helper', helper, setting };
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
  const store = credentialStoreFor(config, registry);
  if (store.kind === 'helper' && store.setting === 'credHelpers') return run(store.helper, credentialKey(registry));
  // A password in "auths" from before a credsStore was set up still counts.
  for (const [key, entry] of Object.entries(config.auths ?? {})) {
    if (normalizeRegistryKey(key) !== registry) continue;
    const cred = fromEntry(entry);
    if (cred) return cred;
  }
  if (store.kind === 'helper') return run(store.helper, credentialKey(registry));
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

const HELPER_TIMEOUT_MS = 30_000;
const HELPER_MAX_OUTPUT = 1 << 20;
const NOT_FOUND = /credentials not found/i;

export interface HelperExit {
  ok: boolean;
  /** `exit status 1`, `killed by SIGTERM`: Go's words, which docker users know. */
  status: string;
  stdout: string;
  stderr: string;
}

/**
 * `docker-credential-<helper> <action>` with `input` on stdin, to its end; undefined when no such
 * program is on PATH. A helper that takes longer than `timeoutMs` or prints more than 1 MiB is
 * killed and reported.
 */
export async function callHelper(helper: string, action: 'get' | 'store' | 'erase', input: string, env: NodeJS.ProcessEnv, timeoutMs = HELPER_TIMEOUT_MS): Promise<HelperExit | undefined> {
  const program = `docker-credential-${helper}`;
  const bin = await findInPath(program, env);
  if (!bin) return undefined;
  return new Promise((resolve, reject) => {
    const child = spawn(bin, [action], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let size = 0;
    let failure: string | undefined;
    const stop = (why: string) => {
      failure ??= why;
      child.kill('SIGKILL');
      // Its own children may hold the pipes open; 'close' must not wait for them.
      child.stdout.destroy();
      child.stderr.destroy();
    };
    const timer = setTimeout(() => stop(`no answer within ${timeoutMs / 1000} s`), timeoutMs);
    const collect = (into: Buffer[]) => (chunk: Buffer) => {
      size += chunk.length;
      if (size > HELPER_MAX_OUTPUT) stop(`more than ${HELPER_MAX_OUTPUT} bytes of output`);
      else into.push(chunk);
    };
    child.stdout.on('data', collect(out));
    child.stderr.on('data', collect(err));
    // A helper may exit without reading its input: that EPIPE is for its exit status to explain.
    child.stdin.on('error', () => {});
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new TsrunError('EAUTH', `run ${bin} ${action}: ${e.message}`, { cause: e }));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (failure) return reject(new TsrunError('EAUTH', `${program} ${action}: ${failure}`));
      const status = code === null ? `killed by ${signal}` : `exit status ${code}`;
      resolve({ ok: code === 0, status, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
    child.stdin.end(input);
  });
}

/**
 * What a helper said, fit for one line of a message: its reason, without control characters,
 * short, and without the secret it was given should it echo its input back.
 */
function said(r: HelperExit, secret = ''): string {
  let text = (r.stdout.trim() || r.stderr.trim()).replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028-\u202e\u2066-\u2069]+/g, ' ').trim();
  if (secret.length >= 4) text = text.split(secret).join('<secret>');
  const short = text.length > 400 ? `${text.slice(0, 400)}…` : text;
  return short ? `${r.status}: ${short}` : r.status;
}

/** `docker-credential-<helper> get`; a missing helper binary means no credentials, as in docker. */
export async function runCredentialHelper(helper: string, serverUrl: string, env: NodeJS.ProcessEnv = process.env): Promise<AuthConfig | undefined> {
  const program = `docker-credential-${helper}`;
  const r = await callHelper(helper, 'get', serverUrl, env);
  if (!r) return undefined;
  if (!r.ok) {
    if (NOT_FOUND.test(r.stdout + r.stderr)) return undefined;
    throw new TsrunError('EAUTH', `error getting credentials for ${serverUrl} from ${program}: ${said(r)}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(r.stdout);
  } catch {
    throw new TsrunError('EAUTH', `${program} get ${serverUrl} printed something that is not JSON`);
  }
  const { Username, Secret } = (parsed && typeof parsed === 'object' ? parsed : {}) as { Username?: unknown; Secret?: unknown };
  if (typeof Secret !== 'string' || (Username !== undefined && typeof Username !== 'string')) {
    throw new TsrunError('EAUTH', `${program} get ${serverUrl} printed JSON without a string "Secret" and "Username"`);
  }
  if (!Secret) return undefined;
  // docker's convention: Username "<token>" means Secret is an identity (refresh) token.
  if (Username === '<token>') return { identityToken: Secret };
  return { username: Username ?? '', password: Secret };
}

/** A store or erase the helper refused, or could not do for want of the program. */
function helperError(doing: 'storing' | 'erasing', store: { helper: string; setting: string }, path: string, detail: string): TsrunError {
  const program = `docker-credential-${store.helper}`;
  return new TsrunError('EAUTH', `error ${doing} credentials in ${program} (the "${store.setting}" of ${path}): ${detail}`);
}

function notInPath(helper: string): string {
  return `exec: "docker-credential-${helper}": executable file not found in $PATH`;
}

/**
 * Rewrites config.json atomically, mode 0600, keeping every key we do not manage. A config.json
 * that is a symlink (a dotfiles checkout) stays one: the file it points to is rewritten, as docker does.
 */
async function writeDockerConfig(path: string, config: DockerConfigFile): Promise<void> {
  try {
    const target = await realpath(path).catch((err: unknown) => {
      if (errnoOf(err) === 'ENOENT') return path;
      throw err;
    });
    await mkdir(dirname(target), { recursive: true, mode: 0o700 });
    writeFileAtomic(target, JSON.stringify(config, null, '\t') + '\n');
  } catch (err) {
    throw new TsrunError('EAUTH', `write ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** "auths" without any key that names `registry` (docker has written several spellings). */
function authsWithout(config: DockerConfigFile, registry: string): Record<string, DockerAuthEntry> {
  return Object.fromEntries(Object.entries(config.auths ?? {}).filter(([k]) => normalizeRegistryKey(k) !== registry));
}

/**
 * `tsrun login`: store user and password for `registry` where docker would — its helper, or
 * base64 in "auths". The helper goes first: if it fails, config.json is not touched.
 */
export async function storeCredential(registry: string, cred: { username: string; password: string }, env: NodeJS.ProcessEnv = process.env): Promise<{ path: string; store: CredentialStore }> {
  const path = dockerConfigPath(env);
  const config = await readDockerConfig(path);
  const store = credentialStoreFor(config, registry);
  const auths = authsWithout(config, registry);
  if (store.kind === 'helper') {
    const request = JSON.stringify({ ServerURL: credentialKey(registry), Username: cred.username, Secret: cred.password });
    const r = await callHelper(store.helper, 'store', request + '\n', env);
    if (!r) throw helperError('storing', store, path, notInPath(store.helper));
    if (!r.ok) throw helperError('storing', store, path, said(r, cred.password));
    auths[credentialKey(registry)] = {};
  } else {
    auths[credentialKey(registry)] = { auth: Buffer.from(`${cred.username}:${cred.password}`).toString('base64') };
  }
  await writeDockerConfig(path, { ...config, auths });
  return { path, store };
}

/**
 * `tsrun logout`: erase `registry` from its helper, then from "auths". False when neither had it.
 * A helper that cannot erase fails the logout and leaves the file as it was, so it can be retried.
 */
export async function removeCredential(registry: string, env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  const path = dockerConfigPath(env);
  const config = await readDockerConfig(path);
  const keys = Object.keys(config.auths ?? {}).filter((k) => normalizeRegistryKey(k) === registry);
  const store = credentialStoreFor(config, registry);
  let erased = false;
  if (store.kind === 'helper') {
    for (const serverUrl of new Set([credentialKey(registry), ...keys])) {
      const r = await callHelper(store.helper, 'erase', serverUrl, env);
      // No program and no login recorded: nothing anyone could read is left.
      if (!r && keys.length === 0) return false;
      if (!r) throw helperError('erasing', store, path, notInPath(store.helper));
      if (r.ok) erased = true;
      else if (!NOT_FOUND.test(r.stdout + r.stderr)) throw helperError('erasing', store, path, said(r));
    }
  }
  if (keys.length > 0) await writeDockerConfig(path, { ...config, auths: authsWithout(config, registry) });
  return erased || keys.length > 0;
}
