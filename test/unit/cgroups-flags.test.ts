// docker's resource flags → Resources: units, ranges and docker's messages.
import { describe, expect, it } from 'vitest';
import { parseCpuList, parseResources, parseSize, type HostInfo, type ResourceFlags } from '../../src/cgroups/index.js';
import { TsrunError } from '../../src/errors.js';

const host: HostInfo = {
  onlineCpus: () => [0, 1],
  onlineMems: () => [0],
  blockDevice: (path) => (path === '/dev/sda' ? { major: 8, minor: 0 } : path === '/dev/vdb' ? { major: 254, minor: 16 } : 'not a block device'),
};
const parse = (f: ResourceFlags) => parseResources(f, host);
const MiB = 1024 * 1024;

function failure(f: ResourceFlags): TsrunError {
  try {
    parse(f);
  } catch (err) {
    expect(err).toBeInstanceOf(TsrunError);
    expect((err as TsrunError).code).toBe('EINVAL_FLAG');
    return err as TsrunError;
  }
  throw new Error(`parseResources(${JSON.stringify(f)}) did not fail`);
}

describe('sizes (docker RAMInBytes: powers of 1024)', () => {
  it.each([
    ['100', 100],
    ['100b', 100],
    ['4k', 4096],
    ['4kb', 4096],
    ['4KiB', 4096],
    ['32m', 32 * MiB],
    ['32M', 32 * MiB],
    ['1.5g', 1.5 * 1024 * MiB],
    ['1 g', 1024 * MiB],
    ['2t', 2 * 1024 ** 4],
  ])('%s = %d bytes', (text, bytes) => expect(parseSize('--memory', text)).toBe(bytes));

  it.each(['', 'm', '12x', '-5m', '1.2.3m', '32mm', '0x10'])('refuses %j', (text) => {
    expect(() => parseSize('--memory', text)).toThrow(`invalid argument "${text}" for "--memory" flag: invalid size`);
  });
});

describe('--memory, --memory-swap, --memory-reservation', () => {
  it('passes bytes through', () => {
    expect(parse({ memory: '32m', memorySwap: '64m', memoryReservation: '16m' })).toEqual({
      memory: { limit: 32 * MiB, swap: 64 * MiB, reservation: 16 * MiB },
    });
  });

  it('refuses less than 6MB, as docker', () => {
    expect(failure({ memory: '5m' }).message).toBe('invalid argument "5m" for "--memory" flag: Minimum memory limit allowed is 6MB');
    expect(parse({ memory: '6m' }).memory?.limit).toBe(6 * MiB);
    expect(failure({ memory: '6m', memoryReservation: '1m' }).message).toContain('Minimum memory reservation allowed is 6MB');
  });

  it('treats 0 as not set, as docker', () => {
    expect(parse({ memory: '0' })).toEqual({});
  });

  it('takes -1 as unlimited swap', () => {
    expect(parse({ memory: '32m', memorySwap: '-1' }).memory).toEqual({ limit: 32 * MiB, swap: -1 });
  });

  it('refuses swap below memory, or swap without memory', () => {
    expect(failure({ memory: '64m', memorySwap: '32m' }).message).toContain('Minimum memoryswap limit should be larger than memory limit');
    expect(failure({ memorySwap: '64m' }).message).toContain('You should always set the Memory limit when using Memoryswap limit');
    expect(parse({ memory: '64m', memorySwap: '64m' }).memory?.swap).toBe(64 * MiB); // no swap at all
  });

  it('refuses a reservation above the limit', () => {
    expect(failure({ memory: '32m', memoryReservation: '64m' }).message).toContain('can not be less than memory reservation limit');
  });

  it('refuses a bad unit with the flag named', () => {
    expect(failure({ memorySwap: '1q' }).message).toMatch(/^invalid argument "1q" for "--memory-swap" flag: invalid size/);
  });
});

describe('--cpus, --cpu-shares, --cpu-period, --cpu-quota', () => {
  it('turns --cpus into CFS quota per 100 ms period', () => {
    expect(parse({ cpus: '0.5' }).cpu).toEqual({ period: 100000, quota: 50000 });
    expect(parse({ cpus: '1.5' }).cpu).toEqual({ period: 100000, quota: 150000 });
    expect(parse({ cpus: '2' }).cpu).toEqual({ period: 100000, quota: 200000 });
    expect(parse({ cpus: '0.01' }).cpu).toEqual({ period: 100000, quota: 1000 });
    expect(parse({ cpus: '.25' }).cpu).toEqual({ period: 100000, quota: 25000 });
  });

  it('refuses 0, too little, more CPUs than online, and non-numbers', () => {
    const range = 'Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available';
    expect(failure({ cpus: '0' }).message).toBe(`invalid argument "0" for "--cpus" flag: ${range}`);
    expect(failure({ cpus: '0.001' }).message).toContain(range);
    expect(failure({ cpus: '2.5' }).message).toContain(range);
    expect(failure({ cpus: 'half' }).message).toContain('not a number');
    expect(failure({ cpus: '-1' }).message).toContain('not a number');
  });

  it('refuses --cpus together with --cpu-period or --cpu-quota', () => {
    expect(failure({ cpus: '1', cpuQuota: '50000' }).message).toContain('--cpus and --cpu-quota cannot both be set');
    expect(failure({ cpus: '1', cpuPeriod: '50000' }).message).toContain('--cpus and --cpu-period cannot both be set');
  });

  it('checks shares, period and quota ranges', () => {
    expect(parse({ cpuShares: '512', cpuPeriod: '50000', cpuQuota: '25000' }).cpu).toEqual({ shares: 512, period: 50000, quota: 25000 });
    expect(parse({ cpuQuota: '-1' }).cpu).toEqual({ quota: -1 });
    expect(parse({ cpuShares: '0' })).toEqual({});
    expect(failure({ cpuShares: '1' }).message).toContain('2 to 262144');
    expect(failure({ cpuShares: '300000' }).message).toContain('2 to 262144');
    expect(failure({ cpuShares: 'lots' }).message).toContain('not an integer');
    expect(failure({ cpuPeriod: '999' }).message).toContain('CPU cfs period can not be less than 1ms');
    expect(failure({ cpuPeriod: '1000001' }).message).toContain('larger than 1s');
    expect(failure({ cpuQuota: '999' }).message).toContain('CPU cfs quota can not be less than 1ms');
  });
});

describe('--cpuset-cpus and --cpuset-mems', () => {
  it('parses the kernel list format', () => {
    expect(parseCpuList('--cpuset-cpus', '0-3,5,7-8')).toEqual([0, 1, 2, 3, 5, 7, 8]);
    expect(parse({ cpusetCpus: '0-1', cpusetMems: '0' }).cpu).toEqual({ cpus: '0-1', mems: '0' });
  });

  it.each(['', 'a', '1-', '3-1', '0,,1', '0 1'])('refuses the list %j', (list) => {
    expect(failure({ cpusetCpus: list }).message).toContain('invalid format');
  });

  it('refuses CPUs and nodes the host does not have', () => {
    expect(failure({ cpusetCpus: '0-3' }).message).toBe(
      'invalid argument "0-3" for "--cpuset-cpus" flag: Requested CPUs are not available - requested 0-3, available: 0-1',
    );
    expect(failure({ cpusetMems: '1' }).message).toContain('Requested memory nodes are not available - requested 1, available: 0');
  });
});

describe('--pids-limit', () => {
  it('takes a positive limit, and 0 or less as unlimited', () => {
    expect(parse({ pidsLimit: '32' })).toEqual({ pids: { limit: 32 } });
    expect(parse({ pidsLimit: '0' })).toEqual({ pids: { limit: -1 } });
    expect(parse({ pidsLimit: -5 })).toEqual({ pids: { limit: -1 } });
    expect(failure({ pidsLimit: '3x' }).message).toContain('not an integer');
  });
});

describe('--blkio-weight and device throttles', () => {
  it('checks the weight range', () => {
    expect(parse({ blkioWeight: '500' })).toEqual({ blockIO: { weight: 500 } });
    expect(failure({ blkioWeight: '5' }).message).toContain('Range of blkio weight is from 10 to 1000');
    expect(failure({ blkioWeight: '1001' }).message).toContain('Range of blkio weight is from 10 to 1000');
  });

  it('turns device paths into major:minor and rates into bytes', () => {
    expect(parse({ deviceReadBps: ['/dev/sda:1mb'], deviceWriteBps: ['/dev/vdb:10k'], deviceReadIops: ['/dev/sda:100'], deviceWriteIops: ['/dev/sda:50'] })).toEqual({
      blockIO: {
        throttleReadBpsDevice: [{ major: 8, minor: 0, rate: MiB }],
        throttleWriteBpsDevice: [{ major: 254, minor: 16, rate: 10240 }],
        throttleReadIOPSDevice: [{ major: 8, minor: 0, rate: 100 }],
        throttleWriteIOPSDevice: [{ major: 8, minor: 0, rate: 50 }],
      },
    });
  });

  it('keeps the last rate given for a device', () => {
    expect(parse({ deviceReadBps: ['/dev/sda:1mb', '/dev/sda:2mb'] }).blockIO?.throttleReadBpsDevice).toEqual([{ major: 8, minor: 0, rate: 2 * MiB }]);
  });

  it('refuses bad forms', () => {
    expect(failure({ deviceReadBps: ['/dev/sda'] }).message).toContain('use <device-path>:<number>[<unit>]');
    expect(failure({ deviceReadBps: ['sda:1mb'] }).message).toContain('is not a device path under /dev/');
    expect(failure({ deviceReadBps: ['/dev/null:1mb'] }).message).toBe('invalid argument "/dev/null:1mb" for "--device-read-bps" flag: /dev/null: not a block device');
    expect(failure({ deviceReadIops: ['/dev/sda:1k'] }).message).toContain('positive integer');
    expect(failure({ deviceWriteBps: ['/dev/sda:fast'] }).message).toContain('invalid size');
  });
});

describe('the real host', () => {
  it('reads online CPUs and stats a device node', async () => {
    const { realHost } = await import('../../src/cgroups/index.js');
    expect(realHost.onlineCpus()).toContain(0);
    expect(realHost.onlineMems()).toContain(0);
    expect(realHost.blockDevice('/dev/null')).toBe('not a block device');
    expect(realHost.blockDevice('/dev/does-not-exist')).toMatch(/cannot stat it \(ENOENT\)/);
  });
});

it('gives an empty Resources for no flags', () => {
  expect(parse({})).toEqual({});
});
