// Classic BPF, the little of it a seccomp filter needs, and an assembler with labels.
//
// A seccomp filter is a program of `struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; }` run by
// the kernel on `struct seccomp_data { int nr; u32 arch; u64 instruction_pointer; u64 args[6]; }`
// at every syscall. It has one register A, only forward jumps, and must end in `ret`. A
// conditional jump reaches at most 255 instructions ahead, so the assembler rewrites a far one
// as a short jump to an unconditional `ja` (32-bit offset): code can be written with labels.

export const BPF = {
  LD_W_ABS: 0x20, // A = *(u32 *)(seccomp_data + k)
  ALU_AND_K: 0x54, // A &= k
  JA: 0x05, // pc += k
  JEQ_K: 0x15, // pc += (A == k) ? jt : jf
  JGT_K: 0x25, // pc += (A > k) ? jt : jf   (unsigned)
  JGE_K: 0x35, // pc += (A >= k) ? jt : jf  (unsigned)
  JSET_K: 0x45, // pc += (A & k) ? jt : jf
  RET_K: 0x06, // return k
} as const;

/** Offsets in struct seccomp_data (args are u64, little-endian on x86_64 and aarch64). */
export const SECCOMP_DATA = {
  nr: 0,
  arch: 4,
  argLow: (i: number) => 16 + 8 * i,
  argHigh: (i: number) => 16 + 8 * i + 4,
};

/** BPF_MAXINSNS: the kernel refuses longer filters. */
export const MAX_INSNS = 4096;

export interface SockFilter {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

export type Label = number;

type Item =
  | { kind: 'label'; label: Label }
  | { kind: 'stmt'; code: number; k: number }
  | { kind: 'jump'; code: number; k: number; t: Label; f: Label }
  | { kind: 'ja'; target: Label };

/** Collects instructions with symbolic jump targets; `assemble()` resolves them. */
export class Assembler {
  private readonly items: Item[] = [];
  private nextLabel = 0;

  label(): Label {
    return this.nextLabel++;
  }

  /** Place `label` here: jumps to it land on the next instruction emitted. */
  bind(label: Label): void {
    this.items.push({ kind: 'label', label });
  }

  load(offset: number): void {
    this.items.push({ kind: 'stmt', code: BPF.LD_W_ABS, k: offset });
  }

  and(k: number): void {
    this.items.push({ kind: 'stmt', code: BPF.ALU_AND_K, k: k >>> 0 });
  }

  ret(k: number): void {
    this.items.push({ kind: 'stmt', code: BPF.RET_K, k: k >>> 0 });
  }

  /** if (A <op> k) goto t else goto f */
  jump(code: number, k: number, t: Label, f: Label): void {
    this.items.push({ kind: 'jump', code, k: k >>> 0, t, f });
  }

  goto(target: Label): void {
    this.items.push({ kind: 'ja', target });
  }

  /**
   * Lay the program out. A conditional jump whose target is more than 255 instructions away
   * becomes `j<op> k, 0, 1; ja t; ja f`; that moves everything after it, so repeat until no
   * new far jump appears (each round only adds, so it ends).
   */
  assemble(): SockFilter[] {
    const far = new Set<number>();
    for (;;) {
      const layout = this.layout(far);
      let grew = false;
      this.items.forEach((it, i) => {
        if (it.kind !== 'jump' || far.has(i)) return;
        const from = layout.addr[i]! + 1;
        if (layout.at(it.t) - from > 255 || layout.at(it.f) - from > 255) {
          far.add(i);
          grew = true;
        }
      });
      if (!grew) return this.emit(layout, far);
    }
  }

  private layout(far: Set<number>): Layout {
    const addr: number[] = [];
    const labels = new Map<Label, number>();
    let pc = 0;
    this.items.forEach((it, i) => {
      addr[i] = pc;
      if (it.kind === 'label') labels.set(it.label, pc);
      else pc += it.kind === 'jump' && far.has(i) ? 3 : 1;
    });
    const at = (l: Label) => {
      const a = labels.get(l);
      if (a === undefined) throw new Error(`bpf: label ${l} is never bound`);
      return a;
    };
    return { addr, at, size: pc };
  }

  private emit(layout: Layout, far: Set<number>): SockFilter[] {
    const out: SockFilter[] = [];
    // Offsets count from the instruction after the jump; BPF cannot jump backwards.
    const rel = (l: Label, next: number) => {
      const d = layout.at(l) - next;
      if (d < 0) throw new Error(`bpf: backward jump to label ${l}`);
      return d;
    };
    this.items.forEach((it, i) => {
      const pc = layout.addr[i]!;
      if (it.kind === 'label') return;
      if (it.kind === 'stmt') out.push({ code: it.code, jt: 0, jf: 0, k: it.k });
      else if (it.kind === 'ja') out.push({ code: BPF.JA, jt: 0, jf: 0, k: rel(it.target, pc + 1) });
      else if (!far.has(i)) out.push({ code: it.code, jt: rel(it.t, pc + 1), jf: rel(it.f, pc + 1), k: it.k });
      else {
        out.push({ code: it.code, jt: 0, jf: 1, k: it.k });
        out.push({ code: BPF.JA, jt: 0, jf: 0, k: rel(it.t, pc + 2) });
        out.push({ code: BPF.JA, jt: 0, jf: 0, k: rel(it.f, pc + 3) });
      }
    });
    if (out.length !== layout.size) throw new Error('bpf: emitted size differs from the layout');
    return out;
  }
}

interface Layout {
  /** Address of each item (for a label: of the instruction that follows it). */
  addr: number[];
  at(label: Label): number;
  size: number;
}

/** The bytes the kernel takes: 8 per instruction, host (little-endian) byte order. */
export function encode(prog: SockFilter[]): Buffer {
  const buf = Buffer.alloc(prog.length * 8);
  prog.forEach((insn, i) => {
    buf.writeUInt16LE(insn.code, i * 8);
    buf.writeUInt8(insn.jt, i * 8 + 2);
    buf.writeUInt8(insn.jf, i * 8 + 3);
    buf.writeUInt32LE(insn.k >>> 0, i * 8 + 4);
  });
  return buf;
}

export function decode(buf: Buffer): SockFilter[] {
  const out: SockFilter[] = [];
  for (let i = 0; i + 8 <= buf.length; i += 8) {
    out.push({ code: buf.readUInt16LE(i), jt: buf.readUInt8(i + 2), jf: buf.readUInt8(i + 3), k: buf.readUInt32LE(i + 4) });
  }
  return out;
}
