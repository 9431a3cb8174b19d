// The seccomp compiler, checked without the kernel: the produced BPF runs in a small classic-BPF
// interpreter (below) on seccomp_data built in the test, and the decision is compared with what
// docker's profile means. Plus golden checks of the program's shape.
import { describe, expect, it } from 'vitest';
import { DEFAULT_CAPABILITIES } from '../../src/namespaces/defaults.js';
import { BPF, MAX_INSNS, type SockFilter, decode, encode } from '../../src/seccomp/bpf.js';
import { ABIS } from '../../src/seccomp/arch.js';
import { RET, compileFilter, filterHex, ociSeccompFor, resolveProfile, type NativeArch, type OciSeccomp } from '../../src/seccomp/index.js';
import { DEFAULT_PROFILE } from '../../src/seccomp/default-profile.js';

// ---------------------------------------------------------------- a classic-BPF interpreter

/** The kernel's checks (seccomp_check_filter + bpf_check_classic) for the opcodes we emit. */
function verify(prog: SockFilter[]): void {
  if (prog.length === 0 || prog.length > MAX_INSNS) throw new Error(`bad length ${prog.length}`);
  prog.forEach((insn, pc) => {
    const reach = (off: number) => {
      if (pc + 1 + off >= prog.length) throw new Error(`insn ${pc}: jump out of the program`);
    };
    switch (insn.code) {
      case BPF.LD_W_ABS:
        if (insn.k % 4 !== 0 || insn.k >= 64) throw new Error(`insn ${pc}: load outside seccomp_data (${insn.k})`);
        break;
      case BPF.ALU_AND_K:
      case BPF.RET_K:
        break;
      case BPF.JA:
        reach(insn.k);
        break;
      case BPF.JEQ_K:
      case BPF.JGT_K:
      case BPF.JGE_K:
      case BPF.JSET_K:
        reach(insn.jt);
        reach(insn.jf);
        break;
      default:
        throw new Error(`insn ${pc}: opcode ${insn.code.toString(16)} not allowed in seccomp`);
    }
  });
  if (prog.at(-1)!.code !== BPF.RET_K) throw new Error('the last instruction is not a ret');
}

interface Data {
  nr: number;
  arch: number;
  args?: Array<bigint | number>;
}

/** Runs the filter; returns the SECCOMP_RET_* value and how many instructions it took. */
function execute(prog: SockFilter[], d: Data): { ret: number; steps: number } {
  const mem = Buffer.alloc(64);
  mem.writeUInt32LE(d.nr >>> 0, 0);
  mem.writeUInt32LE(d.arch >>> 0, 4);
  mem.writeBigUInt64LE(0x401000n, 8);
  (d.args ?? []).forEach((a, i) => mem.writeBigUInt64LE(BigInt.asUintN(64, BigInt(a)), 16 + 8 * i));
  let A = 0;
  let pc = 0;
  for (let steps = 1; ; steps++) {
    const insn = prog[pc]!;
    pc++;
    switch (insn.code) {
      case BPF.LD_W_ABS:
        A = mem.readUInt32LE(insn.k);
        break;
      case BPF.ALU_AND_K:
        A = (A & insn.k) >>> 0;
        break;
      case BPF.JA:
        pc += insn.k;
        break;
      case BPF.JEQ_K:
        pc += A === insn.k ? insn.jt : insn.jf;
        break;
      case BPF.JGT_K:
        pc += A > insn.k ? insn.jt : insn.jf;
        break;
      case BPF.JGE_K:
        pc += A >= insn.k ? insn.jt : insn.jf;
        break;
      case BPF.JSET_K:
        pc += (A & insn.k) !== 0 ? insn.jt : insn.jf;
        break;
      case BPF.RET_K:
        return { ret: insn.k >>> 0, steps };
      default:
        throw new Error(`bad opcode ${insn.code}`);
    }
  }
}

function show(ret: number): string {
  const data = ret & 0xffff;
  switch ((ret & 0xffff0000) >>> 0) {
    case RET.ALLOW:
      return 'ALLOW';
    case RET.ERRNO:
      return `ERRNO(${data})`;
    case RET.KILL_PROCESS:
      return 'KILL_PROCESS';
    case RET.KILL_THREAD:
      return 'KILL_THREAD';
    case RET.TRAP:
      return 'TRAP';
    case RET.TRACE:
      return `TRACE(${data})`;
    case RET.LOG:
      return 'LOG';
    default:
      return ret.toString(16);
  }
}

const AUDIT = { x86_64: ABIS.x86_64.audit, i386: ABIS.i386.audit, aarch64: ABIS.aarch64.audit, arm: 0x40000028 };
const EPERM = 'ERRNO(1)';
const ENOSYS = 'ERRNO(38)';

/** A compiled filter and a way to ask it about one syscall. */
function filterFor(seccomp: OciSeccomp, arch: NativeArch = 'x86_64') {
  const compiled = compileFilter(seccomp, arch);
  // What the helper gets must decode to exactly what was compiled.
  expect(decode(Buffer.from(filterHex(compiled), 'hex'))).toEqual(compiled.program);
  verify(compiled.program);
  const abiFor = (abi: 'x86_64' | 'i386' | 'aarch64') => ABIS[abi];
  return {
    compiled,
    prog: compiled.program,
    nr: (d: Data) => show(execute(compiled.program, d).ret),
    call(name: string, args: Array<bigint | number> = [], abi: 'x86_64' | 'i386' | 'aarch64' = arch === 'x86_64' ? 'x86_64' : 'aarch64') {
      const nr = abiFor(abi).table[name];
      if (nr === undefined) throw new Error(`no syscall ${name} on ${abi}`);
      return show(execute(compiled.program, { nr, arch: AUDIT[abi], args }).ret);
    },
  };
}

const defaultFilter = (caps: string[] = [...DEFAULT_CAPABILITIES], arch: NativeArch = 'x86_64') =>
  filterFor(ociSeccompFor(undefined, false, caps, arch)!, arch);

// ---------------------------------------------------------------- docker's default profile

describe("the default profile (docker's 14 capabilities, x86_64)", () => {
  const f = defaultFilter();

  it('allows what programs do every day', () => {
    for (const name of ['read', 'write', 'openat', 'close', 'execve', 'exit_group', 'mmap', 'mprotect', 'brk', 'futex',
      'rt_sigaction', 'wait4', 'getpid', 'arch_prctl', 'newfstatat', 'statx', 'getdents64', 'pipe2', 'dup3', 'epoll_wait',
      'prctl', 'capset', 'setgroups', 'setresuid', 'chroot', 'mknodat', 'seccomp', 'rseq', 'ptrace', 'process_vm_readv',
      'name_to_handle_at', 'io_setup', 'modify_ldt', 'fchmodat2', 'mseal']) {
      expect(f.call(name), name).toBe('ALLOW');
    }
  });

  it('refuses, with EPERM, what only the host should do', () => {
    for (const name of ['keyctl', 'add_key', 'request_key', 'kexec_load', 'kexec_file_load', 'open_by_handle_at',
      'userfaultfd', 'io_uring_setup', 'io_uring_enter', 'io_uring_register', 'bpf', 'perf_event_open', 'mount',
      'umount2', 'unshare', 'setns', 'pivot_root', 'swapon', 'swapoff', 'reboot', 'init_module', 'finit_module',
      'delete_module', 'acct', 'settimeofday', 'clock_settime', 'sethostname', 'setdomainname', 'syslog', 'quotactl',
      'lookup_dcookie', 'fsopen', 'fsmount', 'open_tree', 'move_mount', 'mount_setattr', 'vhangup', 'iopl', 'ioperm',
      'kcmp', 'pidfd_getfd', 'process_madvise', 'mbind', 'set_mempolicy', 'fanotify_init', 'uprobe', 'lsm_set_self_attr']) {
      expect(f.call(name), name).toBe(EPERM);
    }
  });

  it('allows clone() without namespace flags only', () => {
    const fork = 0x01200011; // CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD, glibc's fork
    const thread = 0x003d0f00; // pthread_create's flags
    expect(f.call('clone', [fork])).toBe('ALLOW');
    expect(f.call('clone', [thread])).toBe('ALLOW');
    for (const ns of [0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000]) {
      expect(f.call('clone', [fork | ns]), ns.toString(16)).toBe(EPERM);
    }
    // The kernel reads the lower 32 bits of the flags; garbage above them changes nothing.
    expect(f.call('clone', [(1n << 40n) | BigInt(fork)])).toBe('ALLOW');
    expect(f.call('clone', [(1n << 40n) | 0x10000000n])).toBe(EPERM);
  });

  it('answers clone3 with ENOSYS, so that glibc falls back to clone', () => {
    expect(f.call('clone3')).toBe(ENOSYS);
  });

  it('allows personality() with the five values docker allows', () => {
    for (const v of [0, 8, 0x20000, 0x20008, 0xffffffff]) expect(f.call('personality', [v]), String(v)).toBe('ALLOW');
    for (const v of [0x0040000 /* ADDR_NO_RANDOMIZE */, 1, 0x100000000, 0x1000000ffffffffn]) {
      expect(f.call('personality', [v]), String(v)).toBe(EPERM);
    }
  });

  it('refuses AF_VSOCK sockets, even with garbage in the high bits', () => {
    for (const family of [1, 2, 10, 16, 17, 39, 41, 45]) expect(f.call('socket', [family, 1, 0]), String(family)).toBe('ALLOW');
    expect(f.call('socket', [40, 1, 0])).toBe(EPERM);
    expect(f.call('socket', [0x100000028, 1, 0])).toBe(EPERM);
    expect(f.call('socket', [0xffffffff00000028n, 1, 0])).toBe(EPERM);
  });

  it('gives ENOSYS above the highest syscall it names (runc), EPERM in the holes below', () => {
    expect(f.nr({ nr: 471, arch: AUDIT.x86_64 })).toBe(ENOSYS);
    expect(f.nr({ nr: 0x3fffffff, arch: AUDIT.x86_64 })).toBe(ENOSYS);
    expect(f.nr({ nr: 400, arch: AUDIT.x86_64 })).toBe(EPERM); // unassigned, below the highest
    expect(f.nr({ nr: 0xffffffff, arch: AUDIT.x86_64 })).toBe(ENOSYS); // syscall(-1)
  });

  it('kills an x32-ABI syscall: the x32 bit cannot be used to get around the rules', () => {
    for (const nr of [0x40000000 + 39 /* getpid */, 0x40000000 + 165 /* mount */, 0x40000000 + 521, 0x7fffffff]) {
      expect(f.nr({ nr, arch: AUDIT.x86_64 }), nr.toString(16)).toBe('KILL_PROCESS');
    }
  });

  it('reads i386 syscalls (int 0x80) with the i386 numbers', () => {
    expect(f.compiled.abis).toEqual(['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86']);
    expect(f.call('getpid', [], 'i386')).toBe('ALLOW');
    expect(f.call('socketcall', [], 'i386')).toBe('ALLOW');
    expect(f.call('modify_ldt', [], 'i386')).toBe('ALLOW');
    for (const name of ['mount', 'umount', 'keyctl', 'unshare', 'setns', 'io_uring_setup', 'kexec_load']) {
      expect(f.call(name, [], 'i386'), name).toBe(EPERM);
    }
    expect(f.call('clone3', [], 'i386')).toBe(ENOSYS);
    expect(f.call('clone', [0x01200011], 'i386')).toBe('ALLOW');
    expect(f.call('clone', [0x10000000], 'i386')).toBe(EPERM);
    // i386 arguments are 32-bit: only the low half is compared.
    expect(f.call('personality', [0xffffffff], 'i386')).toBe('ALLOW');
    expect(f.call('socket', [40], 'i386')).toBe(EPERM);
    expect(f.nr({ nr: 467, arch: AUDIT.i386 })).toBe(ENOSYS);
  });

  it('kills a syscall made with an ABI it does not know', () => {
    expect(f.nr({ nr: 63, arch: AUDIT.aarch64 })).toBe('KILL_PROCESS');
    expect(f.nr({ nr: 20, arch: AUDIT.arm })).toBe('KILL_PROCESS');
    expect(f.nr({ nr: 0, arch: 0 })).toBe('KILL_PROCESS');
  });

  it('decides a common syscall in a dozen instructions (a binary search, not a list)', () => {
    const steps = (name: string) => execute(f.prog, { nr: ABIS.x86_64.table[name]!, arch: AUDIT.x86_64 }).steps;
    let worst = 0;
    for (const name of Object.keys(ABIS.x86_64.table)) worst = Math.max(worst, steps(name));
    expect(steps('read')).toBeLessThanOrEqual(12);
    expect(steps('futex')).toBeLessThanOrEqual(12);
    expect(worst).toBeLessThanOrEqual(24); // argument checks included (personality, socket, clone)
  });
});

describe('the default profile and capabilities (includes/excludes caps, on the bounding set)', () => {
  it('CAP_SYS_ADMIN allows mount, unshare, setns, namespace clones and clone3', () => {
    const f = defaultFilter([...DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN']);
    for (const name of ['mount', 'umount2', 'unshare', 'setns', 'sethostname', 'bpf', 'perf_event_open', 'fsopen', 'clone3']) {
      expect(f.call(name), name).toBe('ALLOW');
    }
    expect(f.call('clone', [0x10000000 | 0x11])).toBe('ALLOW');
    // still refused: not tied to CAP_SYS_ADMIN in docker's profile
    for (const name of ['keyctl', 'kexec_load', 'io_uring_setup', 'reboot', 'init_module', 'userfaultfd']) {
      expect(f.call(name), name).toBe(EPERM);
    }
  });

  it('each capability opens its own syscalls', () => {
    const cases: Array<[string, string[]]> = [
      ['CAP_SYS_PTRACE', ['kcmp', 'pidfd_getfd', 'process_madvise']],
      ['CAP_SYS_TIME', ['settimeofday', 'clock_settime', 'adjtimex']],
      ['CAP_SYS_MODULE', ['init_module', 'finit_module', 'delete_module']],
      ['CAP_SYS_BOOT', ['reboot']],
      ['CAP_SYS_PACCT', ['acct']],
      ['CAP_SYS_RAWIO', ['iopl', 'ioperm']],
      ['CAP_SYS_NICE', ['mbind', 'set_mempolicy', 'get_mempolicy', 'set_mempolicy_home_node']],
      ['CAP_SYS_TTY_CONFIG', ['vhangup']],
      ['CAP_DAC_READ_SEARCH', ['open_by_handle_at']],
      ['CAP_SYSLOG', ['syslog']],
      ['CAP_BPF', ['bpf']],
      ['CAP_PERFMON', ['perf_event_open']],
    ];
    for (const [cap, names] of cases) {
      const f = defaultFilter([...DEFAULT_CAPABILITIES, cap]);
      for (const n of names) expect(f.call(n), `${cap} ${n}`).toBe('ALLOW');
      expect(f.call('mount'), cap).toBe(EPERM);
    }
  });

  it('without CAP_SYS_CHROOT, chroot is refused', () => {
    const f = defaultFilter(DEFAULT_CAPABILITIES.filter((c) => c !== 'CAP_SYS_CHROOT'));
    expect(f.call('chroot')).toBe(EPERM);
  });

  it('drops the ptrace rule on a kernel older than 4.8 (minKernel)', () => {
    const oci = resolveProfile(DEFAULT_PROFILE, { bounding: [...DEFAULT_CAPABILITIES], arch: 'x86_64', kernel: '4.4.0-210-generic' });
    expect(filterFor(oci).call('ptrace')).toBe(EPERM);
  });
});

describe('the default profile on aarch64', () => {
  const f = defaultFilter(undefined, 'aarch64');

  it('uses the arm64 numbers and refuses AArch32 (no table for it)', () => {
    expect(f.compiled.abis).toEqual(['SCMP_ARCH_AARCH64']);
    expect(f.call('openat')).toBe('ALLOW');
    expect(f.call('read')).toBe('ALLOW');
    expect(f.call('mount')).toBe(EPERM);
    expect(f.call('keyctl')).toBe(EPERM);
    expect(f.call('clone3')).toBe(ENOSYS);
    expect(f.call('clone', [0x01200011])).toBe('ALLOW');
    expect(f.call('clone', [0x20000000])).toBe(EPERM);
    expect(f.call('personality', [8])).toBe('ALLOW');
    expect(f.nr({ nr: 20, arch: AUDIT.arm })).toBe('KILL_PROCESS');
    expect(f.nr({ nr: 63, arch: AUDIT.x86_64 })).toBe('KILL_PROCESS');
    // no x32 on arm64: a big number is just an unknown syscall
    expect(f.nr({ nr: 0x40000000 + 63, arch: AUDIT.aarch64 })).toBe(ENOSYS);
  });
});

// ---------------------------------------------------------------- the compiler itself

const one = (rule: Partial<OciSeccomp['syscalls'] extends Array<infer R> | undefined ? R : never>, defaultAction = 'SCMP_ACT_ALLOW'): OciSeccomp => ({
  defaultAction,
  architectures: ['SCMP_ARCH_X86_64'],
  syscalls: [{ names: ['getpid'], action: 'SCMP_ACT_ERRNO', errnoRet: 7, ...rule }],
});

describe('argument comparisons on 64-bit values', () => {
  const M32 = 0xffffffffn;
  const constants = [0n, 1n, 40n, M32 - 1n, M32, M32 + 1n, 0x100000028n, 0x1fffff00000001n, (1n << 53n) - 1n];
  const around = (k: bigint) => [k - 1n, k, k + 1n, k ^ (1n << 32n), k ^ 1n, 0n, M32, M32 + 1n, (1n << 64n) - 1n, k | (M32 << 32n)]
    .map((v) => BigInt.asUintN(64, v));
  const reference: Record<string, (a: bigint, k: bigint, k2: bigint) => boolean> = {
    SCMP_CMP_EQ: (a, k) => a === k,
    SCMP_CMP_NE: (a, k) => a !== k,
    SCMP_CMP_LT: (a, k) => a < k,
    SCMP_CMP_LE: (a, k) => a <= k,
    SCMP_CMP_GT: (a, k) => a > k,
    SCMP_CMP_GE: (a, k) => a >= k,
    SCMP_CMP_MASKED_EQ: (a, k, k2) => (a & k) === k2,
  };

  for (const [op, holds] of Object.entries(reference)) {
    it(`${op} compares the high and the low halves`, () => {
      for (const k of constants) {
        const k2 = op === 'SCMP_CMP_MASKED_EQ' ? k & 0x1_0000_0028n : 0n;
        const f = filterFor(one({ args: [{ index: 2, value: Number(k), valueTwo: Number(k2), op }] }));
        for (const a of around(k)) {
          const want = holds(a, k, k2) ? 'ERRNO(7)' : 'ALLOW';
          expect(f.call('getpid', [0, 0, a]), `${op} k=${k.toString(16)} a=${a.toString(16)}`).toBe(want);
        }
      }
    });
  }

  it('ANDs the conditions of one rule', () => {
    const f = filterFor(one({ args: [{ index: 0, value: 1, op: 'SCMP_CMP_EQ' }, { index: 1, value: 5, op: 'SCMP_CMP_GT' }] }));
    expect(f.call('getpid', [1, 6])).toBe('ERRNO(7)');
    expect(f.call('getpid', [1, 5])).toBe('ALLOW');
    expect(f.call('getpid', [2, 6])).toBe('ALLOW');
  });

  it('ORs conditions on the same argument, each its own rule (as runc does for libseccomp)', () => {
    const f = filterFor(one({ args: [{ index: 0, value: 1, op: 'SCMP_CMP_EQ' }, { index: 0, value: 3, op: 'SCMP_CMP_EQ' }] }));
    expect(f.call('getpid', [1])).toBe('ERRNO(7)');
    expect(f.call('getpid', [3])).toBe('ERRNO(7)');
    expect(f.call('getpid', [2])).toBe('ALLOW');
  });
});

describe('rules and actions', () => {
  it('maps every action to its SECCOMP_RET_* value', () => {
    const cases: Array<[string, number | undefined, string]> = [
      ['SCMP_ACT_ALLOW', undefined, 'ALLOW'],
      ['SCMP_ACT_ERRNO', undefined, 'ERRNO(1)'],
      ['SCMP_ACT_ERRNO', 22, 'ERRNO(22)'],
      ['SCMP_ACT_KILL', undefined, 'KILL_THREAD'],
      ['SCMP_ACT_KILL_THREAD', undefined, 'KILL_THREAD'],
      ['SCMP_ACT_KILL_PROCESS', undefined, 'KILL_PROCESS'],
      ['SCMP_ACT_TRAP', undefined, 'TRAP'],
      ['SCMP_ACT_TRACE', 42, 'TRACE(42)'],
      ['SCMP_ACT_LOG', undefined, 'LOG'],
    ];
    for (const [action, errnoRet, want] of cases) {
      const f = filterFor({ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 13, syscalls: [{ names: ['mkdir'], action, ...(errnoRet !== undefined && { errnoRet }) }] });
      expect(f.call('mkdir'), action).toBe(action === 'SCMP_ACT_ERRNO' && errnoRet === undefined ? 'ERRNO(1)' : want);
      expect(f.call('chdir')).toBe('ERRNO(13)'); // below mkdir: the default
    }
  });

  it('a rule without args decides alone; conditional rules are tried in order', () => {
    const f = filterFor({
      defaultAction: 'SCMP_ACT_ERRNO',
      syscalls: [
        { names: ['dup'], action: 'SCMP_ACT_ERRNO', errnoRet: 9, args: [{ index: 0, value: 5, op: 'SCMP_CMP_GE' }] },
        { names: ['dup'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 3, op: 'SCMP_CMP_GE' }] },
        { names: ['dup2'], action: 'SCMP_ACT_ERRNO', errnoRet: 9, args: [{ index: 0, value: 5, op: 'SCMP_CMP_GE' }] },
        { names: ['dup2'], action: 'SCMP_ACT_ALLOW' },
      ],
    });
    expect(f.call('dup', [7])).toBe('ERRNO(9)');
    expect(f.call('dup', [4])).toBe('ALLOW');
    expect(f.call('dup', [1])).toBe('ERRNO(1)');
    expect(f.call('dup2', [7])).toBe('ALLOW');
  });

  it('with an allowing default there is no ENOSYS range, and unknown names are reported', () => {
    const f = filterFor({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'no_such_call'], action: 'SCMP_ACT_ERRNO' }] });
    expect(f.call('mkdir')).toBe('ERRNO(1)');
    expect(f.call('mkdirat')).toBe('ALLOW');
    expect(f.nr({ nr: 1000, arch: AUDIT.x86_64 })).toBe('ALLOW');
    expect(f.nr({ nr: 0x40000000 + 83, arch: AUDIT.x86_64 })).toBe('KILL_PROCESS'); // x32 mkdir
    expect(f.nr({ nr: 39, arch: AUDIT.i386 })).toBe('KILL_PROCESS'); // i386 not in the profile
    expect(f.compiled.unknown).toEqual(['no_such_call']);
  });

  it('rewrites far jumps (more than 255 instructions) through ja', () => {
    const values = Array.from({ length: 300 }, (_, i) => i * 3);
    const f = filterFor({
      defaultAction: 'SCMP_ACT_ERRNO',
      syscalls: [
        ...values.map((value) => ({ names: ['ioctl'], action: 'SCMP_ACT_ALLOW', args: [{ index: 1, value, op: 'SCMP_CMP_EQ' }] })),
        { names: ['read', 'write'], action: 'SCMP_ACT_ALLOW' },
      ],
    });
    expect(f.prog.length).toBeGreaterThan(1000);
    expect(f.prog.some((i) => i.code === BPF.JA && i.k > 255)).toBe(true);
    for (const v of [0, 3, 450, 897]) expect(f.call('ioctl', [1, v]), String(v)).toBe('ALLOW');
    for (const v of [1, 898, 0x100000000]) expect(f.call('ioctl', [1, v]), String(v)).toBe(EPERM);
    expect(f.call('write')).toBe('ALLOW');
  });

  it('refuses a filter over the kernel limit of 4096 instructions', () => {
    const syscalls = Array.from({ length: 1100 }, (_, value) => ({ names: ['ioctl'], action: 'SCMP_ACT_ALLOW', args: [{ index: 1, value, op: 'SCMP_CMP_EQ' }] }));
    expect(() => compileFilter({ defaultAction: 'SCMP_ACT_ERRNO', syscalls }, 'x86_64')).toThrow(/more than the kernel's 4096/);
  });
});

describe('golden', () => {
  it('the default filter: its size and its first instructions', () => {
    const f = defaultFilter();
    expect(f.prog.length).toBe(254);
    expect(defaultFilter(undefined, 'aarch64').prog.length).toBe(108);
    expect(defaultFilter([...DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN']).prog.length).toBe(209);
    expect(f.prog.slice(0, 5)).toEqual([
      { code: BPF.LD_W_ABS, jt: 0, jf: 0, k: 4 }, // A = arch
      { code: BPF.JEQ_K, jt: 2, jf: 0, k: 0xc000003e }, // x86_64
      { code: BPF.JEQ_K, jt: f.prog[2]!.jt, jf: 0, k: 0x40000003 }, // i386
      { code: BPF.RET_K, jt: 0, jf: 0, k: RET.KILL_PROCESS },
      { code: BPF.LD_W_ABS, jt: 0, jf: 0, k: 0 }, // A = nr
    ]);
  });

  it('a one-rule profile, instruction by instruction', () => {
    const prog = compileFilter({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['getpid'], action: 'SCMP_ACT_ERRNO' }] }, 'x86_64').program;
    const { LD_W_ABS: LD, JEQ_K: JEQ, JGE_K: JGE, RET_K: RET_ } = BPF;
    expect(prog.map((i) => [i.code, i.jt, i.jf, i.k])).toEqual([
      [LD, 0, 0, 4], // 0: A = arch
      [JEQ, 1, 0, 0xc000003e], // 1: x86_64 → 3
      [RET_, 0, 0, RET.KILL_PROCESS], // 2: any other ABI
      [LD, 0, 0, 0], // 3: A = nr
      [JGE, 1, 0, 40], // 4: nr >= 40 → 6
      [JGE, 2, 3, 39], // 5: nr == 39 (getpid) → 8, below → 9
      [JGE, 0, 2, 0x40000000], // 6: below the x32 range → 9
      [JGE, 1, 2, 0x80000000], // 7: x32 → 10; "negative" → 9
      [RET_, 0, 0, RET.ERRNO | 1], // 8
      [RET_, 0, 0, RET.ALLOW], // 9
      [RET_, 0, 0, RET.KILL_PROCESS], // 10
    ]);
    expect(encode(prog).toString('hex').slice(0, 32)).toBe('2000000004000000' + '150001003e0000c0');
  });
});
