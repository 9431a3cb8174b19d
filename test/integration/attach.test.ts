// docker's attach to a container's terminal, on a real pseudo-terminal (helpers/pty-driver.py):
// run -dit then attach (any number of times), the detach keys, resize, exit codes, start -ai,
// run -it detaching, two clients at once, and the local terminal given back its mode.
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePrivileged, repoRoot, TestEnv, type Result } from './helpers/env.js';
import { loadBusybox } from './helpers/images.js';

const driver = join(repoRoot, 'test', 'integration', 'helpers', 'pty-driver.py');
const CTRL_P_Q = '\u0010\u0011';

type Step = { wait: string } | { send: string } | { resize: [number, number] } | { sleep: number };

describePrivileged('attach to a container\'s terminal', () => {
  let env: TestEnv;
  let image: string;
  const t = (...args: string[]): Result => env.run(args, { timeout: 60_000 });
  const inspect = (name: string) => JSON.parse(t('inspect', name).stdout)[0];
  /** tsrun on a fresh 30x100 terminal, typed at as the script says. */
  const drive = (script: Step[], args: string[], shell?: string) => {
    const cmd = shell === undefined ? [process.execPath, ...env.args(args)] : ['sh', '-c', shell.replace('TSRUN', [process.execPath, ...env.args(args)].map((a) => `'${a}'`).join(' '))];
    const r = spawnSync('python3', [driver, '30', '100', JSON.stringify(script), '--', ...cmd], {
      encoding: 'utf8',
      env: { ...process.env, ...env.env },
      timeout: 60_000,
    });
    return { status: r.status, out: r.stdout };
  };
  const driveAsync = (script: Step[], args: string[]) =>
    new Promise<{ status: number | null; out: string }>((resolve) => {
      const child = spawn('python3', [driver, '30', '100', JSON.stringify(script), '--', process.execPath, ...env.args(args)], { env: { ...process.env, ...env.env } });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.on('exit', (status) => resolve({ status, out }));
    });
  const detached = (name: string, ...flags: string[]) => {
    const r = t('run', '-dit', '--name', name, '--network', 'none', '-e', 'PS1=$ ', ...flags, image, 'sh');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  };

  beforeAll(() => {
    env = new TestEnv('attach');
    image = loadBusybox(env);
  });
  afterAll(async () => {
    const all = t('ps', '-aq').stdout.split('\n').filter(Boolean);
    if (all.length) t('rm', '-f', ...all);
    await env.cleanup();
  });

  it('run -dit, then attach: the shell answers, ctrl-p ctrl-q leaves it running, attach again, exit 3 ends attach with 3', () => {
    detached('box');
    const id: string = inspect('box').Id;
    // The socket's path is longer than a unix socket address may be: the monitor binds it from its directory.
    const sock = join(env.root, 'containers', id, 'attach.sock');
    expect(sock.length).toBeGreaterThan(107);
    expect(statSync(sock).mode & 0o777).toBe(0o600);

    const first = drive([{ sleep: 0.5 }, { send: 'echo $((6*7))\r' }, { wait: '42' }, { send: CTRL_P_Q }], ['attach', 'box']);
    expect(first.out).toContain('42');
    expect(first.out).not.toMatch(/escape|detach|error/i);
    expect(first.status).toBe(0);
    expect(inspect('box').State).toMatchObject({ Status: 'running', Running: true });
    // What was shown while attached is in the log too.
    expect(t('logs', 'box').stdout).toContain('42');

    const second = drive([{ sleep: 0.5 }, { send: 'echo again-$((1+1))\r' }, { wait: 'again-2' }, { send: CTRL_P_Q }], ['attach', 'box']);
    expect(second.out).toContain('again-2');
    expect(second.status).toBe(0);

    const last = drive([{ sleep: 0.5 }, { send: 'echo bye-$((2+2))\r' }, { wait: 'bye-4' }, { send: 'exit 3\r' }], ['attach', 'box']);
    expect(last.out).toContain('bye-4');
    expect(last.status).toBe(3);
    expect(inspect('box').State).toMatchObject({ Status: 'exited', ExitCode: 3 });
    expect(readdirSync(join(env.root, 'containers', id))).not.toContain('attach.sock');
  });

  it('--detach-keys: ctrl-a,x detaches; an x alone or the default keys are typed through', () => {
    detached('keys');
    const r = drive(
      [{ sleep: 0.5 }, { send: 'echo x-marks-$((3*3))\r' }, { wait: 'x-marks-9' }, { send: CTRL_P_Q }, { send: 'echo still-$((5+5))\r' }, { wait: 'still-10' }, { send: '\u0001x' }],
      ['attach', '--detach-keys', 'ctrl-a,x', 'keys'],
    );
    expect(r.out).toContain('x-marks-9');
    expect(r.out).toContain('still-10');
    expect(r.status).toBe(0);
    expect(inspect('keys').State.Running).toBe(true);
    const bad = t('attach', '--detach-keys', 'ctrl-P', 'keys');
    expect(bad.status).toBe(125);
    expect(bad.stderr).toContain('"--detach-keys" flag: unknown key "ctrl-P"');
  });

  it('gives the container the terminal\'s size, and its resizes', () => {
    detached('size');
    const r = drive(
      [{ sleep: 0.5 }, { send: 'stty size\r' }, { wait: '30 100' }, { resize: [40, 120] }, { sleep: 0.3 }, { send: 'stty size\r' }, { wait: '40 120' }, { send: CTRL_P_Q }],
      ['attach', 'size'],
    );
    expect(r.out).toContain('30 100');
    expect(r.out).toContain('40 120');
    expect(r.status).toBe(0);
  });

  it('gives the local terminal its mode back, after a detach and after the exit', () => {
    detached('modes');
    // `stty -g` before and after tsrun (the second may follow the shell's prompt on its line)
    const stty = (out: string) => out.match(/[0-9a-f]+(:[0-9a-f]+){20,}/g) ?? [];
    const shell = 'stty -g; TSRUN; stty -g';
    const detachedRun = stty(drive([{ sleep: 0.5 }, { send: 'echo m-$((7+7))\r' }, { wait: 'm-14' }, { send: CTRL_P_Q }, { sleep: 0.5 }], ['attach', 'modes'], shell).out);
    expect(detachedRun).toHaveLength(2);
    expect(detachedRun[1]).toBe(detachedRun[0]);
    const exited = stty(drive([{ sleep: 0.5 }, { send: 'exit 0\r' }, { sleep: 0.5 }], ['attach', 'modes'], shell).out);
    expect(exited).toHaveLength(2);
    expect(exited[1]).toBe(exited[0]);
  });

  it('lets two clients attach at once: both see the output', async () => {
    detached('pair');
    const watching = driveAsync([{ wait: 'pair-21' }, { send: CTRL_P_Q }], ['attach', 'pair']);
    await new Promise((r) => setTimeout(r, 1500));
    const typing = await driveAsync([{ send: 'echo pair-$((3*7))\r' }, { wait: 'pair-21' }, { send: CTRL_P_Q }], ['attach', 'pair']);
    const watched = await watching;
    expect(typing.out).toContain('pair-21');
    expect(watched.out).toContain('pair-21');
    expect([typing.status, watched.status]).toEqual([0, 0]);
    expect(inspect('pair').State.Running).toBe(true);
  });

  it('start -ai gives the terminal of a container made with -it from its first byte, and detaches too', () => {
    const created = drive([], ['create', '-it', '--name', 'later', '--network', 'none', '-e', 'PS1=$ ', image, 'sh']);
    expect(created.status).toBe(0);
    const first = drive([{ wait: '$ ' }, { send: 'echo started-$((1+1))\r' }, { wait: 'started-2' }, { send: 'exit 4\r' }], ['start', '-ai', 'later']);
    expect(first.out).toContain('BusyBox'); // the banner: attached before the shell started
    expect(first.out).toContain('started-2');
    expect(first.status).toBe(4);
    expect(inspect('later').State).toMatchObject({ Status: 'exited', ExitCode: 4 });

    const again = drive([{ wait: '$ ' }, { send: 'echo back-$((2*4))\r' }, { wait: 'back-8' }, { send: CTRL_P_Q }], ['start', '-ai', 'later']);
    expect(again.out).toContain('back-8');
    expect(again.status).toBe(0);
    expect(inspect('later').State.Running).toBe(true);
    const end = drive([{ sleep: 0.5 }, { send: 'exit 5\r' }], ['attach', 'later']);
    expect(end.status).toBe(5);
  });

  it('run -it: ctrl-p ctrl-q leaves the container running; --rm removes it once the shell exits', () => {
    const fg = drive([{ wait: '$ ' }, { send: 'echo fg-$((4*4))\r' }, { wait: 'fg-16' }, { send: CTRL_P_Q }], ['run', '-it', '--name', 'fg', '--network', 'none', '-e', 'PS1=$ ', image, 'sh']);
    expect(fg.out).toContain('fg-16');
    expect(fg.status).toBe(0);
    expect(inspect('fg').State.Running).toBe(true);
    expect(drive([{ sleep: 0.5 }, { send: 'exit 6\r' }], ['attach', 'fg']).status).toBe(6);

    const gone = drive([{ wait: '$ ' }, { send: 'exit 7\r' }], ['run', '--rm', '-it', '--name', 'gone', '--network', 'none', '-e', 'PS1=$ ', image, 'sh']);
    expect(gone.status).toBe(7);
    expect(t('ps', '-a').stdout).not.toMatch(/\bgone\b/);
  });

  it('leaves nothing mounted or running', () => {
    const all = t('ps', '-aq').stdout.split('\n').filter(Boolean);
    if (all.length) t('rm', '-f', ...all);
    expect(env.leaks()).toEqual([]);
  });
});
