// The worker side of unpack-worker.ts (the protocol is drawn there): for each job, chunks in,
// one layer unpacked into the job's dir by the same unpackTar as in the main thread, one reply
// out. Jobs that share this worker take turns at their awaits, as layers did in the main
// thread before workers. The unpacker's FFI (koffi: openat2, mknod, setxattr) loads in this
// thread, where it is called.
import { parentPort } from 'node:worker_threads';
import { TsrunError } from '../errors.js';
import { decompress } from './compression.js';
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
  if ('chunk' in m) job.queue.push(Buffer.from(m.chunk));
  else if ('end' in m) job.ended = true;
  else job.aborted = true;
  job.wake?.();
});

async function run(job: Job, input: JobInput): Promise<void> {
  let reply: FromWorker;
  try {
    reply = { job: job.id, done: await unpackTar(decompress(chunks(job), input.compression), input.dir, input.options) };
  } catch (err) {
    reply = { job: job.id, error: toWire(err) };
  }
  jobs.delete(job.id);
  port.postMessage(reply);
}

/** The job's chunks as they come; each one acknowledged as it is taken, which lets more in. */
async function* chunks(job: Job): AsyncGenerator<Buffer> {
  for (;;) {
    if (job.aborted) throw new TsrunError('EINTERNAL', 'unpack aborted: the layer download failed');
    const next = job.queue.shift();
    if (next) {
      port.postMessage({ job: job.id, ack: next.length } satisfies FromWorker);
      yield next;
    } else if (job.ended) {
      return;
    } else {
      await new Promise<void>((r) => (job.wake = r));
      job.wake = undefined;
    }
  }
}
