// Reading and writing cgroup interface files. Every write names the file and the value in its
// error, because "EINVAL" alone never tells anyone which of twenty limits the kernel refused.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, writeSync, constants } from 'node:fs';
import { join } from 'node:path';
import { TsrunError, errnoOf } from '../errors.js';

/** Sees every write before it happens: `--trace` shows them, unit tests record them. */
export type WriteObserver = (path: string, value: string) => void;
let observer: WriteObserver | undefined;

/** Set (or clear, with undefined) the one observer of cgroup writes; returns the previous one. */
export function setCgroupWriteObserver(fn: WriteObserver | undefined): WriteObserver | undefined {
  const previous = observer;
  observer = fn;
  return previous;
}

/** Sees every cgroup directory made, once it is: `--trace` shows them. */
export type MkdirObserver = (dir: string) => void;
let mkdirObserver: MkdirObserver | undefined;

/** Set (or clear, with undefined) the one observer of cgroup directories made; returns the previous one. */
export function setCgroupMkdirObserver(fn: MkdirObserver | undefined): MkdirObserver | undefined {
  const previous = mkdirObserver;
  mkdirObserver = fn;
  return previous;
}

/**
 * mkdir(2) of a cgroup (the kernel fills it with interface files). Throws as mkdirSync does
 * (EEXIST included: callers decide what an existing one means); only a directory this call
 * made is observed. The drivers' mkdirOnce (common.ts) is the caller --trace needs.
 */
export function makeDir(dir: string): void {
  mkdirSync(dir);
  mkdirObserver?.(dir);
}

/** The kernel prints "unlimited" as "max" (v2) or as a page-rounded LLONG_MAX (v1). */
export const V1_UNLIMITED_THRESHOLD = 2 ** 60;

export function exists(dir: string, file: string): boolean {
  return existsSync(join(dir, file));
}

export function readText(dir: string, file: string): string {
  const path = join(dir, file);
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (err) {
    throw new TsrunError('EINTERNAL', `read ${path}: ${errnoOf(err) ?? String(err)}`, { cause: err });
  }
}

/** The text of an optional file, or undefined when this kernel does not provide it. */
export function readOptional(dir: string, file: string): string | undefined {
  try {
    return readFileSync(join(dir, file), 'utf8').trim();
  } catch {
    return undefined;
  }
}

/**
 * Write one value with one write(2): the kernel parses each write on its own, so files that
 * take one rule per line (io.max, blkio.throttle.*) get one call per rule. O_CREAT is left out
 * on purpose: a missing interface file is an error here, not a new file in a test tree.
 */
export function writeValue(dir: string, file: string, value: string | number): void {
  const path = join(dir, file);
  observer?.(path, String(value));
  let fd: number | undefined;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_TRUNC);
    writeSync(fd, String(value));
  } catch (err) {
    const errno = errnoOf(err) ?? String(err);
    throw new TsrunError('EINTERNAL', `write "${value}" to ${path}: ${errno}`, { cause: err });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** "key value" lines (memory.stat, memory.events, cpu.stat, memory.oom_control) → numbers. */
export function parseFlatKeyed(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const [key, value] = line.trim().split(/\s+/);
    if (key && value !== undefined) out[key] = Number(value);
  }
  return out;
}

export function readFlatKeyed(dir: string, file: string): Record<string, number> | undefined {
  const text = readOptional(dir, file);
  return text === undefined ? undefined : parseFlatKeyed(text);
}

/** A v1 byte count or a v2 "max" → number, with unlimited as Infinity. */
export function parseLimit(text: string): number {
  if (text === 'max') return Infinity;
  const n = Number(text);
  return n >= V1_UNLIMITED_THRESHOLD ? Infinity : n;
}

/** Pids listed in a cgroup.procs file (empty when the cgroup is gone). */
export function readPids(dir: string): number[] {
  const text = readOptional(dir, 'cgroup.procs');
  if (!text) return [];
  return text.split('\n').map(Number).filter((n) => n > 0);
}

export function subdirs(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
  } catch {
    return [];
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Block for `ms`: cgroup operations are synchronous, and the waits are short and bounded. */
export function sleepMs(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

/** Poll `done` every few ms until it holds or `timeoutMs` passes; returns whether it held. */
export function waitUntil(done: () => boolean, timeoutMs: number, stepMs = 5): boolean {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (done()) return true;
    if (Date.now() >= end) return false;
    sleepMs(stepMs);
  }
}
