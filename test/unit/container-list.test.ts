// ps's STATUS column (src/container/list.ts): docker's words for how long, go-units'
// HumanDuration, as in `images` (src/sys/human-duration.ts).
import { describe, expect, it } from 'vitest';
import { summarize } from '../../src/container/list.js';
import type { ContainerRecord } from '../../src/container/record.js';
import type { Observed } from '../../src/container/status.js';

const record = { id: 'a'.repeat(64), name: 'web', image: 'busybox', path: 'sleep', args: ['1d'], created: '2026-01-01T00:00:00Z', options: {} } as unknown as ContainerRecord;
const started = Date.parse('2026-01-01T00:00:00Z');
const running = (startedAt: string): Observed => ({ status: 'running', state: { startedAt, network: null }, monitor: { startedAt }, pid: 1, exitCode: null, orphaned: false }) as unknown as Observed;
const exited = (finishedAt: string, code: number): Observed =>
  ({ status: 'exited', state: { startedAt: finishedAt, finishedAt }, monitor: { finishedAt }, pid: 0, exitCode: code, orphaned: false }) as unknown as Observed;
const at = (secondsLater: number) => started + secondsLater * 1000;

describe('ps STATUS', () => {
  it('says how long as docker does: seconds down, "About a minute", hours rounded', () => {
    const up = (s: number) => summarize(record, running('2026-01-01T00:00:00Z'), at(s)).statusText;
    expect(up(0.4)).toBe('Up Less than a second');
    expect(up(1)).toBe('Up 1 second');
    expect(up(59.9)).toBe('Up 59 seconds');
    expect(up(90)).toBe('Up About a minute');
    expect(up(119)).toBe('Up About a minute');
    expect(up(150)).toBe('Up 2 minutes');
    expect(up(65 * 60)).toBe('Up About an hour');
    expect(up(3 * 86400)).toBe('Up 3 days');
  });

  it('says when an exited container ended', () => {
    expect(summarize(record, exited('2026-01-01T00:00:00Z', 3), at(150)).statusText).toBe('Exited (3) 2 minutes ago');
  });
});
