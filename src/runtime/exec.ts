// `tsrun-runtime exec`: one more process in a running container, described by an OCI process
// (a --process file, or the container's own process with flags over it). The helper joins the
// container's PID namespace and the child the others, its mount namespace last (see
// native/README.md, Exec); the container's seccomp filter applies, as with runc.
import { TsrunError } from '../errors.js';
import { HelperProcess } from '../namespaces/helper.js';
import { processSteps, type Plan, type Step } from '../namespaces/plan.js';
import type { OciSpec } from '../namespaces/spec.js';
import { openContainer, type RuntimeContext } from './container.js';
import { waitForwarding } from './launch.js';
import { writePidFile } from './state.js';

export interface ExecOptions {
  process: OciSpec['process'];
  detach: boolean;
  pidFile?: string;
  consoleSocket?: string;
  /** --preserve-fds: our fds 3..3+N-1 become the process's. */
  preserveFds?: number;
}

/** setns order: cgroup, ipc, uts, net, user, mnt (last: after it the paths are the container's). */
const ORDER: Array<[type: string, file: string]> = [
  ['cgroup', 'cgroup'],
  ['ipc', 'ipc'],
  ['uts', 'uts'],
  ['network', 'net'],
  ['user', 'user'],
  ['mount', 'mnt'],
];

export function runtimeExecPlan(spec: OciSpec, id: string, pid: number, cgroupProcs: string[], opts: ExecOptions): Plan {
  const p = opts.process;
  const has = new Set(spec.linux.namespaces.map((n) => n.type));
  const monitor: Step[] = [
    ['trace', '0'],
    ['name', `${id}-exec`],
    ['stdin', 'inherit'],
    ['tty', p.terminal ? '1' : '0'],
    ...cgroupProcs.map((f): Step => ['cgroup-procs', f]),
    ...(has.has('pid') ? [['pidns', `/proc/${pid}/ns/pid`] as Step] : []),
    ['stdio', 'pass'],
    ...(opts.consoleSocket ? [['console-socket', opts.consoleSocket] as Step] : []),
    ...(opts.detach ? [['detach', 'started'] as Step] : []),
  ];
  const steps: Step[] = [['setsid']];
  for (const [type, file] of ORDER) if (has.has(type as never)) steps.push(['setns', `/proc/${pid}/ns/${file}`, file]);
  // the container's seccomp filter, as runc applies it to every process it execs
  steps.push(...processSteps(p, spec.linux.seccomp));
  return { monitor, cloneFlags: [], steps };
}

/** Runs the process; detached, returns once it runs (0), else waits and returns its code. */
export async function execInContainer(ctx: RuntimeContext, id: string, opts: ExecOptions): Promise<number> {
  const c = openContainer(ctx, id);
  const status = c.status();
  if (status !== 'running' && status !== 'created') throw new TsrunError('ESTATE', `cannot exec in a ${status} container: ${id}`);
  if (opts.process.terminal && opts.detach && !opts.consoleSocket) {
    throw new TsrunError('EINVAL_FLAG', 'cannot allocate a tty for a detached process without a console socket (--console-socket)');
  }
  const plan = runtimeExecPlan(c.spec, id, c.state.pid, c.cgroup()?.procsFiles ?? [], opts);
  const helper = HelperProcess.launch(plan, { stdio: [0, 1, 2], preserveFds: opts.preserveFds ?? 0, ...(ctx.onTrace && { onTrace: ctx.onTrace }) });
  const pid = await helper.waitPid();
  helper.go();
  await helper.waitStarted();
  if (opts.pidFile) writePidFile(opts.pidFile, pid);
  if (opts.detach) return 0;
  return (await waitForwarding(helper)).code;
}
