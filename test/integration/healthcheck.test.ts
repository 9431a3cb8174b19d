// Healthchecks without a daemon: the container's monitor runs the probe inside it on schedule
// (native/health.c), and inspect, ps and ps --filter health= read the file it keeps. The
// health file is also read directly, every few milliseconds, where a test is about each state
// the monitor writes (a CLI call takes longer than a probe's interval).
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePrivileged, TestEnv, type Result } from './helpers/env.js';
import { loadBusybox } from './helpers/images.js';

interface Health {
  Status: string;
  FailingStreak: number;
  Log: Array<{ Start: string; End: string; ExitCode: number; Output: string }>;
}

describePrivileged('healthchecks', () => {
  const env = new TestEnv('health');
  let image = '';
  const t = (...args: string[]): Result => env.run(args);
  const ok = (r: Result): string => {
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    return r.stdout;
  };
  const inspect = (name: string) => JSON.parse(ok(t('inspect', name)))[0] as { Id: string; State: { Health?: Health; Pid: number; StartedAt: string }; Config: { Healthcheck?: unknown }; Tsrun: { CgroupPaths: Record<string, string> } };
  /** Runs it detached, with no network; returns its ID. */
  const run = (name: string, ...args: string[]) => ok(t('run', '-d', '--name', name, '--network', 'none', ...args)).trim();
  const healthFile = (id: string) => join(env.root, 'containers', id, 'health.json');
  const readHealth = (id: string): Health | undefined => {
    try {
      return JSON.parse(readFileSync(healthFile(id), 'utf8')) as Health;
    } catch {
      return undefined;
    }
  };
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  /** Polls the health file until `done` holds; every state seen is passed to `each` on the way. */
  const watch = async (id: string, done: (h: Health) => boolean, each: (h: Health) => void = () => {}, ms = 10_000): Promise<Health> => {
    const end = Date.now() + ms;
    for (;;) {
      const h = readHealth(id);
      if (h) each(h);
      if (h && done(h)) return h;
      if (Date.now() > end) throw new Error(`health of ${id.slice(0, 12)} never got there; last: ${JSON.stringify(h)}`);
      await sleep(10);
    }
  };
  /** Host pids whose command line is exactly `argv`, in the cgroups of container `id`. */
  const pidsOf = (id: string, argv: string[]): number[] =>
    readdirSync('/proc').filter((d) => /^\d+$/.test(d)).flatMap((d) => {
      try {
        const mine = readFileSync(`/proc/${d}/cgroup`, 'utf8').includes(id);
        return mine && readFileSync(`/proc/${d}/cmdline`, 'utf8') === `${argv.join('\0')}\0` ? [Number(d)] : [];
      } catch {
        return [];
      }
    });
  const alive = (pid: number) => {
    try {
      return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
    } catch {
      return false;
    }
  };

  beforeAll(() => {
    image = loadBusybox(env);
    const dir = join(env.root, 'ctx');
    mkdirSync(dir);
    // Healthy once /tmp/ok exists; the JSON form is the image's ["CMD", ...].
    writeFileSync(join(dir, 'Dockerfile'), [
      'FROM busybox',
      'HEALTHCHECK --interval=200ms --timeout=2s --retries=2 CMD ["sh", "-c", "echo from-image; test -e /tmp/ok"]',
      '',
    ].join('\n'));
    const r = env.run(['build', '-q', '-t', 'hc:1', dir], { timeout: 120_000 });
    if (r.status !== 0) throw new Error(`tsrun build failed: ${r.stderr}`);
  });
  afterAll(async () => {
    const ids = t('ps', '-aq').stdout.split('\n').filter(Boolean);
    if (ids.length > 0) t('rm', '-f', ...ids);
    await env.cleanup();
  });

  it('a passing probe makes it healthy; inspect shows docker\'s shape, ps says (healthy)', async () => {
    const id = run('good', '--health-cmd', 'echo probe-out; exit 0', '--health-interval', '200ms', image, 'sleep', '60');
    await watch(id, (h) => h.Status === 'healthy');
    const c = inspect('good');
    expect(c.Config.Healthcheck).toEqual({ Test: ['CMD-SHELL', 'echo probe-out; exit 0'], Interval: 200_000_000 });
    const h = c.State.Health!;
    expect(Object.keys(h)).toEqual(['Status', 'FailingStreak', 'Log']);
    expect(h).toMatchObject({ Status: 'healthy', FailingStreak: 0 });
    expect(h.Log.length).toBeGreaterThan(0);
    expect(h.Log.length).toBeLessThanOrEqual(5);
    for (const entry of h.Log) {
      expect(Object.keys(entry)).toEqual(['Start', 'End', 'ExitCode', 'Output']);
      expect(entry).toMatchObject({ ExitCode: 0, Output: 'probe-out\n' });
      expect(Date.parse(entry.End)).toBeGreaterThanOrEqual(Date.parse(entry.Start));
    }
    expect(ok(t('ps', '--filter', 'name=good', '--format', '{{.Status}}'))).toMatch(/^Up .+ \(healthy\)\n$/);
    // Stopped, it is unhealthy, as docker says once its health monitor stops.
    ok(t('stop', '-t', '0', 'good'));
    expect(inspect('good').State.Health!.Status).toBe('unhealthy');
    // The probe is a process of the container: its PID namespace, user, cgroup.
    const inside = run('inside', '-u', '1000:1000', '--health-cmd', 'echo $$; id -u; cat /proc/self/cgroup', '--health-interval', '100ms', image, 'sleep', '60');
    const out = (await watch(inside, (x) => x.Log.length > 0)).Log[0]!.Output.split('\n');
    expect(Number(out[0])).toBeGreaterThan(1); // not the host's pid: the container's namespace numbers from 1
    expect(Number(out[0])).toBeLessThan(100);
    expect(out[1]).toBe('1000');
    expect(out.slice(2).filter(Boolean).every((l) => l.endsWith(':/'))).toBe(true); // at its cgroup namespace's root
    ok(t('rm', '-f', 'good', 'inside'));
  });

  it('retries failures in a row make it unhealthy; each result is written as it comes', async () => {
    const id = run('sick', '--health-cmd', 'echo nope; false', '--health-interval', '400ms', '--health-retries', '2', image, 'sleep', '60');
    const seen = new Set<string>();
    const h = await watch(id, (x) => x.FailingStreak >= 3, (x) => {
      seen.add(`${x.FailingStreak}:${x.Status}`);
      expect(x.Status).toBe(x.FailingStreak >= 2 ? 'unhealthy' : 'starting');
    });
    expect(seen).toContain('1:starting');
    expect(seen).toContain('2:unhealthy');
    expect(h.Log.every((e) => e.ExitCode === 1 && e.Output === 'nope\n')).toBe(true);
    expect(ok(t('ps', '--filter', 'name=sick', '--format', '{{.Status}}'))).toMatch(/^Up .+ \(unhealthy\)\n$/);
    ok(t('rm', '-f', 'sick'));
  });

  it('a probe that hangs is killed at its timeout, with what it started, and fails', async () => {
    const id = run('hang', '--health-cmd', 'sleep 100 & sleep 101', '--health-timeout', '300ms', '--health-interval', '200ms', '--health-retries', '1', image, 'sleep', '60');
    // A probe's processes, seen while it runs.
    let probe: number[] = [];
    const end = Date.now() + 5000;
    while (probe.length < 2 && Date.now() < end) {
      probe = [...pidsOf(id, ['sleep', '100']), ...pidsOf(id, ['sleep', '101'])];
      await sleep(10);
    }
    const seenAt = Date.now();
    expect(probe.length).toBe(2);
    const h = await watch(id, (x) => x.Log.length > 0);
    const first = h.Log[0]!;
    expect(first).toMatchObject({ ExitCode: -1, Output: 'Health check exceeded timeout (300ms)' });
    const took = Date.parse(first.End) - Date.parse(first.Start);
    expect(took).toBeGreaterThanOrEqual(300);
    expect(took).toBeLessThan(2000);
    expect(h.Status).toBe('unhealthy');
    expect(h.FailingStreak).toBeGreaterThanOrEqual(1);
    // Probes run one at a time: once one has ended after we saw those processes, theirs is over.
    await watch(id, (x) => x.Log.some((e) => Date.parse(e.End) > seenAt));
    expect(probe.filter(alive)).toEqual([]);
    ok(t('rm', '-f', 'hang'));
  });

  it('failures in the start period do not count, until a success ends it', async () => {
    // Always failing: the streak stays 0 for the first 3 seconds, then counts.
    const id = run('late', '--health-cmd', 'false', '--health-interval', '100ms', '--health-retries', '1', '--health-start-period', '3s', image, 'sleep', '60');
    const status = readFileSync(join(env.root, 'containers', id, 'status'), 'utf8');
    const started = Date.parse(/^started_at=(.+)$/m.exec(status)![1]!);
    let early = 0;
    await watch(id, (h) => h.Status === 'unhealthy', (h) => {
      const last = h.Log.at(-1);
      if (last && Date.parse(last.Start) - started < 2900) {
        early++;
        expect(h).toMatchObject({ Status: 'starting', FailingStreak: 0 });
      }
    });
    expect(early).toBeGreaterThan(0);
    // Passing once (it makes /tmp/x), failing after: the success ends the start period.
    const once = run('once', '--health-cmd', 'test ! -e /tmp/x && touch /tmp/x', '--health-interval', '300ms', '--health-retries', '1', '--health-start-period', '1m', image, 'sleep', '60');
    const h = await watch(once, (x) => x.Status === 'unhealthy');
    expect(h.Log.length).toBeLessThan(5); // all of them kept: the first is the first probe
    expect(h.Log.map((e) => e.ExitCode)).toEqual([0, ...h.Log.slice(1).map(() => 1)]);
    expect(h.Log.length).toBeGreaterThanOrEqual(2);
    ok(t('rm', '-f', 'late', 'once'));
  });

  it('keeps 4096 bytes of output and "..." when there was more; create + start runs it too', async () => {
    const id = ok(t('create', '--name', 'loud', '--network', 'none', '--health-cmd', 'yes abc | head -c 100000; exit 0', '--health-interval', '100ms', image, 'sleep', '60')).trim();
    expect('Health' in inspect('loud').State).toBe(false); // created, never started: none yet
    ok(t('start', 'loud'));
    const h = await watch(id, (x) => x.Log.length > 0);
    expect(h.Log[0]!.Output).toBe(`${'abc\n'.repeat(1024)}...`);
    ok(t('rm', '-f', 'loud'));
  });

  it('the image\'s HEALTHCHECK runs; flags override it field by field; --no-healthcheck turns it off', async () => {
    const id = run('img', 'hc:1', 'sleep', '60');
    const fromImage = { Test: ['CMD', 'sh', '-c', 'echo from-image; test -e /tmp/ok'], Interval: 200_000_000, Timeout: 2_000_000_000, Retries: 2 };
    expect(inspect('img').Config.Healthcheck).toEqual(fromImage);
    await watch(id, (h) => h.Status === 'unhealthy' && h.Log.at(-1)!.Output === 'from-image\n');
    ok(t('exec', 'img', 'touch', '/tmp/ok'));
    await watch(id, (h) => h.Status === 'healthy');

    run('img2', '--health-retries', '5', '--health-cmd', 'true', 'hc:1', 'sleep', '60');
    expect(inspect('img2').Config.Healthcheck).toEqual({ ...fromImage, Test: ['CMD-SHELL', 'true'], Retries: 5 });

    const off = run('img3', '--no-healthcheck', 'hc:1', 'sleep', '60');
    const c = inspect('img3');
    // As docker's merge: the flags' Test, the image's other fields (they are never used).
    expect(c.Config.Healthcheck).toEqual({ ...fromImage, Test: ['NONE'] });
    await sleep(600); // three of the image's intervals
    expect('Health' in c.State).toBe(false);
    expect('Health' in inspect('img3').State).toBe(false);
    expect(readHealth(off)).toBeUndefined();
    expect(ok(t('ps', '--filter', 'health=none', '--format', '{{.Names}} {{.Status}}'))).toMatch(/^img3 Up [^(]+$/m);
    ok(t('rm', '-f', 'img', 'img2', 'img3'));
  });

  it('ps --filter health= picks by status; (health: starting) until the first probe', async () => {
    run('waiting', '--health-cmd', 'true', '--health-interval', '1h', image, 'sleep', '60');
    const fine = run('fine', '--health-cmd', 'true', '--health-interval', '100ms', image, 'sleep', '60');
    const bad = run('bad', '--health-cmd', 'false', '--health-interval', '100ms', '--health-retries', '1', image, 'sleep', '60');
    run('plain', image, 'sleep', '60');
    await watch(fine, (h) => h.Status === 'healthy');
    await watch(bad, (h) => h.Status === 'unhealthy');
    const names = (filter: string) => ok(t('ps', '--filter', filter, '--format', '{{.Names}}')).split('\n').filter(Boolean).sort();
    expect(names('health=starting')).toEqual(['waiting']);
    expect(names('health=healthy')).toEqual(['fine']);
    expect(names('health=unhealthy')).toEqual(['bad']);
    expect(names('health=none')).toEqual(['plain']);
    expect(ok(t('ps', '--filter', 'name=waiting', '--format', '{{.Status}}'))).toMatch(/^Up .+ \(health: starting\)\n$/);
    expect(inspect('waiting').State.Health).toEqual({ Status: 'starting', FailingStreak: 0, Log: [] });
    const wrong = t('ps', '--filter', 'health=sick');
    expect(wrong.status).toBe(125);
    expect(wrong.stderr).toMatch(/health is one of starting, healthy, unhealthy, none/);
    ok(t('rm', '-f', 'waiting', 'fine', 'bad', 'plain'));
  });

  it('a paused container gets no probes, and probes again once unpaused', async () => {
    const id = run('frozen', '--health-cmd', 'echo hi', '--health-interval', '100ms', '--health-timeout', '200ms', image, 'sleep', '60');
    await watch(id, (h) => h.Status === 'healthy');
    const c = inspect('frozen');
    const procs = join(Object.values(c.Tsrun.CgroupPaths)[0]!, 'cgroup.procs');
    const inCgroup = () => readFileSync(procs, 'utf8').split('\n').filter(Boolean).map(Number);
    // Paused between two probes: one caught running by the freeze stays, frozen, till the thaw.
    for (let attempt = 0; ; attempt++) {
      ok(t('pause', 'frozen'));
      if (inCgroup().length === 1 || attempt === 5) break;
      ok(t('unpause', 'frozen'));
    }
    expect(inCgroup()).toEqual([c.State.Pid]);
    const before = readHealth(id)!;
    // Ten intervals: a probe started meanwhile would be in the container's cgroup, frozen with it.
    for (let i = 0; i < 10; i++) {
      await sleep(100);
      expect(inCgroup()).toEqual([c.State.Pid]);
    }
    expect(readHealth(id)).toEqual(before);
    ok(t('unpause', 'frozen'));
    await watch(id, (h) => h.Log.at(-1)!.Start !== before.Log.at(-1)!.Start);
    expect(readHealth(id)).toMatchObject({ Status: 'healthy', FailingStreak: 0 });
    ok(t('rm', '-f', 'frozen'));
  });

  it('the monitor stays under 1.5 MB with a probe every 100 ms that prints a megabyte', async () => {
    run('big', '--health-cmd', 'yes abcdefg | head -c 1000000', '--health-interval', '100ms', image, 'sleep', '60');
    const monitor = JSON.parse(ok(t('inspect', '-f', '{{json .Tsrun.MonitorPid}}', 'big'))) as number;
    const rss = () => Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${monitor}/status`, 'utf8'))![1]);
    let most = 0;
    const end = Date.now() + 2000;
    while (Date.now() < end) {
      most = Math.max(most, rss());
      await sleep(2);
    }
    expect(readHealth(inspect('big').Id)!.Log.length).toBeGreaterThan(5 - 1);
    expect(most).toBeLessThan(1536);
    ok(t('rm', '-f', 'big'));
  });

  it('a probe killed with its container (stop mid-probe) is not a result; a short-lived program ends unhealthy', async () => {
    const id = run('midprobe', '--init', '--health-cmd', 'sleep 30', '--health-interval', '100ms', '--health-timeout', '60s', image, 'sleep', '60');
    for (let i = 0; i < 200 && pidsOf(id, ['sleep', '30']).length === 0; i++) await sleep(10);
    expect(pidsOf(id, ['sleep', '30']).length, 'the probe runs').toBeGreaterThan(0);
    ok(t('stop', '-t', '1', 'midprobe'));
    // docker drops the result of a probe its container's end killed: no 137, no failing streak.
    const h = inspect('midprobe').State.Health!;
    expect(h).toMatchObject({ Status: 'unhealthy', FailingStreak: 0, Log: [] });

    // Over before its first probe, whichever the monitor heard of first (its start or its end).
    const quick = ok(t('run', '-d', '--network', 'none', '--name', 'quick', '--health-cmd', 'true', '--health-interval', '1h', image, 'true')).trim();
    ok(t('wait', 'quick'));
    expect(inspect('quick').State.Health?.Status).toBe('unhealthy');
    expect(readHealth(quick)?.Status).toBe('unhealthy');
    ok(t('rm', 'midprobe', 'quick'));
  });

  it('a container whose monitor was killed is not reported healthy: its health file\'s last word is not believed', async () => {
    const id = run('lastword', '--health-cmd', 'true', '--health-interval', '100ms', image, 'sleep', '60');
    await watch(id, (h) => h.Status === 'healthy');
    const monitor = Number(/^monitor_pid=(\d+)$/m.exec(readFileSync(join(env.root, 'containers', id, 'status'), 'utf8'))![1]);
    process.kill(monitor, 'SIGKILL');
    await sleep(200);
    expect(readHealth(id)?.Status).toBe('healthy'); // what the file still says
    expect(inspect('lastword').State.Health?.Status).toBe('unhealthy');
    expect(ok(t('ps', '-a', '--filter', 'health=healthy', '--format', '{{.Names}}'))).not.toContain('lastword');
    ok(t('rm', '-f', 'lastword'));
  });

  it('a restart (--restart) starts the healthcheck again from starting', async () => {
    const id = run('flappy', '--restart', 'always', '--health-cmd', 'true', '--health-interval', '300ms', image, 'sh', '-c', 'sleep 1; exit 3');
    // healthy, unhealthy once it exited (as docker's), starting again once restarted.
    const states: string[] = [];
    await watch(id, () => /(^|,)healthy,unhealthy,starting$/.test(states.join(',')), (h) => {
      if (states.at(-1) !== h.Status) states.push(h.Status);
      const order = ['starting', 'healthy', 'unhealthy', 'starting'];
      const from = states[0] === 'starting' ? 0 : 1;
      expect(states).toEqual(order.slice(from, from + states.length));
    });
    // The results of the run before are kept, as docker keeps them.
    expect(readHealth(id)!.Log.length).toBeGreaterThan(0);
    ok(t('rm', '-f', 'flappy'));
  });
});
