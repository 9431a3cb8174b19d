// When and how long to wait before trying a request again.
// Registries answer 429 (rate limit) and 5xx (a backend hiccup) and expect clients to back off;
// Retry-After says for how long, in seconds or as an HTTP date (RFC 9110 §10.2.3).

export interface RetryPolicy {
  /** Attempts after the first one. */
  retries: number;
  /** First back-off; doubles each attempt. */
  baseDelayMs: number;
  /** No single wait is longer than this, whatever Retry-After asks. */
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { retries: 4, baseDelayMs: 500, maxDelayMs: 30_000 };

/** Statuses worth another try: rate limiting and transient server errors. */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || status === 408 || status === 500 || status === 502 || status === 503 || status === 504;
}

/** Retry-After in milliseconds, or undefined when absent or unreadable. */
export function parseRetryAfter(value: string | string[] | undefined, now: number = Date.now()): number | undefined {
  const v = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!v) return undefined;
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  // An HTTP date: IMF-fixdate, or the obsolete RFC 850 / asctime forms Date.parse also reads.
  if (!/[a-z]/i.test(v)) return undefined;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/** How long to wait before attempt `attempt` (1 = the first retry). */
export function backoffDelay(attempt: number, policy: RetryPolicy, retryAfterMs?: number): number {
  if (retryAfterMs !== undefined) return Math.min(retryAfterMs, policy.maxDelayMs);
  const exp = policy.baseDelayMs * 2 ** (attempt - 1);
  // Jitter (±25%) so parallel layer downloads do not retry in lockstep.
  const jitter = exp * (Math.random() * 0.5 - 0.25);
  return Math.min(policy.maxDelayMs, Math.round(exp + jitter));
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
