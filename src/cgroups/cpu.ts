// The cpu controller: relative weight and CFS bandwidth (quota per period), plus CPU usage.
//   v1: cpu.shares, cpu.cfs_period_us, cpu.cfs_quota_us; usage in cpuacct.usage (ns), a
//       separate hierarchy unless mounted together as "cpu,cpuacct"
//   v2: cpu.weight (1–10000), cpu.max "$QUOTA $PERIOD"; usage in cpu.stat usage_usec
import { readFiles, requireFile, type Controller } from './controller.js';
import { readFlatKeyed, readOptional, readText, writeValue } from './fsio.js';

const CFS_WHY = 'the kernel was built without CONFIG_CFS_BANDWIDTH';

/** runc's (and the OCI spec's) mapping of v1 shares [2, 262144] onto v2 weight [1, 10000]. */
export function sharesToWeight(shares: number): number {
  return 1 + Math.floor(((shares - 2) * 9999) / 262142);
}

export const cpu: Controller = {
  v1: 'cpu',
  v2: 'cpu',

  flags(r) {
    const c = r.cpu ?? {};
    return [
      ...(c.shares !== undefined ? ['--cpu-shares'] : []),
      ...(c.quota !== undefined || c.period !== undefined ? ['--cpus/--cpu-quota/--cpu-period'] : []),
    ];
  },

  applyV1(dir, r) {
    const c = r.cpu;
    if (!c) return;
    if (c.shares !== undefined) writeValue(dir, 'cpu.shares', c.shares);
    if (c.period === undefined && c.quota === undefined) return;
    requireFile('--cpus/--cpu-quota/--cpu-period', dir, 'cpu.cfs_quota_us', CFS_WHY, 1);
    if (c.period !== undefined) writeValue(dir, 'cpu.cfs_period_us', c.period);
    if (c.quota !== undefined) writeValue(dir, 'cpu.cfs_quota_us', c.quota);
  },

  applyV2(dir, r) {
    const c = r.cpu;
    if (!c) return;
    if (c.shares !== undefined) writeValue(dir, 'cpu.weight', sharesToWeight(c.shares));
    if (c.period === undefined && c.quota === undefined) return;
    requireFile('--cpus/--cpu-quota/--cpu-period', dir, 'cpu.max', CFS_WHY, 2);
    // One file holds both numbers: keep the one not being changed.
    const [curQuota = 'max', curPeriod = '100000'] = readText(dir, 'cpu.max').split(/\s+/);
    const quota = c.quota === undefined ? curQuota : c.quota < 0 ? 'max' : String(c.quota);
    writeValue(dir, 'cpu.max', `${quota} ${c.period ?? curPeriod}`);
  },

  limitsV1: (dir) => readFiles(dir, ['cpu.shares', 'cpu.cfs_period_us', 'cpu.cfs_quota_us']),
  limitsV2: (dir) => readFiles(dir, ['cpu.weight', 'cpu.max']),
};

/** Total CPU time in ns from a v1 cpuacct directory. */
export function cpuUsageV1(cpuacctDir: string): number {
  return Number(readOptional(cpuacctDir, 'cpuacct.usage') ?? 0);
}

/** Total CPU time in ns from a v2 directory (cpu.stat exists even without the cpu controller). */
export function cpuUsageV2(dir: string): number {
  return (readFlatKeyed(dir, 'cpu.stat')?.usage_usec ?? 0) * 1000;
}
