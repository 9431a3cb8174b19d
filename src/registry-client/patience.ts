// The registry timeout's clock for one logical request: an API call with its retries, a blob
// with its resumes. Progress (bytes from the registry, or an upload's bytes taken) restarts it.
// What is left of it bounds every attempt and every wait between attempts:
//
//   attempt ──503──▶ wait ──▶ attempt ──(silence)──────▶ ✗
//   ├──────────── no progress: at most the registry timeout ────┤
//
// So however many retries the policy allows, tsrun gives up once the registry has made no
// progress for the registry timeout — and a wait that would end past it is not started at all.
// Below the clock, the two places progress is seen on the wire: uploadWithProgress (the bytes
// of an upload) and idleTimeout (the silences of a response body).
import { Readable } from 'node:stream';
import { TsrunError } from '../errors.js';
import { howToWaitLonger, seconds, type RegistryTimeout } from './timeout.js';

export interface Watch {
  /** Aborts the attempt when the time left runs out (the timeout error is its reason), or the caller's signal aborts. */
  signal: AbortSignal;
  /** Rejects at the same moment: undici acts on an abort only once connected (see transport.ts). */
  expired: Promise<never>;
  stop(): void;
}

export class Patience {
  private last = Date.now();
  private attempts = 1;
  private lastFailure: string | undefined;
  private rearm: (() => void) | undefined;

  constructor(readonly timeout: RegistryTimeout) {}

  /** The registry made progress, or tsrun starts listening again after its own work: the clock restarts. */
  progress(): void {
    this.last = Date.now();
    this.rearm?.();
  }

  /** The registry has already been silent for `ms` (a body's idle timeout fired). */
  silentFor(ms: number): void {
    this.last = Math.min(this.last, Date.now() - ms);
  }

  leftMs(): number {
    return this.timeout.ms - (Date.now() - this.last);
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
        `${what}: no progress from the registry for ${seconds(Date.now() - this.last)} over ${this.attempts} attempts ` +
          `(last: ${reason}), and trying again in ${seconds(delayMs)} would pass the registry timeout; ${howToWaitLonger(this.timeout)}`,
      );
    }
    this.attempts++;
  }

  /** The error once the registry timeout has run out; `detail` says where a body stopped. */
  exhausted(what: string, detail = ''): TsrunError {
    const silence =
      this.attempts > 1
        ? `no progress from the registry for ${seconds(this.timeout.ms)}${detail} over ${this.attempts} attempts (last failure: ${this.lastFailure})`
        : `the registry sent nothing for ${seconds(this.timeout.ms)}${detail}`;
    return new TsrunError('ENETWORK', `${what}: ${silence}; ${howToWaitLonger(this.timeout)}`);
  }

  /**
   * Guards one attempt until its response headers arrive: the signal aborts it when the time
   * left runs out; progress (an upload's bytes) re-arms it. The response body has its own idle
   * timer (idleTimeout below), as only its reader knows which bytes are progress.
   */
  watch(what: string, outer?: AbortSignal): Watch {
    const controller = new AbortController();
    let expire!: (reason: unknown) => void;
    const expired = new Promise<never>((_, reject) => (expire = reject));
    expired.catch(() => {}); // not a crash if it expires before anyone awaits it
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        const err = this.exhausted(what);
        controller.abort(err);
        expire(err);
      }, Math.max(0, this.leftMs()));
    };
    this.rearm = arm;
    arm();
    // The caller's own signal (a pull cancelling its other downloads) aborts the attempt too.
    const onOuter = () => {
      controller.abort(outer!.reason);
      expire(outer!.reason);
    };
    if (outer?.aborted) onOuter();
    else outer?.addEventListener('abort', onOuter, { once: true });
    return {
      signal: controller.signal,
      expired,
      stop: () => {
        clearTimeout(timer);
        if (this.rearm === arm) this.rearm = undefined;
      },
    };
  }
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

/**
 * Fails `body` with `timeoutError()` once the registry has sent nothing for `idleMs` while tsrun
 * was ready for more. undici has such a timer (bodyTimeout), but it ticks every half second: a
 * 45 s timeout fired anywhere from 44.5 to 45.5 s. Like undici's, this clock stops while the
 * body's buffer is full — tsrun is the slow one then, unpacking to disk — and starts again when
 * tsrun reads: `push` returning false is the stream saying "enough", `_read` asking for more.
 */
export function idleTimeout(body: Readable, idleMs: number, timeoutError: () => Error): void {
  let timer: NodeJS.Timeout | undefined;
  const listen = () => {
    clearTimeout(timer);
    timer = setTimeout(() => body.destroy(timeoutError()), idleMs);
  };
  const stop = () => clearTimeout(timer);
  const push = body.push.bind(body);
  body.push = (chunk: unknown, encoding?: BufferEncoding) => {
    const more = push(chunk, encoding);
    if (chunk === null || !more) stop();
    else listen();
    return more;
  };
  const read = body._read.bind(body);
  body._read = (size: number) => {
    listen();
    read(size);
  };
  body.once('close', stop);
  listen();
}
