// docker's resource flags (names, units, ranges and messages as docker has them) → Resources.
// The host facts that validation needs (online CPUs and memory nodes, device numbers) come in
// through `HostInfo`, so the rules are testable without this machine.
import { readFileSync, statSync } from 'node:fs';
import { cpus as osCpus } from 'node:os';
import { TsrunError } from '../errors.js';
import type { Resources, ThrottleDevice } from './types.js';

export interface ResourceFlags {
  memory?: string;
  memorySwap?: string;
  memoryReservation?: string;
  cpus?: string;
  cpuShares?: string | number;
  cpuPeriod?: string | number;
  cpuQuota?: string | number;
  cpusetCpus?: string;
  cpusetMems?: string;
  pidsLimit?: string | number;
  blkioWeight?: string | number;
  deviceReadBps?: string[];
  deviceWriteBps?: string[];
  deviceReadIops?: string[];
  deviceWriteIops?: string[];
}

export interface HostInfo {
  onlineCpus(): number[];
  onlineMems(): number[];
  /** Device numbers of a block device node, or an error message. */
  blockDevice(path: string): { major: number; minor: number } | string;
}

/** docker's linuxMinMemory: below this the container's own runtime does not fit. */
export const MIN_MEMORY = 6 * 1024 * 1024;
export const DEFAULT_CPU_PERIOD = 100_000;

const bad = (flag: string, value: unknown, why: string) =>
  new TsrunError('EINVAL_FLAG', `invalid argument "${String(value)}" for "${flag}" flag: ${why}`);

/**
 * A size as docker's RAMInBytes reads it: a number, optional space, then b, k, m, g, t or p with
 * an optional "b" or "ib" — all powers of 1024 ("1.5g", "512m", "64kib", "100").
 */
export function parseSize(flag: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?) ?([kmgtp])?i?b?$/i.exec(text.trim());
  if (!m) throw bad(flag, text, 'invalid size: use a number with an optional unit b, k, m or g (like 512m)');
  const exp = m[2] ? 'bkmgtp'.indexOf(m[2].toLowerCase()) : 0;
  return Math.floor(Number(m[1]) * 1024 ** exp);
}

function parseInteger(flag: string, value: string | number): number {
  const text = String(value).trim();
  if (!/^-?\d+$/.test(text)) throw bad(flag, value, 'not an integer');
  return Number(text);
}

/** A cpuset list ("0-3,5") → the sorted numbers it names. */
export function parseCpuList(flag: string, text: string): number[] {
  const out = new Set<number>();
  for (const part of text.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    const lo = Number(m?.[1]);
    const hi = m?.[2] === undefined ? lo : Number(m[2]);
    if (!m || hi < lo) throw bad(flag, text, 'invalid format: use a list like 0-3,5');
    for (let i = lo; i <= hi; i++) out.add(i);
  }
  return [...out].sort((a, b) => a - b);
}

function readList(path: string, fallback: number[]): number[] {
  try {
    return parseCpuList(path, readFileSync(path, 'utf8').trim());
  } catch {
    return fallback;
  }
}

export const realHost: HostInfo = {
  onlineCpus: () => readList('/sys/devices/system/cpu/online', osCpus().map((_, i) => i)),
  // Kernels without NUMA have no node directory: there is one memory node, 0.
  onlineMems: () => readList('/sys/devices/system/node/online', [0]),
  blockDevice(path) {
    let st;
    try {
      st = statSync(path, { bigint: true });
    } catch (err) {
      return `cannot stat it (${(err as NodeJS.ErrnoException).code ?? String(err)})`;
    }
    if (!st.isBlockDevice()) return 'not a block device';
    // glibc's major()/minor() for the 64-bit dev_t.
    const dev = st.rdev;
    const major = Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
    const minor = Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
    return { major, minor };
  },
};

function parseThrottle(flag: string, values: string[] | undefined, host: HostInfo, iops: boolean): ThrottleDevice[] {
  const byDevice = new Map<string, ThrottleDevice>();
  for (const v of values ?? []) {
    const colon = v.lastIndexOf(':');
    const path = v.slice(0, colon);
    const rateText = v.slice(colon + 1);
    if (colon < 0 || !path || !rateText) throw bad(flag, v, iops ? 'use <device-path>:<number>' : 'use <device-path>:<number>[<unit>]');
    if (!path.startsWith('/dev/')) throw bad(flag, v, `${path} is not a device path under /dev/`);
    let rate: number;
    if (iops) {
      if (!/^\d+$/.test(rateText)) throw bad(flag, v, 'the rate must be a positive integer (operations per second)');
      rate = Number(rateText);
    } else {
      rate = parseSize(flag, rateText);
    }
    const dev = host.blockDevice(path);
    if (typeof dev === 'string') throw bad(flag, v, `${path}: ${dev}`);
    // Given twice, the last one wins, as each write to the kernel file would.
    byDevice.set(`${dev.major}:${dev.minor}`, { ...dev, rate });
  }
  return [...byDevice.values()];
}

/** Validate docker's resource flags and turn them into Resources. Absent flags stay absent. */
export function parseResources(f: ResourceFlags, host: HostInfo = realHost): Resources {
  const r: Resources = {};

  // Memory. 0 means "not set", as in docker.
  const memory = f.memory === undefined ? 0 : parseSize('--memory', f.memory);
  if (memory > 0 && memory < MIN_MEMORY) throw bad('--memory', f.memory, 'Minimum memory limit allowed is 6MB');
  let swap = 0;
  if (f.memorySwap !== undefined) {
    swap = f.memorySwap.trim() === '-1' ? -1 : parseSize('--memory-swap', f.memorySwap);
    if (swap !== 0 && memory === 0) {
      throw bad('--memory-swap', f.memorySwap, 'You should always set the Memory limit when using Memoryswap limit');
    }
    if (swap > 0 && swap < memory) {
      throw bad('--memory-swap', f.memorySwap, 'Minimum memoryswap limit should be larger than memory limit (it counts memory plus swap)');
    }
  }
  const reservation = f.memoryReservation === undefined ? 0 : parseSize('--memory-reservation', f.memoryReservation);
  if (reservation > 0 && reservation < MIN_MEMORY) {
    throw bad('--memory-reservation', f.memoryReservation, 'Minimum memory reservation allowed is 6MB');
  }
  if (memory > 0 && reservation > memory) {
    throw bad('--memory-reservation', f.memoryReservation, 'Minimum memory limit can not be less than memory reservation limit');
  }
  if (memory > 0 || swap !== 0 || reservation > 0) {
    r.memory = {
      ...(memory > 0 && { limit: memory }),
      ...(swap !== 0 && { swap }),
      ...(reservation > 0 && { reservation }),
    };
  }

  // CPU time.
  const cpu: NonNullable<Resources['cpu']> = {};
  if (f.cpuShares !== undefined) {
    const shares = parseInteger('--cpu-shares', f.cpuShares);
    if (shares !== 0 && (shares < 2 || shares > 262144)) throw bad('--cpu-shares', f.cpuShares, 'the range is 2 to 262144 (1024 is the default weight)');
    if (shares !== 0) cpu.shares = shares;
  }
  if (f.cpus !== undefined) {
    if (f.cpuPeriod !== undefined) throw new TsrunError('EINVAL_FLAG', 'conflicting options: --cpus and --cpu-period cannot both be set');
    if (f.cpuQuota !== undefined) throw new TsrunError('EINVAL_FLAG', 'conflicting options: --cpus and --cpu-quota cannot both be set');
    const online = host.onlineCpus().length;
    const range = `Range of CPUs is from 0.01 to ${online}.00, as there are only ${online} CPUs available`;
    if (!/^(\d+(\.\d*)?|\.\d+)$/.test(f.cpus.trim())) throw bad('--cpus', f.cpus, 'not a number');
    const n = Number(f.cpus);
    if (n < 0.01 || n > online) throw bad('--cpus', f.cpus, range);
    // docker's NanoCPUs → CFS bandwidth: quota per 100 ms period, the quota rounded down.
    cpu.period = DEFAULT_CPU_PERIOD;
    cpu.quota = Math.floor((Math.round(n * 1e9) * DEFAULT_CPU_PERIOD) / 1e9);
  }
  if (f.cpuPeriod !== undefined) {
    const period = parseInteger('--cpu-period', f.cpuPeriod);
    if (period !== 0 && (period < 1000 || period > 1_000_000)) {
      throw bad('--cpu-period', f.cpuPeriod, 'CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)');
    }
    if (period !== 0) cpu.period = period;
  }
  if (f.cpuQuota !== undefined) {
    const quota = parseInteger('--cpu-quota', f.cpuQuota);
    if (quota !== 0 && quota !== -1 && quota < 1000) throw bad('--cpu-quota', f.cpuQuota, 'CPU cfs quota can not be less than 1ms (i.e. 1000); -1 means no limit');
    if (quota !== 0) cpu.quota = quota;
  }
  if (f.cpusetCpus !== undefined) {
    const want = parseCpuList('--cpuset-cpus', f.cpusetCpus);
    const online = host.onlineCpus();
    if (want.some((c) => !online.includes(c))) {
      throw bad('--cpuset-cpus', f.cpusetCpus, `Requested CPUs are not available - requested ${f.cpusetCpus}, available: ${formatList(online)}`);
    }
    cpu.cpus = f.cpusetCpus.trim();
  }
  if (f.cpusetMems !== undefined) {
    const want = parseCpuList('--cpuset-mems', f.cpusetMems);
    const online = host.onlineMems();
    if (want.some((m) => !online.includes(m))) {
      throw bad('--cpuset-mems', f.cpusetMems, `Requested memory nodes are not available - requested ${f.cpusetMems}, available: ${formatList(online)}`);
    }
    cpu.mems = f.cpusetMems.trim();
  }
  if (Object.keys(cpu).length > 0) r.cpu = cpu;

  // docker: 0 or less means unlimited.
  if (f.pidsLimit !== undefined) {
    const limit = parseInteger('--pids-limit', f.pidsLimit);
    r.pids = { limit: limit > 0 ? limit : -1 };
  }

  const blockIO: NonNullable<Resources['blockIO']> = {};
  if (f.blkioWeight !== undefined) {
    const weight = parseInteger('--blkio-weight', f.blkioWeight);
    if (weight !== 0 && (weight < 10 || weight > 1000)) throw bad('--blkio-weight', f.blkioWeight, 'Range of blkio weight is from 10 to 1000');
    if (weight !== 0) blockIO.weight = weight;
  }
  const throttles = [
    ['throttleReadBpsDevice', '--device-read-bps', f.deviceReadBps, false],
    ['throttleWriteBpsDevice', '--device-write-bps', f.deviceWriteBps, false],
    ['throttleReadIOPSDevice', '--device-read-iops', f.deviceReadIops, true],
    ['throttleWriteIOPSDevice', '--device-write-iops', f.deviceWriteIops, true],
  ] as const;
  for (const [key, flag, values, iops] of throttles) {
    const devices = parseThrottle(flag, values, host, iops);
    if (devices.length > 0) blockIO[key] = devices;
  }
  if (Object.keys(blockIO).length > 0) r.blockIO = blockIO;

  return r;
}

/** [0,1,2,5] → "0-2,5", the kernel's own list format. */
export function formatList(ns: number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < ns.length; i++) {
    const start = ns[i] as number;
    while (i + 1 < ns.length && ns[i + 1] === (ns[i] as number) + 1) i++;
    parts.push(start === ns[i] ? `${start}` : `${start}-${ns[i]}`);
  }
  return parts.join(',');
}
