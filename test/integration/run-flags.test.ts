// More of docker run's flags, seen from inside real containers: labels (and ps --filter label=),
// --mount, --sysctl, --shm-size, --group-add, --stop-signal/--stop-timeout and --cidfile.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePrivileged, TestEnv, type Result } from './helpers/env.js';
import { loadBusybox } from './helpers/images.js';

describePrivileged('docker run flags', () => {
  const env = new TestEnv('flags');
  const dir = mkdtempSync(join(tmpdir(), 'tsrun-test-flags-'));
  let image = '';
  const t = (...args: string[]) => env.run(args);
  const ok = (r: Result): string => {
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    return r.stdout;
  };
  const sh = (script: string, ...flags: string[]) => ok(t('run', '--rm', '--network', 'none', ...flags, image, 'sh', '-c', script));

  beforeAll(() => {
    image = loadBusybox(env);
  });
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await env.cleanup();
  });

  it('labels the container, and ps filters and prints by label', () => {
    writeFileSync(join(dir, 'labels'), '# team labels\nteam=core\n');
    ok(t('create', '--name', 'shop', '-l', 'app=shop', '-l', 'canary', '--label-file', join(dir, 'labels'), image, 'true'));
    ok(t('create', '--name', 'blog', '-l', 'app=blog', image, 'true'));
    expect(JSON.parse(ok(t('inspect', '-f', '{{json .Config.Labels}}', 'shop')))).toEqual({ team: 'core', app: 'shop', canary: '' });
    expect(ok(t('ps', '-a', '--filter', 'label=app=shop', '--format', '{{.Names}}'))).toBe('shop\n');
    expect(ok(t('ps', '-a', '--filter', 'label=app', '--format', '{{.Names}}')).split('\n').filter(Boolean).sort()).toEqual(['blog', 'shop']);
    expect(ok(t('ps', '-a', '--filter', 'label=canary', '--format', '{{.Names}} {{.Labels}}'))).toBe('shop team=core,app=shop,canary=\n');
    expect(ok(t('ps', '-a', '--filter', 'name=shop', '--format', '{{.Label "team"}}/{{.Label "nope"}}'))).toBe('core/\n');
    ok(t('rm', 'shop', 'blog'));
  });

  it('ps filters as docker does: names by regular expression, one value of a key enough, every key needed', () => {
    // The expected names are what docker 20.10 listed for three containers of the same names.
    const web = ok(t('create', '--network', 'none', '--name', 'web', '-l', 'app=shop', '-l', 'team=core', image, 'true')).trim();
    ok(t('create', '--network', 'none', '--name', 'web2', '-l', 'app=blog', image, 'true'));
    ok(t('create', '--network', 'none', '--name', 'db', image, 'true'));
    const names = (...filters: string[]) => ok(t('ps', '-a', ...filters.flatMap((f) => ['--filter', f]), '--format', '{{.Names}}')).split('\n').filter(Boolean).sort().join(' ');
    expect(names('name=web')).toBe('web web2');
    expect(names('name=^web$')).toBe('web');
    expect(names('name=^/web$')).toBe('web'); // docker's names begin with a slash
    expect(names('name=w.b')).toBe('web web2');
    expect(names('name=b$')).toBe('db web');
    expect(names('name=web', 'name=db')).toBe('db web web2');
    expect(names('name=[')).toBe(''); // no valid expression: nothing, as in docker
    expect(names('status=created', 'status=exited')).toBe('db web web2');
    expect(names('status=created', 'name=db')).toBe('db');
    expect(names(`id=${web.slice(0, 5)}`)).toBe('web');
    expect(names(`id=${web.slice(5, 11)}`)).toBe(''); // a prefix, not a pattern
    expect(names(`id=${web}`)).toBe('web');
    expect(names('id=')).toBe(''); // docker's truncindex: an empty prefix names none
    // As docker's CLI reads a filter: key lower-cased, both trimmed; an empty one ignored.
    expect(names(' NAME = ^web$ ')).toBe('web');
    expect(names('')).toBe('db web web2');
    expect(names('name=(?i)^WEB')).toBe('web web2'); // Go's flags
    expect(names('label=constructor')).toBe(''); // no label, whatever objects inherit
    // Labels are the exception: every one must match.
    expect(names('label=app=shop', 'label=team=core')).toBe('web');
    expect(names('label=app=shop', 'label=app=blog')).toBe('');
    expect(t('ps', '--filter', 'status=bogus')).toMatchObject({ status: 125, stdout: '', stderr: expect.stringMatching(/status is one of created, restarting, running, removing, paused, exited, dead/) });
    ok(t('rm', 'web', 'web2', 'db'));
  });

  it('--mount binds and tmpfs mounts as -v and --tmpfs do', () => {
    writeFileSync(join(dir, 'data'), 'host data\n');
    const out = sh('cat /in/data; touch /in/new 2>&1; grep -E " /(in|scratch) " /proc/mounts | cut -d" " -f2-4',
      '--mount', `type=bind,source=${dir},target=/in,readonly`, '--mount', 'type=tmpfs,target=/scratch,tmpfs-size=1m');
    expect(out).toMatch(/^host data\ntouch: \/in\/new: Read-only file system\n/);
    expect(out).toMatch(/\/in ext4 ro|\/in \S+ ro/);
    expect(out).toMatch(/\/scratch tmpfs rw,nosuid,nodev,noexec,relatime,size=1024k/);
    // No source: an anonymous volume, gone with the --rm container.
    const before = t('volume', 'ls', '-q').stdout;
    expect(t('run', '--rm', '--mount', 'type=volume,target=/v', image, 'sh', '-c', 'grep " /v " /proc/mounts | cut -d" " -f2')).toMatchObject({ status: 0, stdout: '/v\n' });
    expect(t('volume', 'ls', '-q').stdout).toBe(before);
  });

  it('--sysctl sets the container\'s own kernel parameters, and never the host\'s', () => {
    const hostForward = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8');
    const out = sh('cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax', '--sysctl', `net.ipv4.ip_forward=${hostForward.trim() === '1' ? 0 : 1}`, '--sysctl', 'kernel.shmmax=123456');
    expect(out).toBe(`${hostForward.trim() === '1' ? 0 : 1}\n123456\n`);
    expect(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8')).toBe(hostForward);
    const host = t('run', '--rm', '--network', 'host', '--sysctl', 'net.ipv4.ip_forward=1', image, 'true');
    expect(host.stderr).toMatch(/net\.\* cannot be set with --network host/);
    expect(t('run', '--rm', '--sysctl', 'vm.swappiness=10', image, 'true').stderr).toMatch(/not a namespaced sysctl/);
  });

  it('--shm-size and --group-add', () => {
    expect(sh('df -k /dev/shm | tail -1 | tr -s " " | cut -d" " -f2', '--shm-size', '2m')).toBe('2048\n');
    expect(sh('id -G', '--group-add', '10', '--group-add', 'nobody')).toBe('0 10 65534\n');
    expect(t('run', '--rm', '--group-add', 'nosuchgroup', image, 'true').stderr).toMatch(/unable to find group nosuchgroup/);
  });

  it('--stop-signal and --stop-timeout decide how stop ends it', () => {
    // A shell as PID 1 dies of SIGUSR1 only if it has a handler: a trap makes it exit 42.
    ok(t('run', '-d', '--name', 'trapper', '--network', 'none', '--stop-signal', 'USR1', image, 'sh', '-c', 'trap "exit 42" USR1; while :; do sleep 0.1; done'));
    ok(t('stop', 'trapper'));
    expect(ok(t('inspect', '-f', '{{.State.ExitCode}} {{.Config.StopSignal}}', 'trapper'))).toBe('42 SIGUSR1\n');
    ok(t('rm', 'trapper'));
    // It ignores SIGTERM: after --stop-timeout 1, SIGKILL (137).
    ok(t('run', '-d', '--name', 'stubborn', '--network', 'none', '--stop-timeout', '1', image, 'sleep', '60'));
    const start = Date.now();
    ok(t('stop', 'stubborn'));
    expect(Date.now() - start).toBeLessThan(8000); // not docker's default 10 s
    expect(ok(t('inspect', '-f', '{{.State.ExitCode}} {{.Config.StopTimeout}}', 'stubborn'))).toBe('137 1\n');
    ok(t('rm', 'stubborn'));
  });

  it('--log-opt rotates the log at max-size into max-file files; --log-driver none keeps none', async () => {
    const lines = 'i=0; while [ $i -lt 100 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done';
    const id = ok(t('run', '-d', '--network', 'none', '--log-opt', 'max-size=2k', '--log-opt', 'max-file=2', image, 'sh', '-c', lines)).trim();
    expect(t('wait', id).stdout).toBe('0\n');
    const logDir = join(env.root, 'containers', id);
    expect(existsSync(join(logDir, 'ctr.log.1'))).toBe(true);
    expect(existsSync(join(logDir, 'ctr.log.2'))).toBe(false);
    for (const f of ['ctr.log', 'ctr.log.1']) expect(readFileSync(join(logDir, f)).length).toBeLessThanOrEqual(2000 + 200);
    const kept = ok(t('logs', id)).split('\n').filter(Boolean);
    expect(kept.at(-1)).toMatch(/^line-99-/); // the newest lines stay, the oldest went with rotation
    expect(kept.length).toBeLessThan(100);
    expect(JSON.parse(ok(t('inspect', '-f', '{{json .HostConfig.LogConfig}}', id)))).toEqual({ Type: 'json-file', Config: { 'max-size': '2000', 'max-file': '2' } });
    ok(t('rm', id));

    // none: the foreground output still reaches the terminal, nothing is written, logs says why.
    expect(sh('echo to-the-terminal', '--log-driver', 'none')).toBe('to-the-terminal\n');
    const quiet = ok(t('run', '-d', '--network', 'none', '--log-driver', 'none', image, 'echo', 'lost')).trim();
    expect(t('wait', quiet).stdout).toBe('0\n');
    expect(existsSync(join(env.root, 'containers', quiet, 'ctr.log'))).toBe(false);
    const logs = t('logs', quiet);
    expect(logs.status).not.toBe(0);
    expect(logs.stderr).toContain('was created with --log-driver none: there is no log to read');
    ok(t('rm', quiet));
    for (const [flags, why] of [
      [['--log-driver', 'syslog'], 'tsrun has the json-file and none drivers'],
      [['--log-opt', 'compress=true'], 'unknown log opt "compress"'],
      [['--log-opt', 'max-file=0'], 'max-file must be a whole number from 1 to 1000'],
      [['--log-opt', 'max-size=1000000t'], 'max-size must be between 1 byte and 8 PB'],
      [['--log-opt', 'max-size=10mib'], 'max-size is a size such as 10m'],
      [['--log-driver', 'none', '--log-opt', 'max-size=1m'], 'the none log driver takes no --log-opt'],
    ] as const) {
      const r = t('run', '--rm', ...flags, image, 'true');
      expect(r.status).toBe(125);
      expect(r.stderr).toContain(why);
    }
  });

  it('--cidfile gets the ID, and an existing one is refused before anything is created', () => {
    const cid = join(dir, 'cid');
    const id = ok(t('run', '-d', '--network', 'none', '--cidfile', cid, image, 'true')).trim();
    expect(readFileSync(cid, 'utf8')).toBe(id);
    const again = t('run', '--rm', '--cidfile', cid, image, 'true');
    expect(again.status).toBe(125);
    expect(again.stderr).toMatch(/container ID file found/);
    expect(ok(t('ps', '-aq', '--no-trunc')).trim()).toBe(id);
    ok(t('rm', '-f', id));
    expect(existsSync(cid)).toBe(true); // docker leaves it too
    const nodir = t('run', '--rm', '--cidfile', join(dir, 'no', 'such', 'id'), image, 'true');
    expect(nodir.status).toBe(125);
    expect(nodir.stderr).toMatch(/"--cidfile" flag: cannot create it \(ENOENT\)/);
    // A run that fails before the container exists leaves no file behind.
    const failed = t('run', '--rm', '--pull', 'never', '--cidfile', join(dir, 'cid2'), 'no-such-image:1', 'true');
    expect(failed.status).toBe(125);
    expect(existsSync(join(dir, 'cid2'))).toBe(false);
    expect(ok(t('ps', '-aq'))).toBe('');
  });
});
