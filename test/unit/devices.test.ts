import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { allowList, deviceRules, parseDevice, parseDeviceCgroupRule, resolveDevices } from '../../src/namespaces/devices.js';
import { DEFAULT_DEVICE_RULES } from '../../src/namespaces/defaults.js';

describe('--device', () => {
  it('reads HOST[:CONTAINER][:PERMISSIONS] as docker does', () => {
    expect(parseDevice('/dev/fuse')).toEqual({ hostPath: '/dev/fuse', containerPath: '/dev/fuse', permissions: 'rwm' });
    expect(parseDevice('/dev/sdc:/dev/xvdc')).toEqual({ hostPath: '/dev/sdc', containerPath: '/dev/xvdc', permissions: 'rwm' });
    expect(parseDevice('/dev/sdc:r')).toEqual({ hostPath: '/dev/sdc', containerPath: '/dev/sdc', permissions: 'r' });
    expect(parseDevice('/dev/sdc:/dev/xvdc:rw')).toEqual({ hostPath: '/dev/sdc', containerPath: '/dev/xvdc', permissions: 'rw' });
    expect(parseDevice('/dev//net/../net/tun')).toMatchObject({ hostPath: '/dev/net/tun' });
  });

  it('names the flag and the fault in every refusal', () => {
    expect(() => parseDevice('fuse')).toThrow(/--device.*"fuse" is not an absolute host path/);
    expect(() => parseDevice('/dev/sdc:xvdc')).toThrow(/container path "xvdc" must be absolute/);
    expect(() => parseDevice('/dev/sdc:/dev/xvdc:rx')).toThrow(/bad permissions "rx"/);
    expect(() => parseDevice('/dev/sdc:/dev/xvdc:rr')).toThrow(/bad permissions "rr"/);
    expect(() => parseDevice('/a:/b:rw:x')).toThrow(/expected \/host\/device/);
    expect(() => parseDevice('/dev/sdc:')).toThrow(/container path "" must be absolute/);
    expect(() => parseDevice('/dev/sdc::r')).toThrow(/container path "" must be absolute/);
    expect(() => parseDevice('/dev/null:/dev/..')).toThrow(/cannot make a device over the container root/);
  });

  it('finds the host node: its type, numbers, mode and owner; a directory gives every node in it', () => {
    const [[node, access]] = resolveDevices([parseDevice('/dev/null:/dev/mynull:rw')]) as [[ReturnType<typeof resolveDevices>[0][0], string]];
    expect(node).toMatchObject({ path: '/dev/mynull', type: 'c', major: 1, minor: 3, fileMode: 0o666, uid: 0, hostPath: '/dev/null' });
    expect(access).toBe('rw');
    // /dev/pts always holds ptmx (5:2).
    const pts = resolveDevices([parseDevice('/dev/pts:/dev/hostpts')]);
    expect(pts.map(([n]) => n)).toContainEqual(expect.objectContaining({ path: '/dev/hostpts/ptmx', type: 'c', major: 5, minor: 2 }));
  });

  it('takes the later of two for one container path, and keeps out of what tsrun makes in /dev', () => {
    const [[node], ...rest] = resolveDevices([parseDevice('/dev/null:/dev/x'), parseDevice('/dev/zero:/dev/x')]);
    expect(rest).toEqual([]);
    expect(node).toMatchObject({ path: '/dev/x', major: 1, minor: 5 });
    expect(() => resolveDevices([parseDevice('/dev/null:/dev/ptmx')])).toThrow("--device /dev/null: /dev/ptmx is the container's own");
    expect(() => resolveDevices([parseDevice('/dev/null:/dev/shm/x')])).toThrow(/\/dev\/shm\/x is the container's own/);
    expect(() => resolveDevices([parseDevice('/dev/pts')])).toThrow(/\/dev\/pts\/ptmx is the container's own/);
    expect(() => resolveDevices([parseDevice('/dev/null:/dev')])).toThrow(/\/dev is the container's own/);
  });

  it('refuses what is no device: missing, a plain file, a directory without devices', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsrun-devices-'));
    try {
      writeFileSync(join(dir, 'file'), '');
      expect(() => resolveDevices([parseDevice(join(dir, 'nope'))])).toThrow(`--device ${dir}/nope: no such device on this host`);
      expect(() => resolveDevices([parseDevice(join(dir, 'file'))])).toThrow(/: not a device \(nor a directory of devices\)/);
      expect(() => resolveDevices([parseDevice(dir)])).toThrow(/: the directory holds no device/);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});

describe('--device-cgroup-rule', () => {
  it('reads TYPE MAJOR:MINOR ACCESS', () => {
    expect(parseDeviceCgroupRule('c 81:* rmw')).toEqual({ allow: true, type: 'c', major: 81, access: 'rmw' });
    expect(parseDeviceCgroupRule('a *:* rwm')).toEqual({ allow: true, type: 'a', access: 'rwm' });
    expect(parseDeviceCgroupRule('b 8:16 r')).toEqual({ allow: true, type: 'b', major: 8, minor: 16, access: 'r' });
  });
  it('refuses anything else, naming the flag', () => {
    // "a" with anything but *:* rwm: cgroup v1 would read it as "allow everything".
    expect(() => parseDeviceCgroupRule('a 1:3 r')).toThrow(/type a \(every device\) only as "a \*:\* rwm"/);
    for (const bad of ['c 81 rmw', 'x 1:2 r', 'c 1:2 rx', 'c 1:2', 'c -1:2 r', 'c 1:2 rr', 'c 5000:1 r', 'a *:* r', 'a 1:* rwm']) {
      expect(() => parseDeviceCgroupRule(bad)).toThrow(/--device-cgroup-rule/);
    }
  });
});

describe('device rules', () => {
  it('deny all, then the defaults, the --device nodes and the extra rules; none with --privileged', () => {
    const node = { path: '/dev/fuse', type: 'c' as const, major: 10, minor: 229, fileMode: 0o666, uid: 0, gid: 0, hostPath: '/dev/fuse' };
    const rules = deviceRules(false, [[node, 'rw']], [parseDeviceCgroupRule('b 8:* r')])!;
    expect(rules[0]).toEqual({ allow: false, access: 'rwm' });
    expect(rules.slice(1, -2)).toEqual(DEFAULT_DEVICE_RULES);
    expect(allowList(rules).slice(-2)).toEqual(['c:10:229:rw', 'b:8:*:r']);
    expect(deviceRules(true, [[node, 'rw']], [])).toBeUndefined();
  });
  it('takes only lists that start by denying everything', () => {
    expect(() => allowList([{ allow: true, access: 'rwm' }])).toThrow(/must start with one that denies every device/);
    expect(() => allowList([{ allow: false, access: 'rwm' }, { allow: false, type: 'c', access: 'r' }])).toThrow(/must allow/);
  });
});
