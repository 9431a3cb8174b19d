// The runtime half as data: real clients' config.json (captured from podman 4.3 and containerd
// 1.6 driving runc, and runc's own `spec`) through the checks and into a launch plan.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkProcessJson, checkResources, checkSpec, SpecError } from '../../src/runtime/bundle.js';
import { cgroupOf, forHost, inRoot, parseSignal } from '../../src/runtime/container.js';
import { runtimeExecPlan } from '../../src/runtime/exec.js';
import { buildPlan, type PlanContext } from '../../src/namespaces/plan.js';
import { DEFAULT_DEVICE_RULES } from '../../src/namespaces/defaults.js';
import type { CgroupLayout } from '../../src/cgroups/types.js';

const FIXTURES = join(__dirname, '..', 'fixtures', 'runtime');
const load = (name: string) => JSON.parse(readFileSync(join(FIXTURES, name), 'utf8')) as Record<string, any>;
const bundle = '/b';
const ctx: PlanContext = {
  rootfs: 'bundle', storeRoot: '/', lowerDirs: [], upperDir: '', workDir: '', name: 'x', trace: false, interactive: true, init: false,
  cgroupProcs: ['/sys/fs/cgroup/pids/p/x/cgroup.procs'], runtime: { execFifo: '/run/t/x/exec.fifo' },
};
const hybrid: CgroupLayout = { mode: 'hybrid', mountRoot: '/sys/fs/cgroup', v1: { memory: '/sys/fs/cgroup/memory', pids: '/sys/fs/cgroup/pids' }, unified: '/sys/fs/cgroup/unified' };

function refused(patch: (s: Record<string, any>) => void): string {
  const s = load('ctr-example-config.json');
  patch(s);
  try {
    checkSpec(s, bundle);
  } catch (err) {
    expect(err).toBeInstanceOf(SpecError);
    return (err as Error).message;
  }
  throw new Error('accepted');
}

describe('checkSpec', () => {
  it.each(['podman-example-config.json', 'podman-kitchensink-config.json', 'ctr-example-config.json', 'ctr-kitchensink-config.json', 'runc-spec-config.json'])('takes %s', (name) => {
    const spec = checkSpec(load(name), bundle);
    expect(spec.root.path.startsWith('/')).toBe(true);
    expect(spec.process.args.length).toBeGreaterThan(0);
    const plan = buildPlan(spec, ctx, () => false);
    const ops = plan.steps.map((s) => s[0]);
    // the bundle's root bound onto itself, never an overlay of the store
    expect(plan.steps).toContainEqual(['mount', spec.root.path, spec.root.path, '-', 'bind,rec', '-']);
    expect(ops).not.toContain('chdir-host');
    expect(ops.indexOf('pivot-root')).toBeLessThan(ops.indexOf('wait-start'));
    expect(ops.indexOf('wait-start')).toBeLessThan(ops.indexOf('exec'));
    expect(plan.monitor).toContainEqual(['stdio', 'pass']);
    expect(plan.monitor).toContainEqual(['detach', 'created']);
  });

  it('resolves a relative root and bind sources against the bundle', () => {
    const spec = checkSpec(load('ctr-example-config.json'), '/run/bundle');
    expect(spec.root.path).toBe('/run/bundle/rootfs');
    const s = load('ctr-example-config.json');
    s.mounts.push({ destination: 'data', type: 'bind', source: 'data', options: ['rbind'] });
    const m = checkSpec(s, '/run/bundle').mounts.at(-1)!;
    expect(m).toMatchObject({ destination: '/data', source: '/run/bundle/data' });
  });

  it('keeps podman\'s five capability sets, umask and oom score, and its rslave propagation', () => {
    const spec = checkSpec(load('podman-kitchensink-config.json'), bundle);
    expect(spec.process.umask).toBe(0o22);
    expect(spec.process.oomScoreAdj).toBe(100);
    expect(spec.linux.rootfsPropagation).toBe('rslave');
    const plan = buildPlan(spec, ctx, () => false);
    const caps = plan.steps.find((s) => s[0] === 'caps')!;
    expect(caps).toHaveLength(6); // bounding, effective, permitted, inheritable, ambient
    expect(plan.steps).toContainEqual(['umask', '22']);
    expect(plan.steps).toContainEqual(['propagation', 'slave']);
    // podman's fileMode carries the file type's bits
    expect(spec.linux.devices?.[0]?.fileMode).toBeLessThanOrEqual(0o7777);
  });

  it('puts runc\'s device floor after a deny-all, and no filter for allow-all', () => {
    const spec = checkSpec(load('ctr-example-config.json'), bundle);
    const rules = spec.linux.resources.devices!;
    expect(rules[0]).toMatchObject({ allow: false, type: 'a', access: 'rwm' });
    expect(rules.slice(-DEFAULT_DEVICE_RULES.length)).toEqual(DEFAULT_DEVICE_RULES);
    expect(checkResources({ devices: [{ allow: true, access: 'rwm' }] }).devices).toBeUndefined();
    // no rules at all is not "every device": runc denies all but its floor
    for (const none of [undefined, {}, { devices: [] }]) {
      expect(checkResources(none).devices).toEqual([{ allow: false, type: 'a', access: 'rwm' }, ...DEFAULT_DEVICE_RULES]);
    }
    // update leaves the rules alone (containerd's CRI sends them with every update)
    expect(checkResources({ devices: [{ allow: true, access: 'rwm' }], pids: { limit: 5 } }, 'update', true)).toEqual({ pids: { limit: 5 } });
    expect(() => checkResources({ devices: [{ allow: false, access: 'rwm' }, { allow: false, type: 'c', major: 1, minor: 3, access: 'rwm' }] })).toThrow(/deny rule after the first/);
  });

  it('refuses what it does not do by the field\'s path', () => {
    expect(refused((s) => (s.linux.intelRdt = { closID: 'a' }))).toMatch(/linux\.intelRdt: not supported/);
    expect(refused((s) => (s.process.selinuxLabel = 'x'))).toMatch(/process\.selinuxLabel: not supported/);
    expect(refused((s) => (s.hooks = { createContainer: [{ path: '/x' }] }))).toMatch(/hooks\.createContainer/);
    expect(refused((s) => (s.hooks = { prestart: [{ path: 'rel' }] }))).toMatch(/hooks\.prestart\[0\]\.path: must be absolute/);
    expect(refused((s) => s.mounts.push({ destination: '/m', type: 'bind', source: '/x', options: ['rbind', 'shared'] }))).toMatch(/"shared" is not supported/);
    expect(refused((s) => (s.linux.rootfsPropagation = 'shared'))).toMatch(/linux\.rootfsPropagation/);
    expect(refused((s) => (s.linux.namespaces = [{ type: 'mount', path: '/proc/1/ns/mnt' }]))).toMatch(/joining an existing mount namespace/);
    expect(refused((s) => (s.linux.namespaces = [{ type: 'pid' }, { type: 'pid' }]))).toMatch(/listed twice/);
    expect(refused((s) => (s.linux.resources = { memory: { swappiness: 10 } }))).toMatch(/memory\.swappiness/);
    expect(refused((s) => (s.linux.resources = { unified: { 'memory.high': '1' } }))).toMatch(/resources\.unified/);
    expect(refused((s) => (s.linux.seccomp = { defaultAction: 'SCMP_ACT_NOTIFY' }))).toMatch(/defaultAction/);
    expect(refused((s) => (s.linux.uidMappings = [{ containerID: 0, hostID: 1000, size: 1 }]))).toMatch(/without a new user namespace/);
    expect(refused((s) => (s.process.args = []))).toMatch(/process\.args/);
    expect(refused((s) => (s.process.cwd = 'tmp'))).toMatch(/process\.cwd: must be an absolute path/);
    expect(refused((s) => (s.process.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 10, hard: 5 }]))).toMatch(/soft is above hard/);
    expect(refused((s) => (s.process.env = ['A=\0']))).toMatch(/NUL/);
    expect(refused((s) => (s.ociVersion = '2.0.0'))).toMatch(/ociVersion/);
    // a sysctl outside the container's namespaces would be the host's
    expect(refused((s) => (s.linux.sysctl = { 'kernel.core_pattern': '|/tmp/x' }))).toMatch(/linux\.sysctl\.kernel\.core_pattern: not a namespaced sysctl/);
    expect(refused((s) => (s.linux.sysctl = { 'net.ipv4.ip_forward': '1' }) && (s.linux.namespaces = [{ type: 'mount' }, { type: 'pid' }]))).toMatch(/network namespace, and the container has none of its own/);
    // a joined network namespace may be the host's own
    expect(refused((s) => (s.linux.sysctl = { 'net.ipv4.ip_forward': '1' }) && (s.linux.namespaces = [{ type: 'mount' }, { type: 'network', path: '/proc/self/ns/net' }]))).toMatch(/none of its own/);
    // without a mount namespace of its own, pivot_root would move the host's root
    expect(refused((s) => (s.linux.namespaces = [{ type: 'pid' }, { type: 'network' }]))).toMatch(/linux\.namespaces: a container needs a new mount namespace/);
    // a bind mount takes no fs data: an option the helper would drop is refused
    expect(refused((s) => s.mounts.push({ destination: '/m', type: 'bind', source: '/x', options: ['rbind', 'lazytime'] }))).toMatch(/"lazytime" on a bind mount/);
    expect(refused((s) => (s.hostname = 'h') && (s.linux.namespaces = [{ type: 'mount' }]))).toMatch(/UTS namespace/);
  });

  it('checks an exec --process file as a process', () => {
    const p = checkProcessJson(load('podman-exec-process.json'));
    expect(p.args.length).toBeGreaterThan(0);
    expect(() => checkProcessJson({ args: ['x'], cwd: '/', capabilities: { bounding: ['CAP_X'] } })).toThrow(/unknown capability/);
  });
});

describe('the container on this host', () => {
  it('binds its own cgroup directories without a cgroup namespace, as runc does; mounts the hierarchies with one', () => {
    const spec = checkSpec(load('podman-example-config.json'), bundle);
    const paths = { memory: '/sys/fs/cgroup/memory/p/x', pids: '/sys/fs/cgroup/pids/p/x', unified: '/sys/fs/cgroup/unified/p/x' };
    const host = forHost(spec, hybrid, paths);
    const cg = host.mounts.filter((m) => m.destination.startsWith('/sys/fs/cgroup'));
    expect(cg[0]).toMatchObject({ destination: '/sys/fs/cgroup', type: 'tmpfs' });
    expect(cg).toContainEqual(expect.objectContaining({ destination: '/sys/fs/cgroup/memory', type: 'bind', source: '/sys/fs/cgroup/memory/p/x' }));
    expect(host.linux.readonlyPaths).toContain('/sys/fs/cgroup');
    const withNs = forHost({ ...spec, linux: { ...spec.linux, namespaces: [...spec.linux.namespaces, { type: 'cgroup' }] } }, hybrid, paths);
    expect(withNs.mounts).toContainEqual(expect.objectContaining({ destination: '/sys/fs/cgroup/memory', type: 'cgroup' }));
  });

  it('names the cgroup from cgroupsPath, and refuses systemd\'s form', () => {
    const spec = checkSpec(load('ctr-example-config.json'), bundle);
    expect(cgroupOf(spec, 'id1')).toEqual({ parent: 'default', name: 'id1' });
    expect(cgroupOf({ ...spec, linux: { ...spec.linux, cgroupsPath: '' } }, 'c')).toEqual({ parent: 'tsrun-runtime', name: 'c' });
    expect(() => cgroupOf({ ...spec, linux: { ...spec.linux, cgroupsPath: 'machine.slice:libpod:x' } }, 'c')).toThrow(/systemd/);
  });

  it('drops tmpcopyup where the image has nothing to copy, refuses it where it has', () => {
    const root = mkdtempSync(join(tmpdir(), 'tsrun-unit-rootfs-'));
    try {
      mkdirSync(join(root, 'tmp'));
      mkdirSync(join(root, 'var', 'cache'), { recursive: true });
      writeFileSync(join(root, 'var', 'cache', 'f'), 'x');
      symlinkSync('/../../var/cache', join(root, 'cache'));
      const spec = checkSpec(load('ctr-example-config.json'), bundle);
      const at = (dest: string) => ({ ...spec, root: { path: root, readonly: false }, mounts: [{ destination: dest, type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'tmpcopyup'] }] });
      expect(forHost(at('/tmp'), hybrid, {}).mounts[0]!.options).toEqual(['nosuid']);
      expect(forHost(at('/missing'), hybrid, {}).mounts[0]!.options).toEqual(['nosuid']);
      expect(() => forHost(at('/cache'), hybrid, {})).toThrow(/tmpcopyup/);
      // a symlink in the image is followed inside the root, never out of it
      expect(inRoot(root, '/cache/f')).toBe(join(root, 'var', 'cache', 'f'));
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('parseSignal', () => {
  it('takes runc\'s names and numbers, the real-time ones too', () => {
    expect(parseSignal('KILL')).toBe(9);
    expect(parseSignal('SIGTERM')).toBe(15);
    expect(parseSignal('37')).toBe(37);
    expect(parseSignal('RTMIN+3')).toBe(37);
    expect(parseSignal('SIGRTMAX-1')).toBe(63);
    expect(() => parseSignal('65')).toThrow(/unknown signal/);
    expect(() => parseSignal('NOPE')).toThrow(/unknown signal/);
  });
});

describe('runtimeExecPlan', () => {
  it('joins only the container\'s namespaces, the mount namespace last, and detaches when asked', () => {
    const spec = checkSpec(load('ctr-example-config.json'), bundle);
    const plan = runtimeExecPlan(spec, 'id1', 42, ['/cg/cgroup.procs'], { process: spec.process, detach: true, consoleSocket: '/s' });
    const joins = plan.steps.filter((s) => s[0] === 'setns').map((s) => s[2]);
    expect(joins).toEqual(['ipc', 'uts', 'net', 'mnt']);
    expect(plan.monitor).toContainEqual(['pidns', '/proc/42/ns/pid']);
    expect(plan.monitor).toContainEqual(['detach', 'started']);
    expect(plan.monitor).toContainEqual(['console-socket', '/s']);
    expect(plan.steps.at(-1)![0]).toBe('exec');
  });
});
