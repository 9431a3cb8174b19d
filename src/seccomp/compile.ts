// The OCI `linux.seccomp` of a container → a classic BPF program for seccomp(2), with the
// semantics runc gives it through libseccomp:
//
//   ld  arch                      the ABI the syscall was made with
//   jeq AUDIT_ARCH_X86_64 → A     (and AUDIT_ARCH_I386 → B when the profile lets i386 in)
//   ret KILL_PROCESS              any other ABI: a filter that cannot read its numbers refuses
//   A: ld nr; binary search over number ranges → ret action, or the argument checks of a rule
//   B: the same with the i386 numbers
//
// - The x32 ABI (x86_64 numbers with bit 30 set) is refused outright (KILL_PROCESS), like a
//   foreign ABI: otherwise `syscall(0x40000000 | nr)` would be a way around the rules.
// - Numbers above the highest one the profile names get ENOSYS, not the default EPERM (runc's
//   "-ENOSYS stub"): a program probing a syscall newer than the profile falls back, as it would
//   on an older kernel. Not when the default action lets things through (ALLOW, LOG, TRACE).
// - Several rules for one syscall: a rule with no `args` decides alone (the first such one);
//   otherwise the rules are tried in profile order and the first whose conditions all hold
//   decides. A rule without `args` that only repeats the default action is dropped (runc).
//   Conditions of one rule are ANDed, unless two name the same argument: then runc adds each
//   condition as a rule of its own (ORed), and so does tsrun.
// - Arguments are 64-bit: each comparison checks the high and the low 32-bit halves. For
//   i386 only the low half is compared (its arguments are 32-bit), as libseccomp does.
import { TsrunError } from '../errors.js';
import { ABIS, NATIVE, X32_SYSCALL_BIT, type AbiInfo, type NativeArch } from './arch.js';
import { Assembler, BPF, MAX_INSNS, SECCOMP_DATA, encode, type Label, type SockFilter } from './bpf.js';
import { emitSearch, type Cond, type Outcome, type Rule } from './codegen.js';
import type { OciSeccomp, OciSeccompArg } from './types.js';

/** SECCOMP_RET_* (linux/seccomp.h); the low 16 bits carry data (the errno for ERRNO). */
export const RET = {
  KILL_PROCESS: 0x80000000,
  KILL_THREAD: 0x00000000,
  TRAP: 0x00030000,
  ERRNO: 0x00050000,
  TRACE: 0x7ff00000,
  LOG: 0x7ffc0000,
  ALLOW: 0x7fff0000,
} as const;

const EPERM = 1;
const ENOSYS = 38;

/** A profile action (+ its errnoRet) → the value the filter returns. */
export function actionValue(action: string, errnoRet: number | undefined): number {
  switch (action) {
    case 'SCMP_ACT_ALLOW':
      return RET.ALLOW;
    case 'SCMP_ACT_ERRNO':
      return (RET.ERRNO | ((errnoRet ?? EPERM) & 0xffff)) >>> 0;
    case 'SCMP_ACT_KILL':
    case 'SCMP_ACT_KILL_THREAD':
      return RET.KILL_THREAD;
    case 'SCMP_ACT_KILL_PROCESS':
      return RET.KILL_PROCESS;
    case 'SCMP_ACT_TRAP':
      return RET.TRAP;
    case 'SCMP_ACT_TRACE':
      // The tracer reads the data as its message; runc sends EPERM when none is given.
      return (RET.TRACE | ((errnoRet ?? EPERM) & 0xffff)) >>> 0;
    case 'SCMP_ACT_LOG':
      return RET.LOG;
    default:
      throw new TsrunError('EINVAL_FLAG', `seccomp: action ${action} is not supported`);
  }
}

/** What the ABI sections, the x32 ABI and unknown ABIs are refused with. */
export const REFUSED_ABI = RET.KILL_PROCESS;

export interface CompiledFilter {
  program: SockFilter[];
  /** The ABIs the filter lets in (SCMP_ARCH_*), native first. */
  abis: string[];
  /** Syscall names of the profile that no table here knows (ignored, as runc does). */
  unknown: string[];
}

export function compileFilter(seccomp: OciSeccomp, arch: NativeArch): CompiledFilter {
  const native = NATIVE[arch];
  const defaultRet = actionValue(seccomp.defaultAction, seccomp.defaultErrnoRet);
  const abis: AbiInfo[] = [native.abi];
  if (native.compat && seccomp.architectures?.includes(native.compat.scmp)) abis.push(native.compat.abi);

  const asm = new Assembler();
  const entries = abis.map(() => asm.label());
  asm.load(SECCOMP_DATA.arch);
  abis.forEach((abi, i) => {
    const next = asm.label();
    asm.jump(BPF.JEQ_K, abi.audit, entries[i]!, next);
    asm.bind(next);
  });
  asm.ret(REFUSED_ABI);

  const known = new Set<string>();
  abis.forEach((abi, i) => {
    // Each section ends with its own `ret`s, close to the jumps that reach them.
    const rets = new Map<number, Label>();
    const retLabel = (value: number): Label => {
      let l = rets.get(value >>> 0);
      if (l === undefined) rets.set(value >>> 0, (l = asm.label()));
      return l;
    };
    asm.bind(entries[i]!);
    asm.load(SECCOMP_DATA.nr);
    emitSearch(asm, ranges(abi, seccomp, defaultRet, known), abi.bits, retLabel, defaultRet);
    for (const [value, label] of rets) {
      asm.bind(label);
      asm.ret(value);
    }
  });

  const program = asm.assemble();
  if (program.length > MAX_INSNS) {
    throw new TsrunError('EINVAL_FLAG', `seccomp: the filter has ${program.length} instructions, more than the kernel's ${MAX_INSNS}`);
  }
  const unknown = [...new Set((seccomp.syscalls ?? []).flatMap((r) => r.names))].filter((n) => !known.has(n)).sort();
  return { program, abis: abis.map((a) => a.scmp), unknown };
}

/** The filter as the helper's `seccomp` step wants it: hex of struct sock_filter[]. */
export function filterHex(filter: CompiledFilter): string {
  return encode(filter.program).toString('hex');
}

/**
 * The ABI's syscall numbers split into ranges of equal outcome, covering 0..2^32-1, sorted.
 */
function ranges(abi: AbiInfo, seccomp: OciSeccomp, defaultRet: number, known: Set<string>): Array<{ start: number; outcome: Outcome }> {
  const byNr = new Map<number, Rule[]>();
  const unconditional = new Map<number, number>();
  let highest = -1;
  for (const rule of seccomp.syscalls ?? []) {
    const ret = actionValue(rule.action, rule.errnoRet);
    for (const name of rule.names) {
      const nr = abi.table[name];
      if (nr === undefined) continue;
      known.add(name);
      highest = Math.max(highest, nr);
      const args = rule.args ?? [];
      if (args.length === 0) {
        // libseccomp refuses a rule that only repeats the default action; runc skips it.
        if (ret !== defaultRet && !unconditional.has(nr)) unconditional.set(nr, ret);
        continue;
      }
      const conds = args.map(cond);
      const sameArgTwice = new Set(args.map((a) => a.index)).size < args.length;
      const list = byNr.get(nr) ?? [];
      if (sameArgTwice) for (const c of conds) list.push({ conds: [c], ret });
      else list.push({ conds, ret });
      byNr.set(nr, list);
    }
  }
  const permissive = defaultRet === RET.ALLOW || defaultRet === RET.LOG || ((defaultRet & 0xffff0000) >>> 0) === RET.TRACE;
  const enosysFrom = !permissive && highest >= 0 ? highest + 1 : Infinity;

  const returns = new Map<number, Outcome>();
  const returning = (value: number): Outcome => {
    let o = returns.get(value);
    if (!o) returns.set(value, (o = { kind: 'ret', ret: value }));
    return o;
  };
  const outcomeOf = (nr: number): Outcome => {
    const u = unconditional.get(nr);
    if (u !== undefined) return returning(u);
    const rules = byNr.get(nr);
    return rules ? { kind: 'rules', rules } : returning(defaultRet);
  };
  const out: Array<{ start: number; outcome: Outcome; key: string }> = [];
  // Neighbours with equal outcomes merge. The key of a syscall's rules is made once per rules
  // list, not once per number: this loop runs ~450 times per ABI in every `run`.
  const ruleKeys = new Map<Rule[], string>();
  const keyOf = (o: Outcome): string => {
    if (o.kind === 'ret') return `ret ${o.ret}`;
    let key = ruleKeys.get(o.rules);
    if (key === undefined) ruleKeys.set(o.rules, (key = `rules ${JSON.stringify(o.rules)}`));
    return key;
  };
  const push = (start: number, outcome: Outcome) => {
    const key = keyOf(outcome);
    if (out.at(-1)?.key !== key) out.push({ start, outcome, key });
  };
  const last = highest;
  for (let nr = 0; nr <= last; nr++) push(nr, outcomeOf(nr));
  const afterTable = { kind: 'ret', ret: enosysFrom === Infinity ? defaultRet : (RET.ERRNO | ENOSYS) } as const;
  push(Math.max(last + 1, 0), afterTable);
  if (abi === ABIS.x86_64) {
    // x32: bit 30 set (and bit 31 clear: the kernel treats "negative" numbers as no syscall).
    push(X32_SYSCALL_BIT, { kind: 'ret', ret: REFUSED_ABI });
    push(0x80000000, afterTable);
  }
  return out;
}

function cond(a: OciSeccompArg): Cond {
  return { index: a.index, op: a.op, value: a.value, valueTwo: a.valueTwo ?? 0 };
}
