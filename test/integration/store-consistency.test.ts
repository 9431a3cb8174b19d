// The faults issue 19 found, each made certain with a named crash or stall point
// (src/sys/crash.ts) rather than hoped for with timing: a commit killed while the container is
// frozen, a start killed between its cgroup and its monitor, a create killed before its
// record, rmi racing the create of a container from the same image; and `system check`.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePrivileged, TestEnv, type Result } from './helpers/env.js';
import { loadBusybox } from './helpers/images.js';

describePrivileged('store consistency after kill -9 and races', () => {
  let env: TestEnv;
  let image: string;
  const t = (args: string[], extraEnv: NodeJS.ProcessEnv = {}): Result => env.run(args, { timeout: 60_000, env: extraEnv });
  const crashAt = (point: string, ...args: string[]) => {
    const r = t(args, { TSRUN_CRASH_AT: point });
    expect(r.status, `${args.join(' ')} was to die at ${point}: ${r.stderr}`).toBeNull(); // killed by a signal
    return r;
  };
  const check = () => JSON.parse(t(['system', 'check', '--format', 'json']).stdout) as Array<{ kind: string; subject: string; detail: string }>;
  const inspect = (name: string) => JSON.parse(t(['inspect', name]).stdout)[0];
  const netnsOf = (id: string) => `/run/netns/tsrun-${id.slice(0, 12)}`;
  const endpoints = () => (existsSync(join(env.root, 'endpoints')) ? readdirSync(join(env.root, 'endpoints')).filter((f) => f.endsWith('.json')) : []);
  const cgroupDirs = (id: string) => {
    const out: string[] = [];
    for (const h of readdirSync('/sys/fs/cgroup')) {
      const dir = join('/sys/fs/cgroup', h, env.cgroupParent, id);
      if (existsSync(dir)) out.push(dir);
    }
    return out;
  };
  const idOf = (name: string) => t(['inspect', '-f', '{{.Id}}', name]).stdout.trim();

  beforeAll(() => {
    env = new TestEnv('consist');
    image = loadBusybox(env);
  });
  afterAll(async () => {
    const all = t(['ps', '-aq']).stdout.split('\n').filter(Boolean);
    if (all.length) t(['rm', '-f', ...all]);
    await env.cleanup();
  });

  it('a clean store is consistent', () => {
    const r = t(['system', 'check']);
    expect(r).toMatchObject({ status: 0, stdout: 'the store is consistent\n', stderr: '' });
    expect(check()).toEqual([]);
  });

  it('commit killed while it holds the container frozen: ps says paused, unpause thaws, exec works again', () => {
    t(['run', '-d', '--network', 'none', '--name', 'frozen', image, 'sleep', '300']);
    crashAt('commit:paused', 'commit', 'frozen', 'never-made');
    // The kernel's truth, not a record's: paused, and the commands that follow act on it.
    expect(inspect('frozen').State).toMatchObject({ Status: 'paused', Paused: true, Running: true });
    expect(t(['ps', '--format', '{{.Names}} {{.Status}}']).stdout).toMatch(/^frozen Up .* \(Paused\)$/m);
    const exec = t(['exec', 'frozen', 'true']);
    expect(exec.status).toBe(125);
    expect(exec.stderr).toMatch(/cannot exec in container frozen: it is paused; unpause it first/);
    expect(t(['unpause', 'frozen']).status).toBe(0);
    expect(inspect('frozen').State).toMatchObject({ Status: 'running', Paused: false });
    expect(t(['exec', 'frozen', 'echo', 'thawed']).stdout).toBe('thawed\n');
    expect(t(['images', '-q', 'never-made']).stdout).toBe('');
    expect(t(['rm', '-f', 'frozen']).status).toBe(0);
  });

  it('rm -f of a container a killed commit left frozen: the SIGKILL reaches it (cgroup v1 freezes it out)', () => {
    t(['run', '-d', '--network', 'none', '--name', 'iced', image, 'sleep', '300']);
    crashAt('commit:paused', 'commit', 'iced', 'never-made');
    expect(inspect('iced').State.Status).toBe('paused');
    const started = Date.now();
    expect(t(['rm', '-f', 'iced'])).toMatchObject({ status: 0, stdout: 'iced\n', stderr: '' });
    expect(Date.now() - started).toBeLessThan(5000); // not the 10 s wait for a SIGKILL that never lands
    expect(t(['ps', '-a', '--format', '{{.Names}}']).stdout).not.toMatch(/iced/);
  });

  for (const point of ['start:state-intent', 'start:cgroup-made', 'start:network-attached', 'start:helper-started']) {
    it(`run -d killed at ${point}: nothing of it is left after rm -f, and its address is given out again`, () => {
      const first = t(['run', '-d', '--name', 'probe', image, 'sleep', '300']);
      expect(first.status).toBe(0);
      const firstIp = inspect('probe').NetworkSettings.IPAddress;
      expect(t(['rm', '-f', 'probe']).status).toBe(0);

      crashAt(point, 'run', '-d', '--name', 'victim', image, 'sleep', '300');
      const id = idOf('victim');
      expect(id).toMatch(/^[0-9a-f]{64}$/);
      // Never ran: created, and `start` works (once, not "already attached to a network").
      expect(inspect('victim').State.Status).toBe('created');
      expect(t(['start', 'victim'])).toMatchObject({ status: 0, stderr: '' });
      expect(inspect('victim').State.Status).toBe('running');
      expect(inspect('victim').NetworkSettings.IPAddress).toBe(firstIp);
      expect(t(['rm', '-f', 'victim']).status).toBe(0);
      expect(existsSync(netnsOf(id))).toBe(false);
      expect(cgroupDirs(id)).toEqual([]);
      expect(endpoints()).toEqual([]);

      // And when the next command is rm -f itself.
      crashAt(point, 'run', '-d', '--name', 'victim2', image, 'sleep', '300');
      const id2 = idOf('victim2');
      expect(t(['rm', '-f', 'victim2']).status).toBe(0);
      expect(existsSync(netnsOf(id2))).toBe(false);
      expect(cgroupDirs(id2)).toEqual([]);
      expect(endpoints()).toEqual([]);
      expect(check()).toEqual([]);
      const next = t(['run', '-d', '--name', 'next', image, 'sleep', '300']);
      expect(next.status).toBe(0);
      expect(inspect('next').NetworkSettings.IPAddress).toBe(firstIp);
      expect(t(['rm', '-f', 'next']).status).toBe(0);
    });
  }

  it('a killed start is reported by system check and repaired; network prune releases it too', () => {
    t(['network', 'create', '--subnet', '10.213.77.0/24', '-o', 'bridge=tcons77', 'consnet']);
    crashAt('start:network-attached', 'run', '-d', '--network', 'consnet', '--name', 'held', image, 'sleep', '300');
    const id = idOf('held');
    const found = check();
    expect(found).toEqual(expect.arrayContaining([expect.objectContaining({ kind: 'container', subject: id.slice(0, 12) })]));
    expect(t(['system', 'check']).status).toBe(1);
    // network rm refuses while the endpoint is held; prune (after releasing it) removes it.
    expect(existsSync(netnsOf(id))).toBe(true);
    const prune = t(['network', 'prune', '-f']);
    expect(prune.stdout).toMatch(/consnet/);
    expect(existsSync(netnsOf(id))).toBe(false);
    expect(cgroupDirs(id)).toEqual([]);
    expect(check()).toEqual([]);
    expect(t(['rm', 'held']).status).toBe(0);
  });

  it('system check --repair releases a dead monitor\'s container and says so', () => {
    t(['run', '-d', '--name', 'orphan', image, 'sleep', '300']);
    const id = idOf('orphan');
    const status = readFileSync(join(env.root, 'containers', id, 'status'), 'utf8');
    const monitor = Number(/^monitor_pid=(\d+)$/m.exec(status)![1]);
    process.kill(monitor, 'SIGKILL');
    const r = t(['system', 'check', '--repair']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^container: ${id.slice(0, 12)}: its monitor died .* \\(repaired\\)$`, 'm'));
    expect(cgroupDirs(id)).toEqual([]);
    expect(existsSync(netnsOf(id))).toBe(false);
    expect(t(['system', 'check']).stdout).toBe('the store is consistent\n');
    expect(inspect('orphan').State).toMatchObject({ Status: 'exited', Running: false });
    expect(t(['rm', 'orphan']).status).toBe(0);
  });

  it('create killed before its record: the name is free again, and system check removes the debris', () => {
    crashAt('create:dir-made', 'create', '--name', 'half', image, 'true');
    expect(t(['ps', '-a', '--format', '{{.Names}}']).stdout).not.toMatch(/half/);
    expect(check()).toEqual([expect.objectContaining({ kind: 'container', detail: expect.stringMatching(/half-made by a create that was killed/) })]);
    expect(t(['system', 'check', '--repair']).status).toBe(0);
    expect(readdirSync(join(env.root, 'containers')).filter((d) => !d.startsWith('.'))).toEqual([]);
    // Killed again, and this time the name is simply asked for again.
    crashAt('create:before-record', 'create', '--name', 'half', image, 'true');
    const again = t(['create', '--name', 'half', image, 'true']);
    expect(again).toMatchObject({ status: 0, stderr: '' });
    expect(t(['rm', 'half']).status).toBe(0);
    expect(check()).toEqual([]);
  });

  it('rename killed between reserving the new name and recording it: the old name still works, check frees the new one', () => {
    t(['create', '--name', 'before', image, 'true']);
    crashAt('rename:reserved', 'rename', 'before', 'after');
    expect(inspect('before').Name).toBe('/before');
    expect(check()).toEqual([expect.objectContaining({ kind: 'name', subject: 'after', detail: expect.stringMatching(/rename that was killed/) })]);
    expect(t(['system', 'check', '--repair']).status).toBe(0);
    expect(t(['rename', 'before', 'after'])).toMatchObject({ status: 0, stderr: '' });
    expect(t(['rm', 'after']).status).toBe(0);
    expect(check()).toEqual([]);
  });

  it('a build killed during a RUN step: its step container is found and removed, its process and cgroup with it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsrun-consist-build-'));
    writeFileSync(join(dir, 'Dockerfile'), `FROM ${image}\nRUN sleep 300\n`);
    const build = env.spawn(['build', '-t', 'never:built', dir]);
    const exited = new Promise((resolve) => build.on('exit', resolve));
    let id = '';
    for (const end = Date.now() + 30_000; !id && Date.now() < end; await new Promise((r) => setTimeout(r, 100))) {
      id = readdirSync(join(env.root, 'containers')).find((d) => /^[0-9a-f]{64}$/.test(d) && existsSync(join(env.root, 'containers', d, 'status'))) ?? '';
    }
    expect(id).not.toBe('');
    await new Promise((r) => setTimeout(r, 500)); // its RUN is running
    build.kill('SIGKILL');
    await exited;
    expect(check()).toEqual(expect.arrayContaining([expect.objectContaining({ kind: 'container', subject: id.slice(0, 12), detail: expect.stringMatching(/build that was killed/) })]));
    expect(t(['system', 'check', '--repair']).status).toBe(0);
    expect(existsSync(join(env.root, 'containers', id))).toBe(false);
    expect(cgroupDirs(id)).toEqual([]);
    expect(check()).toEqual([]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('rmi racing a create of the same image: the container is made and rmi refuses, or rmi wins and create says why', async () => {
    const tag = (name: string) => {
      // An image of its own (a commit), so that removing its one name deletes it.
      t(['run', '--name', 'src', '--network', 'none', image, 'touch', '/made']);
      expect(t(['commit', 'src', name]).status).toBe(0);
      t(['rm', 'src']);
    };
    // rmi while the create holds the image (after its marker).
    tag('racy:one');
    const run = env.spawn(['run', '--rm', '--network', 'none', 'racy:one', 'cat', '/made'], { env: { TSRUN_STALL_AT: 'create:dir-made:2000' } });
    const runDone = new Promise<number | null>((resolve) => run.on('exit', resolve));
    await new Promise((r) => setTimeout(r, 1000));
    const rmi = t(['rmi', 'racy:one']);
    expect(rmi.status).toBe(1);
    expect(rmi.stderr).toMatch(/conflict: unable to delete \w{12} \(must be forced\) - image is being used by container \w{12}, being created/);
    expect(await runDone).toBe(0);
    expect(t(['rmi', 'racy:one']).status).toBe(0);

    // rmi between the create's lookup and its marker: the create fails, saying why, and leaves nothing.
    tag('racy:two');
    let stderr = '';
    const run2 = env.spawn(['run', '--rm', '--network', 'none', 'racy:two', 'true'], { env: { TSRUN_STALL_AT: 'create:begin:2000' } });
    run2.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const run2Done = new Promise<number | null>((resolve) => run2.on('exit', resolve));
    await new Promise((r) => setTimeout(r, 1000));
    expect(t(['rmi', 'racy:two']).stdout).toMatch(/^Deleted: sha256:/m);
    expect(await run2Done).toBe(125);
    expect(stderr).toMatch(/image racy:two was removed while container \S+ was being created from it/);
    expect(t(['ps', '-aq']).stdout).toBe('');
    expect(check()).toEqual([]);
  });
});
