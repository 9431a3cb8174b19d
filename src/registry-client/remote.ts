// The registry API (OCI distribution spec) over the transport: authenticated, retried requests,
// and the endpoints tsrun uses — manifests, blobs, uploads, tags.
import type { Readable } from 'node:stream';
import { TsrunError } from '../errors.js';
import type { Descriptor, Digest } from '../oci/types.js';
import { Authenticator, TokenCache, scopeFor, type AuthConfig } from './auth.js';
import { lookupCredential } from './credentials.js';
import { MANIFEST_ACCEPT, MAX_MANIFEST_BYTES, readLimited, verifyManifestDigest } from './manifest.js';
import { isTransientNetworkError } from './neterr.js';
import type { Patience } from './patience.js';
import { DEFAULT_RETRY, backoffDelay, isRetryableStatus, parseRetryAfter, sleep, type RetryPolicy } from './retry.js';
import { drain, header, type HttpRequest, type HttpResponse, type Transport } from './transport.js';

export interface RemoteOptions {
  transport: Transport;
  /** Credentials for a registry; default: docker's config.json and credential helpers. */
  credential?: (registry: string) => Promise<AuthConfig | undefined>;
  tokens?: TokenCache;
  retry?: RetryPolicy;
  /** Told before each wait between attempts (the CLI may show it). */
  onRetry?: (info: { what: string; attempt: number; delayMs: number; reason: string }) => void;
  onWarning?: (message: string) => void;
  wait?: (ms: number) => Promise<void>;
}

interface SendRequest extends Omit<HttpRequest, 'url' | 'authorization'> {
  /** A path on the registry (/v2/...) or an absolute URL from a Location header. */
  path: string | URL;
  scopes: string[];
  /** False for requests that must not be repeated (a PATCH mid-upload). */
  retry?: boolean;
  /** The registry timeout's clock, when the caller's operation spans several sends (a blob). */
  patience?: Patience;
}

/** The distribution spec's error body: {"errors":[{"code","message","detail"}]}. */
export async function registryErrorText(res: HttpResponse): Promise<string> {
  const text = await readLimited(res.body, 64 * 1024, 'error body').then(
    (b) => b.toString('utf8'),
    () => '',
  );
  try {
    const errors = (JSON.parse(text) as { errors?: Array<{ code?: string; message?: string }> }).errors;
    if (Array.isArray(errors) && errors.length) {
      return errors.map((e) => [e.code, e.message].filter(Boolean).join(': ')).join('; ');
    }
  } catch {
    // not JSON
  }
  return text.trim().slice(0, 200) || `HTTP ${res.status}`;
}

export class Registry {
  readonly auth: Authenticator;
  private ready: Promise<void> | undefined;
  private readonly retry: RetryPolicy;
  private readonly wait: (ms: number) => Promise<void>;

  constructor(
    readonly name: string,
    readonly options: RemoteOptions,
  ) {
    const lookup = options.credential ?? ((r: string) => lookupCredential(r));
    let cred: Promise<AuthConfig | undefined> | undefined;
    this.auth = new Authenticator(options.transport, name, () => (cred ??= lookup(name)), options.tokens, options.onWarning);
    this.retry = options.retry ?? DEFAULT_RETRY;
    this.wait = options.wait ?? sleep;
  }

  repository(repository: string, actions: string[] = ['pull']): Repository {
    return new Repository(this, repository, actions);
  }

  /** Pings the registry once (scheme, auth scheme). */
  init(): Promise<void> {
    this.ready ??= this.auth.init().catch((err) => {
      this.ready = undefined;
      throw err;
    });
    return this.ready;
  }

  /**
   * One API call: authorization, a second try after 401, back-off on 429/5xx and dropped
   * connections — all within one registry timeout: a 503 is no progress, so a registry that
   * answers only 503s fails within it however many retries the policy allows. Getting a token
   * is not the registry's time: the token server has a clock of its own.
   */
  async send(req: SendRequest): Promise<HttpResponse> {
    await this.init();
    const url = typeof req.path === 'string' ? await this.options.transport.url(this.name, req.path) : req.path;
    const method = req.method ?? 'GET';
    const what = `${method} ${url.pathname}`;
    const patience = req.patience ?? this.options.transport.patience();
    const pause = (attempt: number, retryAfterMs: number | undefined, reason: string) =>
      this.pause(what, attempt, retryAfterMs, reason, undefined, { patience, request: `${method} ${url.href}` });
    let reauthorized = false;
    for (let attempt = 0; ; attempt++) {
      const authorization = await patience.aside(() => this.auth.authorization(req.scopes, req.signal));
      let res: HttpResponse;
      try {
        const secret = authorization !== undefined && (await this.auth.hasSecret());
        res = await this.options.transport.request({ ...req, url, patience, ...(authorization && { authorization, authorizationIsSecret: secret }) });
      } catch (err) {
        if (req.retry === false || attempt >= this.retry.retries || !isTransientNetworkError(err)) throw err;
        await pause(attempt + 1, undefined, (err as Error).message);
        continue;
      }
      if (res.status === 401 && !reauthorized) {
        // The token may have expired or the scope changed: take the new challenge, once.
        reauthorized = true;
        await drain(res);
        await this.auth.onUnauthorized(header(res, 'www-authenticate'));
        attempt--;
        continue;
      }
      if (isRetryableStatus(res.status) && req.retry !== false && attempt < this.retry.retries) {
        await res.body.dump();
        await pause(attempt + 1, parseRetryAfter(res.headers['retry-after']), `HTTP ${res.status}`);
        continue;
      }
      return res;
    }
  }

  /** Waits before attempt `attempt`, unless the wait would pass the registry timeout (then throws). */
  private async pause(
    what: string,
    attempt: number,
    retryAfterMs: number | undefined,
    reason: string,
    notify: ((delayMs: number, reason: string) => void) | undefined,
    clock: { patience: Patience; request: string },
  ): Promise<void> {
    const delayMs = backoffDelay(attempt, this.retry, retryAfterMs);
    clock.patience.beforeRetry(clock.request, delayMs, reason);
    this.options.onRetry?.({ what, attempt, delayMs, reason });
    notify?.(delayMs, reason);
    await this.wait(delayMs);
  }

  /** Retries for callers that do their own resuming (blob downloads). */
  get retryPolicy(): RetryPolicy {
    return this.retry;
  }

  backoff(
    what: string,
    attempt: number,
    retryAfterMs: number | undefined,
    reason: string,
    notify: ((delayMs: number, reason: string) => void) | undefined,
    clock: { patience: Patience; request: string },
  ): Promise<void> {
    return this.pause(what, attempt, retryAfterMs, reason, notify, clock);
  }
}

export interface FetchedManifest {
  bytes: Buffer;
  digest: Digest;
  contentType: string | undefined;
}

export class Repository {
  readonly scopes: string[];
  constructor(
    readonly registry: Registry,
    readonly name: string,
    readonly actions: string[],
  ) {
    this.scopes = [scopeFor(name, actions)];
  }

  /** registry/repository, for messages. */
  get fullName(): string {
    return `${this.registry.name}/${this.name}`;
  }

  async fail(res: HttpResponse, doing: string): Promise<never> {
    const detail = await registryErrorText(res);
    if (res.status === 401 || res.status === 403) {
      throw new TsrunError(
        'EAUTH',
        `${doing}: ${this.actions.includes('push') ? 'push' : 'pull'} access denied for ${this.fullName}, repository does not exist or may require 'tsrun login' (${detail})`,
      );
    }
    if (res.status === 404) throw new TsrunError('ENOIMAGE', `${doing}: not found (${detail})`);
    throw new TsrunError('EREGISTRY', `${doing}: the registry answered ${res.status}: ${detail}`);
  }

  /** GET a manifest by tag or digest, size-limited and verified against its digest. */
  async getManifest(reference: string, accept: string = MANIFEST_ACCEPT): Promise<FetchedManifest> {
    const doing = `manifest for ${this.fullName}${reference.startsWith('sha256:') ? '@' : ':'}${reference}`;
    const res = await this.registry.send({ path: `/v2/${this.name}/manifests/${reference}`, headers: { accept }, scopes: this.scopes });
    if (res.status !== 200) {
      if (res.status === 404) {
        await res.body.dump();
        throw new TsrunError('ENOIMAGE', `${doing} not found: manifest unknown`);
      }
      return this.fail(res, doing);
    }
    const length = header(res, 'content-length');
    let bytes: Buffer;
    try {
      bytes = await readLimited(res.body, MAX_MANIFEST_BYTES, doing, length === undefined ? undefined : Number(length));
    } catch (err) {
      res.body.destroy();
      throw this.registry.options.transport.networkError('GET', res.url, err);
    }
    // By digest: the bytes must hash to it. By tag: to what the registry says they are.
    const expected = reference.startsWith('sha256:') ? reference : header(res, 'docker-content-digest');
    const digest = verifyManifestDigest(bytes, expected, doing);
    return { bytes, digest, contentType: header(res, 'content-type') };
  }

  /** GET a blob, from `offset` on (Range). Redirects to storage hosts carry no credentials. */
  async openBlob(digest: Digest, offset = 0, signal?: AbortSignal, patience?: Patience): Promise<HttpResponse> {
    return this.registry.send({
      path: `/v2/${this.name}/blobs/${digest}`,
      headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
      scopes: this.scopes,
      retry: false, // the caller resumes with Range instead
      ...(signal && { signal }),
      ...(patience && { patience }),
    });
  }

  async blobExists(digest: Digest): Promise<boolean> {
    const res = await this.registry.send({ method: 'HEAD', path: `/v2/${this.name}/blobs/${digest}`, scopes: this.scopes });
    await res.body.dump();
    if (res.status === 200) return true;
    if (res.status === 404) return false;
    return this.fail(res, `check blob ${digest} in ${this.fullName}`);
  }

  /**
   * Starts an upload; with `mountFrom`, first asks the registry to link the blob from another
   * repository it already has (no bytes sent). Returns 'mounted' or the upload URL.
   */
  async startUpload(digest: Digest, mountFrom?: string): Promise<'mounted' | URL> {
    let path = `/v2/${this.name}/blobs/uploads/`;
    const scopes = [...this.scopes];
    if (mountFrom) {
      path += `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(mountFrom)}`;
      scopes.push(scopeFor(mountFrom, ['pull']));
    }
    const res = await this.registry.send({ method: 'POST', path, scopes, headers: { 'content-length': '0' } });
    await res.body.dump();
    if (res.status === 201 && mountFrom) return 'mounted';
    if (res.status !== 202) return this.fail(res, `start upload of ${digest} to ${this.fullName}`);
    return this.location(res, `start upload of ${digest}`);
  }

  private location(res: HttpResponse, doing: string): URL {
    const loc = header(res, 'location');
    if (!loc) throw new TsrunError('EREGISTRY', `${doing} to ${this.fullName}: the registry gave no Location`);
    return new URL(loc, res.url);
  }

  /** PATCH one chunk of an upload; returns the next upload URL. */
  async patchChunk(upload: URL, chunk: Buffer, start: number): Promise<URL> {
    const res = await this.registry.send({
      method: 'PATCH',
      path: upload,
      scopes: this.scopes,
      headers: {
        'content-type': 'application/octet-stream',
        'content-length': String(chunk.length),
        'content-range': `${start}-${start + chunk.length - 1}`,
      },
      body: chunk,
      retry: false,
    });
    await res.body.dump();
    if (res.status !== 202) return this.fail(res, `upload chunk at ${start} to ${this.fullName}`);
    return this.location(res, 'upload chunk');
  }

  /** PUT ?digest= to finish an upload, with the whole blob (monolithic) or nothing (chunked). */
  async finishUpload(upload: URL, digest: Digest, body?: { size: number; open: () => Readable }): Promise<void> {
    const url = new URL(upload);
    url.searchParams.set('digest', digest);
    const res = await this.registry.send({
      method: 'PUT',
      path: url,
      scopes: this.scopes,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(body?.size ?? 0) },
      ...(body && { body: body.open }),
      retry: false,
    });
    await res.body.dump();
    if (res.status !== 201 && res.status !== 204) return this.fail(res, `finish upload of ${digest} to ${this.fullName}`);
  }

  async putManifest(reference: string, bytes: Buffer, mediaType: string): Promise<string | undefined> {
    const res = await this.registry.send({
      method: 'PUT',
      path: `/v2/${this.name}/manifests/${reference}`,
      scopes: this.scopes,
      headers: { 'content-type': mediaType, 'content-length': String(bytes.length) },
      body: bytes,
    });
    await res.body.dump();
    if (res.status !== 201 && res.status !== 200) return this.fail(res, `put manifest ${this.fullName}:${reference}`);
    return header(res, 'docker-content-digest');
  }

  /** Every tag, following the Link header's pagination. */
  async listTags(): Promise<string[]> {
    const tags: string[] = [];
    let path: string | URL = `/v2/${this.name}/tags/list?n=1000`;
    for (let page = 0; page < 1000; page++) {
      const res = await this.registry.send({ path, scopes: this.scopes });
      if (res.status !== 200) return this.fail(res, `list tags of ${this.fullName}`);
      const text = await readLimited(res.body, MAX_MANIFEST_BYTES, 'tag list').catch((err: unknown) => {
        throw this.registry.options.transport.networkError('GET', res.url, err);
      });
      const body = JSON.parse(text.toString('utf8')) as { tags?: string[] | null };
      tags.push(...(body.tags ?? []));
      const next = /<([^>]+)>\s*;\s*rel="?next"?/.exec(header(res, 'link') ?? '');
      if (!next) break;
      path = new URL(next[1]!, res.url);
    }
    return tags;
  }
}

export type { Descriptor };
