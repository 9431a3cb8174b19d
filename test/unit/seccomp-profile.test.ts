// Seccomp profiles in docker's JSON format: the checks on a user's file (errors name the file
// and the field), `--security-opt seccomp=...`, what a container gets, and `inspect`'s words.
import { describe, expect, it } from 'vitest';
import { ALL_CAPABILITIES, DEFAULT_CAPABILITIES } from '../../src/namespaces/defaults.js';
import { ABIS } from '../../src/seccomp/arch.js';
import {
  DEFAULT_PROFILE,
  checkProfile,
  describeSeccomp,
  kernelAtLeast,
  ociSeccompFor,
  parseProfile,
  parseSeccompOpt,
  resolveProfile,
  seccompSecurityOpt,
  seccompStepArg,
} from '../../src/seccomp/index.js';

const FILE = '/etc/tsrun/p.json';
const bad = (profile: unknown) => () => parseProfile(JSON.stringify(profile), FILE);
const rule = (r: Record<string, unknown>) => ({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW' }, r] });

describe('parseProfile', () => {
  it('reads docker-format profiles, old and new', () => {
    const p = parseProfile(JSON.stringify({
      defaultAction: 'SCMP_ACT_ERRNO',
      defaultErrnoRet: 1,
      architectures: ['SCMP_ARCH_X86_64'],
      syscalls: [
        { name: 'mkdir', action: 'SCMP_ACT_ERRNO', errnoRet: 13 },
        { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 8, op: 'SCMP_CMP_EQ' }], comment: 'x' },
        { names: ['mount'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_ADMIN'], minKernel: '4.8' }, excludes: { arches: ['s390'] } },
      ],
    }), FILE);
    expect(p.syscalls[0]).toEqual({ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 });
    expect(p.syscalls[1]!.args).toEqual([{ index: 0, value: 8, op: 'SCMP_CMP_EQ' }]);
    expect(p.syscalls[2]!.includes).toEqual({ caps: ['CAP_SYS_ADMIN'], minKernel: '4.8' });
  });

  it('accepts its own default profile (a round trip through JSON)', () => {
    expect(checkProfile(JSON.parse(JSON.stringify(DEFAULT_PROFILE)), 'default')).toEqual(DEFAULT_PROFILE);
  });

  it('names the file and the field in every error', () => {
    const cases: Array<[() => unknown, RegExp]> = [
      [() => parseProfile('{"defaultAction": "SCMP_ACT_ERRNO",', FILE), /^seccomp profile \/etc\/tsrun\/p\.json: not valid JSON/],
      [bad([]), /p\.json: expected an object/],
      [bad({ syscalls: [] }), /p\.json: defaultAction: missing/],
      [bad({ defaultAction: 'SCMP_ACT_DENY' }), /p\.json: defaultAction: unknown value "SCMP_ACT_DENY"; expected one of SCMP_ACT_ALLOW/],
      [bad({ defaultAction: 'SCMP_ACT_ERRNO', syscall: [] }), /p\.json: syscall: unknown field/],
      [bad({ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: -1 }), /defaultErrnoRet: expected a non-negative integer/],
      [bad({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: {} }), /p\.json: syscalls: expected an array/],
      [bad(rule({ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' })), /syscalls\[1\]\.action: .*needs a seccomp agent/],
      [bad(rule({ names: ['mkdir'] })), /syscalls\[1\]\.action: missing/],
      [bad(rule({ action: 'SCMP_ACT_ALLOW' })), /syscalls\[1\]\.names: missing/],
      [bad(rule({ name: 'a', names: ['b'], action: 'SCMP_ACT_ALLOW' })), /syscalls\[1\]: both 'name' and 'names'/],
      [bad(rule({ names: ['Mkdir!'], action: 'SCMP_ACT_ALLOW' })), /syscalls\[1\]\.names\[0\]: "Mkdir!" is not valid/],
      [bad(rule({ names: ['mkdir'], action: 'SCMP_ACT_ALLOW', errnoRet: 1 })), /syscalls\[1\]\.errnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE/],
      [bad(rule({ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 5000 })), /syscalls\[1\]\.errnoRet: 5000 is too large/],
      [bad(rule({ names: ['mkdir'], action: 'SCMP_ACT_ALLOW', args: [{ index: 6, value: 1, op: 'SCMP_CMP_EQ' }] })), /syscalls\[1\]\.args\[0\]\.index: 6 is too large \(at most 5/],
      [bad(rule({ names: ['mkdir'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 1, op: '==' }] })), /syscalls\[1\]\.args\[0\]\.op: unknown value "=="/],
      [bad(rule({ names: ['mkdir'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 2 ** 60, op: 'SCMP_CMP_EQ' }] })), /args\[0\]\.value: .* is too large .*JSON doubles/],
      [bad(rule({ names: ['mkdir'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 1, op: 'SCMP_CMP_EQ', value2: 3 }] })), /args\[0\]\.value2: unknown field/],
      [bad(rule({ names: ['mkdir'], action: 'SCMP_ACT_ALLOW', includes: { minKernel: 'new' } })), /syscalls\[1\]\.includes\.minKernel: expected a version/],
      [bad(rule({ names: ['mkdir'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['SYS_ADMIN'] } })), /includes\.caps\[0\]: "SYS_ADMIN" is not valid/],
      [bad({ defaultAction: 'SCMP_ACT_ERRNO', architectures: ['SCMP_ARCH_X86_64'], archMap: [] }), /archMap: both 'architectures' and 'archMap'/],
      [bad({ defaultAction: 'SCMP_ACT_ERRNO', archMap: [{ architecture: 'x86_64' }] }), /archMap\[0\]\.architecture: expected SCMP_ARCH_/],
      [bad({ defaultAction: 'SCMP_ACT_ERRNO', flags: ['SECCOMP_FILTER_FLAG_LOG'] }), /flags: seccomp filter flags are not supported/],
      [bad({ defaultAction: 'SCMP_ACT_ERRNO', listenerPath: '/run/agent.sock' }), /listenerPath: seccomp notification agents/],
    ];
    for (const [fn, message] of cases) {
      expect(fn, String(message)).toThrow(message);
      try {
        fn();
      } catch (err) {
        expect((err as { code?: string }).code).toBe('EINVAL_FLAG');
        expect((err as Error).message).toContain(FILE);
      }
    }
  });

  it('every syscall name in the default profile is a real one (a typo would silently allow nothing)', () => {
    const otherArches = ['recv', 'send', 'riscv_hwprobe', 'riscv_flush_icache', 'sync_file_range2', 'swapcontext', 'arm_fadvise64_64',
      'arm_sync_file_range', 'breakpoint', 'cacheflush', 'set_tls', 's390_pci_mmio_read', 's390_pci_mmio_write', 's390_runtime_instr'];
    const names = new Set(DEFAULT_PROFILE.syscalls.flatMap((r) => r.names));
    const unknown = [...names].filter((n) => !Object.values(ABIS).some((a) => n in a.table) && !otherArches.includes(n));
    expect(unknown).toEqual([]);
    // the allow list, as docker's minus the keyring (and no io_uring)
    const allowAll = DEFAULT_PROFILE.syscalls[0]!.names;
    expect(allowAll.length).toBe(361);
    for (const n of ['keyctl', 'add_key', 'request_key', 'io_uring_setup', 'io_uring_enter', 'io_uring_register', 'userfaultfd']) {
      expect(names.has(n), n).toBe(false);
    }
  });
});

describe('--security-opt seccomp=...', () => {
  const files: Record<string, string> = {
    '/p/deny-mkdir.json': JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO' }] }),
    '/p/broken.json': '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOPE"}]}',
  };
  const readFile = (p: string) => {
    if (!(p in files)) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${p}'`), { code: 'ENOENT' });
    return files[p]!;
  };

  it('unconfined, builtin, or a profile file read and checked at once', () => {
    expect(parseSeccompOpt('unconfined', readFile)).toEqual({ mode: 'unconfined' });
    expect(parseSeccompOpt('builtin', readFile)).toEqual({ mode: 'default' });
    const custom = parseSeccompOpt('/p/deny-mkdir.json', readFile);
    expect(custom.mode).toBe('profile');
    expect(custom.mode === 'profile' && custom.profile.syscalls[0]!.names).toEqual(['mkdir', 'mkdirat']);
  });

  it('says which file could not be read, and what is wrong in it', () => {
    expect(() => parseSeccompOpt('/p/missing.json', readFile)).toThrow(
      'invalid argument "seccomp=/p/missing.json" for "--security-opt" flag: cannot read the profile /p/missing.json: ENOENT',
    );
    expect(() => parseSeccompOpt('/p/broken.json', readFile)).toThrow(/seccomp profile \/p\/broken\.json: syscalls\[0\]\.action: unknown value "SCMP_ACT_NOPE"/);
    expect(() => parseSeccompOpt('', readFile)).toThrow(/expected seccomp=unconfined or seccomp=\/path/);
  });
});

describe('what a container gets', () => {
  const caps = [...DEFAULT_CAPABILITIES];

  it('--privileged and seccomp=unconfined: no filter; otherwise the profile for its caps', () => {
    expect(ociSeccompFor(undefined, true, [...ALL_CAPABILITIES], 'x86_64')).toBeUndefined();
    expect(ociSeccompFor({ mode: 'unconfined' }, false, caps, 'x86_64')).toBeUndefined();
    const def = ociSeccompFor(undefined, false, caps, 'x86_64')!;
    expect(def.defaultAction).toBe('SCMP_ACT_ERRNO');
    expect(def.architectures).toEqual(['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
    const names = new Set(def.syscalls!.flatMap((r) => r.names));
    expect(names.has('mount')).toBe(false); // the CAP_SYS_ADMIN rule was left out
    expect(names.has('chroot')).toBe(true); // CAP_SYS_CHROOT is a default capability
    expect(def.syscalls!.some((r) => 'includes' in r || 'excludes' in r)).toBe(false); // OCI: resolved
    const admin = ociSeccompFor(undefined, false, [...caps, 'CAP_SYS_ADMIN'], 'x86_64')!;
    expect(admin.syscalls!.flatMap((r) => r.names)).toContain('mount');
    expect(admin.syscalls!.filter((r) => r.names.includes('clone3'))).toEqual([{ names: expect.arrayContaining(['clone3']), action: 'SCMP_ACT_ALLOW' }]);
  });

  it('a custom profile without archMap lets only the native ABI in', () => {
    const opt = parseSeccompOpt('/x.json', () => JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }] }));
    const oci = ociSeccompFor(opt, false, caps, 'x86_64')!;
    expect(oci.architectures).toBeUndefined();
    expect(describeSeccomp(opt, false, oci, 'x86_64')).toEqual({ Mode: 'profile', Profile: '/x.json', Instructions: 11, Architectures: ['SCMP_ARCH_X86_64'] });
  });

  it('the seccomp step argument is the hex of the filter', () => {
    const hex = seccompStepArg(ociSeccompFor(undefined, false, caps, 'x86_64')!, 'x86_64');
    expect(hex).toMatch(/^([0-9a-f]{16})+$/);
    expect(hex.length / 16).toBe(254);
  });

  it('inspect: the mode, the profile and the size of the filter', () => {
    const def = ociSeccompFor(undefined, false, caps, 'x86_64');
    expect(describeSeccomp(undefined, false, def, 'x86_64')).toMatchObject({ Mode: 'default', Instructions: 254, Architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'] });
    expect(describeSeccomp(undefined, false, def, 'x86_64').Profile).toMatch(/^builtin: docker 28/);
    expect(describeSeccomp({ mode: 'unconfined' }, false, undefined)).toEqual({ Mode: 'unconfined', Profile: 'none', Instructions: 0, Architectures: [] });
    expect(describeSeccomp(undefined, true, undefined).Profile).toBe('none (--privileged)');
    expect(seccompSecurityOpt({ mode: 'unconfined' })).toEqual(['seccomp=unconfined']);
    expect(seccompSecurityOpt(undefined)).toEqual([]);
  });

  it('kernel versions compare numerically', () => {
    expect(kernelAtLeast('6.1.0-18-amd64', '4.8')).toBe(true);
    expect(kernelAtLeast('4.10.0', '4.8')).toBe(true);
    expect(kernelAtLeast('4.4.0-210-generic', '4.8')).toBe(false);
    expect(kernelAtLeast('4.8', '4.8')).toBe(true);
  });

  it('resolves arches against the native architecture, for every ABI of the filter', () => {
    const oci = resolveProfile(DEFAULT_PROFILE, { bounding: DEFAULT_CAPABILITIES, arch: 'aarch64' });
    const names = new Set(oci.syscalls!.flatMap((r) => r.names));
    expect(names.has('arch_prctl')).toBe(false); // amd64, x32 only
    expect(names.has('cacheflush')).toBe(true); // arm, arm64
    expect(oci.architectures).toEqual(['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
  });
});
