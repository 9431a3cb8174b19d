// Probing the layout from mountinfo: pure v2, this machine's hybrid, v1 co-mounted, none.
import { describe, expect, it } from 'vitest';
import { detectCgroups, openDriver, V1Driver, V2Driver } from '../../src/cgroups/index.js';
import { TsrunError } from '../../src/errors.js';

const line = (id: number, point: string, type: string, opts: string) => `${id} 23 0:${id} / ${point} rw,nosuid,nodev,noexec,relatime shared:${id} - ${type} ${type} ${opts}`;
const base = ['22 1 259:1 / / rw,relatime shared:1 - ext4 /dev/vda rw', '23 22 0:21 / /sys rw,nosuid shared:2 - sysfs sysfs rw'];

// This development machine, as /proc/self/mountinfo shows it.
const hybrid = [
  ...base,
  '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
  line(32, '/sys/fs/cgroup/cpu', 'cgroup', 'rw,cpu'),
  line(33, '/sys/fs/cgroup/cpuacct', 'cgroup', 'rw,cpuacct'),
  line(34, '/sys/fs/cgroup/cpuset', 'cgroup', 'rw,cpuset'),
  line(35, '/sys/fs/cgroup/memory', 'cgroup', 'rw,memory'),
  line(36, '/sys/fs/cgroup/devices', 'cgroup', 'rw,devices'),
  line(37, '/sys/fs/cgroup/freezer', 'cgroup', 'rw,freezer'),
  line(38, '/sys/fs/cgroup/blkio', 'cgroup', 'rw,blkio'),
  line(39, '/sys/fs/cgroup/pids', 'cgroup', 'rw,pids'),
  line(40, '/sys/fs/cgroup/systemd', 'cgroup', 'rw,xattr,name=systemd'),
  line(41, '/sys/fs/cgroup/unified', 'cgroup2', 'rw,nsdelegate'),
].join('\n');

describe('detectCgroups', () => {
  it('sees pure v2 when the root itself is cgroup2', () => {
    const text = [...base, line(30, '/sys/fs/cgroup', 'cgroup2', 'rw,nsdelegate,memory_recursiveprot')].join('\n');
    expect(detectCgroups({ mountinfo: text })).toEqual({ mode: 'v2', mountRoot: '/sys/fs/cgroup', v1: {}, unified: '/sys/fs/cgroup' });
  });

  it('sees the hybrid: v1 controllers for limits, the cgroup2 mount beside them, never name=systemd', () => {
    const layout = detectCgroups({ mountinfo: hybrid });
    expect(layout.mode).toBe('hybrid');
    expect(layout.unified).toBe('/sys/fs/cgroup/unified');
    expect(layout.v1).toEqual({
      cpu: '/sys/fs/cgroup/cpu',
      cpuacct: '/sys/fs/cgroup/cpuacct',
      cpuset: '/sys/fs/cgroup/cpuset',
      memory: '/sys/fs/cgroup/memory',
      devices: '/sys/fs/cgroup/devices',
      freezer: '/sys/fs/cgroup/freezer',
      blkio: '/sys/fs/cgroup/blkio',
      pids: '/sys/fs/cgroup/pids',
    });
    expect(openDriver(layout)).toBeInstanceOf(V1Driver);
  });

  it('maps co-mounted controllers to one hierarchy (cpu,cpuacct)', () => {
    const text = [
      ...base,
      line(31, '/sys/fs/cgroup/cpu,cpuacct', 'cgroup', 'rw,cpu,cpuacct'),
      line(32, '/sys/fs/cgroup/net_cls,net_prio', 'cgroup', 'rw,net_cls,net_prio'),
      line(33, '/sys/fs/cgroup/memory', 'cgroup', 'rw,memory'),
    ].join('\n');
    const layout = detectCgroups({ mountinfo: text });
    expect(layout.mode).toBe('v1');
    expect(layout.v1.cpu).toBe('/sys/fs/cgroup/cpu,cpuacct');
    expect(layout.v1.cpuacct).toBe('/sys/fs/cgroup/cpu,cpuacct');
    expect(layout.unified).toBeUndefined();
  });

  it('honours another mount root and mountinfo escapes', () => {
    const text = [...base, line(30, '/tmp/my\\040cgroups', 'cgroup2', 'rw')].join('\n');
    expect(detectCgroups({ mountRoot: '/tmp/my cgroups/', mountinfo: text }).unified).toBe('/tmp/my cgroups');
  });

  it('ignores cgroup mounts outside the root (a container\'s view, another tool\'s mount)', () => {
    const text = [...base, line(30, '/sys/fs/cgroup', 'cgroup2', 'rw'), line(31, '/mnt/cg/memory', 'cgroup', 'rw,memory')].join('\n');
    expect(detectCgroups({ mountinfo: text }).v1).toEqual({});
  });

  it('uses a lone cgroup2 mount below the root when there are no v1 controllers', () => {
    const text = [...base, line(31, '/sys/fs/cgroup/unified', 'cgroup2', 'rw'), line(32, '/sys/fs/cgroup/systemd', 'cgroup', 'rw,name=systemd')].join('\n');
    const layout = detectCgroups({ mountinfo: text });
    expect(layout).toEqual({ mode: 'v2', mountRoot: '/sys/fs/cgroup/unified', v1: {}, unified: '/sys/fs/cgroup/unified' });
    expect(openDriver(layout)).toBeInstanceOf(V2Driver);
  });

  it('says so when nothing is mounted', () => {
    expect(() => detectCgroups({ mountinfo: base.join('\n') })).toThrow(TsrunError);
    expect(() => detectCgroups({ mountinfo: base.join('\n') })).toThrow('no cgroup filesystem is mounted at /sys/fs/cgroup');
  });

  it('reads this machine without being told anything', () => {
    expect(['v1', 'v2', 'hybrid']).toContain(detectCgroups().mode);
  });
});
