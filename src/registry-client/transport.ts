// HTTP to registries: which scheme, which TLS settings, timeouts and redirects (the pools,
// proxies and sockets are in connections.ts).
//
// The scheme is decided once per registry by the first request (`ping`, GET /v2/), as docker
// does: HTTPS, verified against the system roots plus certs.d. Only for a registry declared
// insecure (see insecure.ts) is an unverified HTTPS tried, and then plain HTTP — and only when
// TLS itself failed: once a TLS handshake worked, an HTTP error is an HTTP error, never a reason
// to downgrade.
//
// Redirects are followed here rather than by undici so that credentials stay with the origin
// they were meant for: blob downloads are often redirected to a storage host.
//
// Every request is bounded by the registry timeout (timeout.ts) through a Patience (patience.ts):
// the caller's, shared by its retries, or a fresh one. It guards connecting, sending and waiting
// for the headers; then the body, which must bring MIN_PROGRESS bytes within what the clock has
// left (or within the connection's shorter limit, bodyIdleMs), each time read from the clock.
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { TsrunError } from '../errors.js';
import { certsDirs as defaultCertsDirs } from './certs.js';
import { DEFAULT_CONFIG_PATH } from './config.js';
import { BodyTimeoutError, Connections } from './connections.js';
import { InsecurePolicy } from './insecure.js';
import { DEFAULT_REGISTRY, DOCKER_HUB_API } from './reference.js';
import { classifyNetworkError, describeNetworkError, isTimeoutError } from './neterr.js';
import { Patience, uploadWithProgress, watchBody, type PatienceOptions } from './patience.js';
import { isRetryableStatus } from './retry.js';
import { defaultRegistryTimeout, type RegistryTimeout } from './timeout.js';

export interface TransportOptions {
  insecure?: InsecurePolicy;
  certsDirs?: string[];
  /** The registry timeout (default: 45 s). */
  timeout?: RegistryTimeout;
  /**
   * Longest a body may go without progress (MIN_PROGRESS bytes) on one connection (default, and
   * at most: the registry timeout). Shorter, a stalled connection is dropped sooner and a blob
   * resumes on a new one.
   */
  bodyIdleMs?: number;
  /** The tsrun command being run ("pull"), so errors can show the exact fix. */
  command?: string;
  /** One-line warnings for the user (plain HTTP with credentials); src/ never prints. */
  onWarning?: (message: string) => void;
  userAgent?: string;
}

export type ResponseBody = Dispatcher.ResponseData['body'];

export interface HttpRequest {
  method?: string;
  url: URL;
  headers?: Record<string, string>;
  /** The Authorization header, sent only to `url`'s origin, never after a redirect leaves it. */
  authorization?: string;
  /** It carries what the user configured (a password, a token, or a token got with them): over
   * plain HTTP the user is warned. An anonymous token is nobody's secret. */
  authorizationIsSecret?: boolean;
  /** A buffer, or a function giving a fresh stream each time (redirects and retries resend). */
  body?: Buffer | string | (() => Readable);
  signal?: AbortSignal;
  /** Default: follow for GET and HEAD. */
  followRedirects?: boolean;
  /** The registry timeout's clock this request counts against (default: a fresh one). */
  patience?: Patience;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The URL that answered, after redirects. */
  url: URL;
  body: ResponseBody;
}

export interface PingResult {
  /** https://host[:port] or http://host[:port]: where /v2/ lives. */
  base: URL;
  status: number;
  /** The raw WWW-Authenticate header of GET /v2/, if any. */
  challenge?: string;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 10;

/** The host the registry's API lives on (Docker Hub's is not docker.io). */
export function apiHost(registry: string): string {
  return registry === DEFAULT_REGISTRY ? DOCKER_HUB_API : registry;
}

export function header(res: { headers: HttpResponse['headers'] }, name: string): string | undefined {
  const v = res.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Reads a body tsrun has no use for to its end, so that its connection can be reused; throws
 * when the registry timeout ran out on it (undici's dump() resolves whatever ended the body).
 */
export async function drain(res: HttpResponse): Promise<void> {
  await res.body.dump();
  if (res.body.errored instanceof TsrunError) throw res.body.errored;
}

function follows(req: HttpRequest): boolean {
  return req.followRedirects ?? (req.method === undefined || req.method === 'GET' || req.method === 'HEAD');
}

export class Transport {
  readonly insecure: InsecurePolicy;
  readonly timeout: RegistryTimeout;
  readonly bodyIdleMs: number;
  private readonly certsDirs: string[];
  private readonly command: string;
  private readonly warn: (message: string) => void;
  private readonly userAgent: string;
  private readonly connections: Connections;
  private readonly pings = new Map<string, Promise<PingResult>>();
  private readonly warned = new Set<string>();

  constructor(options: TransportOptions = {}) {
    this.insecure = options.insecure ?? new InsecurePolicy([]);
    this.timeout = options.timeout ?? defaultRegistryTimeout(DEFAULT_CONFIG_PATH);
    this.bodyIdleMs = Math.min(options.bodyIdleMs ?? Infinity, this.timeout.ms);
    this.certsDirs = options.certsDirs ?? defaultCertsDirs();
    this.command = options.command ?? 'pull';
    this.warn = options.onWarning ?? (() => {});
    this.userAgent = options.userAgent ?? 'tsrun/0.1.0';
    this.connections = new Connections(this.certsDirs, this.timeout.ms);
  }

  /** A fresh clock for one logical request (its retries share it). */
  patience(options?: PatienceOptions): Patience {
    return new Patience(this.timeout, options);
  }

  /** GET /v2/ once per registry: decides the scheme and returns the auth challenge. */
  ping(registry: string): Promise<PingResult> {
    let p = this.pings.get(registry);
    if (!p) {
      p = this.probe(registry);
      p.catch(() => this.pings.delete(registry));
      this.pings.set(registry, p);
    }
    return p;
  }

  /** An absolute URL on the registry: base from the ping + path (/v2/...). */
  async url(registry: string, path: string): Promise<URL> {
    const { base } = await this.ping(registry);
    return new URL(path, base);
  }

  private async probe(registry: string): Promise<PingResult> {
    const host = apiHost(registry);
    const insecure = await this.insecure.isInsecure(registry);
    const https = new URL(`https://${host}/v2/`);
    // One clock for both schemes: a registry that lets the TLS handshake hang has used it up.
    const patience = this.patience();
    let tlsError: unknown;
    try {
      return await this.pingAt(https, !insecure, patience);
    } catch (err) {
      // The registry timeout ran out: there is no time left to try HTTP.
      if (err instanceof TsrunError || isTimeoutError(err)) throw this.networkError('GET', https, err, patience);
      const kind = classifyNetworkError(err);
      if (!insecure) {
        if (kind === 'http-on-https') throw this.httpOnlyError(registry, err);
        if (kind === 'untrusted-cert') throw this.untrustedError(registry, err);
      }
      // Insecure: fall back to HTTP only when TLS itself failed, never after it worked.
      if (!insecure || kind === 'other') {
        const e = this.networkError('GET', https, err, patience);
        if (kind !== 'other' || !/UND_ERR_SOCKET|ECONNRESET/.test(e.message)) throw e;
        // A server that hangs up right after the handshake usually wanted a client certificate.
        throw new TsrunError(
          'ENETWORK',
          `${e.message} (if the registry requires a client certificate, put it in ${this.certsDirs[0]}/${registry}/client.cert and client.key)`,
          { cause: err },
        );
      }
      tlsError = err;
    }
    const http = new URL(`http://${host}/v2/`);
    try {
      return await this.pingAt(http, false, patience);
    } catch (err) {
      if (err instanceof TsrunError || isTimeoutError(err)) throw this.networkError('GET', http, err, patience); // no time left
      throw new TsrunError(
        'ENETWORK',
        `cannot reach the registry at ${registry}: over HTTPS: ${this.describe(tlsError)}; over HTTP: ${this.describe(err)}`,
        { cause: err },
      );
    }
  }

  private async pingAt(url: URL, verify: boolean, patience: Patience): Promise<PingResult> {
    const res = await this.send({ method: 'GET', url }, verify, patience);
    await drain(res);
    const challenge = header(res, 'www-authenticate');
    return { base: new URL(`${url.protocol}//${url.host}`), status: res.status, ...(challenge && { challenge }) };
  }

  /** Sends a request to a registry URL (or a redirect target), following redirects. */
  async request(req: HttpRequest): Promise<HttpResponse> {
    const method = req.method ?? 'GET';
    const follow = follows(req);
    const origin = req.url.origin;
    const patience = req.patience ?? this.patience();
    let url = req.url;
    for (let hop = 0; ; hop++) {
      const sameOrigin = url.origin === origin;
      const verify = !(await this.insecure.isInsecure(url.host));
      const headers = { ...req.headers };
      if (req.authorization && sameOrigin) {
        headers.authorization = req.authorization;
        if (req.authorizationIsSecret && url.protocol === 'http:' && !this.warned.has(url.host)) {
          this.warned.add(url.host);
          const why = (await this.insecure.why(url.host)) ?? 'the registry sent tsrun there';
          this.warn(`sending your credentials for ${url.host} over plain HTTP, because ${why}; anyone on the network path can read them`);
        }
      }
      let res: HttpResponse;
      try {
        res = await this.send({ ...req, method, url, headers }, verify, patience);
      } catch (err) {
        throw this.networkError(method, url, err, patience);
      }
      const location = header(res, 'location');
      if (!follow || !REDIRECTS.has(res.status) || !location) return res;
      await drain(res);
      if (hop >= MAX_REDIRECTS) throw new TsrunError('EREGISTRY', `${method} ${req.url}: more than ${MAX_REDIRECTS} redirects`);
      url = new URL(location, url);
      if (url.protocol !== 'https:' && url.protocol !== 'http:') {
        throw new TsrunError('EREGISTRY', `${method} ${req.url}: redirected to unsupported URL ${url.protocol}`);
      }
    }
  }

  private async send(req: HttpRequest, verify: boolean, patience: Patience): Promise<HttpResponse> {
    const method = req.method ?? 'GET';
    const watch = patience.watch(`${method} ${req.url.href}`, req.signal);
    try {
      const dispatcher = await this.connections.dispatcher(req.url, verify);
      const body = typeof req.body === 'function' ? req.body() : req.body;
      const sent = dispatcher.request({
        origin: req.url.origin,
        path: `${req.url.pathname}${req.url.search}`,
        method: method as Dispatcher.HttpMethod,
        headers: { 'user-agent': this.userAgent, ...req.headers },
        ...(body !== undefined && { body: uploadWithProgress(body, patience) }),
        signal: watch.signal,
        bodyTimeout: this.bodyIdleMs + 1000, // a backstop: watchBody fires first, on time
      });
      // undici applies an abort only once the connection is up: a TLS handshake that never
      // completes would hold the request until the connect timeout. Give up at the watch's time;
      // undici drops the request itself when the connection ends (close() destroys it if not).
      sent.catch(() => {});
      const res = await Promise.race([sent, watch.expired]);
      // An answer's headers are progress; a status to retry or a redirect to follow is not.
      const answer = !isRetryableStatus(res.statusCode) && !(follows(req) && REDIRECTS.has(res.statusCode) && res.headers.location);
      if (!answer) patience.noProgress(`HTTP ${res.statusCode}`);
      else if (!patience.bytesOnly) patience.progress();
      const stalled = () => new BodyTimeoutError();
      watchBody(res.body, patience, { what: `${method} ${req.url.href}`, answer, idleMs: this.bodyIdleMs, stalled });
      return { status: res.statusCode, headers: res.headers, url: req.url, body: res.body };
    } finally {
      watch.stop();
    }
  }

  /** Ends every connection, including a handshake still hanging after its request gave up. */
  close(): Promise<void> {
    return this.connections.close();
  }

  private fixFor(registry: string): string {
    return (
      `If you trust it, declare it insecure: tsrun --insecure-registry ${registry} ${this.command} ..., ` +
      `or add "insecure-registries": ["${registry}"] to /etc/tsrun/config.json`
    );
  }

  private httpOnlyError(registry: string, cause: unknown): TsrunError {
    return new TsrunError(
      'EINSECURE',
      `the registry at ${registry} answered over plain HTTP ("server gave HTTP response to HTTPS client"). ${this.fixFor(registry)}`,
      { cause },
    );
  }

  private untrustedError(registry: string, cause: unknown): TsrunError {
    return new TsrunError(
      'EINSECURE',
      `the registry at ${registry} presented a TLS certificate that is not trusted (${this.describe(cause)}). ` +
        `Put its CA certificate in ${this.certsDirs[0]}/${registry}/ca.crt; or, ${this.fixFor(registry).replace(/^If/, 'if')}`,
      { cause },
    );
  }

  /**
   * A failed request (or body read) as the user should see it. A body that ran out of the
   * registry timeout already failed with the clock's error; `patience` is for undici's own
   * timeouts (backstops), which name the registry timeout only when it has indeed run out.
   */
  networkError(method: string, url: URL, cause: unknown, patience?: Patience): TsrunError {
    if (cause instanceof TsrunError) return cause;
    if (patience && patience.leftMs() <= 0 && isTimeoutError(cause)) return patience.exhausted(`${method} ${url.href}`);
    return new TsrunError('ENETWORK', `${method} ${url.href}: ${this.describe(cause)}`, { cause });
  }

  /** A network error in a few words, with the limit that fired when it was one of tsrun's. */
  describe(err: unknown): string {
    return describeNetworkError(err, this.timeout.ms, this.bodyIdleMs);
  }
}

