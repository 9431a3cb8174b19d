// The cgroup section of `tsrun info`, from layouts as detectCgroups returns them and fake files.
import { describe, expect, it } from 'vitest';
import { describeCgroups } from '../../src/info/cgroups.js';

const files = (map: Record<string, string>) => (path: string) => map[path];

describe('describeCgroups', () => {
  it('pure v2: one hierarchy, its controllers and what children get', () => {
    const info = describeCgroups({
      layout: { mode: 'v2', mountRoot: '/sys/fs/cgroup', v1: {}, unified: '/sys/fs/cgroup' },
      read: files({
        '/sys/fs/cgroup/cgroup.controllers': 'cpuset cpu io memory hugetlb pids rdma misc\n',
        '/sys/fs/cgroup/cgroup.subtree_control': 'cpu memory pids\n',
      }),
      env: {},
    });
    expect(info).toMatchObject({ version: '2', mode: 'v2', driver: 'cgroupfs', parent: 'tsrun', warnings: [] });
    expect(info.hierarchies).toEqual([
      { kind: 'v2', path: '/sys/fs/cgroup', controllers: ['cpuset', 'cpu', 'io', 'memory', 'hugetlb', 'pids', 'rdma', 'misc'], subtreeControl: ['cpu', 'memory', 'pids'] },
    ]);
  });

  it('v2 without the memory controller warns about -m', () => {
    const info = describeCgroups({
      layout: { mode: 'v2', mountRoot: '/sys/fs/cgroup', v1: {}, unified: '/sys/fs/cgroup' },
      read: files({ '/sys/fs/cgroup/cgroup.controllers': 'cpu cpuset pids' }),
      env: {},
    });
    expect(info.warnings).toEqual([expect.stringMatching(/memory controller.*-m\/--memory/)]);
  });

  it('hybrid: v1 hierarchies grouped by mount (cpu,cpuacct together), the cgroup2 one beside them', () => {
    const info = describeCgroups({
      layout: {
        mode: 'hybrid',
        mountRoot: '/sys/fs/cgroup',
        v1: { cpu: '/sys/fs/cgroup/cpu,cpuacct', cpuacct: '/sys/fs/cgroup/cpu,cpuacct', memory: '/sys/fs/cgroup/memory', pids: '/sys/fs/cgroup/pids', cpuset: '/sys/fs/cgroup/cpuset' },
        unified: '/sys/fs/cgroup/unified',
      },
      read: files({ '/sys/fs/cgroup/unified/cgroup.controllers': '' }),
      env: { TSRUN_CGROUP_PARENT: 'lab' },
    });
    expect(info.version).toBe('1');
    expect(info.parent).toBe('lab');
    expect(info.hierarchies).toEqual([
      { kind: 'v1', path: '/sys/fs/cgroup/cpu,cpuacct', controllers: ['cpu', 'cpuacct'] },
      { kind: 'v1', path: '/sys/fs/cgroup/cpuset', controllers: ['cpuset'] },
      { kind: 'v1', path: '/sys/fs/cgroup/memory', controllers: ['memory'] },
      { kind: 'v1', path: '/sys/fs/cgroup/pids', controllers: ['pids'] },
      { kind: 'v2', path: '/sys/fs/cgroup/unified', controllers: [], subtreeControl: [] },
    ]);
    expect(info.warnings).toEqual([expect.stringMatching(/hybrid/)]);
  });

  it('v1 only: no v2 hierarchy at all', () => {
    const info = describeCgroups({ layout: { mode: 'v1', mountRoot: '/sys/fs/cgroup', v1: { memory: '/m', pids: '/p', cpu: '/c', cpuset: '/s' } }, read: files({}), env: {} });
    expect(info.hierarchies.map((h) => h.kind)).toEqual(['v1', 'v1', 'v1', 'v1']);
    expect(info.warnings).toEqual([]);
  });
});
