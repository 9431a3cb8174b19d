// Putting the layers together for one command: insecure policy + TLS + the registry timeout
// (transport), credentials and tokens (auth), the API (remote). `pull`, `push` and `login` start
// here, so the one registry timeout bounds all three.
import type { AuthConfig } from './auth.js';
import { TokenCache } from './auth.js';
import { certsDirs } from './certs.js';
import { configPath, readConfig } from './config.js';
import { lookupCredential } from './credentials.js';
import { InsecurePolicy } from './insecure.js';
import { Registry, type RemoteOptions } from './remote.js';
import type { RetryPolicy } from './retry.js';
import { registryTimeout } from './timeout.js';
import { Transport } from './transport.js';

export interface ClientOptions {
  /** `--insecure-registry` values; the env and config file are added to them. */
  insecureRegistries?: string[];
  /** Loopback is insecure unless this is false (tests of the errors remote users see). */
  implicitLoopback?: boolean;
  /** An already built policy (overrides the two above). */
  insecure?: InsecurePolicy;
  certsDirs?: string[];
  /** A body's longest silence before resuming elsewhere (default, and at most: the registry timeout). */
  bodyIdleMs?: number;
  retry?: RetryPolicy;
  /** Credentials instead of docker's config.json (login checks the ones it was given). */
  credential?: (registry: string) => Promise<AuthConfig | undefined>;
  /** Environment for TSRUN_INSECURE_REGISTRIES, TSRUN_REGISTRY_TIMEOUT, TSRUN_CONFIG, DOCKER_CONFIG (default: process.env). */
  env?: NodeJS.ProcessEnv;
  onWarning?: (message: string) => void;
  onRetry?: RemoteOptions['onRetry'];
  wait?: (ms: number) => Promise<void>;
}

/** A client for the registries of one command; close() when done so sockets do not linger. */
export class RegistryClient {
  private readonly registries = new Map<string, Registry>();
  private readonly tokens = new TokenCache();

  private constructor(
    readonly transport: Transport,
    private readonly options: ClientOptions,
  ) {}

  static async open(command: string, options: ClientOptions = {}): Promise<RegistryClient> {
    const env = options.env ?? process.env;
    const config = await readConfig(configPath(env));
    const insecure =
      options.insecure ??
      (await InsecurePolicy.load(options.insecureRegistries ?? [], {
        env,
        config,
        ...(options.implicitLoopback !== undefined && { implicitLoopback: options.implicitLoopback }),
      }));
    const transport = new Transport({
      insecure,
      command,
      certsDirs: options.certsDirs ?? certsDirs(options.env),
      timeout: registryTimeout(env, config),
      ...(options.bodyIdleMs !== undefined && { bodyIdleMs: options.bodyIdleMs }),
      ...(options.onWarning && { onWarning: options.onWarning }),
    });
    return new RegistryClient(transport, options);
  }

  registry(name: string): Registry {
    let r = this.registries.get(name);
    if (!r) {
      r = new Registry(name, {
        transport: this.transport,
        tokens: this.tokens,
        credential: this.options.credential ?? ((r) => lookupCredential(r, { ...(this.options.env && { env: this.options.env }) })),
        ...(this.options.retry && { retry: this.options.retry }),
        ...(this.options.onRetry && { onRetry: this.options.onRetry }),
        ...(this.options.onWarning && { onWarning: this.options.onWarning }),
        ...(this.options.wait && { wait: this.options.wait }),
      });
      this.registries.set(name, r);
    }
    return r;
  }

  close(): Promise<void> {
    return this.transport.close();
  }
}
