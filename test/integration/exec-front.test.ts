// tsrun's native front (native/front/tsrun.c) runs a plain `exec` without Node, from the plan
// the first exec wrote (exec.plan). It must do exactly what Node's exec does, and leave to Node
// everything it cannot tell: that is what these tests compare, on a real container.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cliPath, describePrivileged, frontPath, TestEnv, type Result } from './helpers/env.js';
import { loadBusybox } from './helpers/images.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describePrivileged('exec through the native front', () => {
  let env: TestEnv;
  let image: string;
  let noNode: string;
  const t = (...args: string[]): Result => env.run(args, { timeout: 60_000 });
  /** The front with no Node anywhere on PATH: only the fast path can succeed. */
  const fast = (args: string[], input = ''): Result => {
    const r = spawnSync(frontPath, ['--root', env.root, ...args], {
      encoding: 'utf8',
      input,
      env: { ...process.env, ...env.env, PATH: noNode },
      timeout: 30_000,
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  /** Node's exec, without the front. */
  const slow = (args: string[], input = ''): Result => {
    const r = spawnSync(process.execPath, [cliPath, '--root', env.root, ...args], { encoding: 'utf8', input, env: { ...process.env, ...env.env }, timeout: 30_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const planOf = (name: string) => join(env.root, 'containers', JSON.parse(t('inspect', name).stdout)[0].Id, 'exec.plan');

  beforeAll(() => {
    env = new TestEnv('front');
    image = loadBusybox(env);
    noNode = mkdtempSync(join(tmpdir(), 'tsrun-nonode-'));
    writeFileSync(join(noNode, 'node'), '#!/bin/sh\necho "no node here" >&2\nexit 99\n', { mode: 0o755 });
    const r = t('run', '-d', '--network', 'none', '--name', 'box', '-e', 'GREETING=hello', '-w', '/etc', image, 'sleep', '3600');
    expect(r.status, r.stderr).toBe(0);
  });
  afterAll(async () => {
    t('rm', '-f', ...t('ps', '-aq').stdout.split('\n').filter(Boolean));
    rmSync(noNode, { recursive: true, force: true });
    await env.cleanup();
  });

  it('the first exec is Node\'s and writes the plan; the next ones need no Node', () => {
    expect(existsSync(planOf('box'))).toBe(false);
    expect(fast(['exec', 'box', 'true'])).toMatchObject({ status: 99, stderr: 'no node here\n' });
    expect(slow(['exec', 'box', 'true']).status).toBe(0);
    const plan = readFileSync(planOf('box'), 'utf8');
    expect(plan).toMatch(/^tsrun-exec 1\nboot [0-9a-f-]+\n/);
    expect(plan).toContain('\nsetns /proc/0/ns/mnt mnt\n');
    expect(fast(['exec', 'box', 'true'])).toEqual({ status: 0, stdout: '', stderr: '' });
  });

  it('does what Node\'s exec does: environment, -e, -w, stdin, output, exit codes', () => {
    const cases: Array<{ args: string[]; input?: string }> = [
      { args: ['exec', 'box', 'sh', '-c', 'echo $GREETING $(pwd) $HOME; echo err >&2; exit 3'] },
      { args: ['exec', '-e', 'GREETING=bye', '-e', 'NEW=1', '-e', 'NEW=2', '-w', '/tmp', 'box', 'sh', '-c', 'echo $GREETING $NEW $(pwd)'] },
      { args: ['exec', '--env=FROM_HOST', '--env', 'UNSET_ON_HOST', 'box', 'sh', '-c', 'echo ${FROM_HOST:-none} ${UNSET_ON_HOST:-unset}'] },
      { args: ['exec', '-i', 'box', 'sh', '-c', 'cat; echo done'], input: 'piped in\n' },
      { args: ['exec', 'box', 'sh', '-c', 'cat; echo no stdin'], input: 'not read\n' },
      { args: ['exec', 'box', 'env'] },
      { args: ['exec', 'box', 'no-such-command'] },
      { args: ['exec', 'box', '/etc/passwd'] },
      { args: ['exec', '--', 'box', 'printf', '%s|', 'a b', '', '100%', 'é'] },
    ];
    const hostEnv = { FROM_HOST: 'from-host' };
    for (const c of cases) {
      const viaNode = spawnSync(process.execPath, [cliPath, '--root', env.root, ...c.args], { encoding: 'utf8', input: c.input ?? '', env: { ...process.env, ...env.env, ...hostEnv } });
      const viaFront = spawnSync(frontPath, ['--root', env.root, ...c.args], { encoding: 'utf8', input: c.input ?? '', env: { ...process.env, ...env.env, ...hostEnv, PATH: noNode } });
      expect({ args: c.args, status: viaFront.status, stdout: viaFront.stdout, stderr: viaFront.stderr }).toEqual({ args: c.args, status: viaNode.status, stdout: viaNode.stdout, stderr: viaNode.stderr });
    }
    expect(fast(['exec', 'box', 'no-such-command']).status).toBe(127);
    expect(fast(['exec', 'box', '/etc/passwd']).status).toBe(126);
  });

  it('with -t the command gets a terminal, as through Node', () => {
    // script(1) gives the front a terminal of its own.
    const r = spawnSync('script', ['-qec', `${frontPath} --root ${env.root} exec -it box sh -c 'tty; echo $TERM'`, '/dev/null'], {
      encoding: 'utf8',
      env: { ...process.env, ...env.env, PATH: `${noNode}:/usr/bin:/bin` },
      timeout: 30_000,
    });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    // (script's own terminal may echo its end of input first)
    expect(r.stdout).toMatch(/\/dev\/pts\/\d+\r\nxterm\r\n$/);
  });

  it('passes a signal on to the command', async () => {
    const child = spawn(frontPath, ['--root', env.root, 'exec', 'box', 'sh', '-c', 'trap "echo got TERM; exit 7" TERM; echo ready; while :; do sleep 0.1; done'], {
      env: { ...process.env, ...env.env, PATH: noNode },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    for (let i = 0; i < 100 && !out.includes('ready'); i++) await sleep(50);
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    expect(out).toBe('ready\ngot TERM\n');
    expect(code).toBe(7);
  });

  it('leaves to Node what it cannot tell: other flags, a paused or stopped container, a name it does not know', async () => {
    // -u needs the container's passwd; Node's, with the front in front.
    expect(t('exec', '-u', 'nobody', 'box', 'id', '-u')).toMatchObject({ status: 0, stdout: '65534\n' });
    expect(fast(['exec', '-u', 'nobody', 'box', 'id', '-u']).status).toBe(99);
    expect(fast(['exec', '-d', 'box', 'true']).status).toBe(99);
    expect(fast(['exec', 'nosuch', 'true']).status).toBe(99);
    expect(t('exec', 'nosuch', 'true')).toMatchObject({ status: 125, stderr: 'tsrun: no such container: nosuch\n' });
    expect(fast(['exec', 'box']).status).toBe(99); // no command: Node prints the usage
    // By ID prefix, as Node finds it.
    const id = JSON.parse(t('inspect', 'box').stdout)[0].Id as string;
    expect(fast(['exec', id.slice(0, 6), 'hostname']).stdout).toBe(`${id.slice(0, 12)}\n`);

    expect(t('pause', 'box').status).toBe(0);
    expect(fast(['exec', 'box', 'true']).status).toBe(99);
    expect(t('exec', 'box', 'true')).toMatchObject({ status: 125, stderr: expect.stringMatching(/paused/) });
    expect(t('unpause', 'box').status).toBe(0);
    expect(fast(['exec', 'box', 'true']).status).toBe(0);

    expect(t('stop', '-t', '0', 'box').status).toBe(0);
    expect(fast(['exec', 'box', 'true']).status).toBe(99);
    expect(t('exec', 'box', 'true')).toMatchObject({ status: 125, stderr: expect.stringMatching(/is not running|start it first/) });
    // Started again: the plan still holds, the pid is the new run's.
    expect(t('start', 'box').status).toBe(0);
    expect(fast(['exec', 'box', 'sh', '-c', 'echo $GREETING']).stdout).toBe('hello\n');
  });

  it('follows a container its monitor restarted (a new pid), and ignores a plan it does not know', async () => {
    // Each run lasts 4 s, then the monitor starts the next (after 100 ms).
    const r = t('run', '-d', '--network', 'none', '--name', 'flaky', '--restart', 'always', image, 'sh', '-c', 'echo $$ > /tmp/me; sleep 4; exit 1');
    expect(r.status, r.stderr).toBe(0);
    expect(t('exec', 'flaky', 'true').status).toBe(0);
    const pidNow = () => JSON.parse(t('inspect', 'flaky').stdout)[0].State.Pid as number;
    const before = pidNow();
    let after = before;
    for (let i = 0; i < 100 && (after === before || after === 0); i++) {
      await sleep(100);
      after = pidNow();
    }
    expect(after).not.toBe(before);
    // The new run's namespaces: its PID 1 is the new sh, and the plan is still the one written.
    const ps = fast(['exec', 'flaky', 'ps', '-o', 'pid,comm']);
    expect(ps.status, ps.stderr).toBe(0);
    expect(ps.stdout).toMatch(/\b1 sh\b/);
    // A plan this front cannot read is never run: Node's exec then writes it again.
    writeFileSync(planOf('flaky'), 'tsrun-exec 2\nsomething else\n');
    expect(fast(['exec', 'flaky', 'true']).status).toBe(99);
    for (let i = 0; i < 100 && t('exec', 'flaky', 'true').status !== 0; i++) await sleep(100);
    expect(readFileSync(planOf('flaky'), 'utf8')).toMatch(/^tsrun-exec 1\n/);
  });
});
