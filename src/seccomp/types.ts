// The two seccomp formats tsrun reads and writes.
//
// - A *profile* is docker's JSON format (moby's profiles/seccomp): rules may depend on the
//   container's capabilities, the architecture and the kernel (`includes`/`excludes`). It is
//   what `--security-opt seccomp=<file>` takes and what DEFAULT_PROFILE is written in.
// - The OCI runtime spec's `linux.seccomp` is the same thing with those conditions resolved
//   for one container (moby's setupSeccomp does exactly this). It is stored in config.json and
//   compiled to classic BPF each time the container starts.

/** SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS, ... (see ACTIONS in compile.ts). */
export type ScmpAction = string;

export interface OciSeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  /** SCMP_CMP_NE, _LT, _LE, _EQ, _GE, _GT, _MASKED_EQ */
  op: string;
}

export interface OciSyscallRule {
  names: string[];
  action: ScmpAction;
  errnoRet?: number;
  args?: OciSeccompArg[];
}

export interface OciSeccomp {
  defaultAction: ScmpAction;
  defaultErrnoRet?: number;
  /** SCMP_ARCH_X86_64, SCMP_ARCH_X86, ...: the ABIs the filter lets in. The native one always is. */
  architectures?: string[];
  syscalls?: OciSyscallRule[];
}

export interface ProfileFilter {
  /** Go's GOARCH-style names as docker writes them: amd64, x86, x32, arm64, arm, ... */
  arches?: string[];
  /** CAP_SYS_ADMIN, ...: all of them (includes) / any of them (excludes) in the bounding set. */
  caps?: string[];
  /** "4.8": the running kernel is at least this version. */
  minKernel?: string;
}

export interface ProfileSyscallRule extends OciSyscallRule {
  comment?: string;
  includes?: ProfileFilter;
  excludes?: ProfileFilter;
}

export interface ProfileArch {
  architecture: string;
  subArchitectures: string[] | null;
}

/** docker's seccomp profile (the `default.json` schema). */
export interface SeccompProfile {
  defaultAction: ScmpAction;
  defaultErrnoRet?: number;
  /** Old form: a flat list of SCMP_ARCH_* (either this or archMap). */
  architectures?: string[];
  archMap?: ProfileArch[];
  syscalls: ProfileSyscallRule[];
}

/** What `--security-opt seccomp=...` chose (kept in the container's options). */
export type SeccompOption =
  | { mode: 'default' }
  | { mode: 'unconfined' }
  | { mode: 'profile'; path: string; profile: SeccompProfile };
