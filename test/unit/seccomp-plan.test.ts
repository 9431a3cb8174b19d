// Where the filter goes in the launch plan (run and exec): last before init/exec after
// no_new_privs, or before user/caps when there is no no_new_privs (loading a filter then needs
// CAP_SYS_ADMIN, which caps drops). None with --privileged or seccomp=unconfined.
import { specContext } from './spec-context.js';
import { describe, expect, it } from 'vitest';
import { buildExecPlan, type ExecRequest } from '../../src/container/exec.js';
import type { Found } from '../../src/container/lookup.js';
import { buildPlan, type PlanContext } from '../../src/namespaces/plan.js';
import { createSpec, type SpecContext } from '../../src/namespaces/spec.js';
import { parseSecurityOpts, type ContainerOptions } from '../../src/namespaces/options.js';
import { decode } from '../../src/seccomp/bpf.js';
import { RET } from '../../src/seccomp/index.js';

const ctx: SpecContext = specContext('c'.repeat(64), '/store/containers/c/rootfs');
const base: ContainerOptions = {
  args: ['true'], env: [], volumes: [], tmpfs: [], readOnly: false, tty: false, interactive: false, init: false, ulimits: [],
  capAdd: [], capDrop: [], privileged: false, noNewPrivileges: true, network: 'none', pid: 'private', ipc: 'private',
  uts: 'private', trace: false, remove: true, resources: {}, cgroupParent: 'tsrun',
} as ContainerOptions;
const planCtx: PlanContext = {
  storeRoot: '/store', lowerDirs: ['l/A'], upperDir: 'containers/c/upper', workDir: 'containers/c/work',
  name: 'sc', trace: false, interactive: false, init: false, cgroupProcs: [],
};
const image = { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers' as const, diff_ids: [] } };
const noFile = (p: string) => {
  throw new Error(`unexpected read of ${p}`);
};

function plan(over: Partial<ContainerOptions>, init = false) {
  const spec = createSpec(image, { ...base, ...over }, ctx);
  const steps = buildPlan(spec, { ...planCtx, init }, () => false).steps;
  return { spec, steps, ops: steps.map((s) => s[0]) };
}

describe('the seccomp step in the launch plan', () => {
  it('comes after everything but init and exec, with the default profile', () => {
    const { spec, steps, ops } = plan({});
    expect(spec.linux.seccomp?.defaultAction).toBe('SCMP_ACT_ERRNO');
    expect(ops.slice(-2)).toEqual(['seccomp', 'exec']);
    expect(ops.indexOf('no-new-privs')).toBeLessThan(ops.indexOf('seccomp'));
    expect(ops.indexOf('caps')).toBeLessThan(ops.indexOf('seccomp'));
    const prog = decode(Buffer.from(steps.at(-2)![1]!, 'hex'));
    expect(prog.at(-1)!.code).toBe(0x06); // ends with a ret
    expect(prog.some((i) => i.k === (RET.ERRNO | 38))).toBe(true); // clone3 → ENOSYS is in there
    expect(plan({}, true).ops.slice(-3)).toEqual(['seccomp', 'init', 'exec']);
  });

  it('goes before user and caps without no_new_privs', () => {
    const { ops } = plan({ noNewPrivileges: false });
    expect(ops).not.toContain('no-new-privs');
    expect(ops.indexOf('seccomp')).toBeLessThan(ops.indexOf('user'));
    expect(ops.indexOf('rlimit')).toBeLessThan(ops.indexOf('seccomp'));
  });

  it('is left out with --privileged and with seccomp=unconfined', () => {
    expect(plan({ privileged: true }).ops).not.toContain('seccomp');
    expect(plan({ privileged: true }).spec.linux.seccomp).toBeUndefined();
    const unconfined = parseSecurityOpts(['seccomp=unconfined'], noFile);
    expect(plan(unconfined).ops).not.toContain('seccomp');
  });

  it('parses --security-opt seccomp=... next to no-new-privileges', () => {
    expect(parseSecurityOpts([], noFile)).toEqual({ noNewPrivileges: true, seccomp: { mode: 'default' } });
    expect(parseSecurityOpts(['seccomp:unconfined', 'no-new-privileges=false'], noFile)).toEqual({ noNewPrivileges: false, seccomp: { mode: 'unconfined' } });
    const custom = parseSecurityOpts(['seccomp=/etc/p:1.json'], (p) => {
      expect(p).toBe('/etc/p:1.json'); // the whole path, ':' and all
      return '{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}';
    });
    expect(custom.seccomp.mode).toBe('profile');
    expect(plan(custom).ops.slice(-2)).toEqual(['seccomp', 'exec']);
    expect(() => parseSecurityOpts(['seccomp'], noFile)).toThrow(/supported: no-new-privileges=true\|false, seccomp=unconfined/);
  });
});

describe('the seccomp step in an exec plan', () => {
  const found = { record: { name: 'sc', lowerDirs: [] }, paths: { dir: '/store/containers/c' } } as unknown as Found;
  const req: ExecRequest = { args: ['sh'], env: [], tty: false, interactive: false, detach: false, privileged: false, trace: false };
  const ops = (spec: ReturnType<typeof createSpec>, r: Partial<ExecRequest> = {}) =>
    buildExecPlan(spec, found, 42, [], { ...req, ...r }, '/store').steps.map((s) => s[0]);

  it('uses the container\'s filter, last before exec', () => {
    expect(ops(plan({}).spec).slice(-2)).toEqual(['seccomp', 'exec']);
  });

  it('keeps it for exec --privileged, before user/caps (no no_new_privs then)', () => {
    const o = ops(plan({}).spec, { privileged: true });
    expect(o).not.toContain('no-new-privs');
    expect(o.indexOf('seccomp')).toBeLessThan(o.indexOf('user'));
  });

  it('has none in an unconfined container', () => {
    expect(ops(plan({ privileged: true }).spec)).not.toContain('seccomp');
  });
});
