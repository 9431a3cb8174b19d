// What `run` guarantees against a hostile image, container or flag (issue 13): no mount in
// /proc or /sys, however it is asked for (a flag, or a symlink in the image that leads a volume
// there); read-only binds read-only all the way down; no line injected into resolv.conf or
// /etc/hosts; the caller's terminal never open inside a container; and the helper binary out
// of reach of a container that gets hold of its /proc/<pid>/exe (CVE-2019-5736).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describePrivileged, repoRoot, TestEnv, type Result } from './helpers/env.js';
import { loadBusybox } from './helpers/images.js';
import { MASKED_PATHS } from '../../src/namespaces/defaults.js';

describePrivileged('run against hostile images, containers and flags', () => {
  let env: TestEnv;
  let image: string;
  let evilDir: string;
  const ok = (r: Result): string => {
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    return r.stdout;
  };
  const containers = () => fs.readdirSync(join(env.root, 'containers')).filter((n) => !n.startsWith('.')).length;

  beforeAll(() => {
    env = new TestEnv('hostile-run');
    image = loadBusybox(env);
    // issue 13's second escape: fd/3 ... fd/12 leading to a host directory, mounted at /proc/self.
    evilDir = fs.mkdtempSync(join(env.root, 'evilproc-'));
    fs.mkdirSync(join(evilDir, 'fd'));
    for (let i = 3; i <= 12; i++) fs.symlinkSync('/home', join(evilDir, 'fd', String(i)));
    // An image that leads a mount at /data into /proc with a symlink.
    ok(env.run(['run', '--name', 'mklink', image, 'ln', '-s', '/proc/self', '/data']));
    ok(env.run(['commit', 'mklink', 'evil:proclink']));
    ok(env.run(['rm', 'mklink']));
  });
  afterAll(() => env.cleanup());

  it('refuses -v, --mount, --tmpfs and --device in /proc and /sys before making anything', () => {
    const before = containers();
    const cases: Array<[string[], RegExp]> = [
      [['-v', `${evilDir}:/proc/self`], /"--volume" flag: cannot mount on \/proc\/self: \/proc belongs to the kernel/],
      [['-v', 'procvol:/proc/./self/'], /cannot mount on \/proc\/self: \/proc belongs to the kernel/],
      [['--mount', `type=bind,source=${evilDir},target=/proc/sys`], /"--mount" flag: cannot mount on \/proc\/sys/],
      [['--tmpfs', '/sys/kernel'], /"--tmpfs" flag: cannot mount on \/sys\/kernel: \/sys belongs to the kernel/],
      [['--device', '/dev/null:/proc/sysrq-trigger'], /\/proc\/sysrq-trigger is in \/proc, which belongs to the kernel/],
    ];
    for (const [flags, message] of cases) {
      const r = env.run(['run', '--rm', ...flags, image, 'true']);
      expect(r.status, flags.join(' ')).toBe(125);
      expect(r.stderr).toMatch(message);
    }
    expect(containers()).toBe(before);
    expect(env.run(['volume', 'ls', '-q']).stdout).not.toContain('procvol');
  });

  it('refuses a volume that a symlink in the image leads into /proc, and the container does not start', () => {
    for (const v of [`${evilDir}:/data`, 'linkedvol:/data']) {
      const r = env.run(['run', '--rm', '-v', v, 'evil:proclink', 'cat', '/proc/1/mountinfo']);
      expect(r.status, v).toBe(125);
      expect(r.stderr).toMatch(/mount on \/data: it leads into \/proc, where nothing may be mounted/);
      expect(r.stdout).toBe('');
    }
    expect(env.run(['volume', 'rm', 'linkedvol']).status).toBe(0);
  });

  it('masks and read-only paths hold: /proc/sys is read-only, every masked path that exists is empty', () => {
    const present = MASKED_PATHS.filter((p) => fs.existsSync(p));
    expect(present.length).toBeGreaterThan(2);
    const show = present.map((p) => `if [ -d ${p} ]; then echo ${p}:$(ls -A ${p} | wc -l); else echo ${p}:$(wc -c < ${p}); fi`).join('; ');
    const out = ok(env.run(['run', '--rm', image, 'sh', '-c', `(echo 1 > /proc/sys/kernel/core_pattern) 2>/dev/null || echo refused; grep -c " /proc/sys ro," /proc/self/mountinfo; ${show}`]));
    expect(out.trim().split('\n')).toEqual(['refused', '1', ...present.map((p) => `${p}:0`)]);
  });

  it('makes a read-only bind read-only all the way down: -v /:/host:ro leaves no submount writable', () => {
    const marker = `tsrun-hostile-${process.pid}`;
    const paths = ['/host/dev/shm', '/host/run', '/host/sys/fs/cgroup', '/host/proc/sys/kernel'];
    const script = paths.map((p) => `touch ${p}/${marker} 2>/dev/null && echo ${p}:written || echo ${p}:refused`).join('; ');
    const out = ok(env.run(['run', '--rm', '-v', '/:/host:ro', image, 'sh', '-c', `${script}; grep -c " /host[^ ]* rw," /proc/self/mountinfo || true`]));
    const lines = out.trim().split('\n');
    expect(lines.slice(0, paths.length)).toEqual(paths.map((p) => `${p}:refused`));
    expect(lines.at(-1)).toBe('0');
    for (const p of ['/dev/shm', '/run']) expect(fs.existsSync(join(p, marker)), p).toBe(false);
  });

  it('refuses --dns, --dns-search, --dns-option and --network-alias values that would add lines', () => {
    const cases: Array<[string, string, RegExp]> = [
      ['--dns', '1.1.1.1\nnameserver 6.6.6.6', /for "--dns" flag: not an IP address/],
      ['--dns', 'dns.example', /for "--dns" flag: not an IP address/],
      ['--dns-search', 'corp.example\nnameserver 6.6.6.6', /for "--dns-search" flag: not a domain name/],
      ['--dns-option', 'ndots:1\nnameserver 6.6.6.6', /for "--dns-option" flag: not a resolv.conf option/],
      ['--network-alias', 'db\n6.6.6.6 bank.example', /for "--network-alias" flag: not a valid host name/],
    ];
    for (const [flag, value, message] of cases) {
      const r = env.run(['run', '--rm', flag, value, image, 'cat', '/etc/resolv.conf']);
      expect(r.status, flag).toBe(125);
      expect(r.stderr).toMatch(message);
    }
    const good = ok(env.run(['run', '--rm', '--dns', '192.0.2.53', '--dns-search', 'corp.example', '--dns-option', 'ndots:2', image, 'cat', '/etc/resolv.conf']));
    expect(good).toContain('nameserver 192.0.2.53\nsearch corp.example\noptions ndots:2\n');
  });

  describe('the caller\'s terminal stays the caller\'s', () => {
    const fds = 'for f in 0 1 2; do readlink /proc/self/fd/$f; done';

    it('gives exec, run -i and --log-driver none pipes or /dev/null, never the caller\'s own fds', () => {
      ok(env.run(['run', '-d', '--name', 'term', image, 'sleep', '600']));
      const pipe = /^pipe:\[\d+\]$/;
      const execOut = ok(env.run(['exec', 'term', 'sh', '-c', fds])).trim().split('\n');
      expect(execOut[0]).toBe('/dev/null');
      expect(execOut.slice(1)).toEqual([expect.stringMatching(pipe), expect.stringMatching(pipe)]);
      const execIn = ok(env.run(['exec', '-i', 'term', 'sh', '-c', `${fds}; cat`], { input: 'typed\n' })).trim().split('\n');
      expect(execIn).toEqual([expect.stringMatching(pipe), expect.stringMatching(pipe), expect.stringMatching(pipe), 'typed']);
      for (const flags of [['-i'], ['-i', '--log-driver', 'none'], ['--log-driver', 'none']]) {
        const out = ok(env.run(['run', '--rm', ...flags, image, 'sh', '-c', `${fds}; cat`], { input: 'typed\n' })).trim().split('\n');
        expect(out[0], flags.join(' ')).toMatch(flags.includes('-i') ? pipe : /^\/dev\/null$/);
        expect(out.slice(1, 3)).toEqual([expect.stringMatching(pipe), expect.stringMatching(pipe)]);
        expect(out[3]).toBe(flags.includes('-i') ? 'typed' : undefined);
      }
    });

    it('leaves a process that outlives exec nothing of the terminal to read what is typed next', () => {
      // On a real terminal: exec leaves a process holding its stdin, which reads a line 1.5 s
      // later, after exec has returned and the "user" has typed a secret at the host's prompt.
      const driver = join(repoRoot, 'test', 'integration', 'helpers', 'pty-driver.py');
      const leftover = 'exec 3<&0; (sleep 1.5; read -t 3 line <&3; echo "got:$line" > /tmp/got; readlink /proc/self/fd/3 >> /tmp/got) >/dev/null 2>&1 & echo started';
      const script = [{ wait: 'started' }, { sleep: 0.7 }, { send: 'secret-typed-at-the-host\n' }, { sleep: 3 }];
      const r = spawnSync('python3', [driver, '24', '80', JSON.stringify(script), '--', process.execPath, ...env.args(['exec', '-i', 'term', 'sh', '-c', leftover])], {
        encoding: 'utf8',
        env: { ...process.env, ...env.env },
        timeout: 60_000,
      });
      expect(r.status).toBe(0);
      const got = ok(env.run(['exec', 'term', 'cat', '/tmp/got'])).trim().split('\n');
      expect(got[0]).toBe('got:');
      expect(got[1]).toMatch(/^pipe:\[\d+\]$/);
      ok(env.run(['rm', '-f', 'term']));
    });
  });

  it('a monitor whose tsrun was killed lets go of its stdin: what the user types next never reaches the container', async () => {
    // stdin is a FIFO this test keeps open for writing (as a terminal stays open after tsrun dies).
    const fifo = join(env.root, 'stdin.fifo');
    spawnSync('mkfifo', [fifo]);
    const typing = fs.openSync(fifo, 'r+');
    const child = env.spawn(['run', '-i', '--name', 'orphan', image, 'sh', '-c', 'echo ready; read -t 10 line; echo "got:$line" > /tmp/got; sleep 600'], {
      stdio: [typing, 'pipe', 'pipe'],
    });
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      child.once('exit', () => reject(new Error('tsrun run ended early')));
    });
    try {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      await new Promise((r) => setTimeout(r, 300));
      // Typed after tsrun died: nobody may read it any more (it stays in the FIFO).
      fs.writeSync(typing, 'secret-typed-at-the-host\n');
      await new Promise((r) => setTimeout(r, 1000));
      expect(ok(env.run(['exec', 'orphan', 'cat', '/tmp/got']))).toBe('got:\n');
    } finally {
      env.run(['rm', '-f', 'orphan']);
      fs.closeSync(typing);
    }
  });

  it('names every mount target through the host\'s /proc handle, never the container\'s /proc/self/fd', () => {
    const trace = env.run(['run', '--rm', '--trace', '--network', 'none', '-v', `${evilDir}:/data:ro`, image, 'true']);
    expect(trace.status).toBe(0);
    const mounts = trace.stderr.split('\n').filter((l) => / mount\(/.test(l));
    expect(mounts.length).toBeGreaterThan(10);
    expect(mounts.filter((l) => l.includes('/proc/self/fd/'))).toEqual([]);
    expect(mounts.filter((l) => l.includes('"self/fd/')).length).toBeGreaterThan(10);
    // Each such mount runs with the working directory at the /proc handle the child opened first.
    const procFd = /openat\(AT_FDCWD, "\/proc", O_PATH\|O_DIRECTORY\|O_CLOEXEC\) = (\d+)/.exec(trace.stderr)?.[1];
    expect(procFd).toBeDefined();
    expect(trace.stderr).toContain(`fchdir(${procFd}) = 0`);
  });

  it('runs the helper from a sealed copy: its /proc/<pid>/exe cannot be written, even when no helper runs', () => {
    // A private copy of the helper, so that no other container runs this file.
    const helper = join(env.root, 'tsrun-helper');
    fs.copyFileSync(join(repoRoot, 'native', 'build', 'tsrun-helper'), helper);
    fs.chmodSync(helper, 0o755);
    const sum = () => createHash('sha256').update(fs.readFileSync(helper)).digest('hex');
    const before = sum();
    const helperEnv = { TSRUN_HELPER: helper };
    ok(env.run(['run', '-d', '--name', 'sealed', image, 'sleep', '600'], { env: helperEnv }));
    const pid = Number(ok(env.run(['inspect', '-f', '{{.State.Pid}}', 'sealed'])).trim());
    const monitor = Number(/^PPid:\s+(\d+)$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
    expect(fs.readlinkSync(`/proc/${monitor}/exe`)).toMatch(/^\/memfd:tsrun-helper/);
    // What an attacker in the container would hold: the monitor's exe, opened while it ran.
    const held = fs.openSync(`/proc/${monitor}/exe`, 'r');
    try {
      ok(env.run(['rm', '-f', 'sealed'], { env: helperEnv }));
      expect(spawnSync('pgrep', ['-f', helper]).status).toBe(1); // nothing runs the file now
      let wrote: unknown;
      try {
        const w = fs.openSync(`/proc/self/fd/${held}`, 'r+');
        try {
          fs.writeSync(w, Buffer.from('#!/bin/sh\necho pwned\n'), 0);
        } finally {
          fs.closeSync(w);
        }
      } catch (err) {
        wrote = err;
      }
      expect(wrote).toMatchObject({ code: 'EPERM' });
    } finally {
      fs.closeSync(held);
    }
    expect(sum()).toBe(before);
  });

  it('leaves nothing mounted or running', () => {
    expect(env.leaks()).toEqual([]);
  });
});
