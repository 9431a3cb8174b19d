// Architectures a filter knows: how the kernel names them in seccomp_data.arch (AUDIT_ARCH_*),
// how profiles name them (SCMP_ARCH_* and docker's Go-style names), and their syscall numbers.
import { arch as nodeArch } from 'node:os';
import { TsrunError } from '../errors.js';
import { AARCH64_SYSCALLS } from './syscalls/aarch64.js';
import { I386_SYSCALLS } from './syscalls/i386.js';
import { X86_64_SYSCALLS } from './syscalls/x86_64.js';

/** A native architecture tsrun can build a filter for. */
export type NativeArch = 'x86_64' | 'aarch64';

export interface AbiInfo {
  /** SCMP_ARCH_* */
  scmp: string;
  /** AUDIT_ARCH_*: EM_* | __AUDIT_ARCH_64BIT (0x80000000) | __AUDIT_ARCH_LE (0x40000000). */
  audit: number;
  /** Syscall arguments are 64-bit (else only the low 32 bits are compared, as libseccomp does). */
  bits: 32 | 64;
  table: Readonly<Record<string, number>>;
}

export const ABIS: Record<'x86_64' | 'i386' | 'aarch64', AbiInfo> = {
  x86_64: { scmp: 'SCMP_ARCH_X86_64', audit: 0xc000003e, bits: 64, table: X86_64_SYSCALLS },
  i386: { scmp: 'SCMP_ARCH_X86', audit: 0x40000003, bits: 32, table: I386_SYSCALLS },
  aarch64: { scmp: 'SCMP_ARCH_AARCH64', audit: 0xc00000b7, bits: 64, table: AARCH64_SYSCALLS },
};

/** x86_64 marks x32-ABI syscalls with this bit in the syscall number (same AUDIT_ARCH_X86_64). */
export const X32_SYSCALL_BIT = 0x40000000;

export const NATIVE: Record<NativeArch, { abi: AbiInfo; goArch: string; compat?: { scmp: string; abi: AbiInfo } }> = {
  // i386 binaries run on x86_64 kernels (int 0x80): their own numbers, their own arch token.
  x86_64: { abi: ABIS.x86_64, goArch: 'amd64', compat: { scmp: 'SCMP_ARCH_X86', abi: ABIS.i386 } },
  // arm (AArch32) compat has no table here: such processes are refused like a foreign arch.
  aarch64: { abi: ABIS.aarch64, goArch: 'arm64' },
};

/** The architecture this tsrun runs on (the container's, since images run natively). */
export function hostArch(): NativeArch {
  const a = nodeArch();
  if (a === 'x64') return 'x86_64';
  if (a === 'arm64') return 'aarch64';
  throw new TsrunError('EINVAL_FLAG', `seccomp: tsrun has no syscall table for the ${a} architecture; run with --security-opt seccomp=unconfined`);
}
