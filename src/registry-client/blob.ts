// Downloading one blob as a stream that survives dropped connections and proves its content.
//
// The stream a consumer sees is continuous: when the connection drops at byte N, the next
// request asks for `Range: bytes=N-`. A server that answers 206 continues where we were; one
// that ignores Range (200) sends everything again and the first N bytes are dropped, so the
// consumer — already unpacking — never sees a byte twice. Every byte goes through sha256 and
// the end of the stream checks digest and size (go-containerregistry's internal/verify), unless
// the consumer hashes every byte itself and says so (verifyDigest: false): then only the size.
//
// Resumes and back-offs share one registry timeout (patience.ts): only the blob's bytes restart
// it, a KiB at a time, so a registry that stops sending, or sends a few bytes now and then,
// fails the download within it, resumes included, while one that keeps sending a KiB or more
// per registry timeout never does. The time the consumer takes is its own, not the registry's:
// the clock stops while the body's buffer is full.
import { createHash } from 'node:crypto';
import { TsrunError } from '../errors.js';
import type { Descriptor } from '../oci/types.js';
import { isTransientNetworkError } from './neterr.js';
import { isRetryableStatus, parseRetryAfter } from './retry.js';
import type { Repository } from './remote.js';
import { header, type HttpResponse } from './transport.js';

export interface BlobStreamOptions {
  signal?: AbortSignal;
  /** Bytes of the blob received so far (after resuming, counting from the start). */
  onProgress?: (received: number, total: number) => void;
  /** Told before waiting to try again (docker shows "Retrying in 2 seconds"). */
  onRetry?: (delayMs: number, reason: string) => void;
  /**
   * false: the consumer checks the digest of every byte it is given, and fails when it does not
   * match — a pull's layer goes into the store's blob writer, which hashes what it stores. The
   * stream then checks only the size: sha256 is a pull's largest CPU cost after gunzip, and
   * hashing each layer twice cost ~60 ms of CPU per 93 MB on a 2-core VM.
   */
  verifyDigest?: boolean;
}

/** `bytes 100-199/200` → 100. */
function rangeStart(contentRange: string | undefined): number | undefined {
  const m = /^bytes\s+(\d+)-/.exec(contentRange ?? '');
  return m ? Number(m[1]) : undefined;
}

export async function* blobStream(repo: Repository, desc: Descriptor, options: BlobStreamOptions = {}): AsyncGenerator<Buffer> {
  const what = `blob ${desc.digest} of ${repo.fullName}`;
  const registry = repo.registry;
  const transport = registry.options.transport;
  const policy = registry.retryPolicy;
  const patience = transport.patience({ bytesOnly: true });
  // Foreign layers (Windows base images, some vendors) live at their own URLs; those get no
  // credentials at all, and the registry is the fallback.
  const foreign = (desc.urls ?? []).map((u) => new URL(u)).filter((u) => u.protocol === 'https:' || u.protocol === 'http:');
  let source = 0;
  const hash = options.verifyDigest === false ? undefined : createHash('sha256');
  let delivered = 0;
  let failures = 0;

  const open = (offset: number): Promise<HttpResponse> => {
    if (source < foreign.length) {
      return transport.request({
        url: foreign[source]!,
        headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
        patience,
        ...(options.signal && { signal: options.signal }),
      });
    }
    return repo.openBlob(desc.digest, offset, options.signal, patience);
  };
  // Another server (a foreign URL failed, the registry is next): it gets a registry timeout of its own.
  const nextSource = () => {
    source++;
    patience.progress();
  };
  const retryOrThrow = async (err: unknown, retryAfterMs?: number): Promise<void> => {
    failures++;
    if (patience.leftMs() <= 0) {
      throw patience.exhausted(`GET ${what}`, delivered > 0 ? ` after ${delivered} of ${desc.size} bytes` : '');
    }
    if (failures > policy.retries) throw err;
    const reason = transport.describe(err);
    await registry.backoff(`GET ${what}`, failures, retryAfterMs, reason, options.onRetry, { patience, request: `GET ${what}` });
  };

  for (;;) {
    let res: HttpResponse;
    try {
      res = await open(delivered);
    } catch (err) {
      if (source < foreign.length) {
        nextSource();
        continue;
      }
      if (!isTransientNetworkError(err)) throw err;
      await retryOrThrow(err);
      continue;
    }
    if (res.status !== 200 && res.status !== 206) {
      if (source < foreign.length) {
        await res.body.dump();
        nextSource();
        continue;
      }
      if (isRetryableStatus(res.status)) {
        await res.body.dump();
        await retryOrThrow(new TsrunError('EREGISTRY', `GET ${what}: HTTP ${res.status}`), parseRetryAfter(res.headers['retry-after']));
        continue;
      }
      await repo.fail(res, `GET ${what}`);
    }
    let skip = 0;
    if (res.status === 206) {
      const start = rangeStart(header(res, 'content-range'));
      if (start === undefined || start > delivered) {
        res.body.destroy();
        throw new TsrunError('EREGISTRY', `GET ${what}: the registry answered Range bytes=${delivered}- with Content-Range "${header(res, 'content-range')}"`);
      }
      skip = delivered - start;
    } else {
      skip = delivered; // Range ignored: the whole blob again; drop what the consumer has.
    }
    let finished = false;
    try {
      for await (const raw of res.body) {
        let chunk = Buffer.isBuffer(raw) ? raw : Buffer.from(raw as Uint8Array);
        if (skip > 0) {
          const drop = Math.min(skip, chunk.length);
          skip -= drop;
          chunk = chunk.subarray(drop);
          if (chunk.length === 0) continue;
        }
        if (delivered + chunk.length > desc.size) {
          throw new TsrunError('EDIGEST', `${what}: more than the ${desc.size} bytes the manifest declares`);
        }
        hash?.update(chunk);
        delivered += chunk.length;
        options.onProgress?.(delivered, desc.size);
        yield chunk;
      }
      finished = true;
    } catch (err) {
      // With the registry timeout run out (the body failed with the clock's error, naming the
      // URL), retryOrThrow says so naming the blob and how far it got.
      const outOfTime = patience.leftMs() <= 0;
      if (!outOfTime && (err instanceof TsrunError || !isTransientNetworkError(err))) throw err;
      await retryOrThrow(err);
      continue;
    } finally {
      if (!finished) res.body.destroy();
    }
    if (delivered < desc.size) {
      // The body ended early without an error (no Content-Length): resume like a dropped one.
      await retryOrThrow(new TsrunError('ENETWORK', `GET ${what}: the body ended after ${delivered} of ${desc.size} bytes`));
      continue;
    }
    break;
  }
  if (!hash) return;
  const actual = `sha256:${hash.digest('hex')}`;
  if (actual !== desc.digest) throw new TsrunError('EDIGEST', `${what}: digest mismatch: got ${actual}`);
}

/** A whole small blob (an image config) in memory, verified. */
export async function readBlob(repo: Repository, desc: Descriptor, limit: number): Promise<Buffer> {
  if (desc.size > limit) throw new TsrunError('EREGISTRY', `blob ${desc.digest} of ${repo.fullName} is too large (${desc.size} bytes, limit ${limit})`);
  const chunks: Buffer[] = [];
  for await (const c of blobStream(repo, desc)) chunks.push(c);
  return Buffer.concat(chunks);
}
