// Unpacking layers in worker threads, so that the layers of a pull unpack on all cores.
//
// A layer's unpacking is CPU-bound — gunzip, tar parsing, the diff_id hash and thousands of
// synchronous fs calls — and on one JavaScript thread the layers of a pull would only take
// turns. So layers unpack in worker threads: one per layer being unpacked, up to one per core
// (beyond that, a worker takes turns between its layers: each worker is an isolate that starts
// and compiles the unpacker's hot code anew, and on a 2-core machine a third one costs more CPU
// than it wins). This thread keeps the network, the blob file and its digest, and streams each
// layer's bytes in, compressed or not. One job, for layer `n`:
//
//   this thread (unpackInWorker)                    worker (unpack-worker-thread.ts)
//     ── {job: n, start: {dir, compression, options}} ─▶
//     ── {job: n, chunk: ArrayBuffer, length} ────────▶  queue → [gunzip|zstd] → sha256 → tar → fs
//        (transferred)
//     ◀─ {job: n, ack: bytes, [buffer]} ────────────────  as each chunk is taken: by the
//        decompressor, which then gives its buffer back (transferred) for the next chunk; else
//        as it leaves the queue (a plain tar's chunks live on in the tar parser's slices)
//        (at most WINDOW bytes unacknowledged: the download waits for the unpacker)
//     ── {job: n, end: true} or {job: n, abort: true} ─▶
//     ◀─ {job: n, done: UnpackResult} or {job: n, error: WireError}
//
// The worker writes only inside `dir`, under the same rules as in this thread (unpack.ts), and
// its reply comes after its last write: once unpackInWorker settles, the caller may delete
// `dir`. Errors cross as data and are rebuilt here as the same TsrunError — code (EUNSAFE,
// EBADIMAGE, ...), message and causes — that an unpack in this thread would throw.
//
// Workers stay for the next layer (a pull's fourth layer, the next image of a load); idle ones
// do not keep the process alive, and end after IDLE_MS. A pull of an image not in the store
// starts them as it begins (startUnpackWorkers), and a pull after which the process unpacks
// nothing more ends them once its layers are in (stopIdleUnpackWorkers).
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { TsrunError, type ErrorCode } from '../errors.js';
import { keepFreedMemory, releaseFreedMemory } from '../sys/libc.js';
import { decompress, type Compression } from './compression.js';
import type { UnpackOptions, UnpackResult } from './unpack.js';

export interface JobInput {
  dir: string;
  compression: Compression;
  options: UnpackOptions;
}

export type ToWorker = { job: number } & ({ start: JobInput } | { chunk: ArrayBuffer; length: number } | { end: true } | { abort: true });
export type FromWorker = { job: number } & ({ ack: number; buffer?: ArrayBuffer } | { done: UnpackResult } | { error: WireError });

/** An error as plain data: what structured clone would drop (code, errno, cause) kept. */
export interface WireError {
  name: string;
  message: string;
  stack?: string;
  /** TsrunError's code, or a Node system error's ('ENOSPC'). */
  code?: string;
  exitCode?: number;
  errno?: number;
  syscall?: string;
  path?: string;
  cause?: WireError;
}

/** Bytes copied into one message: fewer, larger messages; each still a small part of WINDOW. */
export const BATCH = 256 * 1024;
/** Bytes sent and not yet taken by the worker: bounds memory per layer, keeps the worker fed. */
const WINDOW = 4 * 1024 * 1024;
const IDLE_MS = 2000;
const MAX_WORKERS = Math.max(1, availableParallelism());

const script = fileURLToPath(new URL('./unpack-worker-thread.js', import.meta.url));
// Compiled, the worker's script sits next to this file. Run from the TypeScript sources (the
// unit tests), it does not exist and Node cannot run the .ts: unpack in this thread instead.
const haveWorker = existsSync(script);

interface JobHandlers {
  message(m: FromWorker): void;
  fail(err: Error): void;
}

/** A worker and the jobs it runs; messages are routed to their job by its number. */
class PooledWorker {
  readonly worker = new Worker(script);
  readonly jobs = new Map<number, JobHandlers>();
  private timer: NodeJS.Timeout | undefined;

  constructor() {
    this.worker.on('message', (m: FromWorker) => this.jobs.get(m.job)?.message(m));
    // The worker itself failed (could not load, ran out of memory): not the layers' fault.
    this.worker.on('error', (err) => this.fail(new TsrunError('EINTERNAL', `unpack worker: ${err.message}`, { cause: err })));
    this.worker.on('exit', (code) => this.fail(new TsrunError('EINTERNAL', `unpack worker exited (${code}) before it finished`)));
  }

  add(job: number, handlers: JobHandlers): void {
    this.jobs.set(job, handlers);
    clearTimeout(this.timer);
    this.worker.ref();
  }

  remove(job: number): void {
    this.jobs.delete(job);
    if (this.jobs.size === 0) this.idle();
  }

  /** No job: the worker does not keep the process alive, and ends after IDLE_MS. */
  idle(): void {
    if (!pool.includes(this)) return;
    this.worker.unref();
    this.timer = setTimeout(() => this.end(), IDLE_MS).unref();
  }

  /** `release`: when it is the last, hand the memory kept for layers back (releaseFreedMemory). */
  end(release = true): void {
    this.leavePool(release);
    void this.worker.terminate();
  }

  private fail(err: Error): void {
    // Ended on purpose (end()), it has left the pool already, as it meant to.
    if (pool.includes(this)) this.leavePool();
    for (const h of [...this.jobs.values()]) h.fail(err);
  }

  private leavePool(release = true): void {
    clearTimeout(this.timer);
    const i = pool.indexOf(this);
    if (i >= 0) pool.splice(i, 1);
    if (pool.length === 0) {
      // No layer streams any more: a process that goes on (`build`) gives back the memory
      // kept for them.
      spare.length = 0;
      if (release) releaseFreedMemory();
    }
  }
}

const pool: PooledWorker[] = [];
let jobs = 0;
/** The memory kept for layers goes back when it fires (stopIdleUnpackWorkers). */
let releaseTimer: NodeJS.Timeout | undefined;
/** Workers constructed so far (for tests: whether a job ran in one started before it). */
let started = 0;

/**
 * The message buffers the workers gave back, for the next chunks. A fresh buffer costs a page
 * fault per 4 KiB the first time it is written (64 for a batch), and a pull moves its layers
 * through these buffers: reused, the memory is touched once. Kept up to what the jobs of a
 * pull have in flight (WINDOW each, three at a time).
 */
const spare: ArrayBuffer[] = [];
const MAX_SPARE = (3 * WINDOW) / BATCH + 3;

function batchBuffer(): Buffer {
  const ab = spare.pop();
  // allocUnsafeSlow: an ArrayBuffer of its own (never Node's shared pool, so it can be
  // transferred), not zero-filled first.
  return ab ? Buffer.from(ab) : Buffer.allocUnsafeSlow(BATCH);
}

function giveBack(ab: ArrayBuffer): void {
  if (ab.byteLength === BATCH && spare.length < MAX_SPARE) spare.push(ab);
}

/** How many batch buffers wait for reuse (for tests: whether the workers give them back). */
export function spareBuffers(): number {
  return spare.length;
}

/**
 * Ends the workers without a job now rather than after IDLE_MS, for a process that unpacks
 * nothing more (`pull` of one image, `run` after its pull): they stop while the image is
 * recorded, not as the process exits, where Node waits for each (−14 ms of a cold pull here).
 * The memory kept for the layers goes back IDLE_MS later, unless a worker is needed again by
 * then: malloc_trim takes ~25 ms after a 93 MB pull, which a process about to exit would only
 * wait for, and a `run` does better without on its way to start the container.
 */
export function stopIdleUnpackWorkers(): void {
  for (const w of [...pool]) if (w.jobs.size === 0) w.end(false);
  if (pool.length > 0) return;
  clearTimeout(releaseTimer);
  releaseTimer = setTimeout(releaseFreedMemory, IDLE_MS).unref();
}

/** How many workers are up, and how many were ever started (for tests). */
export function unpackWorkers(): { up: number; started: number } {
  return { up: pool.length, started };
}

/** An idle worker, else a new one while there are fewer than cores, else the least busy one. */
function pick(): PooledWorker {
  let best: PooledWorker | undefined;
  for (const w of pool) if (!best || w.jobs.size < best.jobs.size) best = w;
  if (!best || (best.jobs.size > 0 && pool.length < MAX_WORKERS)) best = startWorker();
  return best;
}

function startWorker(): PooledWorker {
  // The layers' buffers (network reads, these messages, the decompressed output) are freed
  // and allocated again all through an unpack: kept, their memory is touched once.
  clearTimeout(releaseTimer);
  if (pool.length === 0) keepFreedMemory();
  const w = new PooledWorker();
  pool.push(w);
  started++;
  return w;
}

/**
 * Starts the workers that layers unpack in, one per core, before any layer is known to need
 * them. A worker costs ~60 ms of CPU to start (a new isolate, Node's bootstrap, the unpacker's
 * code), ~200 ms of waiting on a busy 2-core machine; started when the first layer arrives, it
 * kept that layer's bytes waiting. Started early, they boot while the command loads and the
 * registry answers. Unused, they end as idle workers do (IDLE_MS) and never keep the process
 * alive, but they still cost their start: call this only when layers are likely to come.
 */
export function startUnpackWorkers(): void {
  if (!haveWorker) return;
  try {
    while (pool.length < MAX_WORKERS) startWorker().idle();
  } catch {
    // A head start only: a thread the system refuses now (a pids limit) is tried again, and
    // reported, when a layer needs it.
  }
}

/** Unpacks the tar in `source` (compressed as `compression` says) into `dir`. */
export async function unpackInWorker(
  source: AsyncIterable<Uint8Array>,
  compression: Compression,
  dir: string,
  options: UnpackOptions,
): Promise<UnpackResult> {
  if (!haveWorker) {
    const { unpackTar } = await import('./unpack.js');
    return unpackTar(decompress(source, compression), dir, options);
  }
  const job = ++jobs;
  const w = pick();
  let settled = false;
  let inflight = 0;
  let wake: (() => void) | undefined;
  const outcome = new Promise<UnpackResult>((resolve, reject) => {
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      w.remove(job);
      wake?.();
      fn();
    };
    w.add(job, {
      message: (m) => {
        if ('ack' in m) {
          if (m.buffer) giveBack(m.buffer);
          inflight -= m.ack;
          if (inflight < WINDOW) wake?.();
        } else if ('done' in m) settle(() => resolve(m.done));
        else if ('error' in m) settle(() => reject(fromWire(m.error)));
      },
      fail: (err) => settle(() => reject(err)),
    });
  });
  outcome.catch(() => {}); // observed below; not an unhandled rejection meanwhile
  const post = (m: ToWorker, transfer?: ArrayBuffer[]): void => w.worker.postMessage(m, transfer);
  post({ job, start: { dir, compression, options } });

  // Chunks are copied as they come into a batch buffer, which goes (transferred) when full:
  // the source's own buffers may still be in use, by the blob file write for one.
  let batch = batchBuffer();
  let batched = 0;
  const send = (): void => {
    const ab = batch.buffer as ArrayBuffer;
    post({ job, chunk: ab, length: batched }, [ab]);
    inflight += batched;
    batch = batchBuffer();
    batched = 0;
  };
  try {
    for await (const chunk of source) {
      if (settled) break; // the worker failed: stop reading (and downloading)
      for (let off = 0; off < chunk.length; ) {
        const n = Math.min(chunk.length - off, BATCH - batched);
        batch.set(chunk.subarray(off, off + n), batched);
        batched += n;
        off += n;
        if (batched < BATCH) continue;
        send();
        while (inflight >= WINDOW && !settled) await new Promise<void>((r) => (wake = r));
        wake = undefined;
        if (settled) break;
      }
    }
    if (!settled) {
      if (batched > 0) send();
      post({ job, end: true });
    }
  } catch (err) {
    // The source failed (network, digest): stop the job, and wait until the worker has stopped
    // writing into `dir`, which the caller removes next. Then fail as unpackTar would have.
    if (!settled) post({ job, abort: true });
    await outcome.catch(() => {});
    const { unpackError } = await import('./unpack.js');
    throw unpackError(err);
  } finally {
    giveBack(batch.buffer as ArrayBuffer); // never sent: sending replaces it
  }
  return outcome;
}

export function toWire(err: unknown, depth = 0): WireError {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err) };
  const e = err as NodeJS.ErrnoException & { exitCode?: unknown };
  const wire: WireError = { name: e.name, message: e.message };
  if (e.stack !== undefined) wire.stack = e.stack;
  if (typeof e.code === 'string') wire.code = e.code;
  if (typeof e.exitCode === 'number') wire.exitCode = e.exitCode;
  if (typeof e.errno === 'number') wire.errno = e.errno;
  if (typeof e.syscall === 'string') wire.syscall = e.syscall;
  if (typeof e.path === 'string') wire.path = e.path;
  if (e.cause !== undefined && depth < 8) wire.cause = toWire(e.cause, depth + 1);
  return wire;
}

export function fromWire(w: WireError): Error {
  const cause = w.cause && fromWire(w.cause);
  let err: Error;
  if (w.name === 'TsrunError' && w.code !== undefined) {
    err = new TsrunError(w.code as ErrorCode, w.message, {
      ...(cause && { cause }),
      ...(w.exitCode !== undefined && { exitCode: w.exitCode }),
    });
  } else {
    err = new Error(w.message, cause && { cause });
    err.name = w.name;
    Object.assign(err, {
      ...(w.code !== undefined && { code: w.code }),
      ...(w.errno !== undefined && { errno: w.errno }),
      ...(w.syscall !== undefined && { syscall: w.syscall }),
      ...(w.path !== undefined && { path: w.path }),
    });
  }
  if (w.stack !== undefined) err.stack = w.stack;
  return err;
}
