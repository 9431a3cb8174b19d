// The worker side of unpack-worker.ts (the protocol is drawn there): for each job, chunks in,
// one layer unpacked into the job's dir by the same unpackTar as in the main thread, one reply
// out. Jobs that share this worker take turns at their awaits, as layers did in the main
// thread before workers. The unpacker's FFI (koffi: openat2, mknod, setxattr) loads in this
// thread, where it is called.
import type { Transform } from 'node:stream';
import { parentPort } from 'node:worker_threads';
import { TsrunError } from '../errors.js';
import { decompress, hasNativeZstd, transformFor, type Compression } from './compression.js';
import { unpackTar } from './unpack.js';
import { toWire, type FromWorker, type JobInput, type ToWorker } from './unpack-worker.js';

const port = parentPort!;

/** A job being unpacked: its chunks not yet taken, and whether its input ended. */
interface Job {
  id: number;
  queue: Buffer[];
  ended: boolean;
  aborted: boolean;
  wake?: (() => void) | undefined;
}

const jobs = new Map<number, Job>();

port.on('message', (m: ToWorker) => {
  if ('start' in m) {
    const job: Job = { id: m.job, queue: [], ended: false, aborted: false };
    jobs.set(job.id, job);
    void run(job, m.start);
    return;
  }
  // What is still on its way for a job that already failed here is dropped.
  const job = jobs.get(m.job);
  if (!job) return;
  if ('chunk' in m) job.queue.push(Buffer.from(m.chunk, 0, m.length));
  else if ('end' in m) job.ended = true;
  else job.aborted = true;
  job.wake?.();
});

async function run(job: Job, input: JobInput): Promise<void> {
  let reply: FromWorker;
  try {
    reply = { job: job.id, done: await unpackTar(tarOf(job, input.compression), input.dir, input.options) };
  } catch (err) {
    reply = { job: job.id, error: toWire(err) };
  }
  jobs.delete(job.id);
  port.postMessage(reply);
}

/**
 * The job's tar. A zlib stream (gzip, Node's own zstd) is fed here, and each chunk's buffer goes
 * back to the main thread once the decompressor has taken it, for the next chunk. Other chunks
 * are not given back: a plain tar's live on as the tar parser's slices, and fzstd may keep a
 * chunk's tail.
 */
function tarOf(job: Job, compression: Compression): AsyncIterable<Uint8Array> {
  const zlib = compression === 'gzip' || (compression === 'zstd' && hasNativeZstd()) ? transformFor(compression) : null;
  if (!zlib) return decompress(chunks(job, true), compression);
  void feed(job, zlib);
  return zlib;
}

async function feed(job: Job, zlib: Transform): Promise<void> {
  try {
    for await (const chunk of chunks(job, false)) {
      if (zlib.destroyed) return; // the unpacker stopped (a refused entry) or the data is corrupt
      const ab = chunk.buffer as ArrayBuffer;
      // The write's callback comes once zlib has consumed the chunk: nothing refers to it then.
      const more = zlib.write(chunk, (err) => {
        if (!err) port.postMessage({ job: job.id, ack: chunk.length, buffer: ab } satisfies FromWorker, [ab]);
      });
      if (!more) await drained(zlib);
    }
    zlib.end();
  } catch (err) {
    zlib.destroy(err as Error);
  }
}

function drained(stream: Transform): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
  });
}

/** The job's chunks as they come; with `ack`, each acknowledged as it is taken, which lets more
 * in (else the taker acknowledges). */
async function* chunks(job: Job, ack: boolean): AsyncGenerator<Buffer> {
  for (;;) {
    if (job.aborted) throw new TsrunError('EINTERNAL', 'unpack aborted: the layer download failed');
    const next = job.queue.shift();
    if (next) {
      if (ack) port.postMessage({ job: job.id, ack: next.length } satisfies FromWorker);
      yield next;
    } else if (job.ended) {
      return;
    } else {
      await new Promise<void>((r) => (job.wake = r));
      job.wake = undefined;
    }
  }
}
