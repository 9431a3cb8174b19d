// Telling network failures apart. The scheme decision depends on it: plain HTTP is only ever
// tried after a failure that proves the TLS handshake did not complete.
import { MIN_PROGRESS } from './patience.js';

export type NetworkErrorKind =
  /** The server answered a TLS ClientHello with plain HTTP (OpenSSL: "wrong version number"). */
  | 'http-on-https'
  /** TLS worked up to certificate verification, which failed. */
  | 'untrusted-cert'
  /** Nothing answered, or the handshake failed or timed out: TLS never worked. */
  | 'no-tls'
  /** Anything else (including errors after a successful handshake). */
  | 'other';

const UNTRUSTED = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

const NO_TLS = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPROTO',
  'UND_ERR_CONNECT_TIMEOUT',
  'ERR_SSL_PACKET_LENGTH_TOO_LONG',
  'ERR_SSL_UNSUPPORTED_PROTOCOL',
  'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION',
  'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE',
]);

function chain(err: unknown): Array<{ code?: unknown; message?: unknown }> {
  const out: Array<{ code?: unknown; message?: unknown }> = [];
  let e: unknown = err;
  for (let i = 0; i < 5 && e && typeof e === 'object'; i++) {
    out.push(e as { code?: unknown; message?: unknown });
    e = (e as { cause?: unknown }).cause;
  }
  return out;
}

export function classifyNetworkError(err: unknown): NetworkErrorKind {
  for (const e of chain(err)) {
    const code = typeof e.code === 'string' ? e.code : '';
    const message = typeof e.message === 'string' ? e.message : '';
    if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || /wrong version number/i.test(message)) return 'http-on-https';
    if (UNTRUSTED.has(code)) return 'untrusted-cert';
    if (NO_TLS.has(code) || code.startsWith('ERR_SSL_')) return 'no-tls';
    if (/before secure TLS connection was established/.test(message)) return 'no-tls';
  }
  return 'other';
}

/** undici's own timeouts: backstops set to the registry timeout (see transport.ts). */
const TIMEOUTS = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

export function isTimeoutError(err: unknown): boolean {
  return chain(err).some((e) => typeof e.code === 'string' && TIMEOUTS.has(e.code));
}

/**
 * A short human description, with the limit that fired when it was one of ours: `timeoutMs` for
 * connecting and headers, `bodyIdleMs` for a body (see watchBody in patience.ts).
 */
export function describeNetworkError(err: unknown, timeoutMs?: number, bodyIdleMs = timeoutMs): string {
  const [first] = chain(err);
  const code = typeof first?.code === 'string' ? first.code : '';
  const message = typeof first?.message === 'string' ? first.message : String(err);
  const within = timeoutMs === undefined ? 'the timeout' : `${timeoutMs / 1000} s`;
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return `connection not established within ${within}`;
  if (code === 'UND_ERR_HEADERS_TIMEOUT') return `no response within ${within}`;
  if (code === 'UND_ERR_BODY_TIMEOUT') {
    return `less than ${MIN_PROGRESS / 1024} KiB in ${bodyIdleMs === undefined ? 'too long' : `${bodyIdleMs / 1000} s`} while reading the body`;
  }
  // OpenSSL messages carry source file names; keep the reason only.
  const ssl = /:SSL routines:[^:]*:([^:]+):/.exec(message);
  if (ssl) return ssl[1]!;
  return code && !message.includes(code) ? `${message} (${code})` : message;
}

/** Errors worth retrying a request for (the connection, not the content, failed). */
export function isTransientNetworkError(err: unknown): boolean {
  for (const e of chain(err)) {
    const code = typeof e.code === 'string' ? e.code : '';
    if (
      [
        'ECONNRESET',
        'ECONNREFUSED',
        'EPIPE',
        'ETIMEDOUT',
        'UND_ERR_SOCKET',
        'UND_ERR_CONNECT_TIMEOUT',
        'UND_ERR_HEADERS_TIMEOUT',
        'UND_ERR_BODY_TIMEOUT',
        'UND_ERR_CLOSED',
        'ERR_STREAM_PREMATURE_CLOSE',
      ].includes(code)
    ) {
      return true;
    }
  }
  return false;
}
