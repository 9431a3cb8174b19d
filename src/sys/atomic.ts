// Writing files so that a reader, and an error, always know which file: a record replaced whole
// or not at all, and a write that fails (a full disk) naming its path — Node's own error names
// the path only when open(2) fails, not when write(2) does.
import { closeSync, constants, openSync, renameSync, rmSync, writeFileSync, type WriteFileOptions } from 'node:fs';
import { randomBytes } from './random.js';

/** writeFileSync, whose error always carries `path` (report() prints it: "…: ENOSPC: <path>"). */
export function writeFileNamed(path: string, data: string | Uint8Array, options?: WriteFileOptions): void {
  try {
    writeFileSync(path, data, options);
  } catch (err) {
    throw withPath(err, path);
  }
}

/**
 * Write `text` to a new temp file beside `path` — a random name, O_EXCL, no symlink followed, so
 * never through a file someone else put there (pid files go where a caller says, maybe a
 * directory others can write) — and rename it over `path`. On any failure the temp file goes.
 * The name, `<path>.tmp-<pid>-<random>`, says whose it is: one whose process is gone was left by
 * a kill between the write and the rename, and a cleanup may remove it (netns/store.ts).
 */
export function writeFileAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  let fd: number;
  try {
    fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  } catch (err) {
    throw withPath(err, path);
  }
  try {
    try {
      writeFileSync(fd, text);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw withPath(err, path);
  }
}

/** A JSON record, replaced whole: the one writer of the engine's and the network layer's records. */
export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, JSON.stringify(value, null, 2) + '\n');
}

function withPath(err: unknown, path: string): unknown {
  if (err instanceof Error && typeof (err as { path?: unknown }).path !== 'string') Object.assign(err, { path });
  return err;
}
