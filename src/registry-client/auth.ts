// Registry authentication: the challenge in WWW-Authenticate, Basic, and Bearer tokens.
//
// A registry answers 401 with `WWW-Authenticate: Bearer realm="https://auth/token",
// service="registry",scope="repository:library/busybox:pull"`. The client asks the realm for a
// token for that service and scope — anonymously, or with the user's credentials — and sends
// `Authorization: Bearer <token>` until the token expires. Token servers differ: Docker Hub and
// most others take an OAuth2 form POST, some only the older GET with Basic auth, so try POST
// and fall back to GET (as containerd does).
import { TsrunError } from '../errors.js';
import { readLimited } from './manifest.js';
import type { Patience } from './patience.js';
import { drain, header, type HttpResponse, type Transport } from './transport.js';

/** A token is a few KB; a token server that sends more is broken or hostile. */
const MAX_TOKEN_BYTES = 1024 * 1024;

export interface Challenge {
  /** Lower-cased: "bearer", "basic". */
  scheme: string;
  params: Record<string, string>;
}

/** Parse a WWW-Authenticate header value (RFC 9110 §11.6.1) into its challenges. */
export function parseWWWAuthenticate(value: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const n = value.length;
  const skip = (chars: RegExp) => {
    while (i < n && chars.test(value[i]!)) i++;
  };
  const token = (): string => {
    const start = i;
    while (i < n && /[^\s,="]/.test(value[i]!)) i++;
    return value.slice(start, i);
  };
  while (i < n) {
    skip(/[\s,]/);
    const scheme = token();
    if (!scheme) break;
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    out.push(challenge);
    for (;;) {
      skip(/\s/);
      const save = i;
      const name = token();
      skip(/\s/);
      if (!name || value[i] !== '=') {
        // Not `name=`: the next challenge's scheme starts here.
        i = save;
        break;
      }
      i++; // '='
      skip(/\s/);
      let v = '';
      if (value[i] === '"') {
        i++;
        while (i < n && value[i] !== '"') {
          if (value[i] === '\\' && i + 1 < n) i++;
          v += value[i++];
        }
        i++; // closing quote
      } else {
        v = token();
      }
      challenge.params[name.toLowerCase()] = v;
      skip(/\s/);
      if (value[i] === ',') i++;
    }
  }
  return out;
}

/** What the user gave us for one registry (docker's AuthConfig). */
export interface AuthConfig {
  username?: string;
  password?: string;
  /** An OAuth2 refresh token (docker config.json `identitytoken`). */
  identityToken?: string;
  /** A bearer token to send as is (`registrytoken`). */
  registryToken?: string;
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

/** Tokens by realm, service, scopes and user, until they expire. Shared by a whole pull. */
export class TokenCache {
  private readonly tokens = new Map<string, CachedToken>();
  get(key: string, now = Date.now()): string | undefined {
    const t = this.tokens.get(key);
    if (t && t.expiresAt > now) return t.token;
    this.tokens.delete(key);
    return undefined;
  }
  set(key: string, token: string, expiresAt: number): void {
    this.tokens.set(key, { token, expiresAt });
  }
  delete(key: string): void {
    this.tokens.delete(key);
  }
}

export function scopeFor(repository: string, actions: string[]): string {
  return `repository:${repository}:${actions.join(',')}`;
}

function basic(cred: AuthConfig): string | undefined {
  if (cred.username === undefined || cred.password === undefined) return undefined;
  return `Basic ${Buffer.from(`${cred.username}:${cred.password}`).toString('base64')}`;
}

export interface TokenRequest {
  realm: string;
  service?: string;
  scopes: string[];
}

/**
 * Turns challenges into Authorization headers for one registry.
 * `credential()` is asked lazily, so anonymous pulls never run a credential helper.
 */
export class Authenticator {
  private challenge: Challenge | undefined;
  /** The cache key of the token sent last, dropped when the registry refuses it. */
  private lastKey: string | undefined;
  /** credential()'s answer, asked once (a credential helper is a process). */
  private asked: Promise<AuthConfig | undefined> | undefined;

  constructor(
    private readonly transport: Transport,
    private readonly registry: string,
    private readonly credential: () => Promise<AuthConfig | undefined>,
    private readonly tokens: TokenCache = new TokenCache(),
    private readonly warn: (message: string) => void = () => {},
  ) {}

  private credentialOnce(): Promise<AuthConfig | undefined> {
    this.asked ??= this.credential();
    return this.asked;
  }

  /** Learns the registry's scheme of auth from GET /v2/ (docker's "ping"). */
  async init(): Promise<void> {
    const ping = await this.transport.ping(this.registry);
    if (ping.status === 401 && ping.challenge) this.challenge = pick(parseWWWAuthenticate(ping.challenge));
  }

  /** Whether what authorization() sends comes from credentials the user configured. */
  async hasSecret(): Promise<boolean> {
    const cred = (await this.credentialOnce()) ?? {};
    return cred.registryToken !== undefined || cred.identityToken !== undefined || (cred.username !== undefined && cred.password !== undefined);
  }

  /**
   * The header to send for `scopes`, or undefined when the registry wants none. `signal`: the
   * request's, which ends a token fetch too.
   */
  async authorization(scopes: string[], signal?: AbortSignal): Promise<string | undefined> {
    const c = this.challenge;
    if (!c) return undefined;
    const cred = (await this.credentialOnce()) ?? {};
    if (c.scheme === 'basic') return basic(cred);
    if (c.scheme !== 'bearer') return undefined;
    if (cred.registryToken) return `Bearer ${cred.registryToken}`;
    const realm = c.params.realm;
    if (!realm) throw new TsrunError('EAUTH', `${this.registry} asked for a bearer token without saying where to get one (no realm)`);
    const wanted = new Set([...scopes, ...(c.params.scope ? c.params.scope.split(' ') : [])]);
    const req: TokenRequest = { realm, ...(c.params.service && { service: c.params.service }), scopes: [...wanted].sort() };
    const key = JSON.stringify([req.realm, req.service, req.scopes, cred.username ?? '', cred.identityToken ? 'id' : '']);
    this.lastKey = key;
    const cached = this.tokens.get(key);
    if (cached) return `Bearer ${cached}`;
    const { token, expiresAt } = await this.fetchToken(req, cred, signal).catch((err: unknown) => {
      if (signal?.aborted) throw signal.reason;
      if (!(err instanceof TsrunError) || err.code !== 'ENETWORK') throw err;
      throw new TsrunError('ENETWORK', `${this.registry}: getting a token: ${err.message}`, { cause: err });
    });
    this.tokens.set(key, token, expiresAt);
    return `Bearer ${token}`;
  }

  /** After a 401 on a request: take the new challenge (it may name a wider scope). */
  async onUnauthorized(wwwAuthenticate: string | undefined): Promise<void> {
    if (this.lastKey !== undefined) this.tokens.delete(this.lastKey);
    if (!wwwAuthenticate) return;
    const c = pick(parseWWWAuthenticate(wwwAuthenticate));
    if (c) this.challenge = c;
  }

  get scheme(): string | undefined {
    return this.challenge?.scheme;
  }

  /**
   * Asks the realm for a token: OAuth2 POST when we have credentials, else (or on refusal) GET;
   * both within one registry timeout of the token server's own.
   */
  async fetchToken(req: TokenRequest, cred: AuthConfig, signal?: AbortSignal): Promise<CachedToken> {
    const realm = new URL(req.realm);
    const patience = this.transport.patience({ who: 'the token server' });
    const hasSecret = cred.identityToken !== undefined || (cred.username !== undefined && cred.password !== undefined);
    if (hasSecret && realm.protocol === 'http:') {
      this.warn(`sending credentials to the token server ${realm.host} over plain HTTP`);
    }
    if (hasSecret) {
      const form = new URLSearchParams({ client_id: 'tsrun', access_type: 'online' });
      if (req.service) form.set('service', req.service);
      if (req.scopes.length) form.set('scope', req.scopes.join(' '));
      if (cred.identityToken !== undefined) {
        form.set('grant_type', 'refresh_token');
        form.set('refresh_token', cred.identityToken);
      } else {
        form.set('grant_type', 'password');
        form.set('username', cred.username!);
        form.set('password', cred.password!);
      }
      const res = await this.transport.request({
        method: 'POST',
        url: realm,
        headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
        body: form.toString(),
        patience,
        ...(signal && { signal }),
      });
      // 404/405: the server has no OAuth2 endpoint; 401 from some servers that only do GET.
      const fallBack = res.status === 404 || res.status === 405 || (res.status === 401 && cred.identityToken === undefined);
      if (!fallBack || cred.identityToken !== undefined) return this.readToken('POST', res, realm, patience);
      await drain(res);
    }
    const url = new URL(realm);
    if (req.service) url.searchParams.set('service', req.service);
    for (const s of req.scopes) url.searchParams.append('scope', s);
    const authorization = basic(cred);
    const res = await this.transport.request({ method: 'GET', url, patience, ...(authorization && { authorization, authorizationIsSecret: true }), ...(signal && { signal }) });
    return this.readToken('GET', res, realm, patience);
  }

  private async readToken(method: string, res: HttpResponse, realm: URL, patience: Patience): Promise<CachedToken> {
    let text: string;
    try {
      text = (await readLimited(res.body, MAX_TOKEN_BYTES, `the token from ${realm.origin}`)).toString('utf8');
    } catch (err) {
      res.body.destroy();
      // Too large is the token server's fault, as a refused login is; a token server that
      // stops sending failed with the registry timeout's error (transport.ts).
      if (err instanceof TsrunError && err.code === 'EREGISTRY') throw new TsrunError('EAUTH', `${this.registry}: ${err.message}`);
      throw this.transport.networkError(method, res.url, err, patience);
    }
    if (res.status === 401 || res.status === 403) {
      throw new TsrunError('EAUTH', `${this.registry}: unauthorized: incorrect username or password (token server ${realm.origin} answered ${res.status})`);
    }
    if (res.status !== 200) {
      throw new TsrunError('EAUTH', `${this.registry}: token server ${realm.origin} answered ${res.status}: ${text.slice(0, 200)}`);
    }
    let body: { token?: string; access_token?: string; expires_in?: number; issued_at?: string };
    try {
      body = JSON.parse(text);
    } catch {
      throw new TsrunError('EAUTH', `${this.registry}: token server ${realm.origin} sent something that is not JSON`);
    }
    const token = body.token || body.access_token;
    if (!token) throw new TsrunError('EAUTH', `${this.registry}: token server ${realm.origin} sent no token`);
    // The spec's default lifetime is 60 s; renew 5 s early so a request never carries a dead token.
    const issued = body.issued_at ? Date.parse(body.issued_at) : NaN;
    const start = Number.isNaN(issued) ? Date.now() : Math.min(issued, Date.now());
    const expiresAt = start + Math.max(10, body.expires_in ?? 60) * 1000 - 5000;
    return { token, expiresAt };
  }
}

/** Prefer Bearer over Basic when a registry offers both. */
function pick(challenges: Challenge[]): Challenge | undefined {
  return challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
}

export { header };
