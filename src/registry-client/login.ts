// `tsrun login`: check the credentials against the registry, then remember them where docker
// would (credentials.ts): the credential helper ~/.docker/config.json names, or that file itself,
// where docker and skopeo also look. `logout` forgets them.
import { TsrunError } from '../errors.js';
import { RegistryClient, type ClientOptions } from './client.js';
import { normalizeRegistryKey, removeCredential, storeCredential, type CredentialStore } from './credentials.js';
import { DEFAULT_REGISTRY } from './reference.js';

export interface LoginResult {
  registry: string;
  /** The config file written. */
  path: string;
  /** Where the password went: a helper program, or that file. */
  store: CredentialStore;
  /** False when the registry asks for no authentication at all (the credentials are kept anyway). */
  verified: boolean;
}

/** `docker.io`, `https://host:5000/v2/` → the registry name used everywhere else. */
export function registryOf(server: string | undefined): string {
  return server ? normalizeRegistryKey(server) : DEFAULT_REGISTRY;
}

export async function login(
  server: string | undefined,
  cred: { username: string; password: string },
  options: ClientOptions = {},
): Promise<LoginResult> {
  const registry = registryOf(server);
  const client = await RegistryClient.open('login', { ...options, credential: async () => cred });
  let verified = true;
  try {
    const r = client.registry(registry);
    await r.init();
    if (r.auth.scheme === 'bearer') {
      // A token for no particular scope proves the user name and password.
      await r.auth.authorization([]);
    } else if (r.auth.scheme === 'basic') {
      const res = await r.send({ path: '/v2/', scopes: [] });
      await res.body.dump();
      if (res.status === 401 || res.status === 403) {
        throw new TsrunError('EAUTH', `unauthorized: incorrect username or password`);
      }
      if (res.status !== 200) throw new TsrunError('EREGISTRY', `GET /v2/ answered ${res.status}`);
    } else {
      verified = false;
    }
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    throw new TsrunError(err instanceof TsrunError ? err.code : 'EAUTH', `login to ${registry}: ${msg.replace(`${registry}: `, '')}`, { cause: err });
  } finally {
    await client.close();
  }
  try {
    const { path, store } = await storeCredential(registry, cred, options.env ?? process.env);
    return { registry, path, store, verified };
  } catch (err) {
    throw new TsrunError('EAUTH', `login to ${registry}: ${(err as Error).message}`, { cause: err });
  }
}

export async function logout(server: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<{ registry: string; removed: boolean }> {
  const registry = registryOf(server);
  try {
    return { registry, removed: await removeCredential(registry, env) };
  } catch (err) {
    throw new TsrunError('EAUTH', `logout from ${registry}: ${(err as Error).message}`, { cause: err });
  }
}
