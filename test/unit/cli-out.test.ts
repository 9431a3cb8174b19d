// cli/out.ts: tsrun's text goes out with write(2), not through Node's stdout stream (whose
// first use loads the stream modules). What the stream did must still hold: nothing lost or
// reordered when the reader is slow on a non-blocking pipe, a closed pipe ends tsrun with 0,
// and text after the stream's first use follows what the stream still holds.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tsrun-unit-out-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const out = resolve('dist/cli/out.js');
const koffi = resolve('node_modules/koffi/index.js');

function script(body: string): string {
  const file = join(dir, 'child.mjs');
  writeFileSync(file, `import { writeOut, writeErr, stdoutStream } from ${JSON.stringify(out)};\n${body}\n`);
  return file;
}

const lines = Array.from({ length: 20000 }, (_, i) => `line ${i} ${'x'.repeat(40)}\n`);

it('loses and reorders nothing on a non-blocking pipe whose reader is slow (EAGAIN)', async () => {
  // O_NONBLOCK on the child's stdout, as a parent sharing the pipe may have set it.
  const file = script(`
    import { createRequire } from 'node:module';
    const koffi = createRequire(import.meta.url)(${JSON.stringify(koffi)});
    const fcntl = koffi.load('libc.so.6').func('int fcntl(int fd, int cmd, int arg)');
    const F_GETFL = 3, F_SETFL = 4, O_NONBLOCK = 0o4000;
    if (fcntl(1, F_SETFL, fcntl(1, F_GETFL, 0) | O_NONBLOCK) !== 0) process.exit(9);
    const lines = ${JSON.stringify(lines)};
    for (const l of lines) writeOut(l);
    writeErr('done\\n');`);
  const child = spawn(process.execPath, [file], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 });
  let text = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  // Read nothing until the child has filled the pipe and then some.
  child.stdout.pause();
  await new Promise((r) => setTimeout(r, 500));
  child.stdout.setEncoding('utf8').on('data', (d: string) => (text += d));
  child.stdout.resume();
  const code = await new Promise((r) => child.on('close', r));
  expect(stderr).toBe('done\n');
  expect(code).toBe(0);
  expect(text).toBe(lines.join(''));
});

it('ends with 0 and says nothing when the reader has gone (EPIPE)', () => {
  const file = script(`for (let i = 0; ; i++) writeOut('line ' + i + '\\n');`);
  // head reads one line and exits: the next writes fail with EPIPE. pipefail: tsrun's status.
  const r = spawnSync('bash', ['-c', 'set -o pipefail; "$0" "$1" 2>"$2" | head -n 1', process.execPath, file, join(dir, 'err')], { encoding: 'utf8', timeout: 20_000 });
  expect(r.stdout).toBe('line 0\n');
  expect(r.status).toBe(0);
  expect(readFileSync(join(dir, 'err'), 'utf8')).toBe('');
});

it('sends text after the stream is in use through it, after what it still holds', async () => {
  // The stream takes 200 KiB; the pipe holds 64 KiB of it and the stream keeps the rest until
  // its event loop turns. The child then blocks while we empty the pipe: a write(2) now would
  // get in, ahead of what the stream holds. writeOut must queue behind it instead.
  const file = script(`
    import { createRequire } from 'node:module';
    const koffi = createRequire(import.meta.url)(${JSON.stringify(koffi)});
    const fcntl = koffi.load('libc.so.6').func('int fcntl(int fd, int cmd, int arg)');
    if (fcntl(1, 4, fcntl(1, 3, 0) | 0o4000) !== 0) process.exit(9);
    stdoutStream().write('a'.repeat(200 * 1024));
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 800);
    writeOut('marker\\n');`);
  const child = spawn(process.execPath, [file], { stdio: ['ignore', 'pipe', 'inherit'], timeout: 20_000 });
  let text = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (text += d));
  const code = await new Promise((r) => child.on('close', r));
  expect(code).toBe(0);
  expect(text).toBe(`${'a'.repeat(200 * 1024)}marker\n`);
});
