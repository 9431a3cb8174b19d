import { specContext } from './spec-context.js';
import { describe, expect, it } from 'vitest';
import { buildPlan, decodeField, encodeField, mountFlags, serializePlan, type PlanContext } from '../../src/namespaces/plan.js';
import { createSpec, withDevices, type SpecContext } from '../../src/namespaces/spec.js';
import type { ContainerOptions } from '../../src/namespaces/options.js';
import { allowList, parseDeviceCgroupRule, type DeviceNode, type ResolvedDevice } from '../../src/namespaces/devices.js';

const ctx: SpecContext = specContext('b'.repeat(64), '/store/containers/b/rootfs');
const opts: ContainerOptions = {
  args: ['echo', 'hi there'], env: [], volumes: [{ source: '/data', target: '/data', readonly: true }], tmpfs: [],
  readOnly: true, tty: false, interactive: false, init: false, ulimits: [], capAdd: [], capDrop: [], privileged: false,
  noNewPrivileges: true, network: 'none', pid: 'private', ipc: 'private', uts: 'private', trace: false, remove: true,
  resources: {}, cgroupParent: 'tsrun',
};
const planCtx: PlanContext = {
  storeRoot: '/store', lowerDirs: ['l/TOP', 'l/BOTTOM'], upperDir: 'containers/b/upper', workDir: 'containers/b/work',
  name: 'test', trace: false, interactive: false, init: false, cgroupProcs: ['/sys/fs/cgroup/pids/tsrun/b/cgroup.procs'],
};
/**
 * Where `op` is in a plan's ops. A missing op fails here: indexOf's -1 would satisfy any
 * "comes before" check, so a step dropped from the plan would pass it.
 */
function at(ops: string[], op: string, last = false): number {
  const i = last ? ops.lastIndexOf(op) : ops.indexOf(op);
  expect(i, `step ${op} in the plan`).toBeGreaterThanOrEqual(0);
  return i;
}

const image = { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers' as const, diff_ids: [] } };

describe('buildPlan', () => {
  const plan = buildPlan(createSpec(image, opts, ctx), planCtx, (p) => p.startsWith('/c/'));
  const ops = plan.steps.map((s) => s[0]);

  it('clones every private namespace', () => {
    expect(plan.cloneFlags.sort()).toEqual(['newcgroup', 'newipc', 'newnet', 'newns', 'newpid', 'newuts']);
  });
  it('mounts the overlay with short relative lowerdirs, top layer first', () => {
    const mount = plan.steps.find((s) => s[0] === 'mount')!;
    expect(mount).toEqual(['mount', 'overlay', ctx.rootfs, 'overlay', 'nosuid',
      'lowerdir=l/TOP:l/BOTTOM,upperdir=containers/b/upper,workdir=containers/b/work']);
    expect(at(ops, 'chdir-host')).toBeLessThan(at(ops, 'mount'));
  });
  it('makes mounts private before mounting anything, and pivots before masking', () => {
    expect(at(ops, 'propagation')).toBeLessThan(at(ops, 'mount'));
    expect(at(ops, 'pivot-root')).toBeLessThan(at(ops, 'mask'));
    expect(at(ops, 'mount-in', true)).toBeLessThan(at(ops, 'pivot-root'));
  });
  it('drops privileges in order: rlimits, no_new_privs, user, caps, then exec last', () => {
    const order = ['rlimit', 'no-new-privs', 'user', 'caps', 'chdir', 'exec'].map((op) => at(ops, op));
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(ops.at(-1)).toBe('exec');
    expect(plan.steps.at(-1)).toEqual(['exec', 'echo', 'echo', 'hi there']);
  });
  it('makes a read-only bind with a recursive remount, and a read-only root (the root alone)', () => {
    const i = plan.steps.findIndex((s) => s[0] === 'mount-in' && s[2] === '/data');
    expect(plan.steps[i]![4]).toBe('bind,rec');
    expect(plan.steps[i + 1]).toEqual(['remount-ro', '/data', 'rec']);
    expect(plan.steps).toContainEqual(['remount-ro', '/']);
  });
  it('creates file targets for file bind mounts', () => {
    expect(plan.steps).toContainEqual(['touch', '/etc/hosts', '644']);
  });
  it('creates the standard device nodes and the ptmx link', () => {
    expect(plan.steps).toContainEqual(['mknod', '/dev/null', 'c', '1', '3', '666']);
    expect(plan.steps).toContainEqual(['symlink', 'pts/ptmx', '/dev/ptmx']);
  });
  it('puts the container in its cgroup from the monitor', () => {
    expect(plan.monitor).toContainEqual(['cgroup-procs', '/sys/fs/cgroup/pids/tsrun/b/cgroup.procs']);
  });
  it("gives the cgroup docker's device policy: mknod anything, use only the standard nodes", () => {
    const devices = plan.monitor.find((l) => l[0] === 'devices')!;
    expect(devices.slice(1)).toEqual(expect.arrayContaining(['c:*:*:m', 'b:*:*:m', 'c:1:3:rwm', 'c:136:*:rwm', 'c:5:2:rwm']));
    expect(devices.slice(1).filter((r) => r.startsWith('b:') || r.includes('*:*:rwm') || r.startsWith('a:'))).toEqual(['b:*:*:m']);
    // --privileged: every device; no cgroup (rootless): nothing to attach it to.
    expect(buildPlan(createSpec(image, { ...opts, privileged: true }, ctx), planCtx, () => false).monitor.map((l) => l[0])).not.toContain('devices');
    expect(buildPlan(createSpec(image, opts, ctx), { ...planCtx, cgroupProcs: [] }, () => false).monitor.map((l) => l[0])).not.toContain('devices');
  });
  it("makes --device nodes with the host's mode and owner, and allows them in the device cgroup", () => {
    const fuse: ResolvedDevice = [{ path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 0o660, uid: 0, gid: 105, hostPath: '/dev/fuse' }, 'rw'];
    const xvdc: ResolvedDevice = [{ path: '/dev/null', type: 'b', major: 8, minor: 32, fileMode: 0o600, uid: 0, gid: 6, hostPath: '/dev/sdc' }, 'rwm'];
    const spec = createSpec(image, { ...opts, deviceCgroupRules: [parseDeviceCgroupRule('c 81:* rmw')] }, { ...ctx, devices: [fuse, xvdc] });
    expect(spec.linux.devices?.map((d) => d.path)).toEqual(['/dev/fuse', '/dev/null']);
    expect(spec.linux.resources.devices?.[0]).toEqual({ allow: false, access: 'rwm' });
    const p = buildPlan(spec, planCtx, () => false);
    const i = p.steps.findIndex((st) => st[0] === 'mknod' && st[1] === '/dev/fuse');
    expect(p.steps.slice(i - 1, i + 2)).toEqual([['mkdir', '/dev', '755'], ['mknod', '/dev/fuse', 'c', '10', '229', '660'], ['chown', '/dev/fuse', '0', '105']]);
    expect(p.steps.slice(i - 1).filter((st) => st[0] === 'mkdir' && st[1] === '/dev')).toHaveLength(1); // once for both
    // A --device named like a standard node replaces it: one mknod for the path, the device's own.
    expect(p.steps.filter((st) => st[0] === 'mknod' && st[1] === '/dev/null')).toEqual([['mknod', '/dev/null', 'b', '8', '32', '600']]);
    expect(i).toBeGreaterThan(p.steps.findIndex((st) => st[0] === 'mount-in' && st[2] === '/dev'));
    expect(i).toBeLessThan(at(ops, 'pivot-root'));
    const rules = p.monitor.find((l) => l[0] === 'devices')!.slice(1);
    expect(rules.slice(-3)).toEqual(['c:10:229:rw', 'b:8:32:rwm', 'c:81:*:rmw']);
    // start puts in the host's nodes as they are then, replacing what the spec had (an older
    // tsrun's spec kept rule strings in linux.devices).
    const old = { ...spec, linux: { ...spec.linux, devices: ['c:1:3:rwm'] as unknown as DeviceNode[] } };
    const now = withDevices(old, opts, [fuse]);
    expect(now.linux.devices).toEqual([fuse[0]]);
    expect(allowList(now.linux.resources.devices!).at(-1)).toBe('c:10:229:rw');
    expect(withDevices(now, opts, []).linux.devices).toBeUndefined();
    // In a user namespace mknod is refused: the host's node is bound in.
    const u = buildPlan(createSpec(image, opts, { ...ctx, devices: [fuse], rootless: true }), planCtx, () => false);
    expect(u.steps).toContainEqual(['mount-in', '/dev/fuse', '/dev/fuse', 'none', 'bind', '']);
    expect(u.steps.map((st) => st[0])).not.toContain('chown');
  });
  it('skips sethostname with --uts host and lo-up with --network host', () => {
    const p = buildPlan(createSpec(image, { ...opts, uts: 'host', network: 'host' }, ctx), planCtx, () => false);
    expect(p.steps.map((s) => s[0])).not.toContain('sethostname');
    expect(p.steps.map((s) => s[0])).not.toContain('lo-up');
  });
});

describe('plan encoding', () => {
  it('round-trips awkward strings', () => {
    for (const s of ['', 'a b', '100%', 'tab\there', 'new\nline', 'ünïcödé', '%']) expect(decodeField(encodeField(s))).toBe(s);
    expect(encodeField('')).toBe('%');
    expect(encodeField('a b')).toBe('a%20b');
  });
  it('serializes one step per line between the header and end', () => {
    const text = serializePlan({ monitor: [['trace', '0']], cloneFlags: ['newns'], steps: [['exec', 'sh', 'sh', '-c', 'echo a b']] });
    expect(text.split('\n')).toEqual(['tsrun-plan 1', 'trace 0', 'clone newns', 'exec sh sh -c echo%20a%20b', 'end', '']);
  });
  it('maps OCI mount options to flags and data', () => {
    expect(mountFlags(['rbind', 'rprivate', 'ro'])).toEqual({ flags: ['bind', 'rec', 'ro'], data: [] });
    expect(mountFlags(['nosuid', 'mode=755', 'size=65536k'])).toEqual({ flags: ['nosuid'], data: ['mode=755', 'size=65536k'] });
  });
});

describe('buildPlan with a user namespace', () => {
  const userns = { mode: 'private' as const, uidMap: [{ containerID: 0, hostID: 200000, size: 65536 }], gidMap: [{ containerID: 0, hostID: 300000, size: 65536 }] };
  const spec = createSpec(image, { ...opts, userns, network: 'bridge' }, ctx);
  const plan = buildPlan(spec, { ...planCtx, joinNetns: '/run/netns/x' }, () => false);
  const ops = plan.steps.map((s) => s[0]);

  it('creates the user namespace with the others and has the monitor write its maps', () => {
    expect(plan.cloneFlags).toContain('newuser');
    expect(plan.monitor).toContainEqual(['uid-map', '0', '200000', '65536']);
    expect(plan.monitor).toContainEqual(['gid-map', '0', '300000', '65536']);
  });
  it('joins a host-owned network namespace in the monitor, before the user namespace exists', () => {
    expect(plan.monitor).toContainEqual(['netns', '/run/netns/x']);
    expect(ops).not.toContain('setns');
    expect(plan.cloneFlags).not.toContain('newnet');
  });
  it('idmaps the store after making mounts private, then gives store paths relative to it', () => {
    const idmap = at(ops, 'idmap-mount');
    expect(plan.steps[idmap]).toEqual(['idmap-mount', '/store']);
    expect(at(ops, 'propagation')).toBeLessThan(idmap);
    expect(ops).not.toContain('chdir-host'); // idmap-mount went into it
    expect(plan.steps.find((s) => s[0] === 'mount')![2]).toBe('containers/b/rootfs');
    expect(plan.steps.find((s) => s[0] === 'root')).toEqual(['root', 'containers/b/rootfs']);
  });
  it('binds the host\'s device nodes instead of mknod, and /sys instead of a sysfs it may not mount', () => {
    expect(ops).not.toContain('mknod');
    expect(plan.steps).toContainEqual(['mount-in', '/dev/null', '/dev/null', 'none', 'bind', '']);
    expect(plan.steps.find((s) => s[0] === 'mount-in' && s[2] === '/sys')).toEqual(['mount-in', '/sys', '/sys', 'none', 'bind,rec,nosuid,noexec,nodev', '']);
  });
});
