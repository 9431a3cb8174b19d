// A file replaced whole or not at all: a reader sees the old content or the new, never half.
import { closeSync, constants, openSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from './random.js';

/**
 * Write `text` to a new temp file beside `path` — a random name, O_EXCL, no symlink followed, so
 * never through a file someone else put there (pid files go where a caller says, maybe a
 * directory others can write) — and rename it over `path`.
 */
export function writeFileAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp-${randomBytes(6).toString('hex')}`;
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    writeFileSync(fd, text);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}
