// The connections to registries: one undici pool per host and TLS setting, proxies from
// HTTP(S)_PROXY / NO_PROXY, and the sockets still connecting, which close() ends.
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import type * as Undici from 'undici';
import type { Dispatcher } from 'undici';
import { loadTlsMaterial, tlsOptions } from './certs.js';
import { splitHostPort } from './insecure.js';
import { applyV8Flags } from '../sys/v8-flags.js';

// undici's entry point loads all of undici — fetch, WebSocket, cookies, caches, mocks: ~70 ms
// of a warm pull's ~300 here. Only the connection pool and the request API are needed (~20 ms);
// the proxy agent loads only for a host that may need a proxy. The entry point also gives every
// dispatcher its request/connect/... methods, which the proxy agent itself uses: done here too.
const require = createRequire(import.meta.url);
const Agent = require('undici/lib/dispatcher/agent.js') as typeof Undici.Agent;
export const { BodyTimeoutError } = require('undici/lib/core/errors.js') as typeof Undici.errors;
const buildConnector = require('undici/lib/core/connect.js') as typeof Undici.buildConnector;
Object.assign((require('undici/lib/dispatcher/dispatcher.js') as typeof Undici.Dispatcher).prototype, require('undici/lib/api/index.js'));

export class Connections {
  private readonly dispatchers = new Map<string, Promise<Dispatcher>>();
  /** Sockets still connecting, which close() ends (see connector()). */
  private readonly connecting = new Set<Socket>();

  /** `timeoutMs`: the registry timeout, for undici's own connect and headers timeouts. */
  constructor(
    private readonly certsDirs: string[],
    private readonly timeoutMs: number,
  ) {}

  /** The pool for `url`'s host, verifying its certificate or not. */
  dispatcher(url: URL, verify: boolean): Promise<Dispatcher> {
    const key = `${url.host}|${verify}`;
    let d = this.dispatchers.get(key);
    if (!d) {
      // Before undici makes a connection and llhttp parses anything, whether through our
      // connector or a proxy agent's own (src/sys/v8-flags.ts).
      applyV8Flags();
      d = (async () => {
        const tls = tlsOptions(await loadTlsMaterial(url.host, this.certsDirs), verify);
        // The request's Patience gives up first (with what is left); the connect and headers
        // timeouts end what undici still holds after that.
        const options = { connect: this.connector(tls), headersTimeout: this.timeoutMs };
        // Like Go's net/http, never send loopback traffic through a proxy.
        const { host } = splitHostPort(url.host);
        if (host === 'localhost' || host === '::1' || host.startsWith('127.')) return new Agent(options);
        // HTTPS goes through a CONNECT tunnel; plain HTTP as an absolute-form request, as curl
        // and Go do (many proxies only allow CONNECT to port 443).
        const EnvHttpProxyAgent = require('undici/lib/dispatcher/env-http-proxy-agent.js') as typeof Undici.EnvHttpProxyAgent;
        return new EnvHttpProxyAgent({ ...options, requestTls: tls, proxyTunnel: false });
      })();
      this.dispatchers.set(key, d);
    }
    return d;
  }

  /**
   * undici's connector, keeping the sockets still connecting. An abort does not reach a TLS
   * handshake: one a request gave up on would keep tsrun running until the connect timeout.
   */
  private connector(tls: object): Undici.buildConnector.connector {
    const connect = buildConnector({ timeout: this.timeoutMs, ...tls });
    return (options, callback) => {
      // undici's connector returns the socket it connects (its types say void).
      const socket = (connect as (...args: Parameters<typeof connect>) => unknown)(options, (...result) => {
        this.connecting.delete(socket as Socket);
        callback(...result);
      }) as Socket | undefined;
      if (socket) this.connecting.add(socket);
    };
  }

  /** Ends every connection, including a handshake still hanging after its request gave up. */
  async close(): Promise<void> {
    for (const socket of this.connecting) socket.destroy();
    this.connecting.clear();
    const all = [...this.dispatchers.values()];
    this.dispatchers.clear();
    await Promise.all(all.map(async (d) => (await d.catch(() => undefined))?.destroy()));
  }
}
