// `tsrun run` observed from inside real containers: namespaces, mounts, capabilities, the
// process settings, exit codes, signals and a real TTY. Needs root and a real kernel.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readlinkSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePrivileged, repoRoot, TestEnv, type Result } from './helpers/env.js';
import { loadBusybox } from './helpers/images.js';

describePrivileged('tsrun run', () => {
  let env: TestEnv;
  let image: string;
  const run = (...args: string[]): Result => env.run(['run', '--rm', ...args]);
  const sh = (script: string, ...flags: string[]): Result => run(...flags, image, 'sh', '-c', script);
  const ok = (r: Result): string => {
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    return r.stdout;
  };

  beforeAll(() => {
    env = new TestEnv('run');
    image = loadBusybox(env);
  });
  afterAll(() => env.cleanup());

  it('runs the command as PID 1 of a new PID namespace', () => {
    expect(ok(sh('echo $$')).trim()).toBe('1');
  });

  it('has its own hostname: the short ID by default, or --hostname', () => {
    expect(ok(sh('hostname')).trim()).toMatch(/^[0-9a-f]{12}$/);
    expect(ok(sh('hostname; cat /etc/hostname', '--hostname', 'box1')).split('\n').slice(0, 2)).toEqual(['box1', 'box1']);
  });

  it('lives in namespaces of its own, or the host\'s with the host options', () => {
    const kinds = ['cgroup', 'ipc', 'mnt', 'net', 'pid', 'uts'];
    const host = Object.fromEntries(kinds.map((k) => [k, readlinkSync(`/proc/self/ns/${k}`)]));
    const script = kinds.map((k) => `readlink /proc/self/ns/${k}`).join('; ');
    const inside = ok(sh(script)).trim().split('\n');
    kinds.forEach((k, i) => expect(inside[i], k).not.toBe(host[k]));
    const shared = ok(sh(script, '--pid', 'host', '--ipc', 'host', '--uts', 'host', '--network', 'host')).trim().split('\n');
    kinds.forEach((k, i) => {
      if (['ipc', 'net', 'pid', 'uts'].includes(k)) expect(shared[i], k).toBe(host[k]);
      else expect(shared[i], k).not.toBe(host[k]);
    });
  });

  it('has only a loopback interface, and it is up, with --network none', () => {
    const out = ok(sh('ls /sys/class/net; cat /sys/class/net/lo/flags', '--network', 'none'));
    expect(out.trim().split('\n')).toEqual(['lo', '0x9']); // IFF_UP | IFF_LOOPBACK
  });

  it("has docker's 14 capabilities, none inheritable or ambient, and no_new_privs", () => {
    const status = ok(sh('cat /proc/self/status'));
    const field = (name: string) => new RegExp(`^${name}:\\s*(\\S+)$`, 'm').exec(status)?.[1];
    expect(field('CapEff')).toBe('00000000a80425fb');
    expect(field('CapBnd')).toBe('00000000a80425fb');
    expect(field('CapInh')).toBe('0000000000000000');
    expect(field('CapAmb')).toBe('0000000000000000');
    expect(field('NoNewPrivs')).toBe('1');
    const relaxed = ok(sh('grep NoNewPrivs /proc/self/status', '--security-opt', 'no-new-privileges=false'));
    expect(relaxed).toMatch(/NoNewPrivs:\s+0/);
    const added = ok(sh('grep CapEff /proc/self/status', '--cap-add', 'NET_ADMIN', '--cap-drop', 'chown'));
    expect(added).toMatch(/CapEff:\s+00000000a80435fa/);
  });

  it('a non-root user has no effective capabilities', () => {
    const out = ok(sh('id -u; id -g; grep CapEff /proc/self/status', '-u', 'nobody'));
    expect(out).toMatch(/^65534\n65534\nCapEff:\s+0000000000000000\n$/);
    expect(ok(sh('id -u; id -g', '-u', '1234:99'))).toBe('1234\n99\n');
  });

  it('masks kernel files and makes /proc/sys read-only', () => {
    // Only what this kernel has: /proc/kcore, for one, is absent from some kernels.
    const files = ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/proc/sched_debug'].filter((p) => existsSync(p));
    const dirs = ['/sys/firmware', '/proc/acpi', '/proc/scsi'].filter((p) => existsSync(p));
    expect(files.length + dirs.length).toBeGreaterThan(1);
    const script = [...files.map((f) => `wc -c < ${f}`), ...dirs.map((d) => `ls -A ${d} | wc -l`)].join('; ');
    const out = ok(sh(`${script}; (echo 1 > /proc/sys/kernel/domainname) 2>/dev/null && echo WROTE || echo REFUSED`));
    expect(out.trim().split('\n').map((l) => l.trim())).toEqual([...files.map(() => '0'), ...dirs.map(() => '0'), 'REFUSED']);
  });

  it('has a fresh /dev with only the standard nodes, a private devpts, shm and mqueue', () => {
    const out = ok(sh('ls /dev | sort | tr "\\n" " "; echo; readlink /dev/ptmx; grep -E " /dev/(pts|shm|mqueue) " /proc/self/mountinfo | wc -l; ls /dev/pts'));
    const [listing, ptmx, mounts] = out.split('\n');
    expect(listing!.trim().split(' ')).toEqual(
      ['fd', 'full', 'mqueue', 'null', 'ptmx', 'pts', 'random', 'shm', 'stderr', 'stdin', 'stdout', 'tty', 'urandom', 'zero'],
    );
    expect(ptmx).toBe('pts/ptmx');
    expect(mounts).toBe('3');
    expect(ok(sh('echo x > /dev/null && head -c 4 /dev/zero | wc -c')).trim()).toBe('4');
  });

  it('sees / as an overlay, and its mounts stay invisible to the host', async () => {
    const child = env.spawn(['run', '--rm', image, 'sh', '-c', 'grep " / " /proc/self/mountinfo; sleep 2']);
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    for (let i = 0; i < 100 && !out.includes('\n'); i++) await new Promise((r) => setTimeout(r, 50));
    expect(out).toMatch(/ - overlay overlay /);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(env.root);
    await new Promise((r) => child.on('exit', r));
  });

  it('honours the image Cmd, and --entrypoint, -e, --env-file, -w', () => {
    expect(ok(env.run(['run', '--rm', image, 'echo', 'a', 'b']))).toBe('a b\n');
    expect(ok(env.run(['run', '--rm', '--entrypoint', 'echo', image, 'from', 'entrypoint']))).toBe('from entrypoint\n');
    const envFile = join(env.root, 'env.list');
    writeFileSync(envFile, '# comment\nFROM_FILE=yes\nSHARED=file\n');
    const out = ok(sh('echo $FOO $FROM_FILE $SHARED $HOME; pwd', '-e', 'FOO=bar', '--env-file', envFile, '-e', 'SHARED=flag', '-w', '/tmp/work'));
    expect(out).toBe('bar yes flag /root\n/tmp/work\n');
  });

  it('binds volumes (read-write and :ro), mounts --tmpfs, and honours --read-only', () => {
    const dir = join(env.root, 'vol');
    mkdirSync(dir);
    writeFileSync(join(dir, 'in.txt'), 'from host\n');
    expect(ok(sh('cat /data/in.txt; echo out > /data/out.txt', '-v', `${dir}:/data`))).toBe('from host\n');
    expect(readFileSync(join(dir, 'out.txt'), 'utf8')).toBe('out\n');
    const ro = sh('echo x > /data/x 2>/dev/null && echo WROTE || echo REFUSED', '-v', `${dir}:/data:ro`);
    expect(ro.stdout).toBe('REFUSED\n');
    expect(existsSync(join(dir, 'x'))).toBe(false);
    expect(ok(sh('grep " /scratch " /proc/self/mountinfo | grep -c tmpfs', '--tmpfs', '/scratch:size=1m'))).toBe('1\n');
    const readOnly = sh('touch /newfile 2>/dev/null && echo WROTE || echo REFUSED; touch /scratch/f && echo TMPFS-OK', '--read-only', '--tmpfs', '/scratch');
    expect(readOnly.stdout).toBe('REFUSED\nTMPFS-OK\n');
  });

  it('returns the exit status, and docker\'s 125/126/127 and 128+n', () => {
    expect(sh('exit 3').status).toBe(3);
    const notFound = run(image, 'no-such-command');
    expect(notFound.status).toBe(127);
    expect(notFound.stderr).toContain('exec: "no-such-command": executable file not found in $PATH');
    const notExec = run(image, '/etc/passwd');
    expect(notExec.status).toBe(126);
    expect(notExec.stderr).toContain('permission denied');
    // Outside a PID namespace the shell is not PID 1, so it can die of its own SIGKILL.
    expect(sh('kill -9 $$', '--pid', 'host').status).toBe(137);
    const badFlag = env.run(['run', '--rm', '--ulimit', 'nofile=abc', image, 'true']);
    expect(badFlag.status).toBe(125);
    expect(badFlag.stderr).toContain('"--ulimit"');
    const noImage = env.run(['run', '--rm', '--pull', 'never', 'no-such-image:1', 'true']);
    expect(noImage.status).toBe(125);
    expect(noImage.stderr).toMatch(/no such image/i);
  });

  it('applies --ulimit, and never asks for more than the host allows', () => {
    const hostHard = Number(execFileSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim());
    const out = ok(sh('ulimit -n; ulimit -Hn'));
    const expected = Math.min(1048576, hostHard);
    expect(out).toBe(`${expected}\n${expected}\n`);
    expect(ok(sh('ulimit -n; ulimit -Hn', '--ulimit', 'nofile=100:200'))).toBe('100\n200\n');
  });

  it('forwards SIGTERM to the container', async () => {
    const child = env.spawn(['run', '--rm', image, 'sh', '-c', 'trap "echo got-TERM; exit 42" TERM; echo ready; while :; do sleep 0.1; done']);
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    for (let i = 0; i < 100 && !out.includes('ready'); i++) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGTERM');
    const code = await new Promise((r) => child.on('exit', r));
    expect(out).toContain('got-TERM');
    expect(code).toBe(42);
  });

  it('ends a container whose output nobody reads any more, as a shell pipeline would', () => {
    // `yes | head -1`: without this the monitor dropped yes's output forever and tsrun never returned.
    const pipeline = (flags: string) =>
      spawnSync('bash', ['-c', `"$@" ${flags} ${image} yes | head -1; echo "status \${PIPESTATUS[0]}"`, 'pipeline', process.execPath, ...env.args(['run', '--rm', '--network', 'none'])], {
        encoding: 'utf8',
        env: { ...process.env, ...env.env },
        timeout: 30_000,
      });
    // Under --init, SIGPIPE kills yes (128+13); as PID 1 the kernel spares it, and busybox's yes
    // sees EPIPE and exits 1 (docker's PID 1 does the same).
    expect(pipeline('--init')).toMatchObject({ status: 0, stdout: 'y\nstatus 141\n' });
    expect(pipeline('')).toMatchObject({ status: 0, stdout: 'y\nstatus 1\n' });
    // With -t the monitor hangs up the terminal instead: yes gets SIGHUP (128+1) or, if it
    // writes first, EIO (1). Before, it ran on.
    const tty = pipeline('-t --init');
    expect(tty.status).toBe(0);
    expect(tty.stdout).toMatch(/^y\r\nstatus (129|1)\n$/); // a terminal ends lines with \r\n
    expect(env.run(['ps', '-aq']).stdout).toBe('');
  });

  it("keeps docker's device policy: any node may be made, only the standard ones opened (all with --privileged)", () => {
    // /dev/loop-control (10:237): harmless to open, outside the allowlist. Before the policy,
    // CAP_MKNOD let the container's root make and open any node, the host's disk (b 8:0) too.
    const script = 'mknod /tmp/lc c 10 237 && echo made; head -c 0 /tmp/lc; echo x > /dev/null && echo null-ok; mknod /tmp/z c 1 5 && head -c 3 /tmp/z | wc -c';
    const confined = sh(script);
    expect(confined.stdout).toBe('made\nnull-ok\n3\n');
    expect(confined.stderr).toBe('head: /tmp/lc: Operation not permitted\n');
    const privileged = sh(script, '--privileged');
    expect(privileged.stdout).toMatch(/^made\nnull-ok\n3\n$/);
    expect(privileged.stderr).not.toContain('Operation not permitted');
    // cgroup v1's devices controller gets the same list (the BPF program needs cgroup2).
    if (existsSync('/sys/fs/cgroup/devices/devices.list')) {
      const list = ok(sh('cat /sys/fs/cgroup/devices/devices.list')).split('\n');
      expect(list).toEqual(expect.arrayContaining(['c *:* m', 'b *:* m', 'c 1:3 rwm', 'c 136:* rwm']));
      expect(list).not.toContain('a *:* rwm');
      expect(ok(sh('cat /sys/fs/cgroup/devices/devices.list', '--privileged'))).toBe('a *:* rwm\n');
    }
  });

  it('--device makes a host device in the container with its mode and owner, usable as asked; --device-cgroup-rule allows one', () => {
    // The test's own node for /dev/loop-control (10:237), with a mode and group to carry over.
    const node = join(env.root, 'loop-control');
    execFileSync('mknod', ['-m', '640', node, 'c', '10', '237']);
    execFileSync('chown', ['0:5', node]);
    expect(ok(sh('stat -c "%A %u %g %t:%T" /dev/lc; head -c 0 /dev/lc && echo read-ok', '--device', `${node}:/dev/lc`))).toBe('crw-r----- 0 5 a:ed\nread-ok\n');
    // Read only: opening it to write is refused by the device cgroup.
    const ro = sh('head -c 0 /dev/lc && echo read-ok; echo x > /dev/lc', '--device', `${node}:/dev/lc:r`);
    expect(ro.stdout).toBe('read-ok\n');
    expect(ro.stderr).toMatch(/can't create \/dev\/lc: Operation not permitted/);
    // A directory: every node in it, below the container path.
    const dir = join(env.root, 'devdir');
    mkdirSync(join(dir, 'sub'), { recursive: true });
    execFileSync('mknod', [join(dir, 'sub', 'zero'), 'c', '1', '5']);
    expect(ok(sh('head -c 2 /dev/mine/sub/zero | wc -c', '--device', `${dir}:/dev/mine`)).trim()).toBe('2');
    // A node the container makes itself: refused, unless a rule allows its numbers.
    const make = 'mknod /tmp/lc c 10 237 && head -c 0 /tmp/lc && echo opened';
    expect(sh(make).stderr).toBe('head: /tmp/lc: Operation not permitted\n');
    expect(ok(sh(make, '--device-cgroup-rule', 'c 10:* r'))).toBe('opened\n');
    // Many rules, each as long as a rule gets in the BPF program (type, access, major, minor).
    const many = Array.from({ length: 40 }, (_, i) => ['--device-cgroup-rule', `c 13:${i} r`]).flat();
    expect(ok(sh(make, ...many, '--device-cgroup-rule', 'c 10:237 r'))).toBe('opened\n');
    // start finds the host's node again: its numbers may have changed since create.
    const ctr = env.run(['create', '--device', `${node}:/dev/lc`, image, 'stat', '-c', '%t:%T', '/dev/lc']);
    expect(ctr.status).toBe(0);
    execFileSync('rm', [node]);
    execFileSync('mknod', [node, 'c', '1', '5']);
    const started = env.run(['start', '-a', ctr.stdout.trim()]);
    expect(started.stdout).toBe('1:5\n');
    expect(env.run(['rm', ctr.stdout.trim()]).status).toBe(0);
    // --privileged: the host's devices too, at the same paths (but its console and ptmx: the
    // container has its own).
    const hostNodes = readdirSync('/dev', { withFileTypes: true })
      .filter((e) => (e.isCharacterDevice() || e.isBlockDevice()) && e.name !== 'console' && e.name !== 'ptmx')
      .map((e) => e.name);
    expect(ok(sh('ls /dev', '--privileged')).split('\n')).toEqual(expect.arrayContaining(hostNodes));
    expect(ok(sh('readlink /dev/ptmx', '--privileged'))).toBe('pts/ptmx\n');
    const standard = ['null', 'zero', 'full', 'random', 'urandom', 'tty'];
    expect(ok(sh('ls /dev')).split('\n').filter((n) => hostNodes.includes(n)).sort()).toEqual(standard.filter((n) => hostNodes.includes(n)).sort());
    // Bad input: engine errors (125) naming the flag, nothing created.
    const missing = run('--device', '/dev/tsrun-no-such-device', image, 'true');
    expect(missing.status).toBe(125);
    expect(missing.stderr).toContain('--device /dev/tsrun-no-such-device: no such device on this host');
    const own = run('--device', '/dev/null:/dev/ptmx', image, 'true');
    expect(own.status).toBe(125);
    expect(own.stderr).toContain("/dev/ptmx is the container's own");
    const badRule = run('--device-cgroup-rule', 'c 10 rw', image, 'true');
    expect(badRule.status).toBe(125);
    expect(badRule.stderr).toContain('--device-cgroup-rule');
    expect(env.run(['ps', '-aq']).stdout).toBe('');
  });

  it('--init runs a reaping PID 1 and the command under it', () => {
    const out = ok(sh('echo $$; cat /proc/1/comm; (sleep 0.1 &); sleep 0.5; ps -o stat | grep -c "^Z" || true', '--init'));
    const [pid, init, zombies] = out.trim().split('\n');
    expect(Number(pid)).toBeGreaterThan(1);
    expect(init).toBe('tsrun-init');
    expect(zombies).toBe('0');
  });

  it('gives -t a real terminal: raw mode, window size, resize and Ctrl-C', () => {
    const driver = join(repoRoot, 'test', 'integration', 'helpers', 'pty-driver.py');
    const script = [
      { wait: '$ ' },
      { send: 'tty; stty size\r' },
      { wait: '30 100' },
      { resize: [40, 120] },
      { sleep: 0.3 },
      { send: 'stty size\r' },
      { wait: '40 120' },
      { send: 'trap "echo caught-INT" INT; sleep 5\r' },
      { sleep: 0.5 },
      { send: '\x03' },
      { wait: 'caught-INT' },
      { send: 'exit 5\r' },
    ];
    const r = spawnSync('python3', [driver, '30', '100', JSON.stringify(script), '--', ...[process.execPath, ...env.args(['run', '--rm', '-it', '-e', 'PS1=$ ', image, 'sh'])]], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.stdout).toContain('/dev/pts/0');
    expect(r.stdout).toContain('30 100');
    expect(r.stdout).toContain('40 120');
    expect(r.stdout).toContain('caught-INT');
    expect(r.status).toBe(5);
  });

  it('--rm removes the container; without it the container stays on disk', () => {
    const before = readdirSync(join(env.root, 'containers')).length;
    ok(sh('true'));
    expect(readdirSync(join(env.root, 'containers')).length).toBe(before);
    expect(env.run(['run', image, 'true']).status).toBe(0);
    expect(readdirSync(join(env.root, 'containers')).length).toBe(before + 1);
  });

  it('leaves nothing mounted or running', () => {
    expect(env.leaks()).toEqual([]);
  });
});
