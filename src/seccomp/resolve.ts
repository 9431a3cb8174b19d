// A docker profile → the OCI `linux.seccomp` of one container: what moby's setupSeccomp does.
// Rules whose `includes`/`excludes` do not fit this container are dropped: `caps` are checked
// against the container's *bounding* set (as docker does, so a non-root user gets the same
// filter as root), `arches` against the native architecture's Go name (amd64, arm64) for every
// ABI in the filter, `minKernel` against the running kernel.
import { release } from 'node:os';
import { NATIVE, type NativeArch } from './arch.js';
import type { OciSeccomp, ProfileFilter, SeccompProfile } from './types.js';

export interface ResolveContext {
  /** The container's bounding capability set (CAP_* names). */
  bounding: readonly string[];
  arch: NativeArch;
  /** Kernel release, e.g. "6.1.0-18-amd64" (default: the running kernel). */
  kernel?: string;
}

export function resolveProfile(profile: SeccompProfile, ctx: ResolveContext): OciSeccomp {
  const native = NATIVE[ctx.arch];
  const kernel = ctx.kernel ?? release();
  let architectures: string[] = [];
  if (profile.architectures) architectures = [...profile.architectures];
  else {
    const entry = profile.archMap?.find((a) => a.architecture === native.abi.scmp);
    if (entry) architectures = [entry.architecture, ...(entry.subArchitectures ?? [])];
  }
  const fits = (inc: ProfileFilter | undefined, exc: ProfileFilter | undefined): boolean => {
    if (exc?.arches?.includes(native.goArch)) return false;
    if (exc?.caps?.some((c) => ctx.bounding.includes(c))) return false;
    if (exc?.minKernel && kernelAtLeast(kernel, exc.minKernel)) return false;
    if (inc?.arches && inc.arches.length > 0 && !inc.arches.includes(native.goArch)) return false;
    if (inc?.caps?.some((c) => !ctx.bounding.includes(c))) return false;
    if (inc?.minKernel && !kernelAtLeast(kernel, inc.minKernel)) return false;
    return true;
  };
  const out: OciSeccomp = { defaultAction: profile.defaultAction };
  if (profile.defaultErrnoRet !== undefined) out.defaultErrnoRet = profile.defaultErrnoRet;
  if (architectures.length > 0) out.architectures = architectures;
  out.syscalls = profile.syscalls
    .filter((r) => fits(r.includes, r.excludes))
    .map((r) => ({
      names: r.names,
      action: r.action,
      ...(r.errnoRet !== undefined && { errnoRet: r.errnoRet }),
      ...(r.args && r.args.length > 0 && { args: r.args }),
    }));
  return out;
}

/** "6.1.0-18-amd64" >= "4.8"? Compares major.minor.patch numerically. */
export function kernelAtLeast(kernel: string, min: string): boolean {
  const parse = (v: string) => (/^(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(v) ?? []).slice(1, 4).map((x) => Number(x ?? 0));
  const a = parse(kernel);
  const b = parse(min);
  for (let i = 0; i < 3; i++) {
    if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  }
  return true;
}
