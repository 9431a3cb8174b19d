// Both drivers against temporary trees laid out like the kernel's (file names and default
// values from Documentation/admin-guide/cgroup-v2.rst and cgroup-v1/*.rst). Writes are recorded
// through the driver's write observer, so the tests see the exact sequence sent to the kernel.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { totalmem, tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  V1Driver, V2Driver, detectCgroups, parseResources, setCgroupWriteObserver,
  type HostInfo, type ResourceFlags,
} from '../../src/cgroups/index.js';
import { deviceRulesV1 } from '../../src/cgroups/v1.js';
import { blkioToIoWeight } from '../../src/cgroups/blkio.js';
import { sharesToWeight } from '../../src/cgroups/cpu.js';
import { TsrunError } from '../../src/errors.js';

const MiB = 1024 * 1024;
const V1_MAX = '9223372036854771712'; // what v1 prints for "no limit"
const host: HostInfo = { onlineCpus: () => [0, 1], onlineMems: () => [0], blockDevice: (p) => (p === '/dev/sda' ? { major: 8, minor: 0 } : { major: 8, minor: 16 }) };
const res = (f: ResourceFlags) => parseResources(f, host);

let tmp: string;
let writes: Array<[string, string]>;
beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'tsrun-unit-cgroups-'));
  writes = [];
  setCgroupWriteObserver((path, value) => writes.push([relative(tmp, path), value]));
});
afterEach(() => {
  setCgroupWriteObserver(undefined);
  rmSync(tmp, { recursive: true, force: true });
});

function files(dir: string, entries: Record<string, string>): void {
  mkdirSync(dir, { recursive: true });
  for (const [name, value] of Object.entries(entries)) writeFileSync(join(dir, name), value);
}
const read = (...p: string[]) => readFileSync(join(tmp, ...p), 'utf8');
const writesTo = (file: string) => writes.filter(([p]) => p.endsWith(`/${file}`) || p === file);

function failure(fn: () => unknown): TsrunError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TsrunError);
    return err as TsrunError;
  }
  throw new Error('did not fail');
}

// ---------------------------------------------------------------- cgroup v2

const ALL_V2 = ['cpuset', 'cpu', 'io', 'memory', 'pids'];

/** A non-root v2 cgroup with the interface files the kernel creates on mkdir. */
function v2Cgroup(dir: string, controllers = ALL_V2, extra: Record<string, string> = {}): void {
  const has = (c: string) => controllers.includes(c);
  files(dir, {
    'cgroup.controllers': controllers.join(' '),
    'cgroup.subtree_control': '',
    'cgroup.procs': '',
    'cgroup.events': 'populated 0\nfrozen 0\n',
    'cgroup.freeze': '0',
    'cgroup.kill': '',
    'cpu.stat': 'usage_usec 0\nuser_usec 0\nsystem_usec 0\n',
    ...(has('memory') && {
      'memory.current': '0', 'memory.max': 'max', 'memory.low': '0', 'memory.swap.max': 'max',
      'memory.events': 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n', 'memory.stat': 'anon 0\nfile 0\ninactive_file 0\n',
    }),
    ...(has('cpu') && { 'cpu.max': 'max 100000', 'cpu.weight': '100' }),
    ...(has('cpuset') && { 'cpuset.cpus': '', 'cpuset.mems': '', 'cpuset.cpus.effective': '0-1', 'cpuset.mems.effective': '0' }),
    ...(has('pids') && { 'pids.max': 'max', 'pids.current': '0', 'pids.events': 'max 0\n' }),
    ...(has('io') && { 'io.max': '', 'io.weight': 'default 100', 'io.stat': '' }),
    ...extra,
  });
}

/** root (available: `rootControllers`) → tsrun-test → <id>, all "already made by the kernel". */
function v2Tree(rootControllers = ALL_V2, id = 'c1'): V2Driver {
  files(tmp, { 'cgroup.controllers': rootControllers.join(' '), 'cgroup.subtree_control': '', 'cgroup.procs': '1\n2\n', 'cpu.stat': 'usage_usec 9\n' });
  v2Cgroup(join(tmp, 'tsrun-test'));
  v2Cgroup(join(tmp, 'tsrun-test', id));
  return new V2Driver(tmp);
}

describe('cgroup v2 driver', () => {
  it('enables controllers from the root down to the parent, never in the container\'s own cgroup', () => {
    const h = v2Tree().create('tsrun-test', 'c1', res({ memory: '32m' }));
    const enables = writesTo('cgroup.subtree_control');
    expect(enables.filter(([p]) => p === 'cgroup.subtree_control').map(([, v]) => v).sort()).toEqual(['+cpu', '+io', '+memory', '+pids']);
    expect(enables.filter(([p]) => p === 'tsrun-test/cgroup.subtree_control').map(([, v]) => v).sort()).toEqual(['+cpu', '+io', '+memory', '+pids']);
    expect(enables.some(([p]) => p.startsWith('tsrun-test/c1/'))).toBe(false);
    // Root before parent: a directory can only pass on what it was given.
    expect(enables.findIndex(([p]) => p.startsWith('tsrun-test/'))).toBeGreaterThan(enables.findIndex(([p]) => p === 'cgroup.subtree_control'));
    expect(h.version).toBe(2);
    expect(h.paths).toEqual({ unified: join(tmp, 'tsrun-test', 'c1') });
    expect(h.procsFiles).toEqual([join(tmp, 'tsrun-test', 'c1', 'cgroup.procs')]);
  });

  it('writes every limit in the kernel\'s format and units', () => {
    v2Tree().create('tsrun-test', 'c1', res({
      memory: '32m', memoryReservation: '16m', cpus: '0.5', cpuShares: '512', cpusetCpus: '0', cpusetMems: '0', pidsLimit: '32',
      blkioWeight: '500', deviceReadBps: ['/dev/sda:1mb'], deviceWriteIops: ['/dev/sda:100'], deviceWriteBps: ['/dev/sdb:2m'],
    }));
    const c = (f: string) => read('tsrun-test', 'c1', f);
    expect(c('memory.max')).toBe(String(32 * MiB));
    expect(c('memory.swap.max')).toBe(String(32 * MiB)); // docker's default: as much swap as memory
    expect(c('memory.low')).toBe(String(16 * MiB));
    expect(c('cpu.max')).toBe('50000 100000');
    expect(c('cpu.weight')).toBe('20');
    expect(c('cpuset.cpus')).toBe('0');
    expect(c('cpuset.mems')).toBe('0');
    expect(c('pids.max')).toBe('32');
    expect(c('io.weight')).toBe(String(blkioToIoWeight(500)));
    // All of one device's limits on one line, one write per device.
    expect(writesTo('io.max').map(([, v]) => v)).toEqual(['8:0 rbps=1048576 wiops=100', '8:16 wbps=2097152']);
  });

  it('maps shares and blkio weights with runc\'s formulas', () => {
    expect([2, 1024, 262144].map(sharesToWeight)).toEqual([1, 39, 10000]);
    expect([10, 500, 1000].map(blkioToIoWeight)).toEqual([1, 4950, 10000]);
  });

  it('gives BFQ its own scale when io.bfq.weight exists', () => {
    const d = v2Tree();
    writeFileSync(join(tmp, 'tsrun-test', 'c1', 'io.bfq.weight'), 'default 100');
    d.create('tsrun-test', 'c1', res({ blkioWeight: '500' }));
    expect(read('tsrun-test', 'c1', 'io.bfq.weight')).toBe('500');
    expect(read('tsrun-test', 'c1', 'io.weight')).toBe('default 100');
  });

  it('turns docker\'s memory+swap into v2\'s swap alone', () => {
    const swapMax = (f: ResourceFlags) => {
      rmSync(tmp, { recursive: true, force: true });
      v2Tree().create('tsrun-test', 'c1', res(f));
      return read('tsrun-test', 'c1', 'memory.swap.max');
    };
    expect(swapMax({ memory: '32m', memorySwap: '96m' })).toBe(String(64 * MiB));
    expect(swapMax({ memory: '32m', memorySwap: '32m' })).toBe('0');
    expect(swapMax({ memory: '32m', memorySwap: '-1' })).toBe('max');
    expect(swapMax({ pidsLimit: '5' })).toBe('max'); // no memory limit: swap untouched
  });

  it('says when swap accounting is missing, and otherwise skips only docker\'s default', () => {
    const d = v2Tree();
    unlinkSync(join(tmp, 'tsrun-test', 'c1', 'memory.swap.max'));
    expect(failure(() => d.create('tsrun-test', 'c1', res({ memory: '32m', memorySwap: '64m' }))).message).toContain('--memory-swap needs memory.swap.max');
    d.create('tsrun-test', 'c1', res({ memory: '32m' }));
    expect(read('tsrun-test', 'c1', 'memory.max')).toBe(String(32 * MiB));
  });

  it('names the controller and the hierarchy when the root does not have it, and changes nothing', () => {
    const d = v2Tree(['cpu', 'memory', 'pids']);
    const err = failure(() => d.create('tsrun-test', 'c1', res({ memory: '64m', blkioWeight: '300' })));
    expect(err.code).toBe('EKERNEL');
    expect(err.message).toBe(`--blkio-weight needs the io controller, which is not available in ${tmp}/cgroup.controllers (cgroup v2)`);
    expect(writes).toEqual([]);
  });

  it('never enables controllers in a parent that holds processes (no-internal-processes rule)', () => {
    const d = v2Tree();
    writeFileSync(join(tmp, 'tsrun-test', 'cgroup.procs'), '4242\n');
    const err = failure(() => d.create('tsrun-test', 'c1', res({ pidsLimit: '10' })));
    expect(err.message).toContain(`--pids-limit needs the pids controller, which tsrun cannot enable in ${tmp}/tsrun-test/cgroup.subtree_control because ${tmp}/tsrun-test has processes of its own`);
    expect(writes).toEqual([]);
    // Without limits it goes ahead, without the stats-only controllers below that parent.
    d.create('tsrun-test', 'c1', {});
    expect(writes.filter(([p]) => p.startsWith('tsrun-test/'))).toEqual([]);
  });

  it('leaves controllers that are already enabled alone', () => {
    const d = v2Tree();
    writeFileSync(join(tmp, 'cgroup.subtree_control'), 'cpuset cpu io memory pids');
    writeFileSync(join(tmp, 'tsrun-test', 'cgroup.subtree_control'), 'cpu io memory pids');
    d.create('tsrun-test', 'c1', res({ memory: '32m' }));
    expect(writesTo('cgroup.subtree_control')).toEqual([]);
  });

  it('creates missing parents top down, and removes its own leaf when applying fails', () => {
    files(tmp, { 'cgroup.controllers': ALL_V2.join(' '), 'cgroup.subtree_control': '', 'cgroup.procs': '' });
    // Play the kernel: a new directory gets its interface files (here: before its first write).
    setCgroupWriteObserver((path, value) => {
      if (!existsSync(join(dirname(path), 'cgroup.procs'))) v2Cgroup(dirname(path));
      writes.push([relative(tmp, path), value]);
    });
    const err = failure(() => new V2Driver(tmp).create('/ci/jobs/', 'c9', res({ pidsLimit: '3' })));
    const order = writes.map(([p]) => p);
    expect(order).toEqual(['cgroup.subtree_control', 'ci/cgroup.subtree_control', 'ci/jobs/cgroup.subtree_control'].flatMap((p) => Array(4).fill(p)));
    // The leaf stayed empty (no kernel here): applying fails, and tsrun removes what it made.
    expect(err.message).toContain('--pids-limit needs the pids controller');
    expect(existsSync(join(tmp, 'ci', 'jobs', 'c9'))).toBe(false);
    expect(existsSync(join(tmp, 'ci', 'jobs'))).toBe(true); // parents are shared: they stay
  });

  it('refuses a leaf that exists with processes in it, and bad names', () => {
    const d = v2Tree();
    writeFileSync(join(tmp, 'tsrun-test', 'c1', 'cgroup.procs'), '77\n');
    expect(failure(() => d.create('tsrun-test', 'c1', {})).message).toContain('already exists and has processes');
    expect(failure(() => d.create('../etc', 'c1', {})).code).toBe('EINVAL_FLAG');
    expect(failure(() => d.create('/', 'c1', {})).code).toBe('EINVAL_FLAG');
    expect(failure(() => d.create('tsrun-test', '../x', {})).code).toBe('EINTERNAL');
  });

  it('updates cpu.max keeping the number not being changed', () => {
    const h = v2Tree().create('tsrun-test', 'c1', res({ cpuPeriod: '50000' }));
    expect(read('tsrun-test', 'c1', 'cpu.max')).toBe('max 50000');
    h.update(res({ cpuQuota: '25000' }));
    expect(read('tsrun-test', 'c1', 'cpu.max')).toBe('25000 50000');
    h.update({ cpu: { quota: -1 } });
    expect(read('tsrun-test', 'c1', 'cpu.max')).toBe('max 50000');
  });

  it('refuses an update needing a controller the cgroup was not given', () => {
    const d = v2Tree();
    v2Cgroup(join(tmp, 'tsrun-test', 'c1'), ['memory', 'pids']);
    const h = d.create('tsrun-test', 'c1', {});
    expect(failure(() => h.update(res({ cpus: '1' }))).message).toBe(
      `--cpus/--cpu-quota/--cpu-period needs the cpu controller, which is not enabled in ${tmp}/tsrun-test/cgroup.subtree_control (cgroup v2)`,
    );
  });

  it('reads stats like docker: usage without inactive file cache, host memory when unlimited', () => {
    const h = v2Tree().create('tsrun-test', 'c1', {});
    files(join(tmp, 'tsrun-test', 'c1'), {
      'memory.current': String(100 * MiB),
      'memory.stat': `anon ${60 * MiB}\nfile ${40 * MiB}\nactive_file ${10 * MiB}\ninactive_file ${30 * MiB}\n`,
      'cpu.stat': 'usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n',
      'pids.current': '3',
      'io.stat': '8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n8:16 rbytes=1 wbytes=2 rios=1 wios=1 dbytes=0 dios=0\n',
    });
    expect(h.stats()).toEqual({
      cpuUsageNs: 1_500_000, memoryUsage: 70 * MiB, memoryLimit: totalmem(), pidsCurrent: 3, blkioReadBytes: 4097, blkioWriteBytes: 8194,
    });
    h.update(res({ memory: '64m' }));
    expect(h.stats().memoryLimit).toBe(64 * MiB);
  });

  it('reports an OOM kill from memory.events', () => {
    const h = v2Tree().create('tsrun-test', 'c1', {});
    expect(h.oomKilled()).toBe(false);
    writeFileSync(join(tmp, 'tsrun-test', 'c1', 'memory.events'), 'low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n');
    expect(h.oomKilled()).toBe(true);
  });

  it('freezes with cgroup.freeze and waits for cgroup.events', () => {
    const h = v2Tree().create('tsrun-test', 'c1', {});
    const dir = join(tmp, 'tsrun-test', 'c1');
    writeFileSync(join(dir, 'cgroup.events'), 'populated 1\nfrozen 1\n'); // what the kernel will say
    h.freeze();
    expect(read('tsrun-test', 'c1', 'cgroup.freeze')).toBe('1');
    writeFileSync(join(dir, 'cgroup.events'), 'populated 1\nfrozen 0\n');
    h.thaw();
    expect(read('tsrun-test', 'c1', 'cgroup.freeze')).toBe('0');
    unlinkSync(join(dir, 'cgroup.freeze'));
    expect(failure(() => h.freeze()).code).toBe('EKERNEL');
  });

  it('kills through cgroup.kill', () => {
    const h = v2Tree().create('tsrun-test', 'c1', {});
    h.killAll();
    expect(writesTo('cgroup.kill')).toEqual([['tsrun-test/c1/cgroup.kill', '1']]);
  });

  it('shows the limits in force, lists and opens containers', () => {
    const d = v2Tree();
    v2Cgroup(join(tmp, 'tsrun-test', 'other'));
    d.create('tsrun-test', 'c1', res({ memory: '32m', pidsLimit: '9', cpus: '1' }));
    expect(d.open('tsrun-test', 'c1')?.limits()).toMatchObject({
      'memory.max': String(32 * MiB), 'memory.swap.max': String(32 * MiB), 'memory.low': '0', 'pids.max': '9', 'cpu.max': '100000 100000', 'cpu.weight': '100',
    });
    expect(d.list('tsrun-test').sort()).toEqual(['c1', 'other']);
    expect(d.list('/nothing/here')).toEqual([]);
    expect(d.open('tsrun-test', 'gone')).toBeUndefined();
  });
});

// ---------------------------------------------------------------- cgroup v1

const V1_HIERARCHIES: Record<string, string[]> = {
  cpu: ['cpu'], cpuacct: ['cpuacct'], cpuset: ['cpuset'], memory: ['memory'], devices: ['devices'],
  blkio: ['blkio'], pids: ['pids'], freezer: ['freezer'],
};

/** The interface files of a new (non-root) v1 cgroup, per controller. */
function v1Files(controller: string): Record<string, string> {
  switch (controller) {
    case 'cpu': return { 'cpu.shares': '1024', 'cpu.cfs_period_us': '100000', 'cpu.cfs_quota_us': '-1', 'cpu.stat': '' };
    case 'cpuacct': return { 'cpuacct.usage': '0', 'cpuacct.stat': 'user 0\nsystem 0\n' };
    case 'cpuset': return { 'cpuset.cpus': '', 'cpuset.mems': '' }; // empty until someone fills them
    case 'memory': return {
      'memory.limit_in_bytes': V1_MAX, 'memory.memsw.limit_in_bytes': V1_MAX, 'memory.soft_limit_in_bytes': V1_MAX,
      'memory.usage_in_bytes': '0', 'memory.failcnt': '0', 'memory.stat': 'cache 0\nrss 0\ntotal_inactive_file 0\n',
      'memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\noom_kill 0\n',
    };
    case 'blkio': return {
      'blkio.bfq.weight': 'default 100', 'blkio.throttle.read_bps_device': '', 'blkio.throttle.write_bps_device': '',
      'blkio.throttle.read_iops_device': '', 'blkio.throttle.write_iops_device': '', 'blkio.throttle.io_service_bytes_recursive': 'Total 0\n',
    };
    case 'pids': return { 'pids.max': 'max', 'pids.current': '0' };
    case 'freezer': return { 'freezer.state': 'THAWED' };
    case 'devices': return { 'devices.deny': '', 'devices.allow': '', 'devices.list': 'a *:* rwm\n' };
    default: return {};
  }
}

/**
 * A v1 (or hybrid) mount root in tmp: one directory per hierarchy, the parent and leaf already
 * there with the kernel's files. Returns the driver, made from mountinfo text as on a real host.
 */
function v1Tree(opts: { hierarchies?: Record<string, string[]>; unified?: boolean; id?: string } = {}): V1Driver {
  const hierarchies = opts.hierarchies ?? V1_HIERARCHIES;
  const lines: string[] = [];
  let n = 30;
  for (const [name, controllers] of Object.entries(hierarchies)) {
    const root = join(tmp, name);
    files(root, { 'cgroup.procs': '1\n', ...(controllers.includes('cpuset') && { 'cpuset.cpus': '0-1', 'cpuset.mems': '0' }) });
    for (const dir of [join(root, 'tsrun-test'), join(root, 'tsrun-test', opts.id ?? 'c1')]) {
      files(dir, { 'cgroup.procs': '', ...Object.assign({}, ...controllers.map(v1Files)) });
    }
    lines.push(`${n} 25 0:${n++} / ${root} rw,relatime - cgroup cgroup rw,${controllers.join(',')}`);
  }
  if (opts.unified !== false) {
    files(join(tmp, 'unified'), { 'cgroup.controllers': '', 'cgroup.subtree_control': '', 'cgroup.procs': '1\n' });
    v2Cgroup(join(tmp, 'unified', 'tsrun-test'), []);
    v2Cgroup(join(tmp, 'unified', 'tsrun-test', opts.id ?? 'c1'), []);
    lines.push(`${n} 25 0:${n} / ${join(tmp, 'unified')} rw,relatime - cgroup2 cgroup2 rw`);
  }
  const layout = detectCgroups({ mountRoot: tmp, mountinfo: lines.join('\n') });
  expect(layout.mode).toBe(opts.unified === false ? 'v1' : 'hybrid');
  return new V1Driver(layout);
}

describe('cgroup v1 driver (hybrid and pure v1)', () => {
  it('joins one directory per hierarchy, and the cgroup2 one on a hybrid host', () => {
    const h = v1Tree().create('tsrun-test', 'c1', {});
    expect(h.version).toBe(1);
    expect(Object.keys(h.paths).sort()).toEqual(['blkio', 'cpu', 'cpuacct', 'cpuset', 'devices', 'freezer', 'memory', 'pids', 'unified']);
    expect(h.paths.memory).toBe(join(tmp, 'memory', 'tsrun-test', 'c1'));
    expect(h.procsFiles).toHaveLength(9);
    expect(h.procsFiles).toContain(join(tmp, 'unified', 'tsrun-test', 'c1', 'cgroup.procs'));
    // The devices hierarchy too: its rules are the device policy on cgroup v1.
    expect(h.procsFiles).toContain(join(tmp, 'devices', 'tsrun-test', 'c1', 'cgroup.procs'));
  });

  it('writes the device allowlist to the devices controller: deny all, then allow each rule', () => {
    const h = v1Tree({ id: 'c2' }).create('tsrun-test', 'c2', {}, ['c:*:*:m', 'c:1:3:rwm', 'c:136:*:rwm']);
    expect(readFileSync(join(h.paths.devices!, 'devices.deny'), 'utf8')).toBe('a');
    // The fake tree keeps the last write of each file; the kernel appends each rule.
    expect(readFileSync(join(h.paths.devices!, 'devices.allow'), 'utf8')).toBe('c 136:* rwm');
    expect(deviceRulesV1(['c:*:*:m', 'b:*:*:m', 'c:1:3:rwm', 'c:136:*:rwm'])).toEqual(['c *:* m', 'b *:* m', 'c 1:3 rwm', 'c 136:* rwm']);
  });

  it('shares one directory between co-mounted cpu,cpuacct', () => {
    const hierarchies = { 'cpu,cpuacct': ['cpu', 'cpuacct'], memory: ['memory'], cpuset: ['cpuset'] };
    const h = v1Tree({ hierarchies, unified: false }).create('tsrun-test', 'c1', res({ cpus: '1', cpuShares: '256' }));
    expect(h.paths.cpu).toBe(join(tmp, 'cpu,cpuacct', 'tsrun-test', 'c1'));
    expect(h.paths.cpuacct).toBe(h.paths.cpu);
    expect(h.procsFiles).toHaveLength(3);
    expect(read('cpu,cpuacct', 'tsrun-test', 'c1', 'cpu.cfs_quota_us')).toBe('100000');
    expect(read('cpu,cpuacct', 'tsrun-test', 'c1', 'cpu.shares')).toBe('256');
  });

  it('fills cpuset.cpus and cpuset.mems from the parent, top down, before setting its own', () => {
    v1Tree().create('tsrun-test', 'c1', res({ cpusetCpus: '1' }));
    expect(writesTo('cpuset.cpus').concat(writesTo('cpuset.mems'))).toEqual([
      ['cpuset/tsrun-test/cpuset.cpus', '0-1'],
      ['cpuset/tsrun-test/c1/cpuset.cpus', '0-1'],
      ['cpuset/tsrun-test/c1/cpuset.cpus', '1'],
      ['cpuset/tsrun-test/cpuset.mems', '0'],
      ['cpuset/tsrun-test/c1/cpuset.mems', '0'],
    ]);
    // Initialisation happens before the limit.
    const order = writes.map(([p, v]) => `${p}=${v}`);
    const mems = order.indexOf('cpuset/tsrun-test/c1/cpuset.mems=0');
    expect(mems).toBeGreaterThanOrEqual(0); // written at all: -1 would pass the order check below
    expect(mems).toBeLessThan(order.indexOf('cpuset/tsrun-test/c1/cpuset.cpus=1'));
  });

  it('writes every limit in the kernel\'s format and units', () => {
    v1Tree().create('tsrun-test', 'c1', res({
      memory: '32m', memorySwap: '64m', memoryReservation: '16m', cpuShares: '512', cpuPeriod: '50000', cpuQuota: '25000', pidsLimit: '32',
      blkioWeight: '500', deviceReadBps: ['/dev/sda:1mb', '/dev/sdb:2mb'], deviceWriteIops: ['/dev/sda:100'],
    }));
    expect(read('memory', 'tsrun-test', 'c1', 'memory.limit_in_bytes')).toBe(String(32 * MiB));
    expect(read('memory', 'tsrun-test', 'c1', 'memory.memsw.limit_in_bytes')).toBe(String(64 * MiB));
    expect(read('memory', 'tsrun-test', 'c1', 'memory.soft_limit_in_bytes')).toBe(String(16 * MiB));
    expect(read('cpu', 'tsrun-test', 'c1', 'cpu.shares')).toBe('512');
    expect(read('cpu', 'tsrun-test', 'c1', 'cpu.cfs_period_us')).toBe('50000');
    expect(read('cpu', 'tsrun-test', 'c1', 'cpu.cfs_quota_us')).toBe('25000');
    expect(read('pids', 'tsrun-test', 'c1', 'pids.max')).toBe('32');
    expect(read('blkio', 'tsrun-test', 'c1', 'blkio.bfq.weight')).toBe('500');
    // One rule per write(2): the kernel parses each write on its own.
    expect(writesTo('blkio.throttle.read_bps_device').map(([, v]) => v)).toEqual(['8:0 1048576', '8:16 2097152']);
    expect(writesTo('blkio.throttle.write_iops_device').map(([, v]) => v)).toEqual(['8:0 100']);
  });

  it('orders memory and memsw writes so that limit ≤ memsw holds at every step', () => {
    const h = v1Tree().create('tsrun-test', 'c1', res({ memory: '32m', memorySwap: '64m' }));
    const order = () => writes.filter(([p]) => p.includes('memory.')).map(([p]) => p.split('/').pop());
    expect(order()).toEqual(['memory.limit_in_bytes', 'memory.memsw.limit_in_bytes']); // lowering from unlimited
    writes.length = 0;
    h.update(res({ memory: '128m', memorySwap: '256m' }));
    expect(order()).toEqual(['memory.memsw.limit_in_bytes', 'memory.limit_in_bytes']); // raising
    writes.length = 0;
    h.update(res({ memory: '64m', memorySwap: '-1' }));
    expect(order()).toEqual(['memory.memsw.limit_in_bytes', 'memory.limit_in_bytes']);
    expect(read('memory', 'tsrun-test', 'c1', 'memory.memsw.limit_in_bytes')).toBe('-1');
  });

  it('applies docker\'s swap default (memory + swap = 2 × memory) when swap is accounted', () => {
    v1Tree().create('tsrun-test', 'c1', res({ memory: '32m' }));
    expect(read('memory', 'tsrun-test', 'c1', 'memory.memsw.limit_in_bytes')).toBe(String(64 * MiB));
  });

  it('says how to get swap accounting when memory.memsw.* is missing', () => {
    const d = v1Tree();
    unlinkSync(join(tmp, 'memory', 'tsrun-test', 'c1', 'memory.memsw.limit_in_bytes'));
    const err = failure(() => d.create('tsrun-test', 'c1', res({ memory: '32m', memorySwap: '64m' })));
    expect(err.code).toBe('EKERNEL');
    expect(err.message).toContain(`--memory-swap needs memory.memsw.limit_in_bytes in ${tmp}/memory/tsrun-test/c1`);
    expect(err.message).toContain('swapaccount=1');
    d.create('tsrun-test', 'c1', res({ memory: '32m' })); // no default then, and no error
    expect(read('memory', 'tsrun-test', 'c1', 'memory.limit_in_bytes')).toBe(String(32 * MiB));
  });

  it('names a controller that is not mounted, before touching anything', () => {
    const hierarchies = { cpu: ['cpu'], memory: ['memory'] };
    const err = failure(() => v1Tree({ hierarchies }).create('tsrun-test', 'c1', res({ memory: '64m', pidsLimit: '10' })));
    expect(err.code).toBe('EKERNEL');
    expect(err.message).toBe(`--pids-limit needs the pids controller, which is not mounted under ${tmp} (cgroup v1; the cgroup2 mount at ${tmp}/unified carries no limits here)`);
    expect(writes).toEqual([]);
  });

  it('prefers CFQ\'s blkio.weight, and fails without any weight file', () => {
    const d = v1Tree();
    const dir = join(tmp, 'blkio', 'tsrun-test', 'c1');
    writeFileSync(join(dir, 'blkio.weight'), '500');
    d.create('tsrun-test', 'c1', res({ blkioWeight: '300' }));
    expect(read('blkio', 'tsrun-test', 'c1', 'blkio.weight')).toBe('300');
    unlinkSync(join(dir, 'blkio.weight'));
    unlinkSync(join(dir, 'blkio.bfq.weight'));
    expect(failure(() => d.create('tsrun-test', 'c1', res({ blkioWeight: '300' }))).message).toContain('--blkio-weight needs blkio.weight or blkio.bfq.weight');
  });

  it('reads stats like docker', () => {
    const h = v1Tree().create('tsrun-test', 'c1', res({ memory: '64m' }));
    files(join(tmp, 'memory', 'tsrun-test', 'c1'), {
      'memory.usage_in_bytes': String(100 * MiB),
      'memory.stat': `cache ${40 * MiB}\nrss ${60 * MiB}\ninactive_file ${5 * MiB}\ntotal_inactive_file ${30 * MiB}\n`,
    });
    files(join(tmp, 'cpuacct', 'tsrun-test', 'c1'), { 'cpuacct.usage': '123456789' });
    files(join(tmp, 'pids', 'tsrun-test', 'c1'), { 'pids.current': '2' });
    files(join(tmp, 'blkio', 'tsrun-test', 'c1'), {
      'blkio.throttle.io_service_bytes_recursive': '8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Async 12288\n8:0 Discard 0\n8:0 Total 12288\n8:16 Read 1\n8:16 Write 2\nTotal 12291\n',
    });
    expect(h.stats()).toEqual({
      cpuUsageNs: 123456789, memoryUsage: 70 * MiB, memoryLimit: 64 * MiB, pidsCurrent: 2, blkioReadBytes: 4097, blkioWriteBytes: 8194,
    });
    h.update({ memory: { limit: -1 } });
    expect(read('memory', 'tsrun-test', 'c1', 'memory.limit_in_bytes')).toBe('-1');
    writeFileSync(join(tmp, 'memory', 'tsrun-test', 'c1', 'memory.limit_in_bytes'), V1_MAX);
    expect(h.stats().memoryLimit).toBe(totalmem());
  });

  it('reports an OOM kill from memory.oom_control, or memory.failcnt on old kernels', () => {
    const h = v1Tree().create('tsrun-test', 'c1', res({ memory: '64m' }));
    const dir = join(tmp, 'memory', 'tsrun-test', 'c1');
    expect(h.oomKilled()).toBe(false);
    writeFileSync(join(dir, 'memory.oom_control'), 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n');
    expect(h.oomKilled()).toBe(true);
    writeFileSync(join(dir, 'memory.oom_control'), 'oom_kill_disable 0\nunder_oom 0\n');
    expect(h.oomKilled()).toBe(false);
    writeFileSync(join(dir, 'memory.failcnt'), '3');
    expect(h.oomKilled()).toBe(true);
  });

  it('freezes with freezer.state', () => {
    const h = v1Tree().create('tsrun-test', 'c1', {});
    h.freeze();
    expect(read('freezer', 'tsrun-test', 'c1', 'freezer.state')).toBe('FROZEN');
    h.thaw();
    expect(read('freezer', 'tsrun-test', 'c1', 'freezer.state')).toBe('THAWED');
  });

  it('kills through the cgroup2 mount\'s cgroup.kill on a hybrid host', () => {
    v1Tree().create('tsrun-test', 'c1', {}).killAll();
    expect(writesTo('cgroup.kill')).toEqual([['unified/tsrun-test/c1/cgroup.kill', '1']]);
  });

  it('shows the limits in force and lists containers across hierarchies', () => {
    const d = v1Tree();
    files(join(tmp, 'pids', 'tsrun-test', 'only-in-pids'), { 'cgroup.procs': '' });
    const h = d.create('tsrun-test', 'c1', res({ memory: '32m', pidsLimit: '9', cpus: '0.5' }));
    expect(h.limits()).toMatchObject({
      'memory.limit_in_bytes': String(32 * MiB), 'memory.memsw.limit_in_bytes': String(64 * MiB), 'memory.soft_limit_in_bytes': V1_MAX,
      'cpu.shares': '1024', 'cpu.cfs_period_us': '100000', 'cpu.cfs_quota_us': '50000', 'cpuset.cpus': '0-1', 'pids.max': '9', 'blkio.bfq.weight': 'default 100',
    });
    expect(d.list('tsrun-test')).toEqual(['c1', 'only-in-pids']);
    expect(d.open('tsrun-test', 'c1')?.paths.memory).toBe(join(tmp, 'memory', 'tsrun-test', 'c1'));
    expect(d.open('tsrun-test', 'nope')).toBeUndefined();
  });
});
