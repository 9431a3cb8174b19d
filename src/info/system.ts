// The host as `tsrun info` and `tsrun version` describe it: kernel, distribution, machine.
// Everything is read from files a learner can cat (/etc/os-release, /proc/meminfo) or from
// uname(2) through node:os; the parsers are pure so unit tests feed them text.
import { readFileSync } from 'node:fs';
import os from 'node:os';

export interface HostInfo {
  /** uname -r */
  kernelVersion: string;
  /** PRETTY_NAME from /etc/os-release, e.g. "Debian GNU/Linux 12 (bookworm)". */
  operatingSystem: string;
  /** VERSION_ID, e.g. "12" or "24.04". */
  osVersion: string;
  osType: string;
  /** uname -m, e.g. x86_64 (docker info shows this one). */
  architecture: string;
  cpus: number;
  /** Bytes, from /proc/meminfo MemTotal. */
  memTotal: number;
  hostname: string;
}

/** /etc/os-release: KEY=value lines, values optionally quoted (os-release(5)). */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    let value = m[2]!;
    const q = value[0];
    if ((q === '"' || q === "'") && value.endsWith(q) && value.length >= 2) {
      value = value.slice(1, -1);
      if (q === '"') value = value.replace(/\\(["$`\\])/g, '$1');
    }
    out[m[1]!] = value;
  }
  return out;
}

/** MemTotal from /proc/meminfo, in bytes (the file says kB, meaning KiB). */
export function parseMemTotal(text: string): number | undefined {
  const m = /^MemTotal:\s+(\d+)\s*kB/m.exec(text);
  return m ? Number(m[1]) * 1024 : undefined;
}

/** Node's process.arch → the OCI/Go name docker prints in OS/Arch (x64 → amd64). */
export function ociArch(nodeArch: string = process.arch): string {
  const map: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  return map[nodeArch] ?? nodeArch;
}

function readOr(path: string, fallback: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback;
  }
}

export function hostInfo(): HostInfo {
  // os-release(5): /etc/os-release, falling back to /usr/lib/os-release.
  const release = parseOsRelease(readOr('/etc/os-release', readOr('/usr/lib/os-release', '')));
  return {
    kernelVersion: os.release(),
    operatingSystem: release.PRETTY_NAME ?? release.NAME ?? 'Linux',
    osVersion: release.VERSION_ID ?? '',
    osType: os.platform(),
    architecture: os.machine(),
    cpus: os.availableParallelism(),
    memTotal: parseMemTotal(readOr('/proc/meminfo', '')) ?? os.totalmem(),
    hostname: os.hostname(),
  };
}
