import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ContainerPaths } from '../../src/container/paths.js';
import { emptyState, readMonitorStatus, writeJsonAtomic } from '../../src/container/record.js';
import { can, currentBootId, observe, processStartTime } from '../../src/container/status.js';
import { parseRestartPolicy } from '../../src/container/run-options.js';
import { parseTime } from '../../src/container/logs.js';
import { parseSignal } from '../../src/container/signals.js';
import { renderTemplate } from '../../cli/format.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

function container(state: object, status?: string): ContainerPaths {
  const root = mkdtempSync(join(tmpdir(), 'tsrun-unit-'));
  dirs.push(root);
  const paths = new ContainerPaths(root, 'a'.repeat(64));
  mkdirSync(paths.dir, { recursive: true });
  writeJsonAtomic(paths.state, { ...emptyState(), ...state });
  if (status !== undefined) writeFileSync(paths.status, status);
  return paths;
}

const self = (extra = '') =>
  `status=running\npid=${process.pid}\nmonitor_pid=${process.pid}\nmonitor_start_time=${processStartTime(process.pid)}\nstarted_at=2026-01-01T00:00:00Z\n${extra}`;

describe('container status from its files, checked against the kernel', () => {
  it('is created before it ever started', () => {
    expect(observe(container({})).status).toBe('created');
  });
  it('is running while its monitor lives (same pid and start time, same boot)', () => {
    const seen = observe(container({ startedAt: 'x', bootId: currentBootId(), cleanedUp: false }, self()));
    expect(seen.status).toBe('running');
    expect(seen.pid).toBe(process.pid);
  });
  it('is paused when tsrun froze it', () => {
    expect(observe(container({ startedAt: 'x', bootId: currentBootId(), paused: true }, self())).status).toBe('paused');
  });
  it('is exited, and orphaned, when the monitor pid was reused by another process', () => {
    const reused = self().replace(/monitor_start_time=\d+/, 'monitor_start_time=1');
    const seen = observe(container({ startedAt: 'x', bootId: currentBootId(), cleanedUp: false }, reused));
    expect(seen.status).toBe('exited');
    expect(seen.orphaned).toBe(true);
    expect(seen.exitCode).toBe(255);
  });
  it('is never exited, nor orphaned, while a live monitor starts or restarts it', () => {
    const live = { startedAt: 'x', bootId: currentBootId(), cleanedUp: false };
    const starting = observe(container(live, self().replace('status=running', 'status=created')));
    expect(starting).toMatchObject({ status: 'created', orphaned: false, starting: true });
    const between = self().replace('status=running', 'status=created') + 'restart_count=1\n';
    expect(observe(container(live, between))).toMatchObject({ status: 'restarting', orphaned: false });
  });
  it('is exited after a reboot whatever the status file says', () => {
    expect(observe(container({ startedAt: 'x', bootId: 'another-boot', cleanedUp: false }, self())).status).toBe('exited');
  });
  it('takes the exit code the monitor recorded', () => {
    const seen = observe(container({ startedAt: 'x', cleanedUp: true }, 'status=exited\nexit_code=3\nmonitor_pid=1\n'));
    expect(seen).toMatchObject({ status: 'exited', exitCode: 3, orphaned: false });
  });
  it('reads the monitor status file', () => {
    const p = container({}, 'status=restarting\npid=12\nrestart_count=2\nexit_code=1\nexit_signal=0\n');
    expect(readMonitorStatus(p)).toMatchObject({ status: 'restarting', pid: 12, restartCount: 2, exitCode: 1 });
  });
  it('allows the transitions docker allows', () => {
    expect(can.start('running')).toBe(false);
    expect(can.remove('running')).toBe(false);
    expect(can.exec('exited')).toBe(false);
    expect(can.unpause('paused')).toBe(true);
  });
});

describe('flag parsing', () => {
  it('restart policies', () => {
    expect(parseRestartPolicy('on-failure:3', false)).toEqual({ name: 'on-failure', maximumRetryCount: 3 });
    expect(parseRestartPolicy('always', false)).toEqual({ name: 'always', maximumRetryCount: 0 });
    expect(() => parseRestartPolicy('always:2', false)).toThrow(/--restart/);
    expect(() => parseRestartPolicy('sometimes', false)).toThrow(/--restart/);
    expect(() => parseRestartPolicy('always', true)).toThrow(/--rm/);
  });
  it('log times: RFC 3339, Unix seconds and durations', () => {
    const now = Date.parse('2026-01-01T12:00:00Z');
    expect(parseTime('--since', '10m', now).toISOString()).toBe('2026-01-01T11:50:00.000Z');
    expect(parseTime('--since', '1h30m', now).toISOString()).toBe('2026-01-01T10:30:00.000Z');
    expect(parseTime('--since', '1767268800', now).toISOString()).toBe('2026-01-01T12:00:00.000Z');
    expect(parseTime('--until', '2026-01-01T00:00:00Z', now).toISOString()).toBe('2026-01-01T00:00:00.000Z');
    expect(() => parseTime('--since', 'yesterday', now)).toThrow(/--since/);
  });
  it('signals by name, short name or number', () => {
    expect(parseSignal('TERM')).toBe('SIGTERM');
    expect(parseSignal('sigkill')).toBe('SIGKILL');
    expect(parseSignal('9')).toBe('SIGKILL');
    expect(() => parseSignal('NOPE')).toThrow(/invalid signal/);
  });
  it('Go-like templates', () => {
    expect(renderTemplate('{{.ID}}\\t{{.Names}}', { ID: 'abc', Names: 'web' })).toBe('abc\tweb');
    expect(() => renderTemplate('{{.Nope}}', { ID: 'x' })).toThrow(/no field "Nope"/);
  });
});
