// What `tsrun info` and `tsrun version` print, from fixed data; the helper's version probe.
import { describe, expect, it } from 'vitest';
import { binarySize, pascalKeys, renderInfo } from '../../cli/info.js';
import { renderVersion } from '../../cli/version.js';
import { humanSize } from '../../src/image/listing.js';
import { countContainers, type SystemInfo } from '../../src/info/index.js';
import { helperInfo } from '../../src/info/version.js';

const info: SystemInfo = {
  ClientInfo: { Version: '0.1.0', NodeVersion: 'v20.20.2', Debug: false },
  Containers: 3,
  ContainersRunning: 1,
  ContainersPaused: 1,
  ContainersStopped: 1,
  Images: 2,
  ServerVersion: '0.1.0',
  Driver: 'overlay',
  Storage: {
    driver: 'overlay', overlayInKernel: true, root: '/var/lib/tsrun', rootExists: true, backingFilesystem: 'extfs',
    filesystem: { size: 20e9, available: 12e9 }, images: 2, layers: { count: 3, size: 4_260_000 }, blobs: { count: 7, size: 2_100_000 },
    containers: { count: 3, size: 12_288 },
  },
  CgroupDriver: 'cgroupfs',
  CgroupVersion: '2',
  Cgroups: {
    version: '2', mode: 'v2', driver: 'cgroupfs', mountRoot: '/sys/fs/cgroup', parent: 'tsrun', warnings: [],
    hierarchies: [{ kind: 'v2', path: '/sys/fs/cgroup', controllers: ['cpu', 'memory', 'pids'], subtreeControl: ['cpu', 'memory'] }],
  },
  Helper: { Path: '/opt/tsrun/native/build/tsrun-helper', Version: '1' },
  Firewall: { Backend: 'iptables-nft', Version: '1.8.9' },
  KernelVersion: '6.1.0-28-amd64',
  OperatingSystem: 'Debian GNU/Linux 12 (bookworm)',
  OSVersion: '12',
  OSType: 'linux',
  Architecture: 'x86_64',
  NCPU: 2,
  MemTotal: 2 * 1024 ** 3,
  Name: 'debian',
  Registries: {
    configFile: '/etc/tsrun/config.json', configExists: true, errors: [],
    insecure: [{ registry: '192.168.56.11:5000', source: 'config' }, { registry: '127.0.0.0/8', source: 'loopback' }],
    certs: [{ dir: '/etc/tsrun/certs.d', registries: [] }],
    timeout: { seconds: 45, source: 'default' },
  },
  Warnings: ['something to know'],
};

describe('renderInfo', () => {
  const text = renderInfo(info, humanSize);
  it("has docker's Client and Server sections and one-space indented fields", () => {
    expect(text).toMatch(/^Client:\n Version: 0\.1\.0\n/);
    expect(text).toMatch(/\nServer: .*\n Containers: 3\n  Running: 1\n  Paused: 1\n  Stopped: 1\n Images: 2\n/);
    expect(text).toContain(' Storage Driver: overlay\n  Overlay In Kernel: yes');
    expect(text).toContain(' Cgroup Version: 2\n');
    expect(text).toContain('  v2 /sys/fs/cgroup: cpu memory pids; for children: cpu memory\n');
    expect(text).toContain(' Firewall Backend: iptables-nft (1.8.9)\n');
    expect(text).toContain(' Total Memory: 2GiB\n');
    expect(text).toContain('  192.168.56.11:5000 (config)\n  127.0.0.0/8 (loopback, always)\n');
    expect(text).toContain(' Registry Config: /etc/tsrun/config.json\n Registry Timeout: 45s (default)\n');
    expect(text).toMatch(/\nWARNING: something to know\n$/);
  });

  it('names where the registry timeout comes from', () => {
    const withTimeout = (timeout: SystemInfo['Registries']['timeout']) =>
      renderInfo({ ...info, Registries: { ...info.Registries, ...(timeout ? { timeout } : { timeout: undefined }) } }, humanSize);
    expect(withTimeout({ seconds: 2.5, source: 'env' })).toContain(' Registry Timeout: 2.5s (TSRUN_REGISTRY_TIMEOUT)\n');
    expect(withTimeout({ seconds: 90, source: 'config' })).toContain(' Registry Timeout: 90s (/etc/tsrun/config.json)\n');
    expect(withTimeout(undefined)).toContain(' Registry Timeout: not usable (see the warning below)\n');
  });

    it('shows what is missing instead of failing', () => {
    const broken = renderInfo({ ...info, Helper: { Path: '', Version: '', Error: 'not built' }, Firewall: { error: 'iptables: not found' }, Cgroups: { error: 'no cgroup fs' } }, humanSize);
    expect(broken).toContain(' Runtime Helper: not usable: not built\n');
    expect(broken).toContain(' Firewall Backend: unavailable (iptables: not found)\n');
    expect(broken).toContain(' Cgroup Version: unknown (no cgroup fs)\n');
  });
});

describe('pascalKeys', () => {
  it('names nested fields as docker JSON does', () => {
    expect(pascalKeys({ a: { rootExists: true, list: [{ kind: 'v2' }] }, B: 1 })).toEqual({ A: { RootExists: true, List: [{ Kind: 'v2' }] }, B: 1 });
  });
});

describe('binarySize', () => {
  it('prints binary units with two decimals at most', () => {
    expect(binarySize(24683520 * 1024)).toBe('23.54GiB');
    expect(binarySize(512)).toBe('512B');
  });
});

describe('countContainers', () => {
  it('counts restarting as running, created/exited/dead as stopped', () => {
    expect(countContainers(['running', 'restarting', 'paused', 'created', 'exited', 'dead'])).toEqual({ total: 6, running: 2, paused: 1, stopped: 3 });
  });
});

describe('renderVersion', () => {
  it('prints the client and the helper', () => {
    const text = renderVersion({
      Client: { Version: '0.1.0', NodeVersion: 'v20.20.2', Os: 'linux', Arch: 'amd64', KernelVersion: '6.1.0' },
      Helper: { Version: '1', Path: '/x/tsrun-helper' },
    });
    expect(text).toBe(
      'Client: tsrun\n Version: 0.1.0\n Node.js: v20.20.2\n OS/Arch: linux/amd64\n Kernel:  6.1.0\n\nEngine: tsrun-helper (no daemon)\n Version: 1\n Path:    /x/tsrun-helper\n',
    );
  });
});

describe('helperInfo', () => {
  it('parses "tsrun-helper N" and reports anything else as an error', () => {
    expect(helperInfo(() => 'tsrun-helper 1\n')).toMatchObject({ version: '1' });
    expect(helperInfo(() => 'something else')).toMatchObject({ version: '', error: expect.stringMatching(/unexpected output/) });
    expect(helperInfo(() => { throw new Error('EACCES'); })).toMatchObject({ version: '', error: expect.stringMatching(/EACCES/) });
  });
});
