// The cgroup driver of this host (v1 on a hybrid machine, v2 on a pure one) against the real
// kernel: limits hold, stats agree with the files, freeze/kill/remove leave nothing behind.
// Everything lives under a parent of its own (tsrun-test-<random>), removed in afterAll.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { V1Driver, detectCgroups, openDriver, parseResources, type CgroupDriver, type CgroupHandle } from '../../src/cgroups/index.js';
import { blkioToIoWeight } from '../../src/cgroups/blkio.js';
import { describePrivileged } from './helpers/env.js';

const parent = `tsrun-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every cgroup dir named tsrun-test* anywhere under /sys/fs/cgroup. */
function leftovers(): string[] {
  const r = spawnSync('find', ['/sys/fs/cgroup', '-maxdepth', '4', '-type', 'd', '-name', 'tsrun-test*'], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean);
}

/** A whole disk (throttling takes whole disks, not partitions), e.g. /dev/vda and "254:0". */
function wholeDisk(): { path: string; dev: string } | undefined {
  for (const name of readdirSync('/sys/block')) {
    if (/^(loop|ram|zram|nbd|sr)/.test(name) || !existsSync(`/dev/${name}`)) continue;
    return { path: `/dev/${name}`, dev: readFileSync(`/sys/block/${name}/dev`, 'utf8').trim() };
  }
  return undefined;
}

describePrivileged('cgroups on this host (real kernel)', () => {
  let driver: CgroupDriver;
  const handles: CgroupHandle[] = [];
  const children: ChildProcess[] = [];

  /**
   * A shell that waits on stdin before running `script`, so it can be put in the cgroup first
   * (the native helper does the same with its sync pipe).
   */
  function inCgroup(h: CgroupHandle, script: string): { child: ChildProcess; pid: number; exited: Promise<[number | null, string | null]> } {
    const child = spawn('sh', ['-c', `read _go; ${script}`], { stdio: ['pipe', 'ignore', 'pipe'] });
    children.push(child);
    const exited = new Promise<[number | null, string | null]>((resolve) => child.on('exit', (code, sig) => resolve([code, sig])));
    const pid = child.pid as number;
    for (const f of h.procsFiles) writeFileSync(f, String(pid));
    child.stdin?.write('go\n');
    return { child, pid, exited };
  }

  function create(id: string, flags: Parameters<typeof parseResources>[0]): CgroupHandle {
    const h = driver.create(parent, id, parseResources(flags));
    handles.push(h);
    return h;
  }

  beforeAll(() => {
    driver = openDriver(detectCgroups());
  });

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const h of handles) {
      try {
        h.remove();
      } catch {
        // reported by the leftovers check below
      }
    }
    driver.removeParent(parent);
    expect(leftovers()).toEqual([]);
  });

  it('joins every hierarchy through procsFiles', async () => {
    const h = create('join', {});
    const { pid } = inCgroup(h, 'exec sleep 30');
    const mine = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
    for (const dir of Object.values(h.paths)) expect(readFileSync(join(dir, 'cgroup.procs'), 'utf8')).toContain(String(pid));
    expect(mine).toContain(`/${parent}/join`);
    expect(h.pids()).toEqual([pid]);
    h.killAll();
    expect(h.pids()).toEqual([]);
  });

  it('contains a fork bomb under --pids-limit 32, and the host can still fork', async () => {
    const h = create('forkbomb', { pidsLimit: '32' });
    const { exited } = inCgroup(h, 'i=0; while [ $i -lt 100 ]; do sleep 5 & i=$((i+1)); done; wait');
    await sleep(1000);
    const s = h.stats();
    expect(s.pidsCurrent).toBeGreaterThan(20);
    expect(s.pidsCurrent).toBeLessThanOrEqual(32);
    const events = readFileSync(join(h.paths.pids ?? h.paths.unified ?? '', 'pids.events'), 'utf8');
    expect(Number(/max (\d+)/.exec(events)?.[1])).toBeGreaterThan(0); // forks were refused
    expect(spawnSync('true').status).toBe(0);
    h.killAll();
    expect(h.pids()).toEqual([]);
    await exited;
  });

  it('OOM-kills a memory hog under --memory 32m and reports it', async () => {
    const h = create('oom', { memory: '32m' });
    expect(h.oomKilled()).toBe(false);
    const { exited } = inCgroup(h, 'head -c 200m /dev/zero | tail > /dev/null');
    const [code] = await exited;
    expect(code).toBe(137); // tail died of SIGKILL
    expect(h.oomKilled()).toBe(true);
  });

  it('holds a busy loop near 50% with --cpus 0.5', async () => {
    const h = create('cpus', { cpus: '0.5' });
    inCgroup(h, 'while :; do :; done');
    await sleep(300);
    const u0 = h.stats().cpuUsageNs;
    const t0 = process.hrtime.bigint();
    await sleep(3000);
    const share = (h.stats().cpuUsageNs - u0) / Number(process.hrtime.bigint() - t0);
    console.log(`--cpus 0.5: busy loop used ${(share * 100).toFixed(1)}% of one CPU over 3 s`);
    expect(share).toBeGreaterThan(0.35);
    expect(share).toBeLessThan(0.65);
    h.killAll();
  });

  it('pins to CPU 0 with --cpuset-cpus 0', async () => {
    const h = create('cpuset', { cpusetCpus: '0' });
    const { pid } = inCgroup(h, 'exec sleep 30');
    await sleep(50);
    expect(/Cpus_allowed_list:\s*(\S+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]).toBe('0');
    h.killAll();
  });

  it('reports stats that agree with the kernel files', async () => {
    const h = create('stats', { memory: '64m', pidsLimit: '50' });
    inCgroup(h, 'sleep 30 & sleep 30 & head -c 10m /dev/zero > /dev/null; wait');
    await sleep(300);
    const p = h.paths;
    // Memory in use moves while we read: bound the reading by the file before and after it.
    const usage = () => (driver.version === 1 ? Number(readFileSync(join(p.memory!, 'memory.usage_in_bytes'), 'utf8')) : 0);
    const before = usage();
    const s = h.stats();
    const after = usage();
    if (driver.version === 1) {
      expect(s.memoryLimit).toBe(Number(readFileSync(join(p.memory!, 'memory.limit_in_bytes'), 'utf8')));
      expect(s.pidsCurrent).toBe(Number(readFileSync(join(p.pids!, 'pids.current'), 'utf8')));
      expect(s.cpuUsageNs).toBeLessThanOrEqual(Number(readFileSync(join(p.cpuacct!, 'cpuacct.usage'), 'utf8')));
      expect(s.memoryUsage).toBeLessThanOrEqual(Math.max(before, after));
    } else {
      expect(s.pidsCurrent).toBe(Number(readFileSync(join(p.unified!, 'pids.current'), 'utf8')));
    }
    expect(s.memoryLimit).toBe(64 * 1024 * 1024);
    expect(s.pidsCurrent).toBe(3); // sh and two sleeps
    expect(s.cpuUsageNs).toBeGreaterThan(0);
    expect(s.memoryUsage).toBeGreaterThan(0);
    expect(h.limits()).toMatchObject(driver.version === 1 ? { 'memory.limit_in_bytes': '67108864', 'pids.max': '50' } : { 'memory.max': '67108864', 'pids.max': '50' });
    h.killAll();
  });

  it('freezes and thaws', async () => {
    const h = create('freeze', {});
    inCgroup(h, 'while :; do :; done');
    await sleep(200);
    h.freeze();
    if (driver.version === 1) expect(readFileSync(join(h.paths.freezer!, 'freezer.state'), 'utf8').trim()).toBe('FROZEN');
    const u1 = h.stats().cpuUsageNs;
    await sleep(500);
    expect(h.stats().cpuUsageNs - u1).toBeLessThan(5e6); // under 5 ms in half a second
    h.thaw();
    await sleep(300);
    expect(h.stats().cpuUsageNs - u1).toBeGreaterThan(50e6);
    h.killAll();
  });

  it('kills every task, even frozen ones, and removes the cgroup', async () => {
    const h = create('kill', {});
    const { exited } = inCgroup(h, 'sleep 30 & sleep 30 & sleep 30 & wait');
    await sleep(200);
    expect(h.pids().length).toBe(4);
    h.freeze();
    h.killAll();
    expect(h.pids()).toEqual([]);
    expect(await exited).toEqual([null, 'SIGKILL']);
    h.remove();
    for (const dir of Object.values(h.paths)) expect(() => readFileSync(join(dir, 'cgroup.procs'))).toThrow();
    expect(driver.open(parent, 'kill')).toBeUndefined();
  });

  it('writes docker\'s flags in the kernel\'s units', () => {
    const disk = wholeDisk();
    const h = create('units', {
      memory: '32m', memorySwap: '64m', memoryReservation: '16m', cpuShares: '512', cpuPeriod: '50000', cpuQuota: '25000',
      cpusetCpus: '0', pidsLimit: '0',
      ...(disk && { deviceReadBps: [`${disk.path}:1mb`], deviceWriteIops: [`${disk.path}:100`] }),
    });
    const l = h.limits();
    if (driver.version === 1) {
      expect(l).toMatchObject({
        'memory.limit_in_bytes': '33554432', 'memory.memsw.limit_in_bytes': '67108864', 'memory.soft_limit_in_bytes': '16777216',
        'cpu.shares': '512', 'cpu.cfs_period_us': '50000', 'cpu.cfs_quota_us': '25000', 'cpuset.cpus': '0', 'pids.max': 'max',
      });
      if (disk) {
        expect(l['blkio.throttle.read_bps_device']).toBe(`${disk.dev} 1048576`);
        expect(l['blkio.throttle.write_iops_device']).toBe(`${disk.dev} 100`);
      }
    } else {
      expect(l).toMatchObject({ 'memory.max': '33554432', 'memory.low': '16777216', 'cpu.weight': '20', 'cpu.max': '25000 50000', 'cpuset.cpus': '0', 'pids.max': 'max' });
      if (disk) expect(l['io.max']).toContain(`${disk.dev} rbps=1048576 wbps=max riops=max wiops=100`);
    }
  });

  it('sets --blkio-weight where the disk has a proportional scheduler, and says why not where none has', () => {
    // A weight needs BFQ (or CFQ before 5.0; io.cost on v2): present or not depends on the host.
    let h: CgroupHandle;
    try {
      h = create('weight', { blkioWeight: '500' });
    } catch (err) {
      expect(String(err)).toMatch(/--blkio-weight needs (blkio|io)\.\S+ or \S+ in \S+\/weight, which this kernel does not provide \(no proportional I\/O scheduler/);
      expect(driver.open(parent, 'weight')).toBeUndefined(); // nothing made is left
      return;
    }
    const l = h.limits();
    const weight = l['blkio.weight'] ?? l['blkio.bfq.weight'] ?? l['io.bfq.weight'] ?? l['io.weight'];
    expect(weight).toBe(l['io.weight'] !== undefined && l['io.bfq.weight'] === undefined ? String(blkioToIoWeight(500)) : '500');
  });

  it('raises and lowers memory with swap in an order the kernel accepts', () => {
    const h = create('update', { memory: '32m', memorySwap: '64m' });
    h.update(parseResources({ memory: '128m', memorySwap: '256m' }));
    expect(h.stats().memoryLimit).toBe(128 * 1024 * 1024);
    h.update(parseResources({ memory: '16m', memorySwap: '20m' }));
    expect(h.stats().memoryLimit).toBe(16 * 1024 * 1024);
    if (driver.version === 1) expect(h.limits()['memory.memsw.limit_in_bytes']).toBe(String(20 * 1024 * 1024));
    else expect(h.limits()['memory.swap.max']).toBe(String(4 * 1024 * 1024));
  });

  it('kills a forking workload with freeze/kill/thaw where there is no cgroup.kill (pure v1)', async (ctx) => {
    const layout = detectCgroups();
    if (layout.mode !== 'hybrid') ctx.skip();
    // The same v1 hierarchies, as a pure-v1 host sees them: no cgroup2 mount, so no cgroup.kill.
    const v1only = new V1Driver({ mode: 'v1', mountRoot: layout.mountRoot, v1: layout.v1 });
    const h = v1only.create(parent, 'v1kill', parseResources({ pidsLimit: '1000' }));
    handles.push(h);
    expect(h.paths.unified).toBeUndefined();
    // Forks all the time (about 100 live sleeps), so a kill that reads cgroup.procs once would miss some.
    const { exited } = inCgroup(h, 'while :; do sleep 1 & sleep 0.01; done');
    await sleep(300);
    expect(h.pids().length).toBeGreaterThan(10);
    h.killAll();
    expect(h.pids()).toEqual([]);
    expect(await exited).toEqual([null, 'SIGKILL']);
    h.remove();
    expect(v1only.open(parent, 'v1kill')).toBeUndefined();
  });

  it('lists the containers under its parent', () => {
    create('listed', {});
    expect(driver.list(parent)).toContain('listed');
    expect(driver.open(parent, 'listed')?.procsFiles.length).toBeGreaterThan(0);
  });
});
