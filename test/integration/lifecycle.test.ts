// The container lifecycle without a daemon, end to end through the CLI: detached containers,
// logs, exec, stop/kill/rm/wait, restart policies, pause, rename, inspect, crash recovery,
// and many containers and CLIs at once.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePrivileged, TestEnv, type Result } from './helpers/env.js';
import { loadBusybox } from './helpers/images.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describePrivileged('container lifecycle', () => {
  let env: TestEnv;
  let image: string;
  const t = (...args: string[]): Result => env.run(args, { timeout: 60_000 });
  const detach = (...args: string[]): string => {
    const r = t('run', '-d', '--network', 'none', ...args);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    return r.stdout.trim();
  };
  const inspect = (name: string) => JSON.parse(t('inspect', name).stdout)[0];
  const until = async (what: () => boolean, ms = 10_000) => {
    for (const end = Date.now() + ms; Date.now() < end; await sleep(50)) if (what()) return;
    throw new Error('condition not met in time');
  };

  beforeAll(() => {
    env = new TestEnv('life');
    image = loadBusybox(env);
  });
  afterAll(async () => {
    t('rm', '-f', ...t('ps', '-aq').stdout.split('\n').filter(Boolean));
    await env.cleanup();
  });

  it('run -d prints the full ID, and the container outlives the CLI', async () => {
    const id = detach('--name', 'bg', image, 'sh', '-c', 'echo started; sleep 30');
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    const ps = t('ps');
    expect(ps.stdout).toContain(id.slice(0, 12));
    expect(ps.stdout).toMatch(/Up (Less than a second|\d+ seconds?)/);
    await until(() => t('logs', 'bg').stdout === 'started\n');
    const info = inspect('bg');
    expect(info.State).toMatchObject({ Status: 'running', Running: true, OOMKilled: false });
    expect(info.State.Pid).toBeGreaterThan(1);
    expect(info.Name).toBe('/bg');
    expect(Object.keys(info.Tsrun.Namespaces)).toEqual(expect.arrayContaining(['pid', 'mnt', 'net']));
  });

  it('exec joins the container: same hostname and PID namespace, exit codes come back', () => {
    const hostname = t('exec', 'bg', 'hostname');
    expect(hostname.stdout.trim()).toBe(inspect('bg').Config.Hostname);
    const ps = t('exec', 'bg', 'ps', '-o', 'pid,comm');
    expect(ps.stdout).toMatch(/\b1 sleep\b/); // busybox sh execs its last command
    expect(t('exec', 'bg', 'sh', '-c', 'exit 7').status).toBe(7);
    expect(t('exec', 'bg', 'no-such-cmd').status).toBe(127);
    expect(t('exec', '-u', 'nobody', 'bg', 'id', '-u').stdout).toBe('65534\n');
    expect(t('exec', '-e', 'X=1', '-w', '/tmp', 'bg', 'sh', '-c', 'echo $X $(pwd)').stdout).toBe('1 /tmp\n');
  });

  it('logs -f streams output as it arrives, with stdout and stderr apart', async () => {
    detach('--name', 'talker', image, 'sh', '-c', 'for i in 1 2 3; do echo out$i; echo err$i >&2; sleep 0.3; done');
    const child = spawn(process.execPath, env.args(['logs', '-f', 'talker']), { env: { ...process.env, ...env.env } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const code = await new Promise((r) => child.on('exit', r));
    expect(code).toBe(0);
    expect(out).toBe('out1\nout2\nout3\n');
    expect(err).toBe('err1\nerr2\nerr3\n');
    const tail = t('logs', '--tail', '2', 'talker'); // the last two lines, whichever stream
    expect([tail.stdout, tail.stderr]).toEqual(['out3\n', 'err3\n']);
    expect(t('logs', '-t', 'talker').stdout).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z out1\n/);
  });

  it('stop: a container that traps SIGTERM exits at once, one that ignores it is killed after -t', async () => {
    detach('--name', 'polite', '--init', image, 'sh', '-c', 'trap "exit 0" TERM; while :; do sleep 0.1; done');
    detach('--name', 'stubborn', image, 'sh', '-c', 'trap "" TERM; while :; do sleep 0.1; done');
    let start = Date.now();
    expect(t('stop', 'polite').status).toBe(0);
    expect(Date.now() - start).toBeLessThan(5000);
    expect(inspect('polite').State.ExitCode).toBe(0);
    start = Date.now();
    expect(t('stop', '-t', '1', 'stubborn').status).toBe(0);
    expect(Date.now() - start).toBeGreaterThanOrEqual(1000);
    expect(inspect('stubborn').State).toMatchObject({ Status: 'exited', ExitCode: 137 });
    expect(t('stop', 'stubborn').status).toBe(0); // stopping a stopped container is fine
  });

  it('refuses what docker refuses, with a message that says what to do', () => {
    const rm = t('rm', 'bg');
    expect(rm.status).not.toBe(0);
    expect(rm.stderr).toMatch(/stop it first .* rm -f/);
    const start = t('start', 'bg');
    expect(start.stderr).toBe('tsrun: cannot start container bg: it is already running\n');
    const exec = t('exec', 'stubborn', 'true');
    expect(exec.status).toBe(125);
    expect(exec.stderr).toMatch(/cannot exec in container stubborn: it is exited/);
    expect(t('logs', 'no-such-container').stderr).toMatch(/no such container: no-such-container/);
  });

  it('accepts any unique ID prefix and lists the candidates of an ambiguous one', () => {
    const id = inspect('bg').Id as string;
    expect(t('inspect', '-f', '{{.Name}}', id.slice(0, 5)).stdout).toBe('/bg\n');
    const ids = t('ps', '-aq', '--no-trunc').stdout.split('\n').filter(Boolean);
    const shared = ids.map((a) => ids.find((b) => b !== a && b[0] === a[0])).find(Boolean);
    if (shared) expect(t('inspect', shared[0]!).stderr).toMatch(/multiple containers match/);
  });

  it('start, restart, wait and rm of a stopped container', async () => {
    detach('--name', 'once', image, 'sh', '-c', 'echo run >> /counter; exit 3');
    expect(t('wait', 'once').stdout).toBe('3\n');
    expect(t('start', 'once').status).toBe(0);
    expect(t('wait', 'once').stdout).toBe('3\n');
    // The container's own files persist across starts (same upper dir).
    expect(readFileSync(join(env.root, 'containers', inspect('once').Id, 'upper', 'counter'), 'utf8')).toBe('run\nrun\n');
    expect(t('rm', 'once').status).toBe(0);
    expect(t('inspect', 'once').status).not.toBe(0);
  });

  it('restart policies are carried out by the monitor', async () => {
    detach('--name', 'flaky', '--restart', 'on-failure:2', image, 'sh', '-c', 'exit 1');
    await until(() => inspect('flaky').State.Status === 'exited' && inspect('flaky').RestartCount === 2, 20_000);
    expect(inspect('flaky').HostConfig.RestartPolicy).toEqual({ Name: 'on-failure', MaximumRetryCount: 2 });
    detach('--name', 'forever', '--restart', 'always', image, 'sh', '-c', 'sleep 0.2; exit 0');
    await until(() => inspect('forever').RestartCount >= 1, 20_000);
    // Between two runs (the monitor waits 100 ms, then 200, 400...), docker's State: running, restarting.
    let between: Record<string, unknown> | undefined;
    await until(() => {
      const state = inspect('forever').State;
      if (state.Status === 'restarting') between = state;
      return between !== undefined;
    }, 20_000);
    expect(between).toMatchObject({ Running: true, Restarting: true, Pid: 0 });
    expect(t('stop', 'forever').status).toBe(0);
    await sleep(500);
    expect(inspect('forever').State.Status).toBe('exited');
    // rm -f of a running one: the monitor must not bring it back between the kill and the removal.
    detach('--name', 'undying', '--restart', 'always', image, 'sleep', '300');
    expect(t('rm', '-f', 'undying')).toMatchObject({ status: 0, stdout: 'undying\n', stderr: '' });
    expect(t('ps', '-a', '--format', '{{.Names}}').stdout).not.toMatch(/undying/);
  });

  it('pause freezes every process; unpause thaws them', () => {
    expect(t('pause', 'bg').status).toBe(0);
    expect(inspect('bg').State).toMatchObject({ Status: 'paused', Paused: true });
    expect(t('ps').stdout).toMatch(/\(Paused\)/);
    expect(t('unpause', 'bg').status).toBe(0);
    expect(inspect('bg').State.Status).toBe('running');
  });

  it('attach follows the output from now on and returns the exit status', () => {
    detach('--name', 'att', image, 'sh', '-c', 'echo before; sleep 1; echo after; exit 4');
    const r = t('attach', 'att');
    expect(r.stdout).toBe('after\n');
    expect(r.status).toBe(4);
  });

  it('rename keeps the container and frees the old name', () => {
    expect(t('rename', 'talker', 'chatty').status).toBe(0);
    expect(inspect('chatty').Name).toBe('/chatty');
    expect(t('inspect', 'talker').status).not.toBe(0);
  });

  it('recovers after kill -9 of a monitor: nothing reported running, rm works, nothing leaks', async () => {
    detach('--name', 'victim', image, 'sleep', '60');
    const monitor = inspect('victim').Tsrun.MonitorPid as number;
    expect(monitor).toBeGreaterThan(0);
    process.kill(monitor, 'SIGKILL');
    await sleep(200);
    expect(t('ps').stdout).not.toContain('victim');
    expect(inspect('victim').State.Running).toBe(false);
    expect(t('rm', 'victim').status).toBe(0);
  });

  it('recovers after kill -9 of a foreground tsrun', async () => {
    const child = env.spawn(['run', '--name', 'fg', '--network', 'none', image, 'sleep', '1']);
    await until(() => t('ps').stdout.includes('fg'));
    child.kill('SIGKILL');
    await sleep(1500);
    expect(t('ps', '-a', '--filter', 'name=fg', '--format', '{{.State}}').stdout).toBe('exited\n');
    expect(t('rm', 'fg').status).toBe(0);
  });

  it('a stop killed mid-way leaves the end to the monitor: the container is released when it ends', async () => {
    detach('--name', 'abandoned', image, 'sh', '-c', 'trap "" TERM; while :; do sleep 0.1; done');
    const state = () => JSON.parse(readFileSync(join(env.root, 'containers', inspect('abandoned').Id, 'state.json'), 'utf8'));
    const cgroups = Object.values(state().cgroupPaths as Record<string, string>);
    expect(cgroups.length).toBeGreaterThan(0);
    // The stop names itself in the stop file, then waits for a TERM that is ignored: killed there.
    const stop = env.spawn(['stop', '-t', '30', 'abandoned']);
    const stopFile = join(env.root, 'containers', inspect('abandoned').Id, 'stop-requested');
    await until(() => existsSync(stopFile));
    stop.kill('SIGKILL');
    await new Promise((r) => stop.on('exit', r));
    // Ended another way: the monitor finds its stopper gone and runs its exit command, which
    // releases the cgroups (a live stopper would have done it itself).
    expect(t('kill', 'abandoned').status).toBe(0);
    await until(() => cgroups.every((c) => !existsSync(c)) && state().cleanedUp === true);
    expect(inspect('abandoned').State.Running).toBe(false);
    expect(t('rm', 'abandoned').status).toBe(0);
  });

  it('starts and removes 50 detached containers, and takes 20 CLIs at once', async () => {
    const runs = Array.from({ length: 50 }, (_, i) => t('run', '-d', '--network', 'none', '--name', `many${i}`, image, 'sleep', '30'));
    expect(runs.filter((r) => r.status !== 0).map((r) => r.stderr)).toEqual([]);
    expect(t('ps', '-q', '--filter', 'name=many').stdout.trim().split('\n')).toHaveLength(50);
    // 20 concurrent CLIs against one store: they must neither fail nor corrupt anything.
    const clis = Array.from({ length: 20 }, (_, i) =>
      new Promise<number | null>((resolve) => {
        const args = i % 2 ? ['ps', '-a'] : ['rm', '-f', `many${i}`];
        const c = env.spawn(args);
        c.on('exit', resolve);
      }));
    expect(await Promise.all(clis)).toEqual(Array(20).fill(0));
    const rest = t('ps', '-aq', '--filter', 'name=many').stdout.split('\n').filter(Boolean);
    expect(rest).toHaveLength(40);
    // Removed side by side (as docker's CLI does), yet said in the order given, with the one
    // that failed in its place, and the others removed all the same.
    const removed = t('rm', '-f', ...rest.slice(0, 20), 'no-such-many', ...rest.slice(20));
    expect(removed.status).toBe(1);
    expect(removed.stdout).toBe(rest.map((id) => `${id}\n`).join(''));
    expect(removed.stderr).toMatch(/^tsrun: [^\n]*no-such-many[^\n]*\n$/);
    expect(t('ps', '-aq', '--filter', 'name=many').stdout).toBe('');
  }, 240_000);

  it('container prune removes every stopped container and nothing else', () => {
    t('stop', '-t', '1', 'bg');
    expect(t('container', 'prune', '-f').status).toBe(0);
    expect(t('ps', '-aq').stdout).toBe('');
    expect(readdirSync(join(env.root, 'containers'))).toEqual([]);
  });
});
