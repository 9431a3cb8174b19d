// A store whose file system is full: nothing is lost and nothing shows a stack trace. The store
// is a small tmpfs, filled to the last byte while containers run; every command then either
// works or fails with one line that names ENOSPC and a path, `ps -a` still lists everything,
// and a container killed meanwhile keeps its exit code (the monitor cannot make a new file:
// native/status.c overwrites its status file in place). Then the space comes back, and
// everything works and cleans up as usual.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePrivileged, repoRoot, TestEnv, type Result } from './helpers/env.js';
import { loadBusybox } from './helpers/images.js';
import { buildImage, pushLayout, startRegistry, type TestRegistry } from './helpers/registry.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describePrivileged('a full store file system', () => {
  let env: TestEnv;
  let image: string;
  let reg: TestRegistry | undefined;
  let layout: string | undefined;
  let mounted = false;
  let pulled: string;
  /** Outside the store: an image archive to load while the store is full. */
  let work: string | undefined;
  let archive: string;
  const t = (...args: string[]): Result => env.run(args, { timeout: 60_000 });
  const inspect = (name: string) => {
    const r = t('inspect', name);
    expect(r.stderr).toBe('');
    return JSON.parse(r.stdout)[0];
  };
  const until = async (what: () => boolean, ms = 10_000) => {
    for (const end = Date.now() + ms; Date.now() < end; await sleep(100)) if (what()) return;
    throw new Error('condition not met in time');
  };

  /** Fills the store's file system to the last byte, with one more file each time. */
  let fills = 0;
  const fill = () => {
    const file = join(env.root, `filler-${fills++}`);
    const { bavail, bsize } = statfsSync(env.root);
    if (bavail > 0) execFileSync('fallocate', ['-l', String(bavail * bsize), file]);
    // Whatever was freed meanwhile, to the last block: dd ends with ENOSPC.
    spawnSync('dd', ['if=/dev/zero', `of=${file}-tail`, 'bs=4096'], { stdio: 'ignore' });
    expect(statfsSync(env.root).bavail).toBe(0);
  };
  const unfill = () => {
    for (const f of readdirSync(env.root)) if (f.startsWith('filler-')) rmSync(join(env.root, f));
  };

  /**
   * Runs tsrun while the disk is full: it works, or fails as an engine error with one line,
   * `tsrun: <what>: no space left on device (ENOSPC): <path>`; never an internal error, never a
   * stack. A command that works may warn about the full disk, in that one line.
   */
  const full = (...args: string[]): Result => {
    fill(); // again: a command before may have freed space (rm)
    const r = t(...args);
    const what = `tsrun ${args.join(' ')}: ${JSON.stringify(r.stderr)}`;
    expect(r.stderr, what).not.toMatch(/internal error/);
    expect(r.stderr, what).not.toMatch(/^\s+at /m);
    const lines = r.stderr.split('\n').filter(Boolean);
    expect(lines.length, what).toBeLessThanOrEqual(1);
    if (r.status !== 0) expect([1, 125], what).toContain(r.status); // 1: docker's for stop/kill/rm
    if (r.status !== 0 || lines.length) expect(lines[0], what).toMatch(/^tsrun: .+: no space left on device \(ENOSPC\): \/\S+/);
    return r;
  };

  const detach = (name: string, ...cmd: string[]) => {
    const r = t('run', '-d', '--network', 'none', '--name', name, image, ...cmd);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  };

  beforeAll(async () => {
    env = new TestEnv('disk');
    // The store on its own small file system, so that filling it touches nothing else.
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=48m,mode=0700', 'tsrun-full-disk', env.root]);
    mounted = true;
    image = loadBusybox(env);
    rmSync(join(env.root, 'busybox_latest.tar'));
    work = mkdtempSync(join(tmpdir(), 'tsrun-full-disk-'));
    archive = join(work, 'other.tar');
    execFileSync(process.execPath, [join(repoRoot, 'scripts', 'make-busybox-image.mjs'), '--out', archive, '--format', 'docker-archive', '--name', 'other:latest']);
    reg = await startRegistry({ mode: 'http' });
    const built = await buildImage({ layers: [{ 'hello.txt': 'hello\n'.repeat(20_000) }] });
    layout = built.layoutDir;
    pulled = `${reg.host}/full/disk:v1`;
    await pushLayout(reg, layout, 'full/disk:v1');
  });
  afterAll(async () => {
    if (mounted) {
      unfill();
      const ids = t('ps', '-aq').stdout.split('\n').filter(Boolean);
      if (ids.length) t('rm', '-f', ...ids);
      // Before the leak check, which would count this mount as one of tsrun's.
      execFileSync('umount', [env.root]);
    }
    await reg?.stop();
    if (layout) rmSync(layout, { recursive: true, force: true });
    if (work) rmSync(work, { recursive: true, force: true });
    await env.cleanup();
  });

  it('containers run on the small store; then it is filled to the last byte', () => {
    for (const name of ['stopped', 'killed', 'killed-outside', 'running']) detach(name, 'sleep', '600');
    detach('done', 'true');
    expect(t('wait', 'done').stdout).toBe('0\n');
    fill();
  });

  it('kill, and a SIGKILL from outside: the exit code 137 is kept', async () => {
    full('kill', 'killed');
    process.kill(inspect('killed-outside').State.Pid, 'SIGKILL');
    for (const name of ['killed', 'killed-outside']) {
      await until(() => inspect(name).State.Status === 'exited');
      expect(inspect(name).State).toMatchObject({ Status: 'exited', ExitCode: 137 });
    }
  });

  it('stop', () => {
    full('stop', '-t', '1', 'stopped');
    expect(inspect('stopped').State).toMatchObject({ Status: 'exited', ExitCode: 137 });
  });

  it('ps -a prints its table with every container', () => {
    const r = full('ps', '-a');
    for (const name of ['stopped', 'killed', 'killed-outside', 'running', 'done']) expect(r.stdout).toMatch(new RegExp(` ${name}\\n`));
    expect(r.stdout).toMatch(/Up .* running\n/);
  });

  it('inspect', () => {
    const r = full('inspect', 'stopped', 'killed', 'running', 'done');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toHaveLength(4);
  });

  it('rm, run, pull and load work or say the disk is full', () => {
    full('rm', 'done');
    full('run', '--rm', '--network', 'none', image, 'true');
    full('run', '-d', '--network', 'none', '--name', 'late', image, 'sleep', '600');
    full('pull', pulled);
    full('load', '-i', archive);
    full('rm', '-f', 'running');
  });

  it('-D adds the stack under that line', () => {
    fill();
    const r = t('-D', 'run', '--rm', '--network', 'none', image, 'true');
    expect(r.status).toBe(125);
    expect(r.stderr).toMatch(/^tsrun: .+: no space left on device \(ENOSPC\)(: \/\S+)?\n.*ENOSPC.*\n\s+at /);
  });

  it('once there is space again: the exit codes are still there, and everything works', () => {
    unfill();
    for (const name of ['stopped', 'killed', 'killed-outside']) expect(inspect(name).State).toMatchObject({ Status: 'exited', ExitCode: 137 });
    const ps = t('ps', '-a');
    expect(ps.stderr).toBe('');
    expect(t('run', '--rm', '--network', 'none', image, 'echo', 'ok').stdout).toBe('ok\n');
    const pull = t('pull', pulled);
    expect(pull.stderr).toBe('');
    expect(pull.status).toBe(0);
    expect(t('load', '-q', '-i', archive).status).toBe(0);
    expect(t('images').stdout).toMatch(/full\/disk +v1 /);
    expect(t('images').stdout).toMatch(/other +latest /);
    const ids = t('ps', '-aq').stdout.split('\n').filter(Boolean);
    const rm = t('rm', '-f', ...ids);
    expect(rm.stderr).toBe('');
    expect(rm.status).toBe(0);
    expect(t('ps', '-aq').stdout).toBe('');
    expect(env.leaks().filter((l) => !l.includes('tsrun-full-disk'))).toEqual([]);
  });
});
