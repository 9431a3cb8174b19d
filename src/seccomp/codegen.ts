// How a filter is written in classic BPF: a binary search over syscall-number ranges, then for
// a syscall with argument rules the comparisons, 64-bit values as two 32-bit halves.
import { type Assembler, BPF, SECCOMP_DATA, type Label } from './bpf.js';
import { TsrunError } from '../errors.js';

/** One argument comparison of a rule (docker/OCI `args[]` entry, valueTwo defaulted). */
export interface Cond {
  index: number;
  op: string;
  value: number;
  valueTwo: number;
}
/** Conditions ANDed; when they all hold, return `ret`. */
export interface Rule {
  conds: Cond[];
  ret: number;
}
/** What a range of syscall numbers gets: a plain return, or rules tried in order. */
export type Outcome = { kind: 'ret'; ret: number } | { kind: 'rules'; rules: Rule[] };

/**
 * A binary search over the ranges on A (the syscall number): log2(ranges) comparisons, then a
 * `ret` or the rules' argument checks. Nodes come before their subtrees (BPF jumps forward).
 */
export function emitSearch(
  asm: Assembler,
  list: Array<{ start: number; outcome: Outcome }>,
  bits: 32 | 64,
  retLabel: (v: number) => Label,
  defaultRet: number,
): void {
  const work: Array<() => void> = [];
  const node = (lo: number, hi: number): Label => {
    const only = list[lo]!.outcome;
    if (lo === hi && only.kind === 'ret') return retLabel(only.ret);
    const label = asm.label();
    work.push(() => {
      asm.bind(label);
      if (lo === hi) return emitRules(asm, (only as { rules: Rule[] }).rules, bits, retLabel, defaultRet);
      const mid = (lo + hi + 1) >> 1;
      // The right subtree is queued first so that the left one is emitted right here, after
      // the comparison: its jump is then a fall-through.
      const right = node(mid, hi);
      const left = node(lo, mid - 1);
      asm.jump(BPF.JGE_K, list[mid]!.start, right, left);
    });
    return label;
  };
  const root = node(0, list.length - 1);
  if (work.length === 0) asm.goto(root);
  while (work.length > 0) work.pop()!();
}

/** First rule whose conditions all hold decides; none: the default action. */
function emitRules(asm: Assembler, rules: Rule[], bits: 32 | 64, retLabel: (v: number) => Label, defaultRet: number): void {
  for (const rule of rules) {
    const nextRule = asm.label();
    rule.conds.forEach((c, i) => {
      const pass = i === rule.conds.length - 1 ? retLabel(rule.ret) : asm.label();
      emitCond(asm, c, bits, pass, nextRule);
      if (i < rule.conds.length - 1) asm.bind(pass);
    });
    asm.bind(nextRule);
  }
  asm.goto(retLabel(defaultRet));
}

const hi32 = (v: number) => Math.floor(v / 0x100000000) >>> 0;
const lo32 = (v: number) => v >>> 0;

/** Jump to `pass` if (args[index] <op> value) on 64 bits, else to `fail`. */
function emitCond(asm: Assembler, c: Cond, bits: 32 | 64, pass: Label, fail: Label): void {
  const hiAt = SECCOMP_DATA.argHigh(c.index);
  const loAt = SECCOMP_DATA.argLow(c.index);
  const wide = bits === 64;
  switch (c.op) {
    case 'SCMP_CMP_EQ':
    case 'SCMP_CMP_NE': {
      const [t, f] = c.op === 'SCMP_CMP_EQ' ? [pass, fail] : [fail, pass];
      if (wide) {
        const lowHalf = asm.label();
        asm.load(hiAt);
        asm.jump(BPF.JEQ_K, hi32(c.value), lowHalf, f);
        asm.bind(lowHalf);
      }
      asm.load(loAt);
      asm.jump(BPF.JEQ_K, lo32(c.value), t, f);
      return;
    }
    case 'SCMP_CMP_GT':
    case 'SCMP_CMP_GE':
    case 'SCMP_CMP_LT':
    case 'SCMP_CMP_LE': {
      // LT is "not GE", LE is "not GT".
      const strict = c.op === 'SCMP_CMP_GT' || c.op === 'SCMP_CMP_LE';
      const [t, f] = c.op === 'SCMP_CMP_GT' || c.op === 'SCMP_CMP_GE' ? [pass, fail] : [fail, pass];
      if (wide) {
        const hiNotAbove = asm.label();
        const hiEqual = asm.label();
        asm.load(hiAt);
        asm.jump(BPF.JGT_K, hi32(c.value), t, hiNotAbove);
        asm.bind(hiNotAbove);
        asm.jump(BPF.JEQ_K, hi32(c.value), hiEqual, f);
        asm.bind(hiEqual);
      }
      asm.load(loAt);
      asm.jump(strict ? BPF.JGT_K : BPF.JGE_K, lo32(c.value), t, f);
      return;
    }
    case 'SCMP_CMP_MASKED_EQ': {
      // (arg & value) == valueTwo, half by half. A zero mask on the high half needs no load.
      if (wide) {
        const mask = hi32(c.value);
        const want = hi32(c.valueTwo);
        if (mask === 0 && want !== 0) return asm.goto(fail);
        if (mask !== 0) {
          const lowHalf = asm.label();
          asm.load(hiAt);
          asm.and(mask);
          asm.jump(BPF.JEQ_K, want, lowHalf, fail);
          asm.bind(lowHalf);
        }
      }
      asm.load(loAt);
      asm.and(lo32(c.value));
      asm.jump(BPF.JEQ_K, lo32(c.valueTwo), pass, fail);
      return;
    }
    default:
      throw new TsrunError('EINVAL_FLAG', `seccomp: comparison ${c.op} is not supported`);
  }
}
