// `tsrun run --trace`: the helper's syscalls and tsrun's host-side work on one time line.
// --trace=steps gives one line per step of the launch plan (checked against the plan rebuilt
// from the container's config.json), the host's cgroup and veth come before the container's
// first step, --trace-file moves it all to a file, and no argument is cut short. Needs root.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildPlan } from '../../src/namespaces/plan.js';
import type { OciSpec } from '../../src/namespaces/spec.js';
import { describePrivileged, TestEnv, type Result } from './helpers/env.js';
import { loadBusybox } from './helpers/images.js';

const STAMP = /^ *\+(\d+\.\d)ms \[([^\]]+)\] (.*)$/;

function ok(r: Result): string {
  if (r.status !== 0) throw new Error(`exit ${r.status}: ${r.stderr}`);
  return r.stdout;
}

/** The trace's lines as [ms, label, text]; every line of it must carry a stamp and a label. */
function parse(trace: string): Array<[number, string, string]> {
  return trace.split('\n').filter(Boolean).map((line) => {
    const m = STAMP.exec(line);
    if (!m) throw new Error(`not a trace line: ${line}`);
    return [Number(m[1]), m[2]!, m[3]!];
  });
}

describePrivileged('run --trace', () => {
  let env: TestEnv;
  let image: string;
  let steps: Result; // --trace=steps of a container on a new bridge, with a pids limit
  let id: string;
  let wallMs: number;

  beforeAll(() => {
    env = new TestEnv('trace');
    image = loadBusybox(env);
    const t0 = Date.now();
    steps = env.run(['run', '--name', 'traced', '--trace=steps', '--pids-limit', '50', image, 'true']);
    wallMs = Date.now() - t0;
    id = ok(env.run(['inspect', '-f', '{{.Id}}', 'traced'])).trim();
  });

  afterAll(async () => {
    env.run(['rm', '-f', 'traced']);
    await env.cleanup();
  });

  it('--trace=steps prints one line per step of the plan, named, in the plan\'s order', () => {
    expect(steps.status).toBe(0);
    const spec = JSON.parse(readFileSync(join(env.root, 'containers', id, 'config.json'), 'utf8')) as OciSpec;
    // Only the step names matter here: the paths and the cgroup are the plan's arguments.
    const plan = buildPlan(spec, {
      storeRoot: env.root, lowerDirs: ['l/x'], upperDir: 'u', workDir: 'w', name: 'traced',
      trace: true, interactive: false, init: false, cgroupProcs: [], joinNetns: '/run/netns/x',
      netUp: { ifname: 'eth0', ip: '10.0.0.2', prefixLen: 24, gateway: '10.0.0.1' },
    }, (p) => existsSync(p) && statSync(p).isFile());
    const named = parse(steps.stderr).map(([, label]) => /^step (\d+) (\S+)$/.exec(label)).filter((m) => m !== null);
    expect(named.map((m) => `${m[1]} ${m[2]}`)).toEqual(plan.steps.map(([op], i) => `${i + 1} ${op}`));
  });

  it('--trace=steps folds the path walk into the mount: its target is the path in the container', () => {
    expect(steps.stderr).toMatch(/\[step \d+ mount-in\] mount\("proc", "\/proc", "proc", MS_NOSUID\|MS_NODEV\|MS_NOEXEC, ""\) = 0\n/);
    expect(steps.stderr).toMatch(/\[step \d+ mount-in\] mount\("\/\S+\/containers\/[0-9a-f]{64}\/hostname", "\/etc\/hostname", NULL, MS_BIND\|MS_REC, NULL\) = 0\n/);
    expect(steps.stderr).not.toMatch(/ mount\([^\n]*"(\/proc\/)?self\/fd\/\d+"/);
  });

  it('shows the host side first: the cgroup\'s files, the veth and the rules, before the container\'s first step, which gives eth0 its address', () => {
    const lines = parse(steps.stderr);
    const first = lines.findIndex(([, label]) => label.startsWith('step 1 '));
    const cgroupDir = new RegExp(`→ /sys/fs/cgroup/(\\S+/)?${env.cgroupParent}/${id}$`);
    const limit = lines.findIndex(([, label, text]) => label === 'host' && /^write pids\.max "50" /.test(text) && cgroupDir.test(text));
    const veth = lines.findIndex(([, label, text]) => label === 'host' && /^ip link add veth\S+ .*type veth peer name eth0 /.test(text));
    const firewall = lines.findIndex(([, label, text]) => label === 'host' && /^iptables -t (filter|nat) -/.test(text));
    expect(first).toBeGreaterThan(0);
    for (const i of [limit, veth, firewall]) {
      expect(i).toBeGreaterThanOrEqual(0);
      expect(i).toBeLessThan(first);
    }
    // The inside of the veth: set by the container's first process, from inside (net-up), no
    // `ip -n` on the host.
    // In steps mode a step is one line; its socket's fd is shown as a number, not as the file
    // an earlier step opened with that number.
    const netUp = lines.findIndex(([, label]) => /^step \d+ net-up$/.test(label));
    expect(netUp).toBeGreaterThan(first);
    const calls = lines[netUp]![2];
    expect(calls).toMatch(/(^|; )ioctl\(\d+, SIOCSIFADDR, \{ifr_name="eth0", addr=\d+\.\d+\.\d+\.\d+\}\) = 0;/);
    expect(calls).toMatch(/; ioctl\(\d+, SIOCADDRT, \{rt_dst=0\.0\.0\.0\/0, rt_gateway=\d+\.\d+\.\d+\.\d+, rt_dev="eth0"\}\) = 0$/);
    expect(lines.some(([, label, text]) => label === 'host' && /^ip -n /.test(text))).toBe(false);
    // One clock: the helper's times follow tsrun's, and all fall within the command's run.
    expect(lines[first]![0]).toBeGreaterThanOrEqual(lines[veth]![0]);
    for (const [ms] of lines) expect(ms).toBeLessThanOrEqual(wallMs + 100);
  });

  it('--trace-file writes the trace there, and nothing of it to stderr', () => {
    const file = join(env.root, 'trace.txt');
    const r = env.run(['run', '--rm', '--network', 'none', '--trace-file', file, image, 'echo', 'hi']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('hi\n');
    expect(r.stderr).toBe('');
    const trace = readFileSync(file, 'utf8');
    expect(trace.endsWith('\n')).toBe(true);
    expect(trace).toMatch(/\[step \d+ exec\] execve\("\/bin\/echo", \["echo", "hi"\], \[\d+ vars\]\)\n/);
    // Plain --trace (what --trace-file implies) is every syscall: the walk is there.
    expect(trace).toMatch(/\[step \d+ mount-in\] mount\("proc", "self\/fd\/\d+", "proc", /);
  });

  it('cuts no argument short: the overlay\'s options and every argument of execve, whole', () => {
    const args = Array.from({ length: 12 }, (_, i) => `argument-${i}-${'x'.repeat(60)}`);
    const r = env.run(['run', '--rm', '--network', 'none', '--trace', image, 'echo', ...args]);
    expect(r.status).toBe(0);
    expect(r.stderr).toContain(`execve("/bin/echo", ${JSON.stringify(['echo', ...args]).replaceAll('","', '", "')}, `);
    expect(r.stderr).toMatch(/\[step \d+ mount\] mount\("overlay", "\S+\/rootfs", "overlay", MS_NOSUID, "lowerdir=l\/\w+,upperdir=containers\/[0-9a-f]{64}\/upper,workdir=containers\/[0-9a-f]{64}\/work"\) = 0\n/);
    expect(r.stderr).not.toContain('"...');
  });

  it('takes --trace=MODE only before the image: after it, it is the command\'s', () => {
    const r = env.run(['run', '--rm', '--network', 'none', image, 'echo', '--trace=steps', '--trace']);
    expect(r).toMatchObject({ status: 0, stdout: '--trace=steps --trace\n', stderr: '' });
    const bad = env.run(['run', '--rm', '--network', 'none', '--trace=everything', image, 'true']);
    expect(bad.status).toBe(125);
    expect(bad.stderr).toContain('invalid argument "everything" for "--trace" flag');
  });

  it('start -a prints the trace of a container made with create --trace', () => {
    ok(env.run(['create', '--name', 'later', '--network', 'none', '--trace', image, 'true']));
    try {
      const r = env.run(['start', '-a', 'later']);
      expect(r.status).toBe(0);
      expect(r.stderr).toMatch(/\[step \d+ exec\] execve\("\/bin\/true", \["true"\], /);
    } finally {
      env.run(['rm', '-f', 'later']);
    }
  });
});
