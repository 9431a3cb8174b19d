// What a crash-injection round (crash-injection.test.ts) needs besides tsrun itself: a CLI run
// that is killed with -9 (at a named point or after a delay), and the kernel's and the store's
// side of the story read directly — never through tsrun's own code, which is what is on trial.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { TestEnv } from './env.js';

export interface Outcome {
  status: number | null;
  /** 'SIGKILL' when the process died at its armed crash point or by our kill. */
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface RunOptions {
  /** TSRUN_CRASH_AT: tsrun kills itself there (src/sys/crash.ts). */
  crashAt?: string;
  /** kill -9 from outside after this many ms (if it is still running). */
  killAfterMs?: number;
  timeoutMs?: number;
}

/** One tsrun CLI as a child process, to completion or to its death. */
export function cli(env: TestEnv, args: string[], opts: RunOptions = {}): Promise<Outcome> {
  const started = performance.now();
  const child = env.spawn(args, { env: opts.crashAt ? { TSRUN_CRASH_AT: opts.crashAt } : {} });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const timers = [
    ...(opts.killAfterMs !== undefined ? [setTimeout(() => child.kill('SIGKILL'), opts.killAfterMs)] : []),
    setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000),
  ];
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    // 'close', not 'exit': the output is complete only once the pipes are.
    child.once('close', (status, signal) => {
      for (const t of timers) clearTimeout(t);
      resolve({ status, signal, stdout, stderr, ms: performance.now() - started });
    });
  });
}

// ---- the kernel, read directly --------------------------------------------------------------

/** The subset of `tsrun inspect` a round compares with the kernel. */
export interface Inspected {
  Id: string;
  Name: string;
  State: { Status: string; Running: boolean; Paused: boolean; Restarting: boolean; Pid: number };
  HostConfig: { NetworkMode: string };
  NetworkSettings: { SandboxKey: string; IPAddress: string; Networks: Record<string, { IPAddress: string }> };
  Tsrun: { CgroupPaths: Record<string, string>; HostVeth?: string };
}

const alive = (pid: number): boolean => {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z';
  } catch {
    return false;
  }
};

/** Every cgroup directory the kernel has for this container, in any hierarchy (v1 and v2). */
export function cgroupDirs(cgroupParent: string, id: string): string[] {
  return readdirSync('/sys/fs/cgroup')
    .map((h) => join('/sys/fs/cgroup', h, cgroupParent, id))
    .filter((d) => existsSync(join(d, 'cgroup.procs')));
}

/** Live (not zombie) processes in the container's cgroups. */
function processesIn(cgroupParent: string, id: string): number[] {
  const pids = new Set<number>();
  for (const d of cgroupDirs(cgroupParent, id)) {
    for (const p of readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) pids.add(Number(p));
  }
  return [...pids].filter(alive);
}

/** v1 freezer.state (FREEZING counts: a freeze half done), else v2 cgroup.events; undefined: no cgroup. */
export function frozen(paths: Record<string, string>): boolean | undefined {
  const v1 = paths.freezer && join(paths.freezer, 'freezer.state');
  if (v1 && existsSync(v1)) return readFileSync(v1, 'utf8').trim() !== 'THAWED';
  const v2 = paths.unified && join(paths.unified, 'cgroup.events');
  if (v2 && existsSync(v2)) return /^frozen 1$/m.test(readFileSync(v2, 'utf8'));
  return undefined;
}

const usesBridge = (mode: string) => !['none', 'host'].includes(mode) && !mode.startsWith('container:');

/**
 * Where `inspect` and the kernel disagree about one container: Running ⇔ its Pid is alive and
 * in its cgroup; Paused ⇔ its freezer is frozen; running on a bridge ⇔ its veth is on the
 * network's bridge and its Pid is in the recorded namespace; not running ⇔ nothing runs in its cgroup.
 */
export function disagreements(c: Inspected, cgroupParent: string, root: string): string[] {
  const out: string[] = [];
  const say = (what: string) => out.push(`${c.Name} (${c.Id.slice(0, 12)}, ${c.State.Status}): ${what}`);
  const s = c.State;
  if (s.Running && !s.Restarting) {
    if (!(s.Pid > 0 && alive(s.Pid))) return [`${c.Name}: inspect says running with Pid ${s.Pid}, which is not alive`];
    const lines = readFileSync(`/proc/${s.Pid}/cgroup`, 'utf8');
    if (!lines.includes(`/${cgroupParent}/${c.Id}\n`)) say(`Pid ${s.Pid} is not in its cgroup: ${lines.replace(/\n/g, ' ')}`);
    const isFrozen = frozen(c.Tsrun.CgroupPaths) === true;
    if (s.Paused !== isFrozen) say(`inspect says Paused=${s.Paused}, the freezer says frozen=${isFrozen}`);
    if (usesBridge(c.HostConfig.NetworkMode)) {
      const veth = c.Tsrun.HostVeth ?? '';
      const net = JSON.parse(readFileSync(join(root, 'networks', `${c.HostConfig.NetworkMode}.json`), 'utf8')) as { bridge: string };
      if (!veth || !existsSync(`/sys/class/net/${veth}`)) say(`its veth "${veth}" does not exist`);
      else if (basename(readlinkSync(`/sys/class/net/${veth}/master`)) !== net.bridge) say(`its veth ${veth} is not on bridge ${net.bridge}`);
      const key = c.NetworkSettings.SandboxKey;
      if (!key || !existsSync(key)) say(`its network namespace "${key}" does not exist`);
      else if (statSync(key).ino !== statSync(`/proc/${s.Pid}/ns/net`).ino) say(`Pid ${s.Pid} is not in its network namespace ${key}`);
      if (!c.NetworkSettings.IPAddress) say('no IP address recorded');
      // Every network it is said to be on (network connect adds more), and no other.
      const said = Object.values(c.NetworkSettings.Networks).map((n) => n.IPAddress).filter(Boolean).sort();
      const has = addressesIn(s.Pid);
      if (said.join() !== has.join()) say(`inspect gives it the addresses [${said.join(', ')}], its network namespace has [${has.join(', ')}]`);
    }
  } else if (!s.Running) {
    if (s.Pid !== 0) say(`not running, yet Pid ${s.Pid}`);
    if (s.Paused) say('not running, yet paused');
    const left = processesIn(cgroupParent, c.Id);
    if (left.length > 0) say(`not running, yet processes ${left.join(', ')} run in its cgroup`);
  }
  return out;
}

/** The IPv4 addresses in a process's network namespace, but loopback's. */
function addressesIn(pid: number): string[] {
  const out = execFileSync('nsenter', ['-t', String(pid), '-n', 'ip', '-o', '-4', 'addr', 'show'], { encoding: 'utf8' });
  return [...out.matchAll(/ inet (\d+\.\d+\.\d+\.\d+)\//g)].map((m) => m[1]!).filter((ip) => !ip.startsWith('127.')).sort();
}

/**
 * What a stopped container must not hold once the store is repaired (a normal exit's cleanup
 * releases all of it): a cgroup, a network namespace, a network endpoint.
 */
export function heldWhileStopped(c: Inspected, cgroupParent: string, root: string): string[] {
  if (c.State.Running) return [];
  const out = cgroupDirs(cgroupParent, c.Id).map((d) => `${c.Name} is ${c.State.Status} but has cgroup ${d}`);
  const ns = `/run/netns/tsrun-${c.Id.slice(0, 12)}`;
  if (existsSync(ns)) out.push(`${c.Name} is ${c.State.Status} but has network namespace ${ns}`);
  // <id>.json, and <id>+<network>.json for each network `network connect` added.
  const endpoints = existsSync(join(root, 'endpoints')) ? readdirSync(join(root, 'endpoints')) : [];
  for (const e of endpoints.filter((f) => f.startsWith(c.Id))) out.push(`${c.Name} is ${c.State.Status} but has endpoint ${e}`);
  return out;
}

// ---- the store and the host, before and after -------------------------------------------------

/** Content-addressed directories: their entries are compared, not what is inside them. */
const OPAQUE = new Set(['layers', 'blobs/sha256', 'l']);

/**
 * Every path in the store, relative to its root (the insides of layers and blobs left out:
 * a layer is there or not). Left out too: lock files (made once, on first use, and empty), and
 * registry-sources/, push's hints of where a blob came from (src/registry-client/sources.ts),
 * which outlive their blobs by design, crash or no crash.
 */
export function storeTree(root: string): Set<string> {
  const out = new Set<string>();
  const walk = (rel: string) => {
    for (const e of readdirSync(join(root, rel))) {
      const path = rel ? `${rel}/${e}` : e;
      if (e.endsWith('.lock') || e === 'lock' || path === 'registry-sources') continue;
      out.add(path);
      if (!OPAQUE.has(rel) && statSync(join(root, path), { throwIfNoEntry: false })?.isDirectory()) walk(path);
    }
  };
  walk('');
  return out;
}

/**
 * This test's objects in the host: its bridges and their firewall rules (tagged tsrun:<bridge>
 * or tsrun:<bridge>:<id12>), mounts under its store, its cgroups, the namespaces of these containers.
 */
export function hostObjects(env: TestEnv, bridges: string[], ids: Iterable<string>): Set<string> {
  const out = new Set<string>();
  for (const b of bridges) if (existsSync(`/sys/class/net/${b}`)) out.add(`bridge ${b}`);
  for (const rule of execFileSync('iptables-save', [], { encoding: 'utf8' }).split('\n')) {
    if (bridges.some((b) => rule.includes(`tsrun:${b}"`) || rule.includes(`tsrun:${b}:`))) out.add(`firewall rule ${rule}`);
  }
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    if (line.includes(env.root)) out.add(`mount ${line.split(' ')[4]}`);
  }
  for (const h of readdirSync('/sys/fs/cgroup')) {
    if (existsSync(join('/sys/fs/cgroup', h, env.cgroupParent))) out.add(`cgroup ${h}/${env.cgroupParent}`);
  }
  for (const id of ids) {
    if (existsSync(`/run/netns/tsrun-${id.slice(0, 12)}`)) out.add(`netns tsrun-${id.slice(0, 12)}`);
  }
  return out;
}

/**
 * Released endpoints (src/netns/released.ts) keep an address taken until their veth is gone, or
 * for RELEASE_GRACE_MS: wait until none is still in that window, so that "the lowest free address"
 * means the same to the test as to tsrun.
 */
export async function releasedSettled(root: string, graceMs: number): Promise<void> {
  const dir = join(root, 'released');
  const deadline = Date.now() + graceMs + 1000;
  while (Date.now() < deadline) {
    const pending = (existsSync(dir) ? readdirSync(dir) : [])
      .filter((f) => f.endsWith('.json'))
      .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as { hostVeth: string; released: string })
      .filter((r) => existsSync(`/sys/class/net/${r.hostVeth}`) && Date.now() - Date.parse(r.released) < graceMs);
    if (pending.length === 0) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * findLeaks(scope) (test/leaks.ts), narrowed to this test's own objects: mounts under its store;
 * processes in its cgroups, or tsrun's holding files in its store; its cgroups; veths on its
 * bridges or into its containers' namespaces; those namespaces; firewall rules of its bridges
 * whose bridge is gone or that name a container. findLeaks looks for veths, namespaces and
 * rules host-wide, and waits up to RELEASE_GRACE_MS while any veth exists: with other test files
 * running containers, every round would fail on theirs, or wait on them. TestEnv.cleanup runs
 * findLeaks itself once the file is done.
 */
export async function leaksOf(env: TestEnv, bridges: string[], ids: Iterable<string>, graceMs: number): Promise<string[]> {
  const namespaces = new Set([...ids].map((id) => `tsrun-${id.slice(0, 12)}`));
  const leaks: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) if (line.includes(env.root)) leaks.push(`mount: ${line}`);
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const inCgroup = readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes(`/${env.cgroupParent}/`);
      const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      const tsrunsHere = /^tsrun-(monitor|init|helper)$/.test(comm) && readdirSync(`/proc/${pid}/fd`).some((fd) => readlinkSafe(`/proc/${pid}/fd/${fd}`).startsWith(env.root + '/'));
      if ((inCgroup || tsrunsHere) && alive(Number(pid))) leaks.push(`process ${pid}: ${comm}`);
    } catch {
      // gone meanwhile
    }
  }
  for (const h of readdirSync('/sys/fs/cgroup')) {
    if (existsSync(join('/sys/fs/cgroup', h, env.cgroupParent))) leaks.push(`cgroup: /sys/fs/cgroup/${h}/${env.cgroupParent}`);
  }
  // A container's veth may outlive it by a moment: the kernel removes it with the namespace.
  const veths = () =>
    readdirSync('/sys/class/net').filter((n) => {
      const master = readlinkSafe(`/sys/class/net/${n}/master`);
      if (master) return bridges.includes(basename(master));
      return n.startsWith('veth') && namespaces.has(linkNetns(n) ?? '');
    });
  let left = veths();
  for (const deadline = Date.now() + graceMs; left.length > 0 && Date.now() < deadline; left = veths()) await new Promise((r) => setTimeout(r, 50));
  leaks.push(...left.map((v) => `veth: ${v}`));
  for (const ns of namespaces) if (existsSync(`/run/netns/${ns}`)) leaks.push(`netns: ${ns}`);
  for (const rule of execFileSync('iptables-save', [], { encoding: 'utf8' }).split('\n')) {
    const tag = /tsrun:([^: "]+)(:[0-9a-f]{12})?/.exec(rule);
    if (tag && bridges.includes(tag[1]!) && (tag[2] || !existsSync(`/sys/class/net/${tag[1]}`))) leaks.push(`firewall rule: ${rule}`);
  }
  return leaks;
}

function readlinkSafe(path: string): string {
  try {
    return readlinkSync(path);
  } catch {
    return '';
  }
}

/** The named namespace a veth's peer is in, if `ip` tells. */
function linkNetns(veth: string): string | undefined {
  try {
    return / link-netns (\S+)/.exec(execFileSync('ip', ['-o', 'link', 'show', 'dev', veth], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }))?.[1];
  } catch {
    return undefined;
  }
}

/** Container IDs the store knows of, removal's trash included (containers/.removing-<id>-<pid>). */
export function idsInStore(root: string): string[] {
  const dir = join(root, 'containers');
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((d) => /^(?:\.removing-)?([0-9a-f]{64})/.exec(d)?.[1] ?? []);
}

/**
 * What must be gone once every container is removed and the networks pruned, whatever the
 * store held before: endpoints and released addresses (src/netns/store.ts), names, container
 * directories and removal trash, userns blocks.
 */
export function storeDebris(root: string): string[] {
  const dirs = ['endpoints', 'released', 'names', 'containers', 'userns'];
  return dirs.flatMap((d) => (existsSync(join(root, d)) ? readdirSync(join(root, d)) : []).filter((e) => !e.endsWith('.lock')).map((e) => `${d}/${e}`));
}
