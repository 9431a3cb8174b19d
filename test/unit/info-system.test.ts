// The host facts `tsrun info` and `tsrun version` print, parsed from text.
import { describe, expect, it } from 'vitest';
import { hostInfo, ociArch, parseMemTotal, parseOsRelease } from '../../src/info/system.js';

describe('parseOsRelease', () => {
  it('reads Debian 12 and Ubuntu 24.04 as shipped', () => {
    const debian = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n';
    expect(parseOsRelease(debian)).toMatchObject({ PRETTY_NAME: 'Debian GNU/Linux 12 (bookworm)', VERSION_ID: '12', ID: 'debian' });
    const ubuntu = 'PRETTY_NAME="Ubuntu 24.04.1 LTS"\nVERSION_ID="24.04"\nID=ubuntu\nID_LIKE=debian\n';
    expect(parseOsRelease(ubuntu)).toMatchObject({ PRETTY_NAME: 'Ubuntu 24.04.1 LTS', VERSION_ID: '24.04', ID_LIKE: 'debian' });
  });

  it('unquotes single and double quotes, keeps escapes of double-quoted values, skips comments', () => {
    expect(parseOsRelease("# comment\nA='x y'\nB=\"say \\\"hi\\\"\"\nnot a line\n")).toEqual({ A: 'x y', B: 'say "hi"' });
  });
});

describe('parseMemTotal', () => {
  it('turns kB (KiB) into bytes', () => {
    expect(parseMemTotal('MemTotal:       24683520 kB\nMemFree: 1 kB\n')).toBe(24683520 * 1024);
    expect(parseMemTotal('nothing here')).toBeUndefined();
  });
});

describe('ociArch', () => {
  it("names architectures as docker's OS/Arch does", () => {
    expect(ociArch('x64')).toBe('amd64');
    expect(ociArch('arm64')).toBe('arm64');
    expect(ociArch('ppc64')).toBe('ppc64le');
    expect(ociArch('mips')).toBe('mips');
  });
});

describe('hostInfo', () => {
  it('describes this machine', () => {
    const h = hostInfo();
    expect(h.osType).toBe('linux');
    expect(h.kernelVersion).toMatch(/^\d+\.\d+/);
    expect(h.cpus).toBeGreaterThan(0);
    expect(h.memTotal).toBeGreaterThan(0);
  });
});
