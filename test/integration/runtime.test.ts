// tsrun-runtime, runc's command line, judged by the clients that drive runc: its own lifecycle
// on hand-made bundles (as runc's users and conformance checks do), then podman 4.3 with
// `--runtime` (through conmon) and containerd 1.6 with `ctr run --runc-binary` (through its
// runc shim), each with private storage, state and cgroups, removed and checked gone after.
import { execFileSync, spawnSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, openSync, symlinkSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Podman } from './helpers/buildah.js';
import { describePrivileged, repoRoot, type Result } from './helpers/env.js';
import { findLeaks } from '../leaks.js';

const RUNTIME = join(repoRoot, 'dist', 'tsrun-runtime.cjs');
/** The command clients run: start, kill and delete in C, the rest handed to RUNTIME. */
const FRONT = join(repoRoot, 'native', 'build', 'tsrun-runtime');
const PTY = join(repoRoot, 'test', 'integration', 'helpers', 'pty-driver.py');
const CONSOLE = join(repoRoot, 'test', 'integration', 'helpers', 'console-receiver.py');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every cgroup directory under /<name> in every hierarchy, deepest first, removed. */
function removeCgroupTree(name: string): string[] {
  const problems: string[] = [];
  for (const hierarchy of readdirSync('/sys/fs/cgroup')) {
    const top = join('/sys/fs/cgroup', hierarchy, name);
    if (!existsSync(top)) continue;
    for (const d of execFileSync('find', [top, '-depth', '-type', 'd'], { encoding: 'utf8' }).split('\n').filter(Boolean)) {
      try {
        rmdirSync(d);
      } catch (err) {
        problems.push(`cgroup ${d}: ${(err as Error).message}`);
      }
    }
  }
  return problems;
}

function cgroupDirs(name: string): string[] {
  return readdirSync('/sys/fs/cgroup').map((h) => join('/sys/fs/cgroup', h, name)).filter((d) => existsSync(d));
}

/** The memory limit file of a cgroup, on whichever layout this host has. */
function memoryLimitFile(cgroup: string): string {
  const v1 = join('/sys/fs/cgroup/memory', cgroup, 'memory.limit_in_bytes');
  return existsSync('/sys/fs/cgroup/memory') ? v1 : join('/sys/fs/cgroup', cgroup, 'memory.max');
}

describePrivileged('tsrun-runtime', () => {
  let dir: string;
  let rootfs: string;
  let stateRoot: string;
  /** This file's cgroup parent: every bundle's cgroupsPath is under it. */
  const cgroupParent = `tsrun-test-rt-${process.pid}`;
  let n = 0;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tsrun-test-rt-'));
    // a container's root in a user namespace is a host uid that must reach the rootfs
    chmodSync(dir, 0o755);
    stateRoot = join(dir, 'state');
    rootfs = join(dir, 'rootfs');
    mkdirSync(join(rootfs, 'bin'), { recursive: true });
    execFileSync('cp', ['/bin/busybox', join(rootfs, 'bin', 'busybox')]);
    for (const applet of execFileSync('/bin/busybox', ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => a && a !== 'busybox')) {
      symlinkSync('busybox', join(rootfs, 'bin', applet));
    }
    for (const d of ['proc', 'sys', 'dev', 'tmp', 'etc', 'out']) mkdirSync(join(rootfs, d), { recursive: true });
    writeFileSync(join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
  });

  afterAll(() => {
    // What a failed test left running goes first (and still fails the file below).
    const left = existsSync(stateRoot) ? readdirSync(stateRoot) : [];
    for (const id of left) rt(['delete', '--force', id]);
    const problems = removeCgroupTree(cgroupParent);
    rmSync(dir, { recursive: true, force: true });
    expect(problems).toEqual([]);
    expect(left).toEqual([]);
    expect(findLeaks({ root: dir, cgroupParent })).toEqual([]);
  });

  /**
   * tsrun-runtime ARGS. Its stdio are files: as with runc, a container it starts keeps them (and
   * would keep pipes open, and spawnSync waiting, for as long as it runs).
   */
  function rt(args: string[], input = ''): Result {
    const out = join(dir, 'rt.out');
    const err = join(dir, 'rt.err');
    const fds = [openSync(out, 'w'), openSync(err, 'w')];
    try {
      const r = spawnSync(process.execPath, [RUNTIME, '--root', stateRoot, ...args], { input, stdio: ['pipe', fds[0]!, fds[1]!], timeout: 30_000 });
      return { status: r.status, stdout: readFileSync(out, 'utf8'), stderr: readFileSync(err, 'utf8') };
    } finally {
      for (const fd of fds) closeSync(fd);
    }
  }

  /** runc's `spec`, made to run `args` without a terminal, changed by `patch`; returns the bundle dir. */
  function bundle(args: string[], patch: (spec: Record<string, any>) => void = () => {}): { dir: string; id: string; out: string } {
    const id = `c${++n}`;
    const b = join(dir, 'bundles', id);
    const out = join(b, 'out');
    mkdirSync(out, { recursive: true });
    const made = rt(['spec', '--bundle', b]);
    expect(made.status, made.stderr).toBe(0);
    const spec = JSON.parse(readFileSync(join(b, 'config.json'), 'utf8'));
    spec.root.path = rootfs;
    spec.process.terminal = false;
    spec.process.args = args;
    spec.linux.cgroupsPath = `/${cgroupParent}/${id}`;
    spec.mounts.push({ destination: '/out', type: 'bind', source: out, options: ['rbind', 'rw'] });
    patch(spec);
    writeFileSync(join(b, 'config.json'), JSON.stringify(spec));
    return { dir: b, id, out };
  }

  async function waitFor(what: string, check: () => boolean, ms = 5000): Promise<void> {
    for (const end = Date.now() + ms; Date.now() < end; await sleep(25)) if (check()) return;
    throw new Error(`timed out waiting for ${what}`);
  }

  const status = (id: string) => JSON.parse(rt(['state', id]).stdout || '{}').status as string | undefined;

  it('run: the process gets the caller\'s stdio and its exit status is the command\'s', () => {
    const b = bundle(['sh', '-c', 'echo out; echo err >&2; exit 3']);
    const r = rt(['run', '--bundle', b.dir, b.id]);
    expect(r.status).toBe(3);
    expect(r.stdout).toBe('out\n');
    expect(r.stderr).toBe('err\n');
    // run deletes what it made
    expect(existsSync(join(stateRoot, b.id))).toBe(false);
    expect(cgroupDirs(join(cgroupParent, b.id))).toEqual([]);
    // unless told to keep it
    const k = bundle(['true']);
    expect(rt(['run', '--keep', '--bundle', k.dir, k.id]).status).toBe(0);
    expect(status(k.id)).toBe('stopped');
    expect(rt(['delete', k.id]).status).toBe(0);
  });

  it('create waits for start; state, ps, pause, resume, kill and delete follow the kernel', async () => {
    const b = bundle(['sh', '-c', 'touch /out/started; exec sleep 1000']);
    const pidFile = join(b.dir, 'init.pid');
    const c = rt(['create', '--bundle', b.dir, '--pid-file', pidFile, b.id]);
    expect(c.status, c.stderr).toBe(0);
    // containerd's shim parses the pid file with Atoi: digits only.
    const pidText = readFileSync(pidFile, 'utf8');
    expect(pidText).toMatch(/^\d+$/);
    const pid = Number(pidText);
    const st = JSON.parse(rt(['state', b.id]).stdout);
    expect(st).toMatchObject({ id: b.id, pid, status: 'created', bundle: b.dir, ociVersion: expect.any(String) });
    expect(existsSync(`/proc/${pid}`)).toBe(true);
    await sleep(200);
    expect(existsSync(join(b.out, 'started'))).toBe(false);
    // the process is in its cgroup before it runs anything
    expect(readFileSync(`/proc/${pid}/cgroup`, 'utf8')).toContain(`/${cgroupParent}/${b.id}`);

    expect(rt(['start', b.id]).status).toBe(0);
    await waitFor('the program to run', () => existsSync(join(b.out, 'started')));
    expect(status(b.id)).toBe('running');
    expect(rt(['start', b.id]).stderr).toMatch(/cannot start a container that is running/);
    expect(JSON.parse(rt(['ps', '--format', 'json', b.id]).stdout)).toEqual([pid]);
    expect(rt(['ps', b.id]).stdout).toMatch(/sleep 1000/);

    expect(rt(['pause', b.id]).status).toBe(0);
    expect(status(b.id)).toBe('paused');
    expect(readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(/State:\s+[DS]/);
    expect(rt(['delete', b.id]).stderr).toMatch(/not stopped: paused/);
    expect(rt(['resume', b.id]).status).toBe(0);
    expect(status(b.id)).toBe('running');

    const list = JSON.parse(rt(['list', '--format', 'json']).stdout) as Array<{ id: string; status: string }>;
    expect(list.find((x) => x.id === b.id)?.status).toBe('running');

    expect(rt(['kill', b.id, 'KILL']).status).toBe(0);
    await waitFor('the container to stop', () => status(b.id) === 'stopped');
    expect(rt(['kill', b.id, '9']).stderr).toMatch(/container not running/);
    expect(rt(['delete', b.id]).status).toBe(0);
    expect(rt(['state', b.id]).stderr).toMatch(/does not exist/);
    expect(cgroupDirs(join(cgroupParent, b.id))).toEqual([]);
    // as containerd's cleanup expects: a second delete --force is not an error
    expect(rt(['delete', '--force', b.id]).status).toBe(0);
  });

  it('delete of a created container kills its waiting process; delete --force of a running one', async () => {
    const a = bundle(['sleep', '1000']);
    expect(rt(['create', '--bundle', a.dir, '--pid-file', join(a.dir, 'pid'), a.id]).status).toBe(0);
    const pid = Number(readFileSync(join(a.dir, 'pid'), 'utf8'));
    expect(rt(['delete', a.id]).status).toBe(0);
    await waitFor('the created process to die', () => !existsSync(`/proc/${pid}`) || readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z'));
    const b = bundle(['sleep', '1000']);
    expect(rt(['run', '-d', '--bundle', b.dir, b.id]).status).toBe(0);
    expect(rt(['delete', b.id]).stderr).toMatch(/cannot delete container .* that is not stopped: running/);
    expect(rt(['delete', '--force', b.id]).status).toBe(0);
    expect(existsSync(join(stateRoot, b.id))).toBe(false);
  });

  it('start, kill and delete go through the C front without Node; anything else is handed to Node', async () => {
    // Without Node on PATH the front can only succeed where it needs none.
    const front = (args: string[], path = '/nonexistent') => {
      const r = spawnSync(FRONT, ['--root', stateRoot, ...args], { encoding: 'utf8', env: { PATH: path }, stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
      return { status: r.status, stderr: r.stderr };
    };
    const b = bundle(['sh', '-c', 'touch /out/started; exec sleep 1000']);
    expect(rt(['create', '--bundle', b.dir, b.id]).status).toBe(0);
    expect(front(['kill', b.id, 'KILL']).status).not.toBe(0); // created: the slow path's (kills nothing)
    expect(front(['start', b.id]).status).toBe(0);
    await waitFor('the program to run', () => existsSync(join(b.out, 'started')));
    expect(status(b.id)).toBe('running');
    expect(front(['delete', b.id]).status).not.toBe(0); // running: refused, by Node
    expect(front(['kill', b.id, '9']).status).toBe(0);
    await waitFor('the container to stop', () => status(b.id) === 'stopped');
    expect(front(['delete', b.id]).status).toBe(0);
    expect(existsSync(join(stateRoot, b.id))).toBe(false);
    expect(cgroupDirs(join(cgroupParent, b.id))).toEqual([]);
    expect(front(['delete', '--force', b.id]).status).toBe(0);
    // with Node on PATH, what the front hands over still works, and says why it failed
    const again = front(['delete', b.id], process.env.PATH);
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/container does not exist/);
    // a container with a poststop hook is deleted by Node, which runs the hook
    const h = bundle(['true'], (s) => (s.hooks = { poststop: [{ path: '/bin/sh', args: ['sh', '-c', `touch ${join(dir, 'poststop-ran')}`] }] }));
    expect(rt(['run', '-d', '--bundle', h.dir, h.id]).status).toBe(0);
    await waitFor('the container to stop', () => status(h.id) === 'stopped');
    expect(front(['delete', h.id]).status).not.toBe(0);
    expect(front(['delete', h.id], process.env.PATH).status).toBe(0);
    expect(existsSync(join(dir, 'poststop-ran'))).toBe(true);
  });

  it('exec: foreground status, --detach with a pid file, --process, and a missing program', async () => {
    const b = bundle(['sleep', '1000']);
    expect(rt(['run', '-d', '--bundle', b.dir, b.id]).status).toBe(0);
    const fg = rt(['exec', b.id, 'sh', '-c', 'echo in $(hostname) as $(id -u); exit 4']);
    expect(fg.status).toBe(4);
    expect(fg.stdout).toBe('in tsrun as 0\n');
    const pidFile = join(b.dir, 'exec.pid');
    expect(rt(['exec', '--detach', '--pid-file', pidFile, b.id, 'sleep', '30']).status).toBe(0);
    const execPid = Number(readFileSync(pidFile, 'utf8'));
    expect(JSON.parse(rt(['ps', '--format', 'json', b.id]).stdout)).toContain(execPid);
    // --process: an OCI process, as containerd's shim and conmon pass it
    const proc = { terminal: false, user: { uid: 65534, gid: 65534 }, args: ['sh', '-c', 'id -u; pwd; echo $GREETING'], env: ['PATH=/bin', 'GREETING=hi'], cwd: '/tmp', capabilities: { bounding: [], effective: [], permitted: [] } };
    writeFileSync(join(b.dir, 'process.json'), JSON.stringify(proc));
    const p = rt(['exec', '--process', join(b.dir, 'process.json'), b.id]);
    expect(p.status, p.stderr).toBe(0);
    expect(p.stdout).toBe('65534\n/tmp\nhi\n');
    const logFile = join(b.dir, 'log.json');
    const missing = rt(['--log', logFile, '--log-format', 'json', 'exec', b.id, 'nosuch']);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/exec: "nosuch": executable file not found in \$PATH/);
    const last = JSON.parse(readFileSync(logFile, 'utf8').trim().split('\n').at(-1)!);
    expect(last).toMatchObject({ level: 'error', msg: expect.stringMatching(/executable file not found/) });
    expect(rt(['delete', '--force', b.id]).status).toBe(0);
  });

  it('update changes the cgroup and the spec it keeps; events --stats reads it back', () => {
    const b = bundle(['sleep', '1000'], (s) => {
      s.linux.resources.memory = { limit: 64 << 20 };
      s.linux.resources.pids = { limit: 40 };
    });
    expect(rt(['run', '-d', '--bundle', b.dir, b.id]).status).toBe(0);
    const cg = join(cgroupParent, b.id);
    expect(Number(readFileSync(memoryLimitFile(cg), 'utf8'))).toBe(64 << 20);
    const u = rt(['update', '--resources', '-', b.id], JSON.stringify({ memory: { limit: 96 << 20 }, pids: { limit: 33 } }));
    expect(u.status, u.stderr).toBe(0);
    expect(Number(readFileSync(memoryLimitFile(cg), 'utf8'))).toBe(96 << 20);
    expect(rt(['update', '--pids-limit', '44', b.id]).status).toBe(0);
    // containerd's CRI sends the whole linux.resources, device rules included: they stay as they are
    const cri = rt(['update', '--resources', '-', b.id], JSON.stringify({ devices: [{ allow: false, access: 'rwm' }], memory: { limit: 100 << 20 } }));
    expect(cri.status, cri.stderr).toBe(0);
    expect(rt(['update', '--memory', '96m', b.id]).status).toBe(0);
    const kept = JSON.parse(readFileSync(join(stateRoot, b.id, 'config.json'), 'utf8'));
    expect(kept.linux.resources.memory.limit).toBe(96 << 20);
    expect(kept.linux.resources.pids.limit).toBe(44);
    const ev = JSON.parse(rt(['events', '--stats', b.id]).stdout);
    expect(ev).toMatchObject({ type: 'stats', id: b.id, data: { memory: { usage: { limit: 96 << 20 } }, pids: { current: 1 } } });
    expect(rt(['update', '--resources', '-', b.id], '{"memory":{"kernel":1}}').stderr).toMatch(/memory\.kernel: not supported/);
    expect(rt(['delete', '--force', b.id]).status).toBe(0);
  });

  it('create refuses what it does not do by the field\'s path, and leaves nothing behind', () => {
    const cases: Array<[(s: Record<string, any>) => void, RegExp]> = [
      [(s) => (s.linux.intelRdt = { closID: 'x' }), /linux\.intelRdt: not supported/],
      [(s) => (s.process.apparmorProfile = 'docker-default'), /process\.apparmorProfile: not supported/],
      [(s) => (s.hooks = { startContainer: [{ path: '/bin/true' }] }), /hooks\.startContainer: startContainer hooks are not supported/],
      [(s) => s.mounts.push({ destination: '/x', type: 'bind', source: '/tmp', options: ['rbind', 'rshared'] }), /mounts\[\d+\]\.options: "rshared" is not supported/],
      [(s) => (s.linux.namespaces = [...s.linux.namespaces, { type: 'time' }]), /linux\.namespaces\[\d+\]\.type: a time namespace/],
      [(s) => (s.process.user.uid = -1), /process\.user\.uid: must be an integer/],
      [(s) => (s.process.capabilities.bounding = ['CAP_NOPE']), /process\.capabilities\.bounding\[0\]: unknown capability/],
      [(s) => (s.linux.cgroupsPath = 'system.slice:tsrun:x'), /systemd's slice:prefix:name/],
    ];
    for (const [patch, message] of cases) {
      const b = bundle(['true'], patch);
      const log = join(b.dir, 'log.json');
      const r = rt(['--log', log, '--log-format', 'json', 'create', '--bundle', b.dir, b.id]);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(message);
      // podman reads the log as one JSON object; containerd takes its last error line
      expect(JSON.parse(readFileSync(log, 'utf8'))).toMatchObject({ level: 'error', msg: expect.stringMatching(message) });
      expect(existsSync(join(stateRoot, b.id))).toBe(false);
      expect(cgroupDirs(join(cgroupParent, b.id))).toEqual([]);
    }
    // runc's create checks the program: podman maps the message to 127
    const b = bundle(['/nonexistent']);
    const r = rt(['create', '--bundle', b.dir, b.id]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/exec: "\/nonexistent": stat \/nonexistent: no such file or directory/);
    expect(existsSync(join(stateRoot, b.id))).toBe(false);
    expect(cgroupDirs(join(cgroupParent, b.id))).toEqual([]);
    expect(rt(['--systemd-cgroup', 'create', '--bundle', b.dir, b.id]).stderr).toMatch(/--systemd-cgroup is not supported/);
    expect(rt(['checkpoint', b.id]).stderr).toMatch(/checkpoint is not supported/);
  });

  it('applies what features claims: seccomp, masks, read-only paths, rlimits, sysctl, umask, caps, oom score, devices', () => {
    const b = bundle(['sh', '-c', [
      'grep -E "^(Seccomp|NoNewPrivs|CapAmb|CapEff):" /proc/self/status',
      'echo nofile=$(ulimit -n)',
      'echo umask=$(umask)',
      'echo oom=$(cat /proc/self/oom_score_adj)',
      'echo forward=$(cat /proc/sys/net/ipv4/ip_forward)',
      'echo masked=$(wc -c < /proc/timer_list)',
      'echo procsys=$(grep " /proc/sys " /proc/self/mountinfo | cut -d" " -f6)',
      'mkdir /tmp/x 2>/dev/null && echo mkdir=ok || echo mkdir=refused',
      'touch /rootfile 2>/dev/null && echo root=rw || echo root=ro',
      'echo mynull=$(stat -c %t,%T /dev/mynull) && echo hi > /dev/mynull && echo mynull=writable',
      'mknod /tmp/disk b 8 0 2>/dev/null; head -c1 /tmp/disk >/dev/null 2>&1 && echo disk=readable || echo disk=refused',
    ].join('; ')], (s) => {
      s.process.user = { uid: 1000, gid: 1000, umask: 0o77 };
      const caps = ['CAP_NET_BIND_SERVICE', 'CAP_MKNOD'];
      s.process.capabilities = { bounding: caps, effective: caps, permitted: caps, inheritable: caps, ambient: caps };
      s.process.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 123, hard: 123 }];
      s.process.oomScoreAdj = 123;
      s.root.readonly = true;
      s.linux.sysctl = { 'net.ipv4.ip_forward': '1' };
      s.linux.devices = [{ path: '/dev/mynull', type: 'c', major: 1, minor: 3, fileMode: 0o666, uid: 0, gid: 0 }];
      // a /tmp to write in, and no device rules at all: runc's default, every device denied but its floor
      s.mounts.push({ destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'mode=1777'] });
      delete s.linux.resources.devices;
      s.linux.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64'], syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }] };
    });
    const r = rt(['run', '--bundle', b.dir, b.id]);
    expect(r.stderr).toBe('');
    const got = Object.fromEntries(r.stdout.trim().split('\n').map((l) => l.split(/[:=]\s*/, 2) as [string, string]));
    expect(got).toMatchObject({
      Seccomp: '2', NoNewPrivs: '1', nofile: '123', umask: '0077', oom: '123', forward: '1', masked: '0',
      mkdir: 'refused', root: 'ro', mynull: 'writable', disk: 'refused',
    });
    expect(got.procsys).toMatch(/^ro,/);
    // ambient: a non-root user keeps them across execve (bits 10 and 27)
    expect(BigInt(`0x${got.CapAmb}`)).toBe((1n << 10n) | (1n << 27n));
    expect(BigInt(`0x${got.CapEff}`)).toBe((1n << 10n) | (1n << 27n));
  });

  it('--preserve-fds passes the caller\'s fds 3.. on to the container, and nothing else', () => {
    const b = bundle(['sh', '-c', 'cat <&3; cat <&4; ls /proc/self/fd | tr "\\n" " "']);
    const passed = [join(dir, 'fd3'), join(dir, 'fd4')];
    writeFileSync(passed[0]!, 'three\n');
    writeFileSync(passed[1]!, 'four\n');
    const out = join(dir, 'pf.out');
    const fds = [openSync(out, 'w'), openSync(passed[0]!, 'r'), openSync(passed[1]!, 'r'), openSync('/etc/hostname', 'r')];
    try {
      // the caller's fd 5 is not passed: only 3 and 4 are asked for
      // through the C front, which tells Node which fds were the caller's (the first Node on PATH runs the rest)
      const r = spawnSync(FRONT, ['--root', stateRoot, 'run', '--preserve-fds', '2', '--bundle', b.dir, b.id], { stdio: ['ignore', fds[0]!, 'pipe', fds[1]!, fds[2]!, fds[3]!], encoding: 'utf8', timeout: 30_000 });
      expect(r.status, r.stderr).toBe(0);
    } finally {
      for (const fd of fds) closeSync(fd);
    }
    const [three, four, list] = readFileSync(out, 'utf8').split('\n');
    expect([three, four]).toEqual(['three', 'four']);
    // 0-2, the two passed on, and 5: ls's own of /proc/self/fd (the caller's 5 would have pushed
    // it to 6); nothing of the runtime's or the helper's
    expect(list!.trim()).toBe('0 1 2 3 4 5');
    // fds the caller did not pass: Node's own are there, and never go in
    const missing = spawnSync(FRONT, ['--root', stateRoot, 'run', '--preserve-fds', '9', '--bundle', b.dir, b.id], { encoding: 'utf8', timeout: 30_000 });
    expect(missing.stderr).toMatch(/--preserve-fds 9: fd 3 was not passed to tsrun-runtime/);
  });

  it('refuses a bundle without a mount namespace of its own (pivot_root would move the host\'s root)', () => {
    const b = bundle(['true'], (s) => (s.linux.namespaces = s.linux.namespaces.filter((n: { type: string }) => n.type !== 'mount')));
    const r = rt(['run', '--bundle', b.dir, b.id]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/needs a new mount namespace/);
    expect(existsSync('/bin/sh')).toBe(true);
  });

  it('kill --all signals what is left in the cgroup, and takes real-time signals', async () => {
    const b = bundle(['sh', '-c', 'trap "echo rt >> /out/got" 37; echo ready > /out/got; while :; do sleep 0.05; done']);
    expect(rt(['run', '-d', '--bundle', b.dir, b.id]).status).toBe(0);
    await waitFor('the trap to be set', () => existsSync(join(b.out, 'got')));
    expect(rt(['kill', b.id, 'RTMIN+3']).status).toBe(0);
    await waitFor('the real-time signal', () => readFileSync(join(b.out, 'got'), 'utf8').includes('rt'));
    expect(rt(['kill', '--all', b.id, '37']).status).toBe(0);
    await waitFor('the second one', () => readFileSync(join(b.out, 'got'), 'utf8').split('rt').length === 3);
    expect(rt(['kill', '--all', b.id, 'KILL']).status).toBe(0);
    await waitFor('the container to stop', () => status(b.id) === 'stopped');
    // stopped: --all still signals (nothing is left), without --all runc's error
    expect(rt(['kill', '--all', b.id, 'KILL']).status).toBe(0);
    expect(rt(['kill', b.id, 'KILL']).stderr).toMatch(/container not running/);
    expect(rt(['delete', b.id]).status).toBe(0);
  });

  it('runs the OCI hooks with the state on stdin; a failing createRuntime hook fails create', async () => {
    const hook = (name: string) => ({ path: '/bin/sh', args: ['sh', '-c', `cat > ${join(dir, 'hooks')}/${name}.json`] });
    mkdirSync(join(dir, 'hooks'), { recursive: true });
    // createRuntime: the runtime spec's moment, the container's mounts made and pivot_root not yet
    const mounts = join(dir, 'hooks', 'mounts-at-createRuntime');
    const createRuntime = {
      path: '/bin/sh',
      args: ['sh', '-c', `read -r state; echo "$state" > ${join(dir, 'hooks')}/createRuntime.json; pid=$(echo "$state" | sed -E 's/.*"pid":([0-9]+).*/\\1/'); grep " ${rootfs}/proc " /proc/$pid/mountinfo > ${mounts}; true`],
    };
    const b = bundle(['sleep', '1000'], (s) => {
      s.hooks = { createRuntime: [createRuntime], poststart: [hook('poststart')], poststop: [hook('poststop')] };
    });
    expect(rt(['create', '--bundle', b.dir, b.id]).status).toBe(0);
    const created = JSON.parse(readFileSync(join(dir, 'hooks', 'createRuntime.json'), 'utf8'));
    expect(created).toMatchObject({ id: b.id, status: 'creating', bundle: b.dir, pid: expect.any(Number) });
    expect(readFileSync(mounts, 'utf8')).toMatch(/ proc /);
    expect(existsSync(join(dir, 'hooks', 'poststart.json'))).toBe(false);
    expect(rt(['start', b.id]).status).toBe(0);
    expect(JSON.parse(readFileSync(join(dir, 'hooks', 'poststart.json'), 'utf8'))).toMatchObject({ id: b.id, status: 'running', pid: created.pid });
    expect(rt(['delete', '--force', b.id]).status).toBe(0);
    expect(JSON.parse(readFileSync(join(dir, 'hooks', 'poststop.json'), 'utf8'))).toMatchObject({ id: b.id, status: 'stopped' });

    const bad = bundle(['true'], (s) => {
      s.hooks = { createRuntime: [{ path: '/bin/sh', args: ['sh', '-c', 'echo no network for you >&2; exit 2'] }], poststop: [hook('poststop-after-failure')] };
    });
    const r = rt(['create', '--bundle', bad.dir, bad.id]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/createRuntime hook \/bin\/sh failed \(exit status 2\): no network for you/);
    // and its poststop hooks ran, as runc's destroy runs them
    expect(JSON.parse(readFileSync(join(dir, 'hooks', 'poststop-after-failure.json'), 'utf8'))).toMatchObject({ id: bad.id, status: 'stopped' });
    expect(existsSync(join(stateRoot, bad.id))).toBe(false);
    expect(cgroupDirs(join(cgroupParent, bad.id))).toEqual([]);
  });

  it('sends the terminal to --console-socket as runc does', () => {
    const b = bundle(['sh'], (s) => {
      s.process.terminal = true;
    });
    const sock = join(dir, `console-${b.id}.sock`);
    const create = `${process.execPath} ${RUNTIME} --root ${stateRoot}`;
    const r = spawnSync('python3', [CONSOLE, sock, 'tty; echo $((6*7)); exit\n', '--', 'sh', '-c', `${create} create --bundle ${b.dir} --console-socket ${sock} ${b.id} && ${create} start ${b.id}`], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/name: \/dev\/pts\/\d+/);
    expect(r.stdout).toMatch(/\/dev\/pts\/0/);
    expect(r.stdout).toMatch(/42/);
    expect(rt(['delete', '--force', b.id]).status).toBe(0);
    // a terminal needs somewhere to go
    const c = bundle(['sh'], (s) => (s.process.terminal = true));
    expect(rt(['create', '--bundle', c.dir, c.id]).stderr).toMatch(/console socket/);
  });

  it('joins a namespace given by path, and maps users in a new user namespace', () => {
    const ns = `tsrun-test-rt-${process.pid}`;
    execFileSync('ip', ['netns', 'add', ns]);
    try {
      execFileSync('ip', ['-n', ns, 'link', 'add', 'rtdummy0', 'type', 'veth', 'peer', 'name', 'rtdummy1']);
      const b = bundle(['ip', '-o', 'link', 'show'], (s) => {
        s.linux.namespaces = s.linux.namespaces.map((x: { type: string }) => (x.type === 'network' ? { type: 'network', path: `/run/netns/${ns}` } : x));
      });
      const r = rt(['run', '--bundle', b.dir, b.id]);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/rtdummy0/);
    } finally {
      execFileSync('ip', ['netns', 'delete', ns]);
    }
    const u = bundle(['sh', '-c', 'id -u; cat /proc/self/uid_map; stat -c %u /bin/busybox'], (s) => {
      s.linux.namespaces.push({ type: 'user' });
      s.linux.uidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
      s.linux.gidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
      s.mounts = s.mounts.filter((m: { destination: string }) => m.destination !== '/sys/fs/cgroup');
    });
    const r = rt(['run', '--bundle', u.dir, u.id]);
    expect(r.status, r.stderr).toBe(0);
    const [uid, map, owner] = r.stdout.trim().split('\n');
    expect(uid).toBe('0');
    expect(map!.trim().split(/\s+/)).toEqual(['0', '200000', '65536']);
    // the rootfs is the host's root's, which this namespace does not map
    expect(owner).toBe('65534');
  });

  it('features, spec and --version say what callers parse', () => {
    const f = JSON.parse(rt(['features']).stdout);
    expect(f.ociVersionMax).toMatch(/^1\.\d+\.\d+$/);
    expect(f.hooks).toEqual(['prestart', 'createRuntime', 'poststart', 'poststop']);
    expect(f.linux.cgroup).toMatchObject({ v1: true, v2: true, systemd: false });
    expect(f.linux.namespaces).toContain('user');
    const v = rt(['--version']).stdout;
    expect(v).toMatch(/^tsrun-runtime version \d+\.\d+\.\d+\nspec: 1\.\d+\.\d+\n$/);
    expect(rt(['spec', '--bundle', join(dir, 'bundles', 'c1')]).stderr).toMatch(/exists/);
  });

  describePrivileged('podman --runtime tsrun-runtime', () => {
    let podman: Podman;
    let wrapper: string;
    const parent = `tsrun-test-rtp-${process.pid}`;

    beforeAll(async () => {
      // podman passes --log to runtimes it knows: tsrun-runtime is one through containers.conf.
      const bin = join(dir, 'bin');
      mkdirSync(bin, { recursive: true });
      wrapper = join(bin, 'tsrun-runtime');
      writeFileSync(wrapper, `#!/bin/sh\nexec ${FRONT} --root ${join(dir, 'podman-state')} "$@"\n`);
      chmodSync(wrapper, 0o755);
      const conf = join(dir, 'containers.conf');
      writeFileSync(conf, '[engine]\nruntime_supports_json = ["crun", "runc", "tsrun-runtime"]\n');
      podman = new Podman(dir, parent, wrapper, { CONTAINERS_CONF: conf });
      const archive = join(dir, 'bb.tar');
      execFileSync(process.execPath, [join(repoRoot, 'scripts', 'make-busybox-image.mjs'), '--out', archive, '--format', 'docker-archive', '--name', 'bb:latest']);
      const load = await podman.run(['load', '-q', '-i', archive]);
      expect(load.status, load.stderr).toBe(0);
    });

    afterAll(async () => {
      const problems = await podman.cleanup();
      problems.push(...removeCgroupTree(parent));
      const state = join(dir, 'podman-state');
      if (existsSync(state)) problems.push(...readdirSync(state).map((id) => `tsrun-runtime state left: ${id}`));
      expect(problems).toEqual([]);
    });

    const flags = () => ['--network', 'none', `--cgroup-parent=/${parent}`, '--ulimit', 'nofile=20000:20000', '--ulimit', 'nproc=1024:1024'];

    it('run --rm: output, and the exit codes podman users know (0, 3, 127, 126)', async () => {
      const ok = await podman.run(['run', '--rm', ...flags(), 'bb', 'sh', '-c', 'echo hello from $(cat /proc/1/comm)']);
      expect(ok.status, ok.stderr).toBe(0);
      expect(ok.stdout).toBe('hello from sh\n');
      expect((await podman.run(['run', '--rm', ...flags(), 'bb', 'sh', '-c', 'exit 3'])).status).toBe(3);
      const missing = await podman.run(['run', '--rm', ...flags(), 'bb', 'nosuch']);
      expect(missing.status).toBe(127);
      expect(missing.stderr).toMatch(/executable file not found/);
      expect((await podman.run(['run', '--rm', ...flags(), 'bb', '/etc/passwd'])).status).toBe(126);
    });

    it('run -d, exec, logs, pause, limits, kill (137), stop and rm', async () => {
      const d = await podman.run(['run', '-d', '--name', 'rt1', ...flags(), '--memory', '64m', '--pids-limit', '50', 'bb', 'sh', '-c', 'echo to-stdout; echo to-stderr >&2; exec sleep 1000']);
      expect(d.status, d.stderr).toBe(0);
      const e = await podman.run(['exec', 'rt1', 'sh', '-c', 'echo in-exec; exit 7']);
      expect(e.status).toBe(7);
      expect(e.stdout).toBe('in-exec\n');
      expect((await podman.run(['exec', 'rt1', 'nosuch'])).status).toBe(127);
      const logs = await podman.run(['logs', 'rt1']);
      expect(logs.stdout).toBe('to-stdout\n');
      expect(logs.stderr).toBe('to-stderr\n');
      const id = (await podman.run(['inspect', '--format', '{{.Id}}', 'rt1'])).stdout.trim();
      expect(Number(readFileSync(memoryLimitFile(join(parent, `libpod-${id}`)), 'utf8'))).toBe(64 << 20);
      const pids = existsSync('/sys/fs/cgroup/pids') ? join('/sys/fs/cgroup/pids', parent, `libpod-${id}`, 'pids.max') : join('/sys/fs/cgroup', parent, `libpod-${id}`, 'pids.max');
      expect(readFileSync(pids, 'utf8').trim()).toBe('50');
      expect((await podman.run(['pause', 'rt1'])).status).toBe(0);
      expect((await podman.run(['inspect', '--format', '{{.State.Status}}', 'rt1'])).stdout.trim()).toBe('paused');
      expect((await podman.run(['unpause', 'rt1'])).status).toBe(0);
      const state = (await podman.run(['inspect', '--format', '{{.State.Status}} {{.State.Pid}}', 'rt1'])).stdout.trim().split(' ');
      expect(state[0]).toBe('running');
      expect(readFileSync(`/proc/${state[1]}/cmdline`, 'utf8')).toBe('sleep\u00001000\u0000');
      expect((await podman.run(['kill', 'rt1'])).status).toBe(0);
      expect((await podman.run(['wait', 'rt1'])).stdout.trim()).toBe('137');
      expect((await podman.run(['rm', 'rt1'])).status).toBe(0);

      expect((await podman.run(['run', '-d', '--name', 'rt2', ...flags(), 'bb', 'sleep', '1000'])).status).toBe(0);
      expect((await podman.run(['stop', '-t', '1', 'rt2'])).status).toBe(0);
      expect((await podman.run(['inspect', '--format', '{{.State.Status}} {{.State.ExitCode}}', 'rt2'])).stdout.trim()).toBe('exited 137');
      expect((await podman.run(['rm', 'rt2'])).status).toBe(0);
    });

    it('run -it: the terminal goes through conmon\'s console socket', () => {
      const r = spawnSync('python3', [PTY, '24', '80', JSON.stringify([{ wait: '# ' }, { send: 'tty; stty size; exit 5\r' }]), '--', ...podman.argv(['run', '-it', '--rm', ...flags(), 'bb', 'sh'])], {
        encoding: 'utf8',
        timeout: 30_000,
        env: { ...process.env, CONTAINERS_CONF: join(dir, 'containers.conf') },
      });
      expect(r.stdout).toMatch(/\/dev\/pts\/0/);
      expect(r.stdout).toMatch(/24 80/);
      expect(r.status).toBe(5);
    });
  });

  describePrivileged('containerd (ctr run --runc-binary tsrun-runtime)', () => {
    let ctrd: ChildProcess;
    let base: string;
    const ns = `tsrun-test-ctr-${process.pid}`;
    const image = 'docker.io/library/bb:latest';

    const ctr = (args: string[], timeout = 30_000): Result => {
      const r = spawnSync('ctr', ['--address', join(base, 'sock'), '--namespace', ns, ...args], { encoding: 'utf8', timeout });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    };
    const runc = () => ['--runc-binary', join(dir, 'bin', 'tsrun-runtime-ctr')];

    beforeAll(async () => {
      base = mkdtempSync('/tmp/ctd-');
      mkdirSync(join(dir, 'bin'), { recursive: true });
      // the shim passes its own --root (/run/containerd/runc/<namespace>) after ours
      writeFileSync(join(dir, 'bin', 'tsrun-runtime-ctr'), `#!/bin/sh\nexec ${FRONT} "$@"\n`);
      chmodSync(join(dir, 'bin', 'tsrun-runtime-ctr'), 0o755);
      writeFileSync(join(base, 'config.toml'), [
        'version = 2',
        `root = "${base}/root"`,
        `state = "${base}/state"`,
        'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp"]',
        `[grpc]\n  address = "${base}/sock"`,
        `[ttrpc]\n  address = "${base}/sock.ttrpc"`,
        '[debug]\n  address = ""',
        '[metrics]\n  address = ""',
        '[plugins."io.containerd.monitor.v1.cgroups"]\n  no_prometheus = true',
        '',
      ].join('\n'));
      ctrd = spawn('containerd', ['--config', join(base, 'config.toml')], { stdio: ['ignore', 'ignore', 'pipe'] });
      let log = '';
      ctrd.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
      await waitFor(`containerd to listen (${log})`, () => ctr(['version']).status === 0, 15_000);
      const archive = join(dir, 'ctr-bb.tar');
      execFileSync(process.execPath, [join(repoRoot, 'scripts', 'make-busybox-image.mjs'), '--out', archive, '--format', 'docker-archive', '--name', image]);
      const imported = ctr(['image', 'import', archive], 60_000);
      expect(imported.status, imported.stderr).toBe(0);
    });

    afterAll(async () => {
      for (const t of ctr(['task', 'ls', '-q']).stdout.split('\n').filter(Boolean)) {
        ctr(['task', 'kill', '-s', 'SIGKILL', t]);
        await sleep(200);
        ctr(['task', 'delete', t]);
      }
      for (const c of ctr(['container', 'ls', '-q']).stdout.split('\n').filter(Boolean)) ctr(['container', 'delete', c]);
      for (const i of ctr(['image', 'ls', '-q']).stdout.split('\n').filter(Boolean)) ctr(['image', 'rm', i]);
      ctr(['namespace', 'remove', ns]);
      ctrd.kill('SIGTERM');
      await new Promise((r) => ctrd.once('exit', r));
      const problems = removeCgroupTree(ns);
      const shimRoot = join('/run/containerd/runc', ns);
      if (existsSync(shimRoot)) {
        problems.push(...readdirSync(shimRoot).map((id) => `tsrun-runtime state left: ${id}`));
        rmSync(shimRoot, { recursive: true, force: true });
      }
      for (const m of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) if (m.includes(base)) problems.push(`mount: ${m}`);
      rmSync(base, { recursive: true, force: true });
      expect(problems).toEqual([]);
    });

    it('ctr run --rm: output and exit status, with and without -t', () => {
      const r = ctr(['run', '--rm', ...runc(), image, 'r1', 'sh', '-c', 'echo hi; exit 3']);
      expect(r.stdout).toBe('hi\n');
      expect(r.status).toBe(3);
      const missing = ctr(['run', '--rm', ...runc(), image, 'r2', '/nonexistent']);
      expect(missing.status).not.toBe(0);
      expect(missing.stderr).toMatch(/OCI runtime create failed: .*stat \/nonexistent: no such file or directory/);
      const t = spawnSync('python3', [PTY, '24', '80', JSON.stringify([{ wait: '# ' }, { send: 'tty; exit 5\r' }]), '--', 'ctr', '--address', join(base, 'sock'), '--namespace', ns, 'run', '-t', '--rm', ...runc(), image, 'r3', 'sh'], { encoding: 'utf8', timeout: 30_000 });
      expect(t.stdout).toMatch(/\/dev\/pts\/0/);
      expect(t.status).toBe(5);
    });

    it('ctr task exec, ps, pause, metrics, kill and delete', async () => {
      expect(ctr(['run', '-d', ...runc(), image, 'd1', 'sleep', '1000']).status).toBe(0);
      const e = ctr(['task', 'exec', '--exec-id', 'e1', 'd1', 'sh', '-c', 'echo x; exit 6']);
      expect(e.stdout).toBe('x\n');
      expect(e.status).toBe(6);
      const ps = ctr(['task', 'ps', 'd1']);
      expect(ps.stdout).toMatch(/^\s*\d+/m);
      expect(ctr(['task', 'pause', 'd1']).status).toBe(0);
      expect(ctr(['task', 'ls']).stdout).toMatch(/d1\s+\d+\s+PAUSED/);
      expect(ctr(['task', 'resume', 'd1']).status).toBe(0);
      expect(ctr(['task', 'metrics', 'd1']).stdout).toMatch(/pids\.current\s+1/);
      expect(ctr(['task', 'kill', '-s', 'SIGKILL', 'd1']).status).toBe(0);
      await waitFor('the task to stop', () => /d1\s+\d+\s+STOPPED/.test(ctr(['task', 'ls']).stdout));
      const del = ctr(['task', 'delete', 'd1']);
      expect(del.status, del.stderr).toBe(0);
      expect(del.stderr).toMatch(/exit code 137/);
      expect(ctr(['container', 'delete', 'd1']).status).toBe(0);
    });
  });
});
