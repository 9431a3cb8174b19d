// The default seccomp profile, seen from inside real containers: what busybox can show (mount,
// unshare, /proc/self/status) and what it cannot, through a tiny static probe compiled here
// (keyring, io_uring, clone flags, AF_VSOCK, the x32 ABI and i386 `int 0x80`). Needs root.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePrivileged, TestEnv, type Result } from './helpers/env.js';
import { loadBusybox } from './helpers/images.js';

// One line per probe: "<name> ok" or "<name> <ERRNO>". A probe killed by the filter never prints.
const PROBE_C = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <linux/io_uring.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static void report(const char *name, long r)
{
	printf("%s %s\n", name, r < 0 ? strerrorname_np(errno) : "ok");
	fflush(stdout);
}

/* i386 ABI from a 64-bit process: int 0x80 takes i386 numbers and arguments. */
static long int80(long nr, long a, long b)
{
#ifdef __x86_64__
	long r;
	__asm__ volatile("int $0x80" : "=a"(r) : "a"(nr), "b"(a), "c"(b) : "memory");
	if (r < 0 && r > -4096) { errno = (int)-r; return -1; }
	return r;
#else
	(void)nr, (void)a, (void)b;
	errno = ENOSYS;
	return -1;
#endif
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *t = argv[i];
		if (!strcmp(t, "keyctl")) report(t, syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */, -3 /* SESSION */, 0));
		else if (!strcmp(t, "add_key")) report(t, syscall(SYS_add_key, "user", "tsrun", "x", 1, -2 /* PROCESS */));
		else if (!strcmp(t, "request_key")) report(t, syscall(SYS_request_key, "user", "tsrun", NULL, 0));
		else if (!strcmp(t, "io_uring_setup")) { struct io_uring_params p; memset(&p, 0, sizeof(p)); report(t, syscall(SYS_io_uring_setup, 1, &p)); }
		else if (!strcmp(t, "userfaultfd")) report(t, syscall(SYS_userfaultfd, 0));
		else if (!strcmp(t, "bpf")) report(t, syscall(SYS_bpf, 0, NULL, 0));
		else if (!strcmp(t, "unshare-user")) report(t, unshare(CLONE_NEWUSER));
		else if (!strcmp(t, "clone-newuser")) {
			long r = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
			if (r == 0) _exit(0);
			report(t, r);
		} else if (!strcmp(t, "clone3")) report(t, syscall(SYS_clone3, NULL, 0));
		else if (!strcmp(t, "personality-query")) report(t, personality(0xffffffff));
		else if (!strcmp(t, "personality-norandom")) report(t, syscall(SYS_personality, ADDR_NO_RANDOMIZE));
		else if (!strcmp(t, "socket-inet")) report(t, socket(AF_INET, SOCK_DGRAM, 0));
		else if (!strcmp(t, "socket-vsock")) report(t, socket(40, SOCK_STREAM, 0));
		else if (!strcmp(t, "socket-vsock-highbits")) report(t, syscall(SYS_socket, 0x100000028L, SOCK_STREAM, 0));
		else if (!strcmp(t, "x32-getpid")) report(t, syscall(0x40000000 | SYS_getpid));
		else if (!strcmp(t, "x32-mkdir")) report(t, syscall(0x40000000 | SYS_mkdir, argv[++i], 0755));
		else if (!strcmp(t, "mkdir")) report(t, mkdir(argv[++i], 0755));
		else if (!strcmp(t, "i386-getpid")) report(t, int80(20, 0, 0));
		else if (!strcmp(t, "i386-mount")) report(t, int80(21, 0, 0));
		else if (!strcmp(t, "i386-keyctl")) report(t, int80(288, 0, -3));
		else { printf("%s unknown-probe\n", t); return 2; }
	}
	return 0;
}
`;

describePrivileged('seccomp', () => {
  let env: TestEnv;
  let image: string;
  let bin: string; // host directory holding the probe, mounted at /probe
  let profiles: string;
  const hasCompiler = spawnSync('gcc', ['--version']).status === 0;
  const x86 = process.arch === 'x64'; // x32 and int 0x80 exist only there

  const run = (...args: string[]): Result => env.run(['run', '--rm', '--network', 'none', ...args]);
  const sh = (script: string, ...flags: string[]): Result => run(...flags, image, 'sh', '-c', script);
  const probe = (tests: string[], ...flags: string[]): Result => run('-v', `${bin}:/probe:ro`, ...flags, image, '/probe/probe', ...tests);
  /** { name: result } from the probe's lines */
  const results = (r: Result) => Object.fromEntries(r.stdout.trim().split('\n').filter(Boolean).map((l) => l.split(' ') as [string, string]));
  const hostProbe = (...tests: string[]) => results({ ...spawnSync(join(bin, 'probe'), tests, { encoding: 'utf8' }), status: 0 } as Result);

  beforeAll(() => {
    env = new TestEnv('seccomp');
    image = loadBusybox(env);
    bin = join(env.root, 'probe-bin');
    profiles = join(env.root, 'profiles');
    mkdirSync(bin);
    mkdirSync(profiles);
    if (hasCompiler) {
      writeFileSync(join(bin, 'probe.c'), PROBE_C);
      execFileSync('gcc', ['-static', '-O1', '-o', join(bin, 'probe'), join(bin, 'probe.c')]);
      chmodSync(join(bin, 'probe'), 0o755);
    }
    writeFileSync(join(profiles, 'deny-mkdir.json'), JSON.stringify({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }],
    }));
    writeFileSync(join(profiles, 'typo.json'), JSON.stringify({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }, { names: ['rmdir'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 1, op: 'SCMP_CMP_EQUAL' }] }],
    }));
  });
  afterAll(() => env.cleanup());

  it('puts a default container in seccomp filter mode, after no_new_privs', () => {
    const r = sh('grep -E "^(Seccomp|Seccomp_filters|NoNewPrivs):" /proc/self/status');
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('NoNewPrivs:\t1\nSeccomp:\t2\nSeccomp_filters:\t1\n');
  });

  it('refuses mount and unshare with EPERM; CAP_SYS_ADMIN or seccomp=unconfined lets the kernel decide', () => {
    const script = 'mkdir -p /mnt; mount -t tmpfs x /mnt 2>&1; echo "mount=$?"; unshare -r true 2>&1; echo "unshare=$?"';
    const confined = sh(script);
    expect(confined.stdout).toMatch(/mount=1/);
    expect(confined.stdout).toMatch(/permission denied|Operation not permitted/);
    expect(confined.stdout).toMatch(/unshare: unshare\(0x10000000\): Operation not permitted\nunshare=1/);

    // docker's profile opens mount, unshare and setns to CAP_SYS_ADMIN
    const admin = sh('mkdir -p /mnt; mount -t tmpfs x /mnt && grep -c " /mnt tmpfs" /proc/mounts; grep Seccomp: /proc/self/status', '--cap-add', 'SYS_ADMIN');
    expect(admin.stdout).toBe('1\nSeccomp:\t2\n');
    const unconfined = sh('mkdir -p /mnt; mount -t tmpfs x /mnt && grep -c " /mnt tmpfs" /proc/mounts; grep Seccomp: /proc/self/status',
      '--security-opt', 'seccomp=unconfined', '--cap-add', 'SYS_ADMIN');
    expect(unconfined.stdout).toBe('1\nSeccomp:\t0\n');
  });

  it.skipIf(!hasCompiler)('refuses the keyring, io_uring, bpf, userfaultfd, namespace clones and AF_VSOCK', () => {
    const tests = ['keyctl', 'add_key', 'request_key', 'io_uring_setup', 'userfaultfd', 'bpf', 'unshare-user', 'clone-newuser',
      'personality-norandom', 'socket-vsock', 'socket-vsock-highbits'];
    const r = probe([...tests, 'clone3', 'personality-query', 'socket-inet']);
    expect(r.stderr).toBe('');
    const got = results(r);
    for (const t of tests) expect(got[t], t).toBe('EPERM');
    expect(got['clone3']).toBe('ENOSYS'); // so that glibc falls back to clone()
    expect(got['personality-query']).toBe('ok');
    expect(got['socket-inet']).toBe('ok');
    // the same probe without the filter reaches the kernel (root in the container may use the keyring)
    const free = results(probe(['keyctl', 'io_uring_setup'], '--security-opt', 'seccomp=unconfined'));
    expect(free['keyctl']).toBe('ok');
    expect(free['io_uring_setup']).not.toBe('EPERM');
  });

  it.skipIf(!hasCompiler || !x86)('kills an x32-ABI syscall instead of letting it around the rules', () => {
    const dir = join(env.root, 'x32-target');
    mkdirSync(dir);
    const deny = ['--security-opt', `seccomp=${join(profiles, 'deny-mkdir.json')}`, '-v', `${dir}:/target`];
    const plain = probe(['mkdir', '/target/native'], ...deny);
    expect(results(plain)['mkdir']).toBe('EPERM');
    // syscall(0x40000000 | __NR_mkdir): same arch token, different number space
    const x32 = probe(['x32-mkdir', '/target/x32'], ...deny);
    expect(x32.status).toBe(128 + 31); // SIGSYS: SECCOMP_RET_KILL_PROCESS
    expect(x32.stdout).toBe('');
    expect(existsSync(join(dir, 'x32'))).toBe(false);
    expect(probe(['x32-getpid']).status).toBe(128 + 31);
  });

  it.skipIf(!hasCompiler || !x86)('reads i386 syscalls (int 0x80) with the i386 numbers, or kills them when the profile has no i386', () => {
    const host = hostProbe('i386-getpid');
    if (host['i386-getpid'] !== 'ok') {
      // A kernel without IA-32 emulation (this VM's): int 0x80 fails on the host, and must
      // fail the same way inside — the filter must never make it work.
      expect(results(probe(['i386-getpid']))['i386-getpid']).toBe(host['i386-getpid']);
      return;
    }
    const got = results(probe(['i386-getpid', 'i386-mount', 'i386-keyctl']));
    expect(got).toEqual({ 'i386-getpid': 'ok', 'i386-mount': 'EPERM', 'i386-keyctl': 'EPERM' });
    // a profile without archMap lets only the native ABI in
    const custom = probe(['i386-getpid'], '--security-opt', `seccomp=${join(profiles, 'deny-mkdir.json')}`);
    expect(custom.status).toBe(128 + 31);
  });

  it('a custom profile denying mkdir makes mkdir fail; a broken one is refused, naming the file and the field', () => {
    const file = join(profiles, 'deny-mkdir.json');
    const r = sh('mkdir /tmp/d 2>&1; echo "mkdir=$?"; touch /tmp/f && echo touched', '--security-opt', `seccomp=${file}`);
    expect(r.stdout).toBe("mkdir: can't create directory '/tmp/d': Operation not permitted\nmkdir=1\ntouched\n");
    const typo = sh('true', '--security-opt', `seccomp=${join(profiles, 'typo.json')}`);
    expect(typo.status).toBe(125);
    expect(typo.stderr).toContain(`seccomp profile ${join(profiles, 'typo.json')}: syscalls[1].args[0].op: unknown value "SCMP_CMP_EQUAL"`);
    const missing = sh('true', '--security-opt', 'seccomp=/nonexistent/p.json');
    expect(missing.status).toBe(125);
    expect(missing.stderr).toMatch(/cannot read the profile \/nonexistent\/p\.json: ENOENT/);
  });

  it('filters a non-root user without no_new_privs too (the filter goes in before the capabilities go)', () => {
    const r = sh('grep -E "^(Seccomp|NoNewPrivs):" /proc/self/status; id -u; unshare -r true 2>/dev/null || echo refused',
      '--security-opt', 'no-new-privileges=false', '-u', 'nobody');
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('NoNewPrivs:\t0\nSeccomp:\t2\n65534\nrefused\n');
  });

  it('filters the init process as well (--init)', () => {
    expect(sh('grep Seccomp: /proc/1/status /proc/self/status', '--init').stdout)
      .toBe('/proc/1/status:Seccomp:\t2\n/proc/self/status:Seccomp:\t2\n');
  });

  it('--trace shows the filter being loaded, with its size', () => {
    const r = run('--trace', image, 'true');
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/\[step \d+ seccomp\] prctl\(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, \{len=\d+, filter=\.\.\.\}\) = 0\n +\+\d+\.\dms \[step \d+ exec\] execve\(/);
  });

  it('exec gets the container\'s filter; inspect says which one', () => {
    const t = (...args: string[]) => env.run(args);
    const id = t('run', '-d', '--network', 'none', '--name', 'sc-bg', image, 'sleep', '30').stdout.trim();
    const loose = t('run', '-d', '--network', 'none', '--name', 'sc-loose', '--security-opt', 'seccomp=unconfined', image, 'sleep', '30');
    try {
      expect(id).toMatch(/^[0-9a-f]{64}$/);
      expect(loose.status).toBe(0);
      expect(t('exec', 'sc-bg', 'grep', 'Seccomp:', '/proc/self/status').stdout).toBe('Seccomp:\t2\n');
      const unshare = t('exec', 'sc-bg', 'unshare', '-r', 'true');
      expect(unshare.status).not.toBe(0);
      expect(unshare.stderr).toMatch(/Operation not permitted/);
      expect(t('exec', 'sc-loose', 'grep', 'Seccomp:', '/proc/self/status').stdout).toBe('Seccomp:\t0\n');

      const inspect = (name: string) => JSON.parse(t('inspect', name).stdout)[0];
      const bg = inspect('sc-bg');
      expect(bg.Tsrun.Seccomp).toMatchObject({ Mode: 'default', Architectures: x86 ? ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'] : ['SCMP_ARCH_AARCH64'] });
      expect(bg.Tsrun.Seccomp.Instructions).toBeGreaterThan(100);
      expect(bg.HostConfig.SecurityOpt).toEqual(['no-new-privileges']);
      expect(inspect('sc-loose').Tsrun.Seccomp.Mode).toBe('unconfined');
      expect(inspect('sc-loose').HostConfig.SecurityOpt).toEqual(['no-new-privileges', 'seccomp=unconfined']);
      // What a start recorded (the state's, read without the compiler) is what inspect makes
      // of a container never started: the same filter, described the same.
      expect(t('create', '--network', 'none', '--name', 'sc-created', image, 'true').status).toBe(0);
      const created = inspect('sc-created');
      expect(created.State.Status).toBe('created');
      expect(created.Tsrun.Seccomp).toEqual(bg.Tsrun.Seccomp);
      const state = JSON.parse(readFileSync(join(env.root, 'containers', id, 'state.json'), 'utf8'));
      expect(state.seccomp).toEqual(bg.Tsrun.Seccomp);
    } finally {
      t('rm', '-f', 'sc-bg', 'sc-loose', 'sc-created');
    }
  });

  it('--privileged turns seccomp off', (ctx) => {
    const r = sh('grep Seccomp: /proc/self/status', '--privileged');
    // every capability: a host (or an outer container) without some of them cannot start it
    if (r.status === 125 && /capset|bounding set/.test(r.stderr)) return ctx.skip();
    expect(r.stdout).toBe('Seccomp:\t0\n');
  });
});
