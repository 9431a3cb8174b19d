// Block I/O: proportional weight and per-device throttling.
//   v1 (blkio): blkio.weight (CFQ, gone since 5.0) or blkio.bfq.weight (BFQ);
//               blkio.throttle.{read,write}_{bps,iops}_device, one "MAJ:MIN RATE" per write
//   v2 (io):    io.bfq.weight (BFQ, 1–1000) or io.weight (io.cost, 1–10000);
//               io.max, one "MAJ:MIN rbps=.. wbps=.. riops=.. wiops=.." per write
import { firstExisting, missingFile, readFiles, requireFile, type Controller } from './controller.js';
import { readOptional, writeValue } from './fsio.js';
import type { Resources, ThrottleDevice } from './types.js';

type Throttles = Pick<NonNullable<Resources['blockIO']>,
  'throttleReadBpsDevice' | 'throttleWriteBpsDevice' | 'throttleReadIOPSDevice' | 'throttleWriteIOPSDevice'>;

const THROTTLES: Array<[keyof Throttles, flag: string, v1File: string, v2Key: string]> = [
  ['throttleReadBpsDevice', '--device-read-bps', 'blkio.throttle.read_bps_device', 'rbps'],
  ['throttleWriteBpsDevice', '--device-write-bps', 'blkio.throttle.write_bps_device', 'wbps'],
  ['throttleReadIOPSDevice', '--device-read-iops', 'blkio.throttle.read_iops_device', 'riops'],
  ['throttleWriteIOPSDevice', '--device-write-iops', 'blkio.throttle.write_iops_device', 'wiops'],
];

const WEIGHT_WHY = 'no proportional I/O scheduler: use the bfq scheduler for the disk';
const THROTTLE_WHY = 'the kernel was built without CONFIG_BLK_DEV_THROTTLING';

/** runc's mapping of blkio weight [10, 1000] onto io.weight [1, 10000]. */
export function blkioToIoWeight(weight: number): number {
  return 1 + Math.floor(((weight - 10) * 9999) / 990);
}

const devKey = (d: ThrottleDevice) => `${d.major}:${d.minor}`;

export const blkio: Controller = {
  v1: 'blkio',
  v2: 'io',

  flags(r) {
    const b = r.blockIO ?? {};
    return [
      ...(b.weight !== undefined ? ['--blkio-weight'] : []),
      ...THROTTLES.filter(([key]) => (b[key]?.length ?? 0) > 0).map(([, flag]) => flag),
    ];
  },

  applyV1(dir, r) {
    const b = r.blockIO;
    if (!b) return;
    if (b.weight !== undefined) {
      const file = firstExisting(dir, ['blkio.weight', 'blkio.bfq.weight']);
      if (!file) throw missingFile('--blkio-weight', dir, ['blkio.weight', 'blkio.bfq.weight'], WEIGHT_WHY, 1);
      writeValue(dir, file, b.weight);
    }
    for (const [key, flag, file] of THROTTLES) {
      const devices = b[key] ?? [];
      if (devices.length > 0) requireFile(flag, dir, file, THROTTLE_WHY, 1);
      for (const d of devices) writeValue(dir, file, `${devKey(d)} ${d.rate}`);
    }
  },

  applyV2(dir, r) {
    const b = r.blockIO;
    if (!b) return;
    if (b.weight !== undefined) {
      // As runc: BFQ takes blkio's own scale; io.weight (io.cost) has a wider one.
      const file = firstExisting(dir, ['io.bfq.weight', 'io.weight']);
      if (!file) throw missingFile('--blkio-weight', dir, ['io.bfq.weight', 'io.weight'], WEIGHT_WHY, 2);
      writeValue(dir, file, file === 'io.weight' ? blkioToIoWeight(b.weight) : b.weight);
    }
    // io.max holds every limit of one device on one line.
    const lines = new Map<string, string[]>();
    for (const [key, flag, , v2Key] of THROTTLES) {
      for (const d of b[key] ?? []) {
        requireFile(flag, dir, 'io.max', THROTTLE_WHY, 2);
        const parts = lines.get(devKey(d)) ?? [];
        parts.push(`${v2Key}=${d.rate > 0 ? d.rate : 'max'}`);
        lines.set(devKey(d), parts);
      }
    }
    for (const [dev, parts] of lines) writeValue(dir, 'io.max', `${dev} ${parts.join(' ')}`);
  },

  limitsV1: (dir) => readFiles(dir, ['blkio.weight', 'blkio.bfq.weight', ...THROTTLES.map(([, , f]) => f)]),
  limitsV2: (dir) => readFiles(dir, ['io.weight', 'io.bfq.weight', 'io.max']),
};

/** v1: "MAJ:MIN Read N" / "MAJ:MIN Write N" lines (and a Total) in the throttle accounting. */
export function blkioStatsV1(dir: string): { read: number; write: number } {
  const text =
    readOptional(dir, 'blkio.throttle.io_service_bytes_recursive') ?? readOptional(dir, 'blkio.throttle.io_service_bytes') ?? '';
  let read = 0;
  let write = 0;
  for (const line of text.split('\n')) {
    const [, op, n] = line.trim().split(/\s+/);
    if (op === 'Read') read += Number(n);
    if (op === 'Write') write += Number(n);
  }
  return { read, write };
}

/** v2: io.stat, "MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N" per device. */
export function ioStatsV2(dir: string): { read: number; write: number } {
  let read = 0;
  let write = 0;
  for (const line of (readOptional(dir, 'io.stat') ?? '').split('\n')) {
    for (const kv of line.trim().split(/\s+/).slice(1)) {
      const [k, v] = kv.split('=');
      if (k === 'rbytes') read += Number(v);
      if (k === 'wbytes') write += Number(v);
    }
  }
  return { read, write };
}
