// The registry timeout's clock for one logical request: an API call with its retries, a blob
// with its resumes. Progress restarts it; what is left of it bounds every attempt, every body
// and every wait between attempts:
//
//   attempt ──503──▶ wait ──▶ attempt ──(silence, or a trickle)──▶ ✗
//   ├──────────────── no progress: at most the registry timeout ─────────┤
//
// Progress is what gets a request nearer its end:
//   - an answer's headers: any status but a redirect tsrun follows, a 429 or a 5xx (a 401 is
//     an answer: tsrun comes back with a token once at most); not for a blob, whose answer is
//     its bytes (a blob that stalls is resumed, and resumes must not stretch the clock);
//   - MIN_PROGRESS bytes of an answer's body since the clock last restarted, or its end (a
//     complete small body is progress). A registry that sends a few bytes now and then is not
//     making progress: one byte every 40 s would otherwise hold a pull for ever;
//   - an upload's bytes taken by the registry, a slice (64 KiB) at a time.
// So however many retries the policy allows, tsrun gives up once the registry has made no
// progress for the registry timeout — and a wait that would end past it is not started at all.
// The time tsrun spends on its own — unpacking while a body's buffer is full, or getting a
// token, which has a clock of its own — is not the registry's.
import { Readable } from 'node:stream';
import { TsrunError } from '../errors.js';
import { howToWaitLonger, seconds, type RegistryTimeout } from './timeout.js';

/** The least a body must bring in each registry timeout (1 KiB in 45 s: 23 bytes a second). */
export const MIN_PROGRESS = 1024;

export interface Watch {
  /** Aborts the attempt when the time left runs out (the timeout error is its reason), or the caller's signal aborts. */
  signal: AbortSignal;
  /** Rejects at the same moment: undici acts on an abort only once connected (see transport.ts). */
  expired: Promise<never>;
  stop(): void;
}

export interface PatienceOptions {
  /** Who the clock waits on, in errors (default: "the registry"). */
  who?: string;
  /** Only the body's bytes are progress, never headers: a blob, which is resumed when it stalls. */
  bytesOnly?: boolean;
}

export class Patience {
  private last = Date.now();
  /** Bytes of an answer's body since the clock restarted: fewer than MIN_PROGRESS. */
  private bytes = 0;
  private attempts = 1;
  private lastFailure: string | undefined;
  readonly who: string;
  readonly bytesOnly: boolean;

  constructor(
    readonly timeout: RegistryTimeout,
    options: PatienceOptions = {},
  ) {
    this.who = options.who ?? 'the registry';
    this.bytesOnly = options.bytesOnly ?? false;
  }

  /** The registry made progress: the clock restarts, and earlier attempts no longer count. */
  progress(): void {
    this.last = Date.now();
    this.bytes = 0;
    this.attempts = 1;
    this.lastFailure = undefined;
  }

  /** Bytes of an answer's body: progress once they add up to MIN_PROGRESS. Returns whether they did. */
  received(bytes: number): boolean {
    this.bytes += bytes;
    if (this.bytes < MIN_PROGRESS) return false;
    this.progress();
    return true;
  }

  /** What the registry did instead of progressing (a 503, a redirect), for the error. */
  noProgress(what: string): void {
    this.lastFailure = what;
  }

  /** Runs `work` with the clock stopped: a token fetch, which has a clock of its own. */
  async aside<T>(work: () => Promise<T>): Promise<T> {
    const start = Date.now();
    try {
      return await work();
    } finally {
      this.last += Date.now() - start;
    }
  }

  deadline(): number {
    return this.last + this.timeout.ms;
  }

  leftMs(): number {
    return this.deadline() - Date.now();
  }

  /**
   * Before waiting `delayMs` to try again after `reason`: throws instead when nothing is left,
   * or when the wait would end past the registry timeout (the next attempt would have no time).
   */
  beforeRetry(what: string, delayMs: number, reason: string): void {
    this.lastFailure = reason;
    const left = this.leftMs();
    if (left <= 0) throw this.exhausted(what);
    if (delayMs >= left) {
      throw new TsrunError(
        'ENETWORK',
        `${what}: no progress from ${this.who} for ${seconds(Date.now() - this.last)} over ${attempts(this.attempts)} ` +
          `(last: ${reason}), and trying again in ${seconds(delayMs)} would pass the registry timeout; ${howToWaitLonger(this.timeout)}`,
      );
    }
    this.attempts++;
  }

  /** The error once the registry timeout has run out; `detail` says where a body stopped. */
  exhausted(what: string, detail = ''): TsrunError {
    const t = seconds(this.timeout.ms);
    const why = this.lastFailure
      ? `no progress from ${this.who} for ${t}${detail} over ${attempts(this.attempts)} (last: ${this.lastFailure})`
      : this.bytes > 0
        ? `${this.who} sent less than ${MIN_PROGRESS / 1024} KiB in ${t}${detail}`
        : `${this.who} sent nothing for ${t}${detail}`;
    return new TsrunError('ENETWORK', `${what}: ${why}; ${howToWaitLonger(this.timeout)}`);
  }

  /**
   * Guards one attempt until its response headers arrive: the signal aborts it when the time
   * left runs out, which an upload's progress pushes back. The body has its own guard
   * (watchBody below), as only its bytes tell progress.
   */
  watch(what: string, outer?: AbortSignal): Watch {
    const controller = new AbortController();
    let expire!: (reason: unknown) => void;
    const expired = new Promise<never>((_, reject) => (expire = reject));
    expired.catch(() => {}); // not a crash if it expires before anyone awaits it
    const timer = alarm(
      () => this.deadline(),
      () => {
        const err = this.exhausted(what);
        controller.abort(err);
        expire(err);
      },
    );
    // The caller's own signal (a pull cancelling its other downloads) aborts the attempt too.
    const onOuter = () => {
      controller.abort(outer!.reason);
      expire(outer!.reason);
    };
    if (outer?.aborted) onOuter();
    else outer?.addEventListener('abort', onOuter, { once: true });
    return { signal: controller.signal, expired, stop: timer.stop };
  }
}

function attempts(n: number): string {
  return n === 1 ? '1 attempt' : `${n} attempts`;
}

/**
 * Calls `ring` once `deadline()` has passed. Deadlines here only move later (progress), so the
 * timer is set for the deadline as it is and, when it fires early, set again.
 */
function alarm(deadline: () => number, ring: () => void): { arm(): void; stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    const left = deadline() - Date.now();
    timer = setTimeout(() => (Date.now() >= deadline() ? ring() : arm()), Math.max(0, left));
  };
  const stop = () => clearTimeout(timer);
  arm();
  return { arm, stop };
}

export interface BodyWatch {
  /** Names the request in the error when the registry timeout runs out. */
  what: string;
  /** Whether the body is the answer (its bytes are progress), not a 503's or a redirect's. */
  answer: boolean;
  /** This connection's own limit (≤ the registry timeout): shorter, a blob resumes on a new one sooner. */
  idleMs: number;
  /** The error for that limit: a transient one, so that a blob resumes. */
  stalled: () => Error;
}

/**
 * Fails `body` once the registry has made no progress for what is left of the registry timeout
 * (with the clock's error), or for `idleMs` on this connection (with `stalled()`). Both limits
 * are read from the clock as it stands whenever the timer fires, never fixed in advance. undici
 * has a body timer (bodyTimeout), but any chunk restarts it, and it ticks every half second.
 *
 * Like undici's, these clocks stop while the body's buffer is full — tsrun is the slow one then,
 * unpacking to disk — and restart when tsrun reads again: a full buffer (64 KiB) is progress.
 * `push` returning false is the stream saying "enough", `_read` after it asking for more.
 */
export function watchBody(body: Readable, patience: Patience, w: BodyWatch): void {
  // undici hands the body over once the headers are in, and what came in the same packets is
  // already pushed: all of it, for a small body.
  const state = (body as unknown as { _readableState: { ended: boolean } })._readableState;
  if (state.ended) {
    if (w.answer) patience.progress();
    return;
  }
  if (w.answer) patience.received(body.readableLength);
  let restarted = Date.now();
  let full = body.readableLength >= body.readableHighWaterMark;
  const restart = () => {
    restarted = Date.now();
    if (w.answer) patience.progress();
  };
  const timer = alarm(
    () => Math.min(restarted + w.idleMs, patience.deadline()),
    () => body.destroy(patience.leftMs() <= 0 ? patience.exhausted(w.what) : w.stalled()),
  );
  const push = body.push.bind(body);
  body.push = (chunk: Buffer | null, encoding?: BufferEncoding) => {
    const more = push(chunk, encoding);
    if (chunk === null) {
      timer.stop();
      if (w.answer) patience.progress(); // a complete body is progress, however small
    } else if (w.answer && patience.received(chunk.length)) {
      restarted = Date.now();
    }
    if (chunk !== null && !more) {
      full = true;
      timer.stop();
    }
    return more;
  };
  const read = body._read.bind(body);
  body._read = (size: number) => {
    if (full) {
      full = false;
      restart();
      timer.arm();
    }
    read(size);
  };
  if (full) timer.stop();
  body.once('close', timer.stop);
}

/** Request bodies go out in slices this size, so that an upload's progress restarts the clock. */
const UPLOAD_SLICE = 64 * 1024;

/**
 * The request body as undici will pull it, each slice restarting the clock: undici pulls from a
 * stream only as fast as the socket drains, so this is the registry taking the upload. A small
 * buffer goes as it is (it fits in the socket's buffer at once anyway).
 */
export function uploadWithProgress(body: Buffer | string | Readable, patience: Patience): Buffer | string | Readable {
  if (typeof body === 'string' || (Buffer.isBuffer(body) && body.length <= UPLOAD_SLICE)) return body;
  const source: Iterable<Buffer> | AsyncIterable<Buffer> = Buffer.isBuffer(body) ? slices(body) : body;
  return Readable.from(
    (async function* () {
      for await (const chunk of source) {
        patience.progress();
        yield chunk;
      }
    })(),
    { objectMode: false },
  );
}

function* slices(buf: Buffer): Generator<Buffer> {
  for (let i = 0; i < buf.length; i += UPLOAD_SLICE) yield buf.subarray(i, i + UPLOAD_SLICE);
}
