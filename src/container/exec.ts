// exec: another process in a running container — the same namespaces, cgroup, capabilities,
// no_new_privs and user as its first process. The helper joins the container's PID namespace
// (setns before fork: only children are affected) and the child enters the others, the mount
// namespace last, since after it the root is the container's.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { TsrunError } from '../errors.js';
import type { OciSpec } from '../namespaces/spec.js';
import { encodeField, serializePlan, type Plan, type Step } from '../namespaces/plan.js';
import { HelperProcess, type TraceLine } from '../namespaces/helper.js';
import { helperPath } from '../sys/native-build.js';
import { seccompStepArg } from '../seccomp/index.js';
import type { Found } from './lookup.js';
import { resolveUser } from './user.js';
import { InvalidTransitionError, can, currentBootId, observe } from './status.js';
import { writeFileAtomic } from '../sys/atomic.js';

export interface ExecRequest {
  args: string[];
  env: string[];
  user?: string;
  workdir?: string;
  tty: boolean;
  interactive: boolean;
  detach: boolean;
  privileged: boolean;
  trace: boolean;
}

const NAMESPACES: Array<[file: string, type: string]> = [
  ['cgroup', 'cgroup'],
  ['ipc', 'ipc'],
  ['uts', 'uts'],
  ['net', 'net'],
  ['mnt', 'mnt'], // last: from here on, paths are the container's
];

export function buildExecPlan(spec: OciSpec, found: Found, pid: number, cgroupProcs: string[], req: ExecRequest, storeRoot: string): Plan {
  if (req.args.length === 0) throw new TsrunError('EINVAL_FLAG', 'exec needs a command');
  const p = spec.process;
  let user = p.user;
  if (req.user !== undefined) {
    const dirs = [found.paths.dir + '/upper', ...found.record.lowerDirs.map((l) => join(storeRoot, l))];
    const u = resolveUser(req.user, dirs);
    user = { uid: u.uid, gid: u.gid, additionalGids: u.additionalGids };
  }
  const caps = req.privileged ? null : p.capabilities;
  const capNames = (list: string[]) => (list.length === 0 ? '-' : list.map((c) => c.replace(/^CAP_/, '').toLowerCase()).join(','));
  const env = new Map(p.env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)] as const));
  for (const e of req.env) {
    const eq = e.indexOf('=');
    if (eq > 0) env.set(e.slice(0, eq), e.slice(eq + 1));
  }
  const monitor: Step[] = [
    ['trace', req.trace ? '1' : '0'],
    ['name', `${found.record.name}-exec`],
    ['stdin', req.interactive && !req.detach ? 'inherit' : 'null'],
    ['tty', req.tty ? '1' : '0'],
    ...cgroupProcs.map((f): Step => ['cgroup-procs', f]),
    ['pidns', `/proc/${pid}/ns/pid`],
  ];
  let steps: Step[] = NAMESPACES.map(([file, type]) => ['setns', `/proc/${pid}/ns/${file}`, type]);
  if (spec.annotations['io.tsrun.rootless'] === 'true') {
    // Rootless: we are the user on the host, and only as root of tsrun's user namespace may we
    // join what it owns: the monitor joins that one first (the child is born in it). Then only
    // the namespaces the container has of its own (the host's network is ours already, and
    // joining it again would need the host's root).
    const own = new Set(spec.linux.namespaces.map((n) => ({ network: 'net', mount: 'mnt' })[n.type as string] ?? n.type));
    monitor.splice(monitor.findIndex((l) => l[0] === 'pidns'), 0, ['userns', `/proc/${pid}/ns/user`]);
    steps = steps.filter((s) => own.has(s[2]!));
  } else if (spec.linux.namespaces.some((n) => n.type === 'user')) {
    // Its user namespace just before mnt: as host root the helper may still join a network
    // namespace the host owns (a bridge network); after it, the process is never host root.
    steps.splice(steps.length - 1, 0, ['setns', `/proc/${pid}/ns/user`, 'user']);
  }
  if (req.tty) steps.push(['console']);
  for (const r of p.rlimits) {
    const fmt = (n: number) => (n === -1 ? 'unlimited' : String(n));
    steps.push(['rlimit', r.type.replace(/^RLIMIT_/, '').toLowerCase(), fmt(r.soft), fmt(r.hard)]);
  }
  const noNewPrivs = p.noNewPrivileges && !req.privileged;
  if (noNewPrivs) steps.push(['no-new-privs']);
  // The container's filter, for exec --privileged too (as runc: one filter per container); see
  // plan.ts for why its place depends on no_new_privs.
  const seccomp: Step | undefined = spec.linux.seccomp && ['seccomp', seccompStepArg(spec.linux.seccomp)];
  if (seccomp && !noNewPrivs) steps.push(seccomp);
  steps.push(['user', String(user.uid), String(user.gid), user.additionalGids.length ? user.additionalGids.join(',') : '-']);
  steps.push(caps
    ? ['caps', capNames(caps.bounding), capNames(user.uid === 0 ? caps.effective : [])]
    : ['caps', 'all', user.uid === 0 ? 'all' : '-']);
  steps.push(['chdir', req.workdir ?? p.cwd]);
  for (const [k, v] of env) steps.push(['env', `${k}=${v}`]);
  if (req.tty && !env.has('TERM')) steps.push(['env', 'TERM=xterm']);
  if (seccomp && noNewPrivs) steps.push(seccomp);
  steps.push(['exec', req.args[0]!, ...req.args]);
  return { monitor, cloneFlags: [], steps };
}

export interface ExecProcess {
  signal(sig: NodeJS.Signals): void;
  wait(): Promise<number>;
}

/** The request the native front carries out itself: no -u, -d, --privileged or --trace. */
const PLAIN: ExecRequest = { args: ['true'], env: [], tty: false, interactive: false, detach: false, privileged: false, trace: false };

/**
 * Writes down what a plain `exec` into this container does, for tsrun's native front
 * (native/front/tsrun.c): the plan of PLAIN with pid 0 in the namespace paths, after a header
 * with what says whether it still applies (the boot, the freezer files). The front fills in the
 * running pid from the monitor's status file, the command, -e, -w, -i and -t, and runs the
 * helper without starting Node. Only what depends on the container's spec goes in, so the file
 * holds for every run of it; it is written by the first exec that Node carries out (never on
 * the way to a start) and goes with the container.
 */
export function writeExecTemplate(storeRoot: string, found: Found, spec: OciSpec, cgroupProcs: string[], cgroupPaths: Record<string, string>): void {
  // Rootless: the front does not know the user's store or namespaces; Node does it all.
  if (spec.annotations['io.tsrun.rootless'] === 'true') return;
  // The helper build it was written for, as the front compares it: a rebuilt tsrun (an
  // upgrade, whose plans may differ) takes Node's path, which writes the plan anew.
  const helper = statSync(helperPath(), { bigint: true });
  const header = ['tsrun-exec 1', `boot ${encodeField(currentBootId())}`, `helper ${helper.size}-${helper.mtimeNs}`];
  if (cgroupPaths.freezer) header.push(`freezer ${encodeField(join(cgroupPaths.freezer, 'freezer.state'))}`);
  if (cgroupPaths.unified) header.push(`events ${encodeField(join(cgroupPaths.unified, 'cgroup.events'))}`);
  writeFileAtomic(found.paths.execPlan, `${header.join('\n')}\n${serializePlan(buildExecPlan(spec, found, 0, cgroupProcs, PLAIN, storeRoot))}`);
}

export async function execInContainer(
  storeRoot: string,
  found: Found,
  req: ExecRequest,
  io: { stdio: [number | 'ignore', number | 'ignore', number | 'ignore']; onTrace?: (t: TraceLine) => void },
): Promise<ExecProcess> {
  const seen = observe(found.paths);
  if (!can.exec(seen.status)) {
    throw new InvalidTransitionError(found.record.name, seen.status, 'exec in', seen.status === 'paused' ? 'unpause it first' : 'start it first');
  }
  const spec = JSON.parse(readFileSync(found.paths.config, 'utf8')) as OciSpec;
  const { detectCgroups, openDriver } = await import('../cgroups/index.js');
  const cgroup = openDriver(detectCgroups()).open(found.record.options.cgroupParent, found.record.id);
  const plan = buildExecPlan(spec, found, seen.pid, cgroup?.procsFiles ?? [], req, storeRoot);
  // Missing, or the front passed a plain exec over to us: written (again) for the next one.
  const plain = !req.detach && !req.privileged && !req.trace && req.user === undefined;
  if (plain || !existsSync(found.paths.execPlan)) {
    try {
      writeExecTemplate(storeRoot, found, spec, cgroup?.procsFiles ?? [], seen.state.cgroupPaths);
    } catch {
      // A full disk, say: the next exec is Node's again, which is only slower.
    }
  }
  const helper = HelperProcess.launch(plan, { stdio: req.detach ? ['ignore', 'ignore', 'ignore'] : io.stdio, ...(io.onTrace && { onTrace: io.onTrace }) });
  await helper.waitPid();
  helper.go();
  await helper.waitStarted();
  if (req.detach) helper.release();
  return {
    signal: (sig) => helper.signal(sig),
    wait: async () => (req.detach ? 0 : (await helper.waitExit()).code),
  };
}
