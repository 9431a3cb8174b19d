// Facts about the host that shape a container: resource limits and tsrun's own capabilities.
import { readFileSync } from 'node:fs';
import { ALL_CAPABILITIES } from '../namespaces/defaults.js';

const LIMIT_NAMES: Record<string, string> = {
  'Max cpu time': 'cpu',
  'Max file size': 'fsize',
  'Max data size': 'data',
  'Max stack size': 'stack',
  'Max core file size': 'core',
  'Max resident set': 'rss',
  'Max processes': 'nproc',
  'Max open files': 'nofile',
  'Max locked memory': 'memlock',
  'Max address space': 'as',
  'Max file locks': 'locks',
  'Max pending signals': 'sigpending',
  'Max msgqueue size': 'msgqueue',
  'Max nice priority': 'nice',
  'Max realtime priority': 'rtprio',
  'Max realtime timeout': 'rttime',
};

/** This process's hard limits by rlimit name (-1 = unlimited), from /proc/self/limits. */
export function hostHardLimits(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of readFileSync('/proc/self/limits', 'utf8').split('\n').slice(1)) {
    const m = /^(.+?)\s{2,}(\S+)\s+(\S+)/.exec(line);
    if (!m) continue;
    const name = LIMIT_NAMES[m[1]!.trim()];
    if (name) out[name] = m[3] === 'unlimited' ? -1 : Number(m[3]);
  }
  return out;
}

function capabilityMask(field: 'CapEff' | 'CapBnd'): bigint {
  const m = new RegExp(`^${field}:\\s*([0-9a-f]+)$`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? BigInt(`0x${m[1]}`) : 0n;
}

/** Whether this process may raise hard rlimits (many VMs and CI sandboxes drop CAP_SYS_RESOURCE). */
export function hasCapSysResource(): boolean {
  // Capabilities in rootless tsrun's user namespace do not count for the host's limits.
  if (process.env.TSRUN_USERNS) return false;
  return ((capabilityMask('CapEff') >> BigInt(ALL_CAPABILITIES.indexOf('CAP_SYS_RESOURCE'))) & 1n) === 1n;
}

/** The capabilities in this process's bounding set, by name. */
export function hostCapabilities(): string[] {
  const mask = capabilityMask('CapBnd');
  return ALL_CAPABILITIES.filter((_, bit) => ((mask >> BigInt(bit)) & 1n) === 1n);
}
