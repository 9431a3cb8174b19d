// ADD https://...: the file downloaded into a private temp dir before the step runs, so its
// digest is part of the step's cache key (docker's classic builder downloads every time too).
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { TsrunError } from '../errors.js';
import { Hasher } from '../image/digest.js';
import { configPath, readConfig } from '../registry-client/config.js';
import { howToWaitLonger, registryTimeout, seconds } from '../registry-client/timeout.js';

/**
 * A download stops when it makes no progress for the registry timeout (45 s; the same setting)
 * — progress being at least PROGRESS_BYTES, as for registries: a server that hangs, or trickles
 * a byte now and then, is given up on.
 */
const PROGRESS_BYTES = 1024;

export interface Downloaded {
  /** The file on disk. */
  path: string;
  /** The name ADD gives it in a destination directory: the URL path's last component. */
  name: string;
  /** Last-Modified when the server sent one (docker sets it as the file's mtime), else now. */
  mtime: Date;
  digest: string;
  remove: () => Promise<void>;
}

export async function fetchUrl(url: string, dir: string): Promise<Downloaded> {
  const remove = () => rm(dir, { recursive: true, force: true });
  const name = posix.basename(new URL(url).pathname) || 'index.html';
  const path = join(dir, 'download');
  const patience = registryTimeout(process.env, await readConfig(configPath()));
  const IDLE_MS = patience.ms;
  const abort = new AbortController();
  let timer = setTimeout(() => abort.abort(), IDLE_MS);
  try {
    const res = await fetch(url, { signal: abort.signal, redirect: 'follow' });
    if (!res.ok || !res.body) throw new TsrunError('EBUILD', `ADD ${url}: the server answered ${res.status} ${res.statusText}`);
    const hash = new Hasher();
    let sinceProgress = 0;
    const watch = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        sinceProgress += chunk.length;
        if (sinceProgress >= PROGRESS_BYTES) {
          sinceProgress = 0;
          clearTimeout(timer);
          timer = setTimeout(() => abort.abort(), IDLE_MS);
        }
        hash.update(chunk);
        cb(null, chunk);
      },
      flush(cb) {
        clearTimeout(timer);
        cb();
      },
    });
    await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), watch, createWriteStream(path, { mode: 0o600 }));
    const modified = res.headers.get('last-modified');
    const mtime = modified ? new Date(modified) : new Date();
    return { path, name, mtime: Number.isNaN(mtime.getTime()) ? new Date() : mtime, digest: hash.digest(), remove };
  } catch (err) {
    await remove();
    if (err instanceof TsrunError) throw err;
    const why = abort.signal.aborted ? `less than ${PROGRESS_BYTES} bytes in ${seconds(IDLE_MS)}; ${howToWaitLonger(patience)}` : err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
    throw new TsrunError('EBUILD', `ADD ${url}: download failed: ${why}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}
