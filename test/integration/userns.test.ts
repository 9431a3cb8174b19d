// --userns private: the container's root is an unprivileged host uid out of tsrun's subordinate
// range, its image files still look owned by root (an idmapped mount of the store), and it
// cannot use its capabilities on anything the host owns. Needs root.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cliPath, describePrivileged, TestEnv } from './helpers/env.js';
import { loadBusybox } from './helpers/images.js';

describePrivileged('user namespaces', () => {
  const env = new TestEnv('userns');
  let image = '';
  const subuid = join(env.root, 'subuid');
  const subgid = join(env.root, 'subgid');
  const t = (...args: string[]) => env.run(args);
  const run = (...args: string[]) => t('run', '--rm', '--network', 'none', ...args);
  const inspect = (id: string) => JSON.parse(t('inspect', id).stdout)[0];
  const blocks = () => readdirSync(join(env.root, 'userns')).sort();
  /** tsrun's range as the test's subuid file has it after first use. */
  const range = () => {
    const line = readFileSync(subuid, 'utf8').split('\n').find((l) => l.startsWith('tsrun:'))!;
    return Number(line.split(':')[1]);
  };

  beforeAll(() => {
    // Someone else's range comes first: tsrun's must start after it.
    writeFileSync(subuid, 'alice:100000:65536\n');
    writeFileSync(subgid, 'alice:100000:65536\n');
    Object.assign(env.env, { TSRUN_SUBUID_FILE: subuid, TSRUN_SUBGID_FILE: subgid });
    image = loadBusybox(env);
  });
  const cleanups: Array<() => void> = [];
  afterAll(async () => {
    cleanups.forEach((c) => c());
    await env.cleanup();
  });

  it('maps the container root to a block of its own, added to /etc/subuid on first use', () => {
    const r = run('--userns', 'private', image, 'cat', '/proc/self/uid_map', '/proc/self/gid_map');
    expect(r.stderr).toBe('');
    expect(readFileSync(subuid, 'utf8')).toMatch(/^alice:100000:65536\ntsrun:(\d+):67108864\n$/);
    expect(range()).toBeGreaterThanOrEqual(165536);
    expect(r.stdout.split('\n').filter(Boolean).map((l) => l.trim().split(/\s+/))).toEqual([
      ['0', String(range()), '65536'],
      ['0', String(range()), '65536'],
    ]);
    expect(blocks()).toEqual([]); // --rm gave it back
  });

  it('is an unprivileged uid on the host, yet sees the image as root\'s and stores its writes as root\'s', () => {
    const id = t('run', '-d', '--userns', 'auto', '--network', 'none', image, 'sh', '-c', 'touch /made-here; ls -ln /bin/busybox; sleep 30').stdout.trim();
    const pid = inspect(id).State.Pid as number;
    expect(execFileSync('ps', ['-o', 'uid=', '-p', String(pid)], { encoding: 'utf8' }).trim()).toBe(String(range()));
    expect(readFileSync(`/proc/${pid}/uid_map`, 'utf8').trim().split(/\s+/)).toEqual(['0', String(range()), '65536']);
    expect(t('logs', id).stdout).toMatch(/^-rwxr-xr-x\s+1 0\s+0\s/);
    // On disk the upper dir holds uid 0, like every other container's: layers stay shared.
    expect(statSync(join(env.root, 'containers', inspect(id).Id, 'upper', 'made-here')).uid).toBe(0);
    expect(inspect(id).HostConfig.UsernsMode).toBe('private');
    expect(inspect(id).Tsrun.UserNamespace.UidMap).toEqual([`0:${range()}:65536`]);
    // exec enters the same user namespace: never host root.
    expect(t('exec', id, 'cat', '/proc/self/uid_map').stdout.trim().split(/\s+/)).toEqual(['0', String(range()), '65536']);
    expect(t('exec', id, 'id', '-u').stdout).toBe('0\n');
    expect(t('rm', '-f', id).status).toBe(0);
  });

  it('creates files in a bind mount as its host uid, and cannot write what host root owns', () => {
    // Outside the store: the store itself is idmapped for the container.
    const vol = mkdtempSync(join(tmpdir(), 'tsrun-test-userns-vol-'));
    cleanups.push(() => rmSync(vol, { recursive: true, force: true }));
    chmodSync(vol, 0o777);
    writeFileSync(join(vol, 'host-owned'), 'keep\n', { mode: 0o644 });
    const r = run('--userns', 'private', '-v', `${vol}:/vol`, image, 'sh', '-c', 'touch /vol/new; echo x > /vol/host-owned; echo rc=$?');
    expect(r.stdout).toBe('rc=1\n');
    expect(r.stderr).toMatch(/Permission denied/);
    expect(statSync(join(vol, 'new')).uid).toBe(range());
    expect(readFileSync(join(vol, 'host-owned'), 'utf8')).toBe('keep\n');
  });

  it('holds capabilities the host kernel does not honour: CAP_MKNOD cannot make a device node', () => {
    const r = run('--userns', 'private', image, 'sh', '-c', 'grep CapEff /proc/self/status; mknod /tmp/sda b 8 0; echo rc=$?');
    expect(r.stdout).toMatch(/CapEff:\s+0*[1-9a-f][0-9a-f]*\n/); // it does hold capabilities (CAP_MKNOD among them) ...
    expect(r.stdout).toMatch(/rc=1/); // ... but a disk's device node is the host's to make
    expect(r.stderr).toMatch(/Operation not permitted/);
    // The same container in the host's user namespace may.
    expect(run(image, 'sh', '-c', 'mknod /tmp/sda b 8 0; echo rc=$?').stdout).toBe('rc=0\n');
  });

  it('gives concurrent containers different blocks and takes them back on rm', () => {
    const a = t('create', '--userns', 'private', '--network', 'none', image, 'true').stdout.trim();
    const b = t('create', '--userns', 'private', '--network', 'none', image, 'true').stdout.trim();
    expect(blocks()).toEqual(['0', '1']);
    expect(inspect(a).Tsrun.UserNamespace.UidMap).not.toEqual(inspect(b).Tsrun.UserNamespace.UidMap);
    expect(t('rm', a, b).status).toBe(0);
    expect(blocks()).toEqual([]);
  });

  it('runs on a bridge network and under a restart policy (each run mapped again)', async () => {
    const id = t('run', '-d', '--userns', 'private', '--restart', 'on-failure:1', image, 'sh', '-c',
      'cat /proc/self/uid_map; ip -4 -o addr show eth0 | wc -l; exit 3').stdout.trim();
    const deadline = Date.now() + 20_000;
    // Done when the second run has ended too (between runs the container is "restarting").
    while (inspect(id).RestartCount < 1 || inspect(id).State.Status !== 'exited') {
      if (Date.now() > deadline) throw new Error('no restart');
      await new Promise((r) => setTimeout(r, 100));
    }
    const lines = t('logs', id).stdout.split('\n').filter(Boolean);
    expect(lines).toEqual([expect.stringMatching(/^\s*0\s+\d+\s+65536$/), '1', expect.stringMatching(/^\s*0\s+\d+\s+65536$/), '1']);
    expect(t('rm', id).status).toBe(0);
    // The monitor lives in the container's network namespace here; its exit command (tsrun's
    // cleanup) must still take the container off the host's network.
    const gone = t('run', '-d', '--rm', '--userns', 'private', '-p', '18099:80', image, 'sleep', '0.3').stdout.trim();
    // Watched from outside: `tsrun ps` would clean up after a failed exit command itself.
    const dir = join(env.root, 'containers', gone);
    for (const end = Date.now() + 10_000; existsSync(dir) && Date.now() < end; ) await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(dir)).toBe(false);
    expect(execFileSync('iptables-save', { encoding: 'utf8' })).not.toContain(gone.slice(0, 12));
  });

  it('works with a store under a directory only host root may enter', () => {
    // The container's root may not walk a 0700 parent: the helper opens what it needs first.
    const parent = join(env.root, 'root-only');
    mkdirSync(parent, { mode: 0o700 });
    const store = join(parent, 'store');
    const cli = (...args: string[]) => spawnSync(process.execPath, [cliPath, '--root', store, ...args], { encoding: 'utf8', env: { ...process.env, ...env.env } });
    expect(cli('load', '-q', '-i', join(env.root, 'busybox_latest.tar')).status).toBe(0);
    const r = cli('run', '--rm', '--network', 'none', '--userns', 'private', image, 'stat', '-c', '%u', '/bin/busybox');
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('0\n');
  });

  it('falls back to shifted copies of the layers on a store that cannot be idmapped (ramfs), and says so', () => {
    const base = mkdtempSync(join(tmpdir(), 'tsrun-test-userns-ramfs-'));
    chmodSync(base, 0o755); // the container's root must reach the copies (see the error otherwise)
    mkdirSync(join(base, 'm'));
    execFileSync('mount', ['-t', 'ramfs', '-o', 'mode=755', 'ramfs', join(base, 'm')]);
    cleanups.push(() => {
      execFileSync('umount', [join(base, 'm')]);
      rmSync(base, { recursive: true, force: true });
    });
    const store = join(base, 'm', 'store');
    const cli = (...args: string[]) => spawnSync(process.execPath, [cliPath, '--root', store, ...args], { encoding: 'utf8', env: { ...process.env, ...env.env } });
    expect(cli('load', '-q', '-i', join(env.root, 'busybox_latest.tar')).status).toBe(0);
    const id = cli('create', '--network', 'none', '--userns', 'private', image, 'sh', '-c', 'stat -c %u /bin/busybox; touch /mine; stat -c %u /mine').stdout.trim();
    const r = cli('start', '-a', id);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('0\n0\n');
    const seen = JSON.parse(cli('inspect', id).stdout)[0];
    expect(seen.Tsrun.UserNamespace.Files).toBe('a copy of the layers with shifted owners');
    expect(readFileSync(join(store, 'userns', 'files'), 'utf8')).toMatch(/^copy\n.*idmap-mount/);
    // On disk, the copy and the container's own files carry the host uids.
    const host = Number(seen.Tsrun.UserNamespace.UidMap[0].split(':')[1]);
    expect(statSync(join(store, 'containers', seen.Id, 'upper', 'mine')).uid).toBe(host);
    // Only that uid (and root) may reach the copies and the container's files: they hold
    // set-id programs owned by host uids of the map.
    for (const d of [join(store, 'containers', seen.Id), join(store, 'userns', readdirSync(join(store, 'userns')).find((n) => n.startsWith('u'))!)]) {
      expect([statSync(d).uid, statSync(d).mode & 0o777]).toEqual([host, 0o700]);
    }
    // A start killed while copying left a layer's copy, named by its pid: the next start of a
    // container of that map removes it once that process is gone, never a live one's.
    const key = join(store, 'userns', readdirSync(join(store, 'userns')).find((n) => n.startsWith('u'))!);
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    for (const left of [`.tmp-abc-${dead}`, `.tmp-abc-${process.pid}`]) {
      mkdirSync(join(key, left, 'bin'), { recursive: true });
      writeFileSync(join(key, left, 'bin', 'busybox'), 'half a copy');
    }
    expect(cli('start', '-a', id)).toMatchObject({ status: 0, stdout: '0\n0\n' });
    expect(readdirSync(key).filter((n) => n.startsWith('.tmp-'))).toEqual([`.tmp-abc-${process.pid}`]);
    rmSync(join(key, `.tmp-abc-${process.pid}`), { recursive: true });
    const copies = () => readdirSync(join(store, 'userns')).filter((n) => n.startsWith('u'));
    expect(cli('image', 'prune', '-f').status).toBe(0);
    expect(copies()).toHaveLength(1); // its container still uses them
    expect(cli('rm', id).status).toBe(0);
    // The copies are a cache of image data: image prune drops those no container uses.
    expect(cli('image', 'prune', '-f').status).toBe(0);
    expect(copies()).toEqual([]);
  });

  it("with shifted copies, commit, export and cp show and take the container's owners, not the host's", () => {
    const copy = (...args: string[]) => env.run(args, { env: { TSRUN_USERNS_FILES: 'copy' } });
    const script = 'if [ -e /copied ]; then stat -c "%u:%g %n" /copied /untarred; else touch /by-root; touch /by-1000; chown 1000:1001 /by-1000; fi';
    expect(copy('run', '--name', 'shifted', '--network', 'none', '--userns', 'private', image, 'sh', '-c', script)).toMatchObject({ status: 0, stderr: '' });
    const seen = inspect('shifted');
    expect(seen.Tsrun.UserNamespace.Files).toBe('a copy of the layers with shifted owners');
    const host = Number(seen.Tsrun.UserNamespace.UidMap[0].split(':')[1]);
    expect(statSync(join(seen.GraphDriver.Data.UpperDir, 'by-1000')).uid).toBe(host + 1000); // on disk

    // commit: the layer holds the container's ids; a container of it without a userns sees them.
    expect(t('commit', 'shifted', 'shifted:v1').status).toBe(0);
    expect(run('shifted:v1', 'stat', '-c', '%u:%g %n', '/by-root', '/by-1000', '/bin/busybox').stdout).toBe('0:0 /by-root\n1000:1001 /by-1000\n0:0 /bin/busybox\n');
    // export: the same ids in the tar, for the container's files and the image's.
    const exported = join(env.root, 'shifted.tar');
    expect(t('export', '-o', exported, 'shifted').status).toBe(0);
    const listing = execFileSync('tar', ['tvf', exported, '--numeric-owner', 'by-root', 'by-1000', 'bin/busybox'], { encoding: 'utf8' });
    expect(listing.split('\n').filter(Boolean).map((l) => l.split(/\s+/)[1])).toEqual(['0/0', '1000/1001', '0/0']);
    // cp -a out: the container's ids on the host.
    const out = join(env.root, 'by-1000-out');
    expect(t('cp', '-a', 'shifted:/by-1000', out).status).toBe(0);
    expect(statSync(out)).toMatchObject({ uid: 1000, gid: 1001 });
    // cp in (a file, and a tar on stdin): the container's root owns them inside.
    const file = join(env.root, 'to-copy');
    writeFileSync(file, 'x');
    expect(t('cp', file, 'shifted:/copied').status).toBe(0);
    const tar = execFileSync('tar', ['c', '-C', env.root, '--transform', 's/to-copy/untarred/', 'to-copy']);
    expect(env.run(['cp', '-', 'shifted:/'], { input: tar })).toMatchObject({ status: 0, stderr: '' });
    expect(copy('start', '-a', 'shifted')).toMatchObject({ stderr: '', stdout: '0:0 /copied\n0:0 /untarred\n' });
    expect(t('rm', 'shifted').status).toBe(0);
    expect(t('rmi', 'shifted:v1').status).toBe(0);
  });

  it('running idmapped: cp and export show the container\'s owners; writing in is refused with a way round', () => {
    const id = t('run', '-d', '--network', 'none', '--userns', 'private', image, 'sh', '-c', 'touch /by-1000; chown 1000:1001 /by-1000; exec sleep 300').stdout.trim();
    cleanups.unshift(() => t('rm', '-f', id));
    expect(t('exec', id, 'ls', '/by-1000').status).toBe(0); // the script ran
    const exported = join(env.root, 'running.tar');
    expect(t('export', '-o', exported, id).status).toBe(0);
    const listing = execFileSync('tar', ['tvf', exported, '--numeric-owner', 'by-1000', 'bin/busybox'], { encoding: 'utf8' });
    expect(listing.split('\n').filter(Boolean).map((l) => l.split(/\s+/)[1])).toEqual(['0/0', '1000/1001']); // bin/busybox, by-1000
    const out = join(env.root, 'running-out');
    expect(t('cp', '-a', `${id}:/by-1000`, out).status).toBe(0);
    expect(statSync(out)).toMatchObject({ uid: 1000, gid: 1001 });
    const r = t('cp', out, `${id}:/tmp/`);
    expect(r.status).toBe(125);
    expect(r.stderr).toMatch(/runs in a user namespace, where tsrun cannot create files while it runs: stop it first, or pipe a tar through it \(tar -c FILES \| tsrun exec -i \w+ tar -x -C DIR\)/);
    // The way round works.
    const tar = execFileSync('tar', ['c', '-C', env.root, 'running-out']);
    expect(env.run(['exec', '-i', id, 'tar', '-x', '-C', '/tmp'], { input: tar }).status).toBe(0);
    expect(t('exec', id, 'stat', '-c', '%u:%g', '/tmp/running-out').stdout).toBe('1000:1001\n');
  });

  it('takes explicit maps, and names what is wrong with bad ones', () => {
    const r = run('--uidmap', '0:300000:1000', '--gidmap', '0:400000:1000', image, 'sh', '-c', 'cat /proc/self/uid_map /proc/self/gid_map');
    expect(r.stdout.split('\n').filter(Boolean).map((l) => l.trim().split(/\s+/))).toEqual([
      ['0', '300000', '1000'],
      ['0', '400000', '1000'],
    ]);
    const bad = (args: string[], msg: RegExp) => {
      const res = run(...args, image, 'true');
      expect(res.status).toBe(125);
      expect(res.stderr).toMatch(msg);
    };
    bad(['--userns', 'sideways'], /invalid argument "sideways" for "--userns" flag: expected host, private or auto/);
    bad(['--uidmap', '0:100000'], /for "--uidmap" flag: expected container-id:host-id:size/);
    bad(['--uidmap', '0:100000:10', '--uidmap', '5:200000:10'], /--uidmap: the container ranges overlap/);
    bad(['--uidmap', '1:100000:10'], /container id 0 must be mapped/);
    bad(['--userns', 'private', '--privileged'], /conflicting options: --privileged and a user namespace/);
    bad(['--userns', 'private', '--pid', 'host'], /conflicting options: a user namespace and --pid/);
  });
});
