// Rootless tsrun: an ordinary user, made for this test with its own subordinate ids, pulls,
// runs, execs, stops and removes containers; the store is in its home and nothing of it runs
// as root. Needs root (to create the user), and the uidmap package (newuidmap/newgidmap).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePrivileged, repoRoot } from './helpers/env.js';
import { pushLayout, startRegistry, type TestRegistry } from './helpers/registry.js';

describePrivileged('rootless tsrun', () => {
  const user = `tsrunrl${process.pid % 100000}`;
  // A range of its own, far from anyone's (useradd may add one as well; the first one wins).
  const subStart = 500_000_000 + (process.pid % 1000) * 65536;
  let app = '';
  let node = process.execPath;
  let uid = 0;
  let reg: TestRegistry | undefined;
  let home = '';
  const work = mkdtempSync(join(tmpdir(), 'tsrun-test-rootless-'));

  /** tsrun as the user, from a copy of the build it can read. */
  const t = (...args: string[]) => {
    const r = spawnSync('runuser', ['-u', user, '--', 'env', `HOME=${home}`, `PATH=/usr/sbin:/usr/bin:/sbin:/bin`, node, join(app, 'dist/tsrun.cjs'), ...args], {
      encoding: 'utf8',
      timeout: 60_000,
      cwd: '/',
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  beforeAll(async () => {
    execFileSync('useradd', ['-m', '-K', 'SUB_UID_COUNT=0', '-K', 'SUB_GID_COUNT=0', user]);
    const range = `${subStart}-${subStart + 65535}`;
    execFileSync('usermod', ['--add-subuids', range, '--add-subgids', range, user]);
    uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }));
    home = execFileSync('getent', ['passwd', user], { encoding: 'utf8' }).split(':')[5]!;
    // The repository may sit where the user cannot read (/root/...): give it a copy.
    chmodSync(work, 0o755);
    app = join(work, 'app');
    for (const p of ['dist', 'node_modules', 'package.json', 'native/build']) cpSync(join(repoRoot, p), join(app, p), { recursive: true });
    try {
      execFileSync('runuser', ['-u', user, '--', 'test', '-x', node]);
    } catch {
      node = join(work, 'node');
      cpSync(process.execPath, node);
    }
    execFileSync('chmod', ['-R', 'a+rX', work]);
    // An image in a registry, and the same as an archive the user can read.
    const layout = join(work, 'layout');
    execFileSync(process.execPath, [join(repoRoot, 'scripts/make-busybox-image.mjs'), '--out', layout, '--tag', 'latest']);
    reg = await startRegistry({ mode: 'http' });
    await pushLayout(reg, layout, 'rl/busybox:latest');
  }, 120_000);

  afterAll(async () => {
    if (home) {
      const ids = t('ps', '-aq').stdout.split('\n').filter(Boolean);
      if (ids.length) t('rm', '-f', ...ids);
    }
    await reg?.stop();
    spawnSync('userdel', ['-r', '-f', user], { stdio: 'ignore' });
    for (const f of ['/etc/subuid', '/etc/subgid']) {
      const text = readFileSync(f, 'utf8');
      if (text.includes(`${user}:`)) execFileSync('sed', ['-i', `/^${user}:/d`, f]);
    }
    rmSync(work, { recursive: true, force: true });
    rmSync(`/tmp/tsrun-${uid}`, { recursive: true, force: true });
  });

  it('pulls into a store in the user\'s home', () => {
    const r = t('pull', '-q', `${reg!.host}/rl/busybox`);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const store = join(home, '.local/share/tsrun');
    expect(existsSync(join(store, 'images.json'))).toBe(true);
    // The layers carry the image's owners, mapped: root's files are the user's on the host.
    expect(execFileSync('find', [join(store, 'layers'), '-name', 'busybox', '-printf', '%u'], { encoding: 'utf8' })).toBe(user);
  });

  it('runs a container whose root is the user on the host and its subordinate ids after', () => {
    const r = t('run', '--rm', `${reg!.host}/rl/busybox`, 'sh', '-c', 'cat /proc/self/uid_map; stat -c %u /bin/busybox; id -u');
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n').map((l) => l.trim().split(/\s+/).join(' '))).toEqual([`0 ${uid} 1`, `1 ${subStart} 65536`, '0', '0']);
  });

  it('detaches, execs, logs, stops and removes, with nothing running as root', () => {
    const id = t('run', '-d', '--name', 'bg', '--network', 'none', `${reg!.host}/rl/busybox`, 'sh', '-c', 'echo hello; sleep 60').stdout.trim();
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    expect(t('ps', '--format', '{{.Names}} {{.State}}').stdout).toBe('bg running\n');
    const pid = Number(t('inspect', '-f', '{{.State.Pid}}', 'bg').stdout);
    const owners = (p: number) => execFileSync('ps', ['-o', 'user=', '-p', String(p)], { encoding: 'utf8' }).trim();
    expect(owners(pid)).toBe(user);
    const monitor = Number(t('inspect', '-f', '{{.Tsrun.MonitorPid}}', 'bg').stdout);
    expect(owners(monitor)).toBe(user);
    const exec = t('exec', 'bg', 'sh', '-c', 'id -u; cat /proc/1/cmdline | tr "\\0" " "');
    expect(exec.stderr).toBe('');
    expect(exec.stdout).toBe('0\nsleep 60 ');
    expect(t('logs', 'bg').stdout).toBe('hello\n');
    expect(t('stop', '-t', '1', 'bg').status).toBe(0);
    expect(t('ps', '-a', '--format', '{{.State}}').stdout).toBe('exited\n');
    expect(t('rm', 'bg').status).toBe(0);
    expect(t('ps', '-aq').stdout).toBe('');
    // The monitor is gone: reaped already (no /proc entry), or a zombie waiting for its reaper.
    let state = 'gone';
    try {
      state = readFileSync(`/proc/${monitor}/stat`, 'utf8').split(') ')[1]?.[0] ?? 'gone';
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    expect(state).toMatch(/^(gone|Z|X)$/);
  });

  it('passes a SIGTERM sent to it alone on to the container, through its user namespace', async () => {
    const outer = spawn('runuser', ['-u', user, '--', 'env', `HOME=${home}`, node, join(app, 'dist/tsrun.cjs'), 'run', '--rm', '--network', 'none',
      `${reg!.host}/rl/busybox`, 'sh', '-c', 'echo up; trap "exit 9" TERM; while :; do sleep 0.1; done'], { cwd: '/', stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => outer.on('exit', (code) => resolve(code)));
    await new Promise<void>((resolve) => outer.stdout!.on('data', (d: Buffer) => d.toString().includes('up') && resolve()));
    // The tsrun the user started, not the one inside the user namespace (the helper's child).
    const ppidOf = (pid: string) => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]!;
    const commOf = (pid: string) => readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    const tsruns = execFileSync('pgrep', ['-u', user, '-f', 'dist/tsrun.cjs run --rm'], { encoding: 'utf8' }).trim().split('\n');
    const pid = Number(tsruns.find((p) => commOf(ppidOf(p)) !== 'tsrun-helper'));
    process.kill(pid, 'SIGTERM');
    expect(await exited).toBe(9);
  }, 30_000);

  it('says what needs root', () => {
    const image = `${reg!.host}/rl/busybox`;
    const limits = t('run', '--rm', '-m', '64m', image, 'true');
    expect(limits.status).toBe(125);
    expect(limits.stderr).toMatch(/rootless tsrun cannot set cgroup limits/);
    const bridge = t('run', '--rm', '--network', 'bridge', image, 'true');
    expect(bridge.status).toBe(125);
    expect(bridge.stderr).toMatch(/bridges need root; use --network host or none/);
  });

  it('names the fix when the user has no subordinate ids', () => {
    const other = `tsrunno${process.pid % 100000}`;
    execFileSync('useradd', ['-M', '-K', 'SUB_UID_COUNT=0', '-K', 'SUB_GID_COUNT=0', other]);
    try {
      const r = spawnSync('runuser', ['-u', other, '--', 'env', `HOME=${work}`, node, join(app, 'dist/tsrun.cjs'), 'images'], { encoding: 'utf8' });
      expect(r.status).toBe(125);
      expect(r.stderr).toMatch(new RegExp(`/etc/subuid has none for ${other}: ask an administrator for \`usermod --add-subuids`));
    } finally {
      spawnSync('userdel', ['-f', other], { stdio: 'ignore' });
    }
  });

  it('keeps the store private to its user', () => {
    const store = join(home, '.local/share/tsrun');
    expect(statSync(store).uid).toBe(uid);
    expect(statSync(store).mode & 0o077).toBe(0);
  });
});
