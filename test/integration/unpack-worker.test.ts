// The unpack worker's protocol (src/image/unpack-worker.ts), on the compiled build where the
// worker thread exists: a layer's bytes cross in batch buffers that a zlib decompressor gives
// back for the next chunks, and a plain tar's do not come back (the tar parser keeps slices of
// them). Whatever the chunking, what lands on disk is the layer, byte for byte.
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { makeTar } from '../fixtures/tar.js';

type Worker = typeof import('../../src/image/unpack-worker.js');
const workerModule = path.resolve('dist/src/image/unpack-worker.js');
const { unpackInWorker, spareBuffers, startUnpackWorkers, unpackWorkers, BATCH } = (await import(workerModule)) as Worker;

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-unpack-worker-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** `bytes` in chunks of the given sizes, in turn: odd sizes that straddle the batches. */
async function* chunked(bytes: Buffer, sizes: number[]): AsyncGenerator<Buffer> {
  for (let i = 0, n = 0; i < bytes.length; n++) {
    const size = sizes[n % sizes.length]!;
    // A copy each time, as the network gives fresh buffers: the source may reuse its own.
    yield Buffer.from(bytes.subarray(i, i + size));
    i += size;
  }
}

/** A layer of incompressible files: its gzip is about as big as its tar, many batches. */
function layer(files: number, size: number): { tar: Buffer; contents: Map<string, Buffer> } {
  const contents = new Map<string, Buffer>();
  for (let i = 0; i < files; i++) contents.set(`f${i}`, randomBytes(size));
  const tar = makeTar([{ name: './', type: 'dir', mode: 0o755 }, ...[...contents].map(([name, content]) => ({ name, content, mode: 0o644 }))]);
  return { tar, contents };
}

function expectUnpacked(target: string, contents: Map<string, Buffer>): void {
  for (const [name, content] of contents) expect(fs.readFileSync(path.join(target, name)).equals(content), name).toBe(true);
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('unpackInWorker', () => {
  it('unpacks a gzip layer whatever its chunking, and the batch buffers come back for reuse', async () => {
    const { tar, contents } = layer(6, 700_000);
    const gz = gzipSync(tar, { level: 1 });
    expect(gz.length).toBeGreaterThan(8 * BATCH);
    const before = spareBuffers();
    const target = path.join(dir, 'a');
    fs.mkdirSync(target);
    const result = await unpackInWorker(chunked(gz, [100_003, 65_536, 700_001, 1]), 'gzip', target, {});
    expect(result).toMatchObject({ diffId: sha256(tar), tarSize: tar.length, entries: 7 });
    expectUnpacked(target, contents);
    // Each batch the worker's gunzip took came back. At least two: the batch being filled when
    // the first was sent, and the first. (Without giving back, only the last one, never sent.)
    const after = spareBuffers();
    expect(after - before).toBeGreaterThanOrEqual(2);
    const target2 = path.join(dir, 'b');
    fs.mkdirSync(target2);
    await unpackInWorker(chunked(gz, [BATCH]), 'gzip', target2, {});
    expectUnpacked(target2, contents);
    expect(spareBuffers()).toBeGreaterThanOrEqual(after);
  });

  it('keeps a plain tar intact across batches: its buffers are not given back to be overwritten', async () => {
    const { tar, contents } = layer(4, 900_000);
    const target = path.join(dir, 'plain');
    fs.mkdirSync(target);
    // Several plain layers at once, the main thread filling batches all the while.
    const others = [1, 2].map(async (n) => {
      const t = path.join(dir, `gz${n}`);
      fs.mkdirSync(t);
      const l = layer(3, 500_000);
      await unpackInWorker(chunked(gzipSync(l.tar, { level: 1 }), [64 * 1024]), 'gzip', t, {});
      expectUnpacked(t, l.contents);
    });
    const result = await unpackInWorker(chunked(tar, [77_777, 300_000]), 'none', target, {});
    await Promise.all(others);
    expect(result.diffId).toBe(sha256(tar));
    expectUnpacked(target, contents);
  });

  it('fails a gzip stream that turns corrupt several batches in, and settles', async () => {
    const { tar } = layer(4, 700_000);
    const gz = gzipSync(tar, { level: 1 });
    // Garbage from 1 MiB on: the worker has taken (and given back) batches before it.
    randomBytes(gz.length - (1 << 20)).copy(gz, 1 << 20);
    const target = path.join(dir, 'bad');
    fs.mkdirSync(target);
    await expect(unpackInWorker(chunked(gz, [65_536]), 'gzip', target, {})).rejects.toMatchObject({ code: 'EBADIMAGE' });
  });

  it('stops the job when the source fails mid-way (a dropped download), and settles', async () => {
    const { tar } = layer(4, 700_000);
    const gz = gzipSync(tar, { level: 1 });
    async function* dropped(): AsyncGenerator<Buffer> {
      yield* chunked(gz.subarray(0, 3 * BATCH + 5), [65_536]);
      throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    }
    const target = path.join(dir, 'dropped');
    fs.mkdirSync(target);
    await expect(unpackInWorker(dropped(), 'gzip', target, {})).rejects.toThrow(/socket hang up/);
  });

  it('starts one worker per core before any layer, which the layers then use, and which end when idle', async () => {
    const cores = os.availableParallelism();
    // The earlier tests' workers end first (IDLE_MS, 2 s): from an empty pool, what starts is ours.
    await vi.waitFor(() => expect(unpackWorkers().up).toBe(0), { timeout: 10_000, interval: 200 });
    const before = unpackWorkers().started;
    startUnpackWorkers();
    expect(unpackWorkers()).toEqual({ up: cores, started: before + cores });
    startUnpackWorkers(); // already up: no more
    expect(unpackWorkers().started).toBe(before + cores);
    const { tar, contents } = layer(3, 300_000);
    const target = path.join(dir, 'warm');
    fs.mkdirSync(target);
    await unpackInWorker(chunked(gzipSync(tar, { level: 1 }), [65_536]), 'gzip', target, {});
    expectUnpacked(target, contents);
    expect(unpackWorkers().started).toBe(before + cores); // it ran in one of them: none was started for it
    // Idle, each ends on its own.
    await vi.waitFor(() => expect(unpackWorkers().up).toBe(0), { timeout: 10_000, interval: 200 });
  });

  it('ends idle workers at once when asked, and they keep no process alive', () => {
    const script = path.join(dir, 'started.mjs');
    // Started and never used, then started and ended: either way the process ends at once,
    // not when the idle workers' timers (IDLE_MS, 2 s) would have ended them.
    fs.writeFileSync(
      script,
      `const m = await import(${JSON.stringify(workerModule)});
const t0 = performance.now();
m.startUnpackWorkers();
const up = m.unpackWorkers().up;
if (process.argv[2] === 'stop') m.stopIdleUnpackWorkers();
process.on('exit', () => console.log(JSON.stringify({ up, after: m.unpackWorkers().up, ms: performance.now() - t0 })));
`,
    );
    for (const mode of ['unused', 'stop']) {
      const r = spawnSync(process.execPath, [script, mode], { encoding: 'utf8', timeout: 20_000 });
      expect(r.signal, mode).toBeNull(); // a worker kept alive would have the timeout kill it
      expect(r.status, mode).toBe(0);
      const out = JSON.parse(r.stdout) as { up: number; after: number; ms: number };
      expect(out.up, mode).toBe(os.availableParallelism());
      expect(out.after, mode).toBe(mode === 'stop' ? 0 : os.availableParallelism());
      expect(out.ms, `${mode}: ended by the idle timer, not at once`).toBeLessThan(2000);
    }
  });
});
