// `run` with cgroup limits on this host's real hierarchy (v1 controllers here, v2 elsewhere):
// the container is in its cgroup from its first instruction, sees itself at /, and is held by
// its limits. Each test file uses its own cgroup parent and removes it.
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { detectCgroups } from '../../src/cgroups/index.js';
import { describePrivileged, TestEnv } from './helpers/env.js';
import { loadBusybox } from './helpers/images.js';

describePrivileged('tsrun run: cgroups', () => {
  let env: TestEnv;
  let image: string;
  const parent = `tsrun-test-${process.pid}`;
  const layout = detectCgroups();
  const v2 = layout.mode === 'v2';
  const file = (controller: string, name: string) => (v2 ? `/sys/fs/cgroup/${name}` : `/sys/fs/cgroup/${controller}/${name}`);
  const run = (flags: string[], script: string) =>
    env.run(['run', '--rm', '--cgroup-parent', parent, ...flags, image, 'sh', '-c', script], { timeout: 60_000 });

  beforeAll(() => {
    env = new TestEnv('cgroups');
    image = loadBusybox(env);
  });
  afterAll(async () => {
    await env.cleanup();
    const left = [layout.unified, ...Object.values(layout.v1)].filter((d): d is string => !!d && existsSync(`${d}/${parent}`));
    expect(left).toEqual([]);
  });

  it('puts the container in its own cgroup, seen as / through a cgroup namespace', () => {
    const r = run([], 'cat /proc/self/cgroup');
    expect(r.status).toBe(0);
    for (const line of r.stdout.trim().split('\n')) expect(line).toMatch(/:\/$/);
  });

  it('shows the limits in force under /sys/fs/cgroup, read-only', () => {
    const r = run(['--memory', '64m', '--pids-limit', '50'], `cat ${file('memory', v2 ? 'memory.max' : 'memory.limit_in_bytes')} ${file('pids', 'pids.max')}; (touch /sys/fs/cgroup/x) 2>/dev/null || echo RO`);
    expect(r.stdout).toBe('67108864\n50\nRO\n');
  });

  it('contains a fork bomb under --pids-limit 32, and the host can still fork', () => {
    // A bounded bomb: 200 background sleeps; the cgroup stops it at 32 tasks.
    const r = run(['--pids-limit', '32'], `for i in $(seq 200); do (sleep 3 &) 2>/dev/null; done; cat ${file('pids', 'pids.current')}`);
    const current = Number(r.stdout.trim().split('\n').at(-1));
    expect(current).toBeGreaterThan(1);
    expect(current).toBeLessThanOrEqual(32);
    expect(env.run(['images', '-q']).status).toBe(0); // the host still forks
  });

  it('kills a memory hog under --memory 32m with 137, OOMKilled', () => {
    const r = env.run(['run', '--name', 'hog', '--cgroup-parent', parent, '--memory', '32m', '--memory-swap', '32m', image, 'sh', '-c',
      'x=$(head -c 200m /dev/zero | tr "\\0" a); echo survived'], { timeout: 60_000 });
    expect(r.stdout).not.toContain('survived');
    expect(r.status).toBe(137);
    expect(JSON.parse(env.run(['inspect', 'hog']).stdout)[0].State).toMatchObject({ OOMKilled: true, ExitCode: 137 });
    env.run(['rm', 'hog']);
  });

  it('pins to a CPU with --cpuset-cpus 0', () => {
    const r = run(['--cpuset-cpus', '0'], 'grep Cpus_allowed_list /proc/self/status');
    expect(r.stdout).toMatch(/Cpus_allowed_list:\s+0\n/);
  });

  it('refuses bad limits with docker-style messages (125)', () => {
    const low = env.run(['run', '--rm', '--memory', '1m', image, 'true']);
    expect(low.status).toBe(125);
    expect(low.stderr).toContain('--memory');
    const bad = env.run(['run', '--rm', '--cpus', 'lots', image, 'true']);
    expect(bad.status).toBe(125);
    expect(bad.stderr).toContain('--cpus');
  });

  it('stats agrees with the cgroup files; update changes a running container\'s limits', () => {
    const id = env.run(['run', '-d', '--network', 'none', '--cgroup-parent', parent, '--memory', '64m', '--pids-limit', '20', image, 'sleep', '30']).stdout.trim();
    try {
      const stats = JSON.parse(env.run(['stats', '--no-stream', '--format', 'json', id]).stdout.trim().split('\n')[0]!);
      expect(stats.raw.memLimit).toBe(64 * 1024 * 1024);
      expect(stats.raw.pids).toBe(1);
      const pidsMax = v2 ? `${layout.unified}/${parent}/${id}/pids.max` : `${layout.v1.pids}/${parent}/${id}/pids.max`;
      expect(readFileSync(pidsMax, 'utf8').trim()).toBe('20');
      expect(env.run(['update', '--pids-limit', '40', '--memory', '96m', id]).status).toBe(0);
      expect(readFileSync(pidsMax, 'utf8').trim()).toBe('40');
      const after = JSON.parse(env.run(['stats', '--no-stream', '--format', 'json', id]).stdout.trim().split('\n')[0]!);
      expect(after.raw.memLimit).toBe(96 * 1024 * 1024);
      const inspected = JSON.parse(env.run(['inspect', id]).stdout)[0];
      expect(inspected.HostConfig.Memory).toBe(96 * 1024 * 1024);
      expect(inspected.HostConfig.PidsLimit).toBe(40);
      // One place for the limits: the spec (config.json); the record keeps none to go stale.
      expect(inspected.Tsrun.Limits).toMatchObject({ memory: { limit: 96 * 1024 * 1024 }, pids: { limit: 40 } });
      const dir = inspected.Tsrun.ContainerDir as string;
      expect(JSON.parse(readFileSync(`${dir}/config.json`, 'utf8')).linux.resources.pids.limit).toBe(40);
      expect(JSON.parse(readFileSync(`${dir}/container.json`, 'utf8')).options.resources).toBeUndefined();
      // and the next start makes the cgroup from it
      expect(env.run(['restart', '-t', '0', id]).status).toBe(0);
      expect(readFileSync(pidsMax, 'utf8').trim()).toBe('40');
    } finally {
      env.run(['rm', '-f', id]);
    }
  });
});
