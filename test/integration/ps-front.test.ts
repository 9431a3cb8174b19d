// tsrun's native front (native/front/ps.c) answers a plain `ps` without Node. It must print
// byte for byte what Node's ps prints (cli/ps.ts), and hand everything else to Node before it
// prints anything: these tests run both on the same store, the front with no `node` on PATH
// (a fallback would fail with 99), on real containers and on stores written by hand for the
// states a real container passes through too briefly to catch (restarting, a monitor that died,
// another boot) and for files that do not read as they should.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cliPath, describePrivileged, frontPath, TestEnv, type Result } from './helpers/env.js';
import { loadBusybox } from './helpers/images.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const FLAGS = [
  [], ['-a'], ['-q'], ['-aq'], ['-qa', '--no-trunc'], ['--no-trunc'], ['--all', '--no-trunc'], ['--quiet', '--all'],
  // The filters the front decides: status=, id=, and name= as a name with ^ and $ or not.
  ['-f', 'status=exited'], ['-aq', '--filter', 'status=paused', '-f', 'status=created'], ['-a', '-f', 'name=e'], ['--filter=name=^web$'],
  ['-a', '-f', 'name=^/done$'], ['-a', '-f', 'name=name$', '-f', 'name=^c1'], ['-f', 'name=e', '-f', 'status=running'], ['-a', '-f', 'name='],
  ['-a', '-f', 'id=0'], ['-a', '-f', 'id=0', '-f', 'id=a', '-f', 'name=-'],
];

/** FNV-1a of every byte before the checksum line, as native/status.c writes it. */
function fnv1a(text: string): string {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(text)) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}

/** A monitor status file as native/status.c writes it: key=value lines, checksum, 1 KiB of newlines. */
function statusFile(kv: Record<string, string | number>): string {
  const body = Object.entries(kv).map(([k, v]) => `${k}=${v}\n`).join('');
  return `${body}checksum=${fnv1a(body)}`.padEnd(1024, '\n');
}

function startTime(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
}

const bootId = () => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
const writeAtomic = (path: string, text: string) => {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
};

describePrivileged('ps through the native front', () => {
  let env: TestEnv;
  let image: string;
  let noNode: string;
  const scratch: string[] = [];
  const t = (...args: string[]): Result => env.run(args, { timeout: 60_000 });
  /** The front with no Node anywhere on PATH: only its own ps can succeed. */
  const fast = (root: string, args: string[]): Result => {
    const r = spawnSync(frontPath, ['--root', root, ...args], { encoding: 'utf8', env: { ...process.env, PATH: noNode }, timeout: 30_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  /** Node's ps, without the front. */
  const slow = (root: string, args: string[]): Result => {
    const r = spawnSync(process.execPath, [cliPath, '--root', root, ...args], { encoding: 'utf8', env: { ...process.env, TSRUN_ROOT: '' }, timeout: 30_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const same = (root: string) => {
    for (const flags of FLAGS) {
      const node = slow(root, ['ps', ...flags]);
      expect(node.status, node.stderr).toBe(0);
      expect({ flags, ...fast(root, ['ps', ...flags]) }).toEqual({ flags, ...node });
    }
  };

  beforeAll(() => {
    env = new TestEnv('psfront');
    image = loadBusybox(env);
    noNode = mkdtempSync(join(tmpdir(), 'tsrun-nonode-'));
    writeFileSync(join(noNode, 'node'), '#!/bin/sh\necho "no node here" >&2\nexit 99\n', { mode: 0o755 });
    const empty = mkdtempSync(join(tmpdir(), 'tsrun-psfront-'));
    scratch.push(empty);
    if (fast(empty, ['ps']).status === 99) {
      throw new Error(`${frontPath} was built without its own ps: install libjson-c-dev, then npm run build:native`);
    }
  });
  afterAll(async () => {
    const ids = t('ps', '-aq').stdout.split('\n').filter(Boolean);
    if (ids.length > 0) t('rm', '-f', ...ids);
    for (const dir of [noNode, ...scratch]) rmSync(dir, { recursive: true, force: true });
    await env.cleanup();
  });

  it('prints what Node prints for real containers: running with ports, paused, exited, created', () => {
    const ok = (r: Result) => expect(r.status, r.stderr).toBe(0);
    ok(t('run', '-d', '--name', 'web', '-p', '127.0.0.1:18080:80', '-p', '18081:81/udp', image, 'sleep', '3600'));
    ok(t('run', '-d', '--network', 'none', '--name', 'frozen', image, 'sleep', '3600'));
    ok(t('pause', 'frozen'));
    expect(t('run', '--network', 'none', '--name', 'done', image, 'sh', '-c', 'exit 3').status).toBe(3);
    ok(t('create', '--network', 'none', '--name', 'fresh-with-a-longer-name', image, 'echo', 'a command longer than twenty'));

    // Times moved into the past, to the middle of what each duration says: both programs then
    // print the same words however long either takes to start.
    const now = Date.now();
    const pinned: Record<string, [created: number, started: number | null, finished: number | null]> = {
      web: [now - 3 * HOUR, now - 2.9 * HOUR, null],
      frozen: [now - 5.5 * DAY, now - 1.2 * HOUR, null],
      done: [now - 90_000, now - 3.5 * DAY, now - 2.5 * DAY],
      'fresh-with-a-longer-name': [now - 45.5 * 60_000, null, null],
    };
    for (const [name, [created, started, finished]] of Object.entries(pinned)) {
      const dir = join(env.root, 'containers', JSON.parse(t('inspect', name).stdout)[0].Id);
      const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
      const record = JSON.parse(readFileSync(join(dir, 'container.json'), 'utf8'));
      writeAtomic(join(dir, 'container.json'), JSON.stringify({ ...record, created: iso(created) }, null, 2));
      const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8'));
      writeAtomic(join(dir, 'state.json'), JSON.stringify({ ...state, startedAt: iso(started), finishedAt: iso(finished) }, null, 2));
      let status: string;
      try {
        status = readFileSync(join(dir, 'status'), 'utf8');
      } catch {
        continue; // created: no monitor yet
      }
      const kv = Object.fromEntries(status.slice(0, status.indexOf('\nchecksum=')).split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
      const nanos = (ms: number | null) => (ms === null ? '' : new Date(ms).toISOString().replace('Z', '456789Z'));
      writeAtomic(join(dir, 'status'), statusFile({ ...kv, started_at: nanos(started), finished_at: kv.finished_at ? nanos(finished) : '' }));
    }

    const table = fast(env.root, ['ps', '-a']);
    expect(table.status, table.stderr).toBe(0);
    const line = (name: string) => table.stdout.split('\n').find((l) => l.endsWith(` ${name}`)) ?? '';
    expect(line('web')).toMatch(/ "sleep 3600" +3 hours ago +Up 3 hours +127\.0\.0\.1:18080->80\/tcp, 0\.0\.0\.0:18081->81\/udp +web$/);
    expect(line('frozen')).toMatch(/ 5 days ago +Up About an hour \(Paused\) +frozen$/);
    expect(line('done')).toMatch(/ "sh -c exit 3" +About a minute ago +Exited \(3\) 2 days ago +done$/);
    expect(line('fresh-with-a-longer-name')).toMatch(/ "echo a command long…" +45 minutes ago +Created +fresh-with-a-longer-name$/);
    same(env.root);
  });

  /** A store written by hand: each container's files as tsrun writes them. */
  function store(containers: Array<{ id: string; name: string; created: number | string; args?: string[]; state?: object; status?: Record<string, string | number> | string; options?: object }>): string {
    const root = mkdtempSync(join(tmpdir(), 'tsrun-psfront-'));
    scratch.push(root);
    for (const c of containers) {
      const dir = join(root, 'containers', c.id);
      mkdirSync(dir, { recursive: true });
      const created = typeof c.created === 'string' ? c.created : new Date(c.created).toISOString();
      const [path, ...args] = c.args ?? ['sleep', '3600'];
      writeFileSync(join(dir, 'container.json'), JSON.stringify({
        id: c.id, name: c.name, created, image: 'busybox', imageId: `sha256:${'5'.repeat(64)}`, path, args, hostname: c.id.slice(0, 12),
        options: { name: c.name, args: [path, ...args], env: [], network: 'none', ...c.options }, restartPolicy: { name: 'no', maximumRetryCount: 0 },
        lowerDirs: [], logConfig: { driver: 'json-file', maxSize: 10485760, maxFile: 3 }, stopSignal: 'SIGTERM', labels: {},
      }, null, 2));
      writeFileSync(join(dir, 'state.json'), JSON.stringify({
        startedAt: null, finishedAt: null, exitCode: null, oomKilled: false, paused: false, bootId: bootId(), cgroupPaths: {}, network: null,
        cleanedUp: true, startingBy: null, ...c.state,
      }, null, 2));
      if (c.status) writeFileSync(join(dir, 'status'), typeof c.status === 'string' ? c.status : statusFile(c.status));
    }
    return root;
  }

  const id = (n: number) => n.toString(16).padStart(2, '0').repeat(32);
  const iso = (ms: number) => new Date(ms).toISOString();
  /** The test's own process as the monitor: alive for as long as the test runs. */
  const monitor = (kv: Record<string, string | number>) => ({
    status: 'running', pid: process.pid, monitor_pid: process.pid, monitor_start_time: startTime(process.pid), exit_code: '', exit_signal: '',
    started_at: '', finished_at: '', restart_count: 0, error: '', ...kv,
  });
  const cgroupDir = (file: string, text: string) => {
    const dir = mkdtempSync(join(tmpdir(), 'tsrun-psfront-cg-'));
    scratch.push(dir);
    writeFileSync(join(dir, file), text);
    return dir;
  };

  it('prints what Node prints in every state a monitor reports, with every duration docker words', () => {
    const now = Date.now();
    const nanos = (ms: number) => iso(ms).replace('Z', '123456Z');
    const root = store([
      { id: id(1), name: 'running-with-ports', created: now - 3 * HOUR, state: {
        startedAt: iso(now - 2.9 * HOUR),
        network: { name: 'bridge', ip: '10.0.0.2', ports: [{ hostIp: '', hostPort: 8080, containerPort: 80, protocol: 'tcp' }, { hostIp: '127.0.0.1', hostPort: 53, containerPort: 5353, protocol: 'udp' }] },
      }, status: monitor({ started_at: nanos(now - 2.9 * HOUR) }) },
      { id: id(2), name: 'frozen-v1', created: now - 3.5 * 7 * DAY, state: { startedAt: iso(now - 1.2 * HOUR), cgroupPaths: { freezer: cgroupDir('freezer.state', 'FROZEN\n') } }, status: monitor({ started_at: nanos(now - 1.2 * HOUR) }) },
      { id: id(3), name: 'frozen-v2', created: now - 150 * DAY, state: { startedAt: iso(now - 30.5 * 60_000), cgroupPaths: { unified: cgroupDir('cgroup.events', 'populated 1\nfrozen 1\n') } }, status: monitor({ started_at: nanos(now - 30.5 * 60_000) }) },
      // The kernel says thawed: running, whatever state.json says.
      { id: id(4), name: 'thawed', created: now - 3.5 * 365 * DAY, state: { startedAt: iso(now - 90_000), paused: true, cgroupPaths: { freezer: cgroupDir('freezer.state', 'THAWED\n') } }, status: monitor({ started_at: nanos(now - 90_000) }) },
      // No freezer to read: state.json's word.
      { id: id(5), name: 'paused-by-record', created: now - 90_000, state: { startedAt: iso(now - 90_000), paused: true, cgroupPaths: { freezer: '/nonexistent/freezer' } }, status: monitor({ started_at: '' }) },
      { id: id(6), name: 'restarting', created: now - 2 * HOUR, args: ['sh', '-c', 'exit 2'], state: { startedAt: iso(now - HOUR) }, status: monitor({ status: 'restarting', pid: 0, exit_code: 2, exit_signal: 0, started_at: nanos(now - HOUR), finished_at: nanos(now - 90_000), restart_count: 4 }) },
      // Between runs with a restart count: restarting; a first run not released yet: created.
      { id: id(7), name: 'between-runs', created: now - 2 * HOUR, state: { startedAt: iso(now - HOUR) }, status: monitor({ status: 'created', pid: 0, exit_code: '', restart_count: 1 }) },
      { id: id(8), name: 'starting-first-run', created: now - 2 * HOUR, state: { startedAt: iso(now - HOUR) }, status: monitor({ status: 'created', pid: 0 }) },
      { id: id(9), name: 'exited-137', created: now - 9 * DAY, state: { startedAt: iso(now - 8 * DAY), exitCode: 1 }, status: monitor({ status: 'exited', pid: 0, monitor_pid: 1, monitor_start_time: 0, exit_code: 137, exit_signal: 9, started_at: nanos(now - 8 * DAY), finished_at: nanos(now - 3.5 * DAY) }) },
      // The monitor died (here: a pid that is not its process), its resources released: exited, 255.
      { id: id(10), name: 'monitor-died', created: now - 30 * DAY, state: { startedAt: iso(now - 20 * DAY), finishedAt: iso(now - 19.5 * DAY) }, status: monitor({ monitor_start_time: 1 }) },
      // A monitor of another boot is gone, whatever runs under its pid now.
      { id: id(11), name: 'other-boot', created: now - 30 * DAY, state: { startedAt: iso(now - 20 * DAY), exitCode: 4, bootId: '00000000-0000-0000-0000-000000000000' }, status: monitor({}) },
      // Exited with no status file (an older record), and one with no time at all.
      { id: id(12), name: 'exited-no-monitor', created: now - 45.5 * 60_000, state: { startedAt: iso(now - 40 * 60_000), finishedAt: iso(now - 3 * HOUR) } },
      { id: id(13), name: 'exited-no-time', created: now - 45.5 * 60_000, state: { startedAt: iso(now - 40 * 60_000) } },
      { id: id(14), name: 'created', created: now - 1.2 * HOUR, args: ['echo', 'exactly 20 char'] },
      { id: id(15), name: 'created-21', created: now - 1.2 * HOUR, args: ['echo', 'exactly 20 chars'] },
      // Created in the future (a clock set back): less than a second.
      { id: id(16), name: 'from-the-future', created: now + HOUR },
      // Equal creation times: the order of their IDs, as Node's sort keeps readdir's.
      { id: 'f'.repeat(64), name: 'tie-f', created: '2020-01-01T00:00:00.000Z' },
      { id: 'a'.repeat(64), name: 'tie-a', created: '2020-01-01T00:00:00.000Z' },
      { id: 'c'.repeat(64), name: 'tie-c', created: '2020-01-01T00:00:00.000Z' },
      // cgroup v2 thawed; no frozen line (state.json's word); white space around the state.
      { id: id(18), name: 'thawed-v2', created: now - 3 * HOUR, state: { startedAt: iso(now - 3 * HOUR), paused: true, cgroupPaths: { unified: cgroupDir('cgroup.events', 'populated 1\nfrozen 0\n') } }, status: monitor({}) },
      { id: id(19), name: 'no-frozen-line', created: now - 3 * HOUR, state: { startedAt: iso(now - 3 * HOUR), paused: true, cgroupPaths: { unified: cgroupDir('cgroup.events', 'populated 1\n') } }, status: monitor({}) },
      { id: id(20), name: 'spaced-thawed', created: now - 3 * HOUR, state: { startedAt: iso(now - 3 * HOUR), paused: true, cgroupPaths: { freezer: cgroupDir('freezer.state', '  THAWED \n') } }, status: monitor({}) },
      // The last of a key counts, and nothing after the padding's first empty line.
      { id: id(21), name: 'status-read-as-node-does', created: now - 3 * HOUR, state: { startedAt: iso(now - 3 * HOUR) }, status: (() => {
        const body = `status=running\nexit_code=\nmonitor_pid=1\nmonitor_pid=${process.pid}\nmonitor_start_time=${startTime(process.pid)}\nstarted_at=${nanos(now - 90_000)}\nnot a line\n`;
        return `${body}checksum=${fnv1a(body)}\n\nstatus=exited\n`.padEnd(1024, '\n');
      })() },
      // A healthcheck that never started is no health to show.
      { id: id(17), name: 'health-not-started', created: now - HOUR * 5, options: { healthcheck: { Test: ['CMD', 'true'] } } },
    ]);
    // Not containers: a create that has not written its record, and a name that is not an ID.
    mkdirSync(join(root, 'containers', id(99)));
    mkdirSync(join(root, 'containers', 'not-an-id'));
    writeFileSync(join(root, 'containers', 'not-an-id', 'container.json'), '{');

    const table = fast(root, ['ps', '-a']);
    expect(table.status, table.stderr).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(25);
    const line = (name: string) => lines.find((l) => l.endsWith(` ${name}`)) ?? '';
    expect(line('running-with-ports')).toMatch(/ 3 hours ago +Up 3 hours +0\.0\.0\.0:8080->80\/tcp, 127\.0\.0\.1:53->5353\/udp +running-with-ports$/);
    expect(line('frozen-v1')).toMatch(/ 3 weeks ago +Up About an hour \(Paused\) /);
    expect(line('frozen-v2')).toMatch(/ 5 months ago +Up 30 minutes \(Paused\) /);
    expect(line('thawed')).toMatch(/ 3 years ago +Up About a minute +thawed$/);
    expect(line('paused-by-record')).toMatch(/ About a minute ago +Up About a minute \(Paused\) /);
    expect(line('restarting')).toMatch(/ "sh -c exit 2" +2 hours ago +Restarting \(2\) About a minute ago +restarting$/);
    expect(line('between-runs')).toMatch(/ Restarting \(0\)  ago +between-runs$/);
    expect(line('starting-first-run')).toMatch(/ Created +starting-first-run$/);
    expect(line('exited-137')).toMatch(/ 9 days ago +Exited \(137\) 3 days ago /);
    expect(line('monitor-died')).toMatch(/ 4 weeks ago +Exited \(255\) 2 weeks ago /);
    expect(line('other-boot')).toMatch(/ Exited \(4\)  ago +other-boot$/);
    expect(line('exited-no-monitor')).toMatch(/ 45 minutes ago +Exited \(0\) 3 hours ago /);
    expect(line('created')).toMatch(/ "echo exactly 20 char" +About an hour ago +Created /);
    expect(line('created-21')).toMatch(/ "echo exactly 20 cha…" /);
    expect(line('from-the-future')).toMatch(/ Less than a second ago +Created /);
    expect(line('thawed-v2')).toMatch(/ Up 3 hours +thawed-v2$/);
    expect(line('no-frozen-line')).toMatch(/ Up 3 hours \(Paused\) +no-frozen-line$/);
    expect(line('spaced-thawed')).toMatch(/ Up 3 hours +spaced-thawed$/);
    expect(line('status-read-as-node-does')).toMatch(/ Up About a minute +status-read-as-node-does$/);
    expect(lines.slice(-3).map((l) => l.split(/ +/).at(-1))).toEqual(['tie-a', 'tie-c', 'tie-f']);
    same(root);
    // Without -a: running, paused and restarting ones only.
    expect(fast(root, ['ps']).stdout.trimEnd().split('\n').slice(1).map((l) => l.split(/ +/).at(-1)).sort())
      .toEqual(['between-runs', 'frozen-v1', 'frozen-v2', 'no-frozen-line', 'paused-by-record', 'restarting', 'running-with-ports', 'spaced-thawed',
        'status-read-as-node-does', 'thawed', 'thawed-v2']);
  });

  it('prints the header alone for a store without containers, as Node does', () => {
    const root = mkdtempSync(join(tmpdir(), 'tsrun-psfront-empty-'));
    scratch.push(root);
    expect(fast(root, ['ps'])).toEqual({ status: 0, stdout: 'CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n', stderr: '' });
    same(root);
  });

  it('filters as Node does: name patterns with and without anchors, ID prefixes that name one container', () => {
    const now = Date.now();
    const running = { startedAt: iso(now - HOUR) };
    const live = monitor({ started_at: iso(now - HOUR) });
    const exited = { startedAt: iso(now - 2 * HOUR), finishedAt: iso(now - HOUR), exitCode: 0 };
    // IDs that share prefixes: ab… twice, abc… once among them, cd… once. Times in the middle of
    // their minute: both programs say the same however long the comparisons take.
    const ids = ['ab1'.padEnd(64, '0'), 'abc'.padEnd(64, '1'), 'cd'.padEnd(64, '2'), 'ef'.padEnd(64, '3'), 'f0'.padEnd(64, '4'), 'f1'.padEnd(64, '5')];
    const root = store([
      { id: ids[0]!, name: 'web', created: now - 10.5 * 60_000, state: running, status: live },
      { id: ids[1]!, name: 'web2', created: now - 11.5 * 60_000, state: running, status: live },
      { id: ids[2]!, name: 'myweb', created: now - 12.5 * 60_000, state: exited },
      { id: ids[3]!, name: 'done', created: now - 13.5 * 60_000, state: exited },
      { id: ids[4]!, name: 'done-2', created: now - 14.5 * 60_000 },
      { id: ids[5]!, name: 'db_1', created: now - 15.5 * 60_000, state: running, status: live },
    ]);
    const filters = [
      ['name=web'], ['name=^web'], ['name=web$'], ['name=^web$'], ['name=^/web'], ['name=^/'], ['name=^'], ['name=$'], ['name=^$'], ['name='],
      ['name=/web'], ['name=/'], ['name=-2'], ['name=_'], ['name=^done', 'name=^db'], ['name=web', 'status=exited'], ['status=created', 'name=2$'],
      ['id=ab'], ['id=abc'], ['id=ab1'], ['id=ab', 'id=cd'], ['id=f'], ['id=f0', 'name=done'], [`id=${ids[3]}`], ['id=ff'],
    ];
    for (const f of filters) {
      for (const flags of [[], ['-a'], ['-q']]) {
        const args = [...flags, ...f.flatMap((v) => ['-f', v])];
        const node = slow(root, ['ps', ...args]);
        expect(node.status, node.stderr).toBe(0);
        expect({ args, ...fast(root, ['ps', ...args]) }).toEqual({ args, ...node });
      }
    }
    // Node's answers are docker's: an ambiguous prefix names no container; anchors hold.
    const listed = (...f: string[]) => slow(root, ['ps', '-a', ...f.flatMap((v) => ['-f', v]), '--format', '{{.Names}}']).stdout.split('\n').filter(Boolean).sort().join(' ');
    expect(listed('id=ab')).toBe('');
    expect(listed('id=abc')).toBe('web2');
    expect(listed('id=ab', 'id=cd')).toBe('myweb');
    expect(listed('name=^web')).toBe('web web2');
    expect(listed('name=web$')).toBe('myweb web');
    expect(listed('name=^/web$')).toBe('web');
  });

  it('leaves to Node what it cannot tell as Node would', () => {
    const now = Date.now();
    const running = { startedAt: iso(now - HOUR) };
    const live = monitor({ started_at: iso(now - HOUR) });
    const noNodeHere = { status: 99, stdout: '', stderr: 'no node here\n' };
    const cases: Array<[why: string, root: string, args?: string[]]> = [
      ['a container to release first (its monitor exited, nothing cleaned up)', store([{ id: id(1), name: 'x', created: now, state: { ...running, cleanedUp: false }, status: monitor({ status: 'exited', exit_code: 0 }) }])],
      ['a start in progress', store([{ id: id(1), name: 'x', created: now, state: { startingBy: `${process.pid}@${startTime(process.pid)}` } }])],
      ['a healthcheck\'s status', store([{ id: id(1), name: 'x', created: now, state: running, status: live, options: { healthcheck: { Test: ['CMD', 'true'] } } }])],
      ['text beyond ASCII', store([{ id: id(1), name: 'x', created: now, args: ['echo', 'é'], state: running, status: live }])],
      // Node quotes a command as docker does (Go's strconv.Quote): escapes are its business.
      ['a terminal escape in the command', store([{ id: id(1), name: 'x', created: now, args: ['printf', '\x1b[2J'], state: running, status: live }])],
      ['a quote in the command', store([{ id: id(1), name: 'x', created: now, args: ['echo', '"hi"'], state: running, status: live }])],
      ['a damaged state.json', store([{ id: id(1), name: 'x', created: now }])],
      ['a status file caught half-written', store([{ id: id(1), name: 'x', created: now, state: running, status: live }])],
      ['a time in another form', store([{ id: id(1), name: 'x', created: '2026-01-01T00:00:00+01:00' }])],
      ['a value of another type', store([{ id: id(1), name: 'x', created: now, state: { ...running, exitCode: '3' } }])],
      // What json-c takes and JSON.parse does not, in fields ps does not show.
      ['NaN', store([{ id: id(1), name: 'x', created: now }])],
      ['a tab inside a string', store([{ id: id(1), name: 'x', created: now }])],
      ['a number with a leading zero', store([{ id: id(1), name: 'x', created: now }])],
      // What json-c reads otherwise: a key cut at \u0000, UTF-8 that Node decodes as U+FFFD.
      ['NUL in a key', store([{ id: id(1), name: 'x', created: now }])],
      ['an overlong UTF-8 sequence', store([{ id: id(1), name: 'x', created: now }])],
      ['an integer JavaScript rounds', store([{ id: id(1), name: 'x', created: now, state: { startedAt: iso(now), exitCode: 2 ** 53 + 2 } }])],
      ['a status value longer than tsrun writes', store([{ id: id(1), name: 'x', created: now, state: running, status: monitor({ exit_code: `${'0'.repeat(70)}1` }) }])],
      // Node's ps releases it first, even when it is not listed.
      ['an exited container to release, without -a', store([{ id: id(1), name: 'x', created: now, state: { ...running, cleanedUp: false }, status: monitor({ status: 'exited', exit_code: 0 }) }]), ['ps']],
    ];
    const file = (why: string, name: string) => join(cases.find(([w]) => w === why)![1], 'containers', id(1), name);
    writeFileSync(file('a damaged state.json', 'state.json'), '{"startedAt": null,}');
    writeFileSync(file('NaN', 'state.json'), '{"startedAt": null, "oomKilled": NaN}');
    writeFileSync(file('a tab inside a string', 'container.json'), readFileSync(file('a tab inside a string', 'container.json'), 'utf8').replace('"hostname": "', '"hostname": "\t'));
    writeFileSync(file('a number with a leading zero', 'state.json'), '{"startedAt": null, "oomKilled": false, "exitCode": 01}');
    writeFileSync(file('NUL in a key', 'state.json'), '{"startedAt": null, "paused\\u0000x": true}');
    const [before, after] = readFileSync(file('an overlong UTF-8 sequence', 'container.json'), 'utf8').split('"hostname": "');
    writeFileSync(file('an overlong UTF-8 sequence', 'container.json'), Buffer.concat([Buffer.from(`${before}"hostname": "`), Buffer.from([0xc0, 0xaf]), Buffer.from(after!)]));
    const status = file('a status file caught half-written', 'status');
    writeFileSync(status, readFileSync(status, 'utf8').replace('status=running', 'status=exited!'));
    for (const [why, root, args] of cases) expect({ why, ...fast(root, args ?? ['ps', '-a']) }).toEqual({ why, ...noNodeHere });
    // Node reads them: the damaged ones with its own words.
    const viaNode = (why: string, args = ['ps', '-a']) => slow(cases.find(([w]) => w === why)![1], args);
    for (const why of ['a damaged state.json', 'NaN', 'a number with a leading zero']) {
      expect(viaNode(why)).toMatchObject({ status: 125, stderr: expect.stringMatching(/state\.json is damaged/) });
    }
    expect(viaNode('a tab inside a string')).toMatchObject({ status: 125, stderr: expect.stringMatching(/container\.json is damaged/) });
    // An image's CMD never reaches the terminal as it is: escaped, as docker's ps writes it.
    const escaped = viaNode('a terminal escape in the command', ['ps', '-a', '--no-trunc']);
    expect(escaped.stdout).toContain(' "printf \\x1b[2J" ');
    expect(escaped.stdout).not.toContain('\x1b');
    expect(viaNode('a quote in the command').stdout).toContain(' "echo \\"hi\\"" ');

    const plain = store([{ id: id(1), name: 'x', created: now, state: running, status: live }]);
    expect(fast(plain, ['ps', '-a']).status).toBe(0);
    // A name longer than the front matches patterns against: Node's.
    const long = store([{ id: id(1), name: 'x'.repeat(300), created: now, state: running, status: live }]);
    expect(fast(long, ['ps', '-a']).status).toBe(0);
    expect(fast(long, ['ps', '-a', '-f', 'name=x'])).toEqual(noNodeHere);
    const filters = [
      ['-f', 'label=a'], ['-f', 'ancestor=busybox'], ['-f', 'health=none'], ['-f', 'status=bogus'], ['-f', 'status='], ['-f', 'name=x.'], ['-f', 'name=(x)'],
      ['-f', 'name=x|y'], ['-f', 'name=^x$$'], ['-f', 'name=(?i)X'], ['-f'], ['-fname=x'], ['-af', 'name=x'], ['-f', 'nam=x'], ['-f', '-a'], ['--filter='],
      ['-f', 'id='], ['-f', 'id=0X'], ['-f', 'Status=running'], ['-f', ' name=x'], ['-f', 'name=x '], ['-f', 'name=x', '--'],
      Array.from({ length: 33 }, () => ['-f', 'status=running']).flat(),
    ];
    for (const args of [...filters, ['--format', 'json'], ['-n', '1'], ['-l'], ['--help'], ['-ax'], ['extra'], ['--'], ['--all=true']]) {
      expect({ args, ...fast(plain, ['ps', ...args]) }).toEqual({ args, ...noNodeHere });
    }
    // A root Node resolves otherwise: relative, with "..", TSRUN_ROOT set but empty (the current
    // directory); and a test hook Node warns about.
    const front = (args: string[], env: NodeJS.ProcessEnv = {}) => spawnSync(frontPath, args, { encoding: 'utf8', env: { ...process.env, ...env, PATH: noNode } }).status;
    expect(front(['--root', 'relative/root', 'ps'])).toBe(99);
    expect(front(['--root', `${plain}/containers/..`, 'ps'])).toBe(99);
    expect(front(['ps'], { TSRUN_ROOT: '' })).toBe(99);
    expect(front(['--root', plain, 'ps'], { TSRUN_TEST_OMIT_STEPS: 'seccomp' })).toBe(99);
    expect(front(['--root', plain, 'ps'], { TSRUN_ROOT: '' })).toBe(0);
  });

  it('ends quietly, with 0, when the reader of its output is gone', () => {
    const root = store(Array.from({ length: 30 }, (_, n) => ({ id: id(n + 1), name: `c${n}`, created: Date.now() })));
    for (let i = 0; i < 5; i++) {
      const r = spawnSync('bash', ['-c', '"$0" --root "$1" ps -a | true; echo "${PIPESTATUS[0]}"', frontPath, root], {
        encoding: 'utf8',
        env: { ...process.env, PATH: `${noNode}:/usr/bin:/bin` },
      });
      expect(r).toMatchObject({ status: 0, stdout: '0\n', stderr: '' });
    }
  });
});
