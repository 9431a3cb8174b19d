// Seccomp for tsrun: which profile a container gets (`--security-opt seccomp=...`,
// `--privileged`), the profile resolved for its capabilities into the OCI spec (create), and
// that compiled to BPF for the helper's `seccomp` step (start, exec).
//
//   profile (docker JSON) ──resolveProfile(caps, arch, kernel)──▶ spec.linux.seccomp (OCI)
//   spec.linux.seccomp ──compileFilter(arch)──▶ sock_filter[] ──hex──▶ plan step `seccomp <hex>`
import { TsrunError } from '../errors.js';
import { hostArch, type NativeArch } from './arch.js';
import { compileFilter, filterHex, type CompiledFilter } from './compile.js';
import { DEFAULT_PROFILE, DEFAULT_PROFILE_SOURCE } from './default-profile.js';
import { parseProfile } from './profile.js';
import { resolveProfile } from './resolve.js';
import type { OciSeccomp, SeccompOption } from './types.js';

export { DEFAULT_PROFILE, DEFAULT_PROFILE_SOURCE } from './default-profile.js';
export { compileFilter, filterHex, actionValue, RET, type CompiledFilter } from './compile.js';
export { parseProfile, checkProfile } from './profile.js';
export { resolveProfile, kernelAtLeast } from './resolve.js';
export { hostArch, type NativeArch } from './arch.js';
export type { OciSeccomp, SeccompOption, SeccompProfile } from './types.js';

/**
 * The value of `--security-opt seccomp=<v>` (or `seccomp:<v>`): `unconfined`, `builtin` /
 * `default` (the default profile), or the path of a profile in docker's JSON format, read and
 * checked now (like docker, the container keeps the profile, not the path).
 */
export function parseSeccompOpt(value: string, readFile: (path: string) => string): SeccompOption {
  if (value === 'unconfined') return { mode: 'unconfined' };
  if (value === 'builtin' || value === 'default') return { mode: 'default' };
  if (value === '') {
    throw new TsrunError('EINVAL_FLAG', 'invalid argument "seccomp=" for "--security-opt" flag: expected seccomp=unconfined or seccomp=/path/profile.json');
  }
  let text: string;
  try {
    text = readFile(value);
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new TsrunError('EINVAL_FLAG', `invalid argument "seccomp=${value}" for "--security-opt" flag: cannot read the profile ${value}: ${why}`, { cause: err });
  }
  return { mode: 'profile', path: value, profile: parseProfile(text, value) };
}

/**
 * The container's `linux.seccomp` (undefined: no filter). `--privileged` and `unconfined` turn
 * seccomp off, as in docker; otherwise the profile is resolved for the bounding set.
 */
export function ociSeccompFor(
  option: SeccompOption | undefined,
  privileged: boolean,
  bounding: readonly string[],
  arch: NativeArch = hostArch(),
): OciSeccomp | undefined {
  if (privileged || option?.mode === 'unconfined') return undefined;
  const profile = option?.mode === 'profile' ? option.profile : DEFAULT_PROFILE;
  return resolveProfile(profile, { bounding, arch });
}

/** The `seccomp` step's argument: the filter for this host's architecture, as hex. */
export function seccompStepArg(seccomp: OciSeccomp, arch: NativeArch = hostArch()): string {
  return filterHex(compiled(seccomp, arch));
}

/** Each filter compiled once per process: a start compiles it for the plan, then describes it
 * for the container's state (what inspect shows, without loading this module). */
const compiledFilters = new WeakMap<OciSeccomp, Map<NativeArch, CompiledFilter>>();

function compiled(seccomp: OciSeccomp, arch: NativeArch): CompiledFilter {
  let byArch = compiledFilters.get(seccomp);
  if (!byArch) compiledFilters.set(seccomp, (byArch = new Map()));
  let filter = byArch.get(arch);
  if (!filter) byArch.set(arch, (filter = compileFilter(seccomp, arch)));
  return filter;
}

/** inspect's `Tsrun.Seccomp` (PascalCase like the rest of inspect). */
export interface SeccompDescription {
  /** "default" (the builtin profile), "unconfined", or "profile" (a file's). */
  Mode: 'default' | 'unconfined' | 'profile';
  /** Where the rules come from: the builtin profile's origin, or the file's path. */
  Profile: string;
  /** Instructions of the BPF program (0 when unconfined). */
  Instructions: number;
  /** The ABIs it lets in (SCMP_ARCH_*); a syscall made with any other is killed. */
  Architectures: string[];
}

/** For `inspect`: what seccomp does in this container. */
export function describeSeccomp(
  option: SeccompOption | undefined,
  privileged: boolean,
  seccomp: OciSeccomp | undefined,
  arch?: NativeArch,
): SeccompDescription {
  if (!seccomp) return { Mode: 'unconfined', Profile: privileged ? 'none (--privileged)' : 'none', Instructions: 0, Architectures: [] };
  let filter: CompiledFilter | undefined;
  try {
    filter = compiled(seccomp, arch ?? hostArch());
  } catch {
    // described, not run: an uncompilable filter shows 0 instructions
  }
  return {
    Mode: option?.mode === 'profile' ? 'profile' : 'default',
    Profile: option?.mode === 'profile' ? option.path : DEFAULT_PROFILE_SOURCE,
    Instructions: filter?.program.length ?? 0,
    Architectures: filter?.abis ?? [],
  };
}

export { seccompSecurityOpt } from './security-opt.js';
