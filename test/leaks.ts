// What a container engine most often leaves behind. Tests and the global teardown call this.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { RELEASE_GRACE_MS } from '../src/netns/released.js';

const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** Narrows the check to one test file's store root and cgroup parent. */
export interface LeakScope {
  root: string;
  cgroupParent: string;
}

/**
 * What is left: mounts, tsrun processes and cgroups (of one test file with a scope, else
 * anyone's), veths, network namespaces and per-container firewall rules. Empty when clean.
 * A scope keeps one file's leak from failing every other file that runs at the same time.
 */
export function findLeaks(scope?: LeakScope): string[] {
  const marker = scope?.root ?? 'tsrun';
  const leaks: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    if (line.includes(marker)) leaks.push(`mount: ${line}`);
  }
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let comm = '';
    try {
      comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    } catch {
      continue;
    }
    if (comm !== 'tsrun-monitor' && comm !== 'tsrun-init' && comm !== 'tsrun-helper') continue;
    if (scope && !holdsFileUnder(pid, scope.root)) continue;
    // A zombie holds nothing; an orphan becomes one wherever the host's init is slow to reap.
    let state: string | undefined;
    try {
      state = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];
    } catch {
      continue; // gone meanwhile
    }
    if (state !== 'Z') leaks.push(`process ${pid}: ${comm}`);
  }
  try {
    const name = scope?.cgroupParent ?? 'tsrun*';
    const found = execFileSync('find', ['/sys/fs/cgroup', '-maxdepth', '3', '-type', 'd', '-name', name], { encoding: 'utf8' });
    for (const d of found.split('\n').filter(Boolean)) leaks.push(`cgroup: ${d}`);
  } catch {
    // no cgroup fs
  }
  const run = (cmd: string, args: string[]) => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      return '';
    }
  };
  // A container's network: its veth, its named netns, its per-container firewall rules. The
  // veth of a container that just ended may still be there: the kernel removes it with the
  // namespace, a moment later (src/netns/endpoint.ts); one still there after RELEASE_GRACE_MS is
  // left behind.
  const veths = () => run('ip', ['-o', 'link', 'show', 'type', 'veth']).split('\n').filter(Boolean);
  let left = veths();
  for (const deadline = Date.now() + RELEASE_GRACE_MS; left.length > 0 && Date.now() < deadline; left = veths()) sleepSync(50);
  for (const line of left) leaks.push(`veth: ${line.slice(0, 80)}`);
  for (const ns of run('ip', ['netns', 'list']).split('\n').filter((l) => l.startsWith('tsrun-'))) leaks.push(`netns: ${ns}`);
  // A container's rules (tsrun:<bridge>:<id12>), and a network's whose bridge is gone.
  for (const rule of run('iptables-save', []).split('\n')) {
    const tag = /tsrun:([^: "]+)(:[0-9a-f]{12})?/.exec(rule);
    if (tag && (tag[2] || !existsSync(`/sys/class/net/${tag[1]}`))) leaks.push(`firewall rule: ${rule}`);
  }
  return leaks;
}

/** A monitor keeps its container's log and status files open: that ties it to a store root. */
function holdsFileUnder(pid: string, root: string): boolean {
  try {
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith(root + '/');
      } catch {
        return false;
      }
    });
  } catch {
    return false; // gone meanwhile
  }
}
