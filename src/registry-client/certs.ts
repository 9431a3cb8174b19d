// Per-registry TLS material, laid out as docker lays it out:
//   <certs.d>/<host:port>/ca.crt                    a CA to trust for this registry (any *.crt)
//   <certs.d>/<host:port>/client.cert, client.key   a client certificate (any *.cert + *.key)
// Searched in tsrun's /etc/tsrun/certs.d (env TSRUN_CERTS_D) and then docker's /etc/docker/certs.d,
// so a machine already set up for docker works unchanged.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { TsrunError, errnoOf } from '../errors.js';

export const TSRUN_CERTS_D = '/etc/tsrun/certs.d';
export const DOCKER_CERTS_D = '/etc/docker/certs.d';

export function certsDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  return [env.TSRUN_CERTS_D ?? TSRUN_CERTS_D, DOCKER_CERTS_D];
}

export interface TlsMaterial {
  /** Extra CAs (PEM); when present, trusted in addition to the system roots. */
  ca: string[];
  cert?: string;
  key?: string;
}

/** The TLS options (node:tls) for one registry, from the certs.d directories. */
export async function loadTlsMaterial(registry: string, dirs: string[]): Promise<TlsMaterial> {
  const material: TlsMaterial = { ca: [] };
  for (const base of dirs) {
    const dir = join(base, registry);
    let names: string[];
    try {
      names = (await readdir(dir)).sort();
    } catch (err) {
      if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') continue;
      throw new TsrunError('EREGISTRY', `read certificates in ${dir}: ${(err as Error).message}`, { cause: err });
    }
    for (const name of names) {
      if (name.endsWith('.crt')) material.ca.push(await readFile(join(dir, name), 'utf8'));
      if (name.endsWith('.cert') && material.cert === undefined) {
        const keyName = name.slice(0, -'.cert'.length) + '.key';
        if (!names.includes(keyName)) {
          throw new TsrunError('EREGISTRY', `client certificate ${join(dir, name)} has no matching key ${join(dir, keyName)}`);
        }
        material.cert = await readFile(join(dir, name), 'utf8');
        material.key = await readFile(join(dir, keyName), 'utf8');
      }
    }
  }
  return material;
}

/** node:tls connect options for the material; `verify: false` for insecure registries. */
export function tlsOptions(material: TlsMaterial, verify: boolean): Record<string, unknown> {
  return {
    rejectUnauthorized: verify,
    // Node's `ca` replaces the default roots; docker adds to them, so keep both.
    ...(material.ca.length > 0 && { ca: [...rootCertificates, ...material.ca] }),
    ...(material.cert !== undefined && { cert: material.cert, key: material.key }),
  };
}
