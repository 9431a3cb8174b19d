// logs: read the monitor's json-file log (docker's format: one {"log","stream","time"} object
// per line), oldest rotated file first; follow by polling for growth until the container ends.
import { closeSync, openSync, readSync, readFileSync, statSync } from 'node:fs';
import { TsrunError, errnoOf } from '../errors.js';
import type { Found } from './lookup.js';
import { observe } from './status.js';

export interface LogEntry {
  log: string;
  stream: 'stdout' | 'stderr';
  time: string;
}

export interface LogOptions {
  follow: boolean;
  tail?: number;
  since?: Date;
  until?: Date;
}

/** docker's --since/--until: RFC 3339, a Unix timestamp, or a duration before now (10m, 1h30m). */
export function parseTime(flag: string, value: string, now = Date.now()): Date {
  const duration = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$/.exec(value);
  if (duration && value !== '') {
    const [, h = '0', m = '0', s = '0'] = duration;
    return new Date(now - (Number(h) * 3600 + Number(m) * 60 + Number(s)) * 1000);
  }
  if (/^\d+(\.\d+)?$/.test(value)) return new Date(Number(value) * 1000);
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) {
    throw new TsrunError('EINVAL_FLAG', `invalid argument "${value}" for "${flag}" flag: expected a time (2026-01-02T15:04:05Z), a Unix timestamp, or a duration (10m)`);
  }
  return d;
}

function parseLines(text: string): LogEntry[] {
  const out: LogEntry[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    try {
      out.push(JSON.parse(line) as LogEntry);
    } catch {
      // a line cut by a crash mid-write: skip it
    }
  }
  return out;
}

function readIfExists(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return '';
    throw err;
  }
}

/** Every entry, oldest first: ctr.log.N ... ctr.log.1, then ctr.log. */
export function readLogs(found: Found): { entries: LogEntry[]; offset: number } {
  const base = found.paths.log;
  const parts: string[] = [];
  for (let i = found.record.logConfig.maxFile; i >= 1; i--) parts.push(readIfExists(`${base}.${i}`));
  const current = readIfExists(base);
  parts.push(current);
  return { entries: parts.flatMap(parseLines), offset: Buffer.byteLength(current) };
}

const inWindow = (e: LogEntry, o: LogOptions) => {
  const t = new Date(e.time).getTime();
  return (!o.since || t >= o.since.getTime()) && (!o.until || t <= o.until.getTime());
};

/** Calls `emit` for each entry; with `follow`, keeps going until the container stops. */
export async function streamLogs(found: Found, opts: LogOptions, emit: (e: LogEntry) => void): Promise<void> {
  if (found.record.logConfig.driver === 'none') {
    throw new TsrunError('ESTATE', `container ${found.record.name} was created with --log-driver none: there is no log to read`);
  }
  const { entries, offset } = readLogs(found);
  let shown = entries.filter((e) => inWindow(e, opts));
  if (opts.tail !== undefined) shown = opts.tail === 0 ? [] : shown.slice(-opts.tail);
  shown.forEach(emit);
  if (!opts.follow) return;

  let position = offset;
  let partial = '';
  const buf = Buffer.alloc(64 * 1024);
  for (;;) {
    const running = ['running', 'paused', 'restarting'].includes(observe(found.paths).status);
    let size = 0;
    try {
      size = statSync(found.paths.log).size;
    } catch {
      // not created yet
    }
    if (size < position) position = 0; // rotated: the new file starts from the beginning
    if (size > position) {
      const fd = openSync(found.paths.log, 'r');
      try {
        let n: number;
        while ((n = readSync(fd, buf, 0, buf.length, position)) > 0) {
          position += n;
          partial += buf.subarray(0, n).toString('utf8');
          const lastNl = partial.lastIndexOf('\n');
          if (lastNl >= 0) {
            parseLines(partial.slice(0, lastNl)).filter((e) => inWindow(e, opts)).forEach(emit);
            partial = partial.slice(lastNl + 1);
          }
        }
      } finally {
        closeSync(fd);
      }
    }
    if (!running) return;
    if (opts.until && Date.now() > opts.until.getTime()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}
