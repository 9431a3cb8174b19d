// A container's file system from the host, through the CLI: cp both ways (running and stopped,
// docker's destination rules, owners with -a, and the symlink traps that must never reach the
// host), diff, export, commit (including whiteouts and --pause), top, and create → start.
import { createHash } from 'node:crypto';
import { chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describePrivileged, TestEnv, type Result } from './helpers/env.js';
import { loadBusybox } from './helpers/images.js';
import { gzipSync } from 'node:zlib';
import { extract, xattrsOf } from '../../src/image/tar.js';
import { makeTar } from '../fixtures/tar.js';
import { lgetxattr, lsetxattr } from '../../src/sys/libc.js';

const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** security.capability (VFS_CAP_REVISION_2, effective) granting cap_net_raw, as ping has. */
const CAP_NET_RAW = Buffer.from('0100000200200000000000000000000000000000', 'hex');

/** name → its SCHILY.xattr records, for each entry of a tar. */
async function tarXattrs(tar: Buffer): Promise<Map<string, Map<string, Buffer>>> {
  const ex = extract();
  const out = new Map<string, Map<string, Buffer>>();
  const done = (async () => {
    for await (const entry of ex) {
      out.set(entry.header.name, new Map(xattrsOf(entry.header)));
      entry.resume();
    }
  })();
  ex.write(tar);
  ex.end();
  await done;
  return out;
}

describePrivileged('container file system commands', () => {
  let env: TestEnv;
  let image: string;
  let work: string;
  const t = (...args: string[]): Result => env.run(args, { timeout: 60_000 });
  const ok = (...args: string[]): string => {
    const r = t(...args);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    return r.stdout;
  };
  /** A stopped container that ran `script`. */
  const ran = (name: string, script: string): string => ok('run', '--name', name, '--network', 'none', image, 'sh', '-c', script);
  const detached = (name: string, script: string): string =>
    ok('run', '-d', '--name', name, '--network', 'none', image, 'sh', '-c', `${script}\nexec sleep 300`).trim();
  const host = (...parts: string[]) => join(work, ...parts);

  // What the traps aim at on the host: it must stay exactly as it is.
  const HOST_SHADOW = '/etc/shadow';
  let shadowBefore: { sha: string; mtimeMs: number };
  const planted = `tsrun-cp-trap-${process.pid}`;

  beforeAll(() => {
    env = new TestEnv('fs');
    image = loadBusybox(env);
    work = mkdtempSync(join(tmpdir(), 'tsrun-cp-'));
    shadowBefore = { sha: sha(HOST_SHADOW), mtimeMs: statSync(HOST_SHADOW).mtimeMs };
  });
  afterAll(async () => {
    const ids = t('ps', '-aq').stdout.split('\n').filter(Boolean);
    if (ids.length) t('rm', '-f', ...ids);
    rmSync(work, { recursive: true, force: true });
    await env.cleanup();
  });

  const trapScript = [
    'ln -s /etc /trap',
    'ln -s ../../.. /trap2',
    'echo container-shadow > /etc/shadow',
    'mkdir /data',
    'ln -s /etc /data/link',
    'echo inside > /data/file',
  ].join('; ');

  function assertHostUntouched(): void {
    expect(sha(HOST_SHADOW)).toBe(shadowBefore.sha);
    expect(statSync(HOST_SHADOW).mtimeMs).toBe(shadowBefore.mtimeMs);
    expect(existsSync(`/etc/${planted}`)).toBe(false);
    expect(existsSync(`/etc/${planted}-2`)).toBe(false);
    expect(existsSync(`/${planted}`)).toBe(false);
  }

  for (const state of ['stopped', 'running'] as const) {
    describe(`symlink traps (${state} container)`, () => {
      const name = `trap-${state}`;
      beforeAll(() => {
        if (state === 'stopped') ran(name, trapScript);
        else detached(name, trapScript);
        writeFileSync(host(`${state}-payload`), 'payload\n');
      });

      it('reads through /trap and ../../.. only what is inside the container', () => {
        ok('cp', `${name}:/trap/shadow`, host(`${state}-s1`));
        expect(readFileSync(host(`${state}-s1`), 'utf8')).toBe('container-shadow\n');
        ok('cp', `${name}:/trap2/etc/shadow`, host(`${state}-s2`));
        expect(readFileSync(host(`${state}-s2`), 'utf8')).toBe('container-shadow\n');
        ok('cp', `${name}:/trap2/trap2/../../trap/shadow`, host(`${state}-s3`));
        expect(readFileSync(host(`${state}-s3`), 'utf8')).toBe('container-shadow\n');
        // A file the host has and the image does not: never found through the trap.
        const r = t('cp', `${name}:/trap/os-release`, host(`${state}-os`));
        expect(r.status).not.toBe(0);
        expect(r.stderr).toContain('Could not find the file /trap/os-release');
        expect(existsSync(host(`${state}-os`))).toBe(false);
        assertHostUntouched();
      });

      it('copies a symlink as a symlink, and -L or a trailing / follow it inside the container', () => {
        ok('cp', `${name}:/trap`, host(`${state}-link`));
        expect(readlinkSync(host(`${state}-link`))).toBe('/etc');
        ok('cp', '-L', `${name}:/trap`, host(`${state}-etc`));
        expect(lstatSync(host(`${state}-etc`)).isDirectory()).toBe(true);
        expect(readFileSync(host(`${state}-etc`, 'shadow'), 'utf8')).toBe('container-shadow\n');
        expect(existsSync(host(`${state}-etc`, 'os-release'))).toBe(false);
        // -L of a file to stdout (was an internal error: the followed file was opened O_NOFOLLOW).
        const tar = ok('cp', '-L', `${name}:/trap/shadow`, '-');
        expect(execFileSync('tar', ['-xO'], { input: tar, encoding: 'utf8' })).toBe('container-shadow\n');
        ok('cp', `${name}:/data`, host(`${state}-data`));
        expect(readlinkSync(host(`${state}-data`, 'link'))).toBe('/etc');
        expect(readFileSync(host(`${state}-data`, 'file'), 'utf8')).toBe('inside\n');
      });

      it('writes through /trap/ and ../../.. into the container, never into the host', () => {
        ok('cp', host(`${state}-payload`), `${name}:/trap/${planted}`);
        ok('cp', host(`${state}-payload`), `${name}:/trap2/etc/${planted}-2`);
        ok('cp', host(`${state}-payload`), `${name}:/trap2/${planted}`);
        assertHostUntouched();
        ok('cp', `${name}:/etc/${planted}`, host(`${state}-back1`));
        ok('cp', `${name}:/etc/${planted}-2`, host(`${state}-back2`));
        ok('cp', `${name}:/${planted}`, host(`${state}-back3`));
        for (const f of ['back1', 'back2', 'back3']) expect(readFileSync(host(`${state}-${f}`), 'utf8')).toBe('payload\n');
      });
    });
  }

  it("cp follows docker's destination rules", () => {
    ran('rules', 'mkdir -p /srv/dir/sub && echo a > /srv/dir/a && echo b > /srv/dir/sub/b && echo f > /srv/file');
    // A file to a missing path: that file; into an existing directory: by its name.
    ok('cp', 'rules:/srv/file', host('r-file'));
    expect(readFileSync(host('r-file'), 'utf8')).toBe('f\n');
    mkdirSync(host('r-into'));
    ok('cp', 'rules:/srv/file', host('r-into'));
    expect(readFileSync(host('r-into', 'file'), 'utf8')).toBe('f\n');
    // Over an existing file: replaced.
    writeFileSync(host('r-over'), 'old');
    ok('cp', 'rules:/srv/file', host('r-over'));
    expect(readFileSync(host('r-over'), 'utf8')).toBe('f\n');
    // A directory to a missing path: created with the contents; into an existing one: by name;
    // `dir/.`: the contents.
    ok('cp', 'rules:/srv/dir', host('r-newdir'));
    expect(readFileSync(host('r-newdir', 'sub', 'b'), 'utf8')).toBe('b\n');
    mkdirSync(host('r-existing'));
    ok('cp', 'rules:/srv/dir', host('r-existing'));
    expect(readFileSync(host('r-existing', 'dir', 'a'), 'utf8')).toBe('a\n');
    mkdirSync(host('r-contents'));
    ok('cp', 'rules:/srv/dir/.', host('r-contents'));
    expect(readFileSync(host('r-contents', 'a'), 'utf8')).toBe('a\n');
    // Errors: a directory onto a file, a missing parent, a file path with a trailing slash.
    expect(t('cp', 'rules:/srv/dir', host('r-file')).stderr).toContain('cannot copy a directory to a file');
    expect(t('cp', 'rules:/srv/file', host('nope', 'x')).status).toBe(125);
    expect(t('cp', 'rules:/srv/file/', host('r-x')).stderr).toContain('not a directory');
    expect(t('cp', 'rules:/nope', host('r-x')).stderr).toContain('Could not find the file /nope in container rules');
    // Into the container, a whole directory, then read back.
    mkdirSync(host('tree', 'deep'), { recursive: true });
    writeFileSync(host('tree', 'deep', 'x'), 'x\n');
    symlinkSync('deep/x', host('tree', 'rel-link'));
    ok('cp', host('tree'), 'rules:/srv/');
    ok('cp', 'rules:/srv/tree', host('tree-back'));
    expect(readFileSync(host('tree-back', 'deep', 'x'), 'utf8')).toBe('x\n');
    expect(readlinkSync(host('tree-back', 'rel-link'))).toBe('deep/x');
  });

  it('cp keeps owners only with -a, and modes always', () => {
    ran('owners', 'echo o > /owned && chown 1234:5678 /owned && chmod 4750 /owned');
    ok('cp', 'owners:/owned', host('o-plain'));
    expect(statSync(host('o-plain'))).toMatchObject({ uid: 0, gid: 0 });
    ok('cp', '-a', 'owners:/owned', host('o-archive'));
    const st = statSync(host('o-archive'));
    expect(st).toMatchObject({ uid: 1234, gid: 5678 });
    expect(st.mode & 0o7777).toBe(0o4750);
    writeFileSync(host('mine'), 'm');
    chownSync(host('mine'), 4321, 8765);
    ok('cp', host('mine'), 'owners:/mine-plain');
    ok('cp', '-a', host('mine'), 'owners:/mine-archive');
    ok('cp', '-a', 'owners:/mine-plain', host('mp'));
    ok('cp', '-a', 'owners:/mine-archive', host('ma'));
    expect(statSync(host('mp')).uid).toBe(0);
    expect(statSync(host('ma'))).toMatchObject({ uid: 4321, gid: 8765 });
  });

  it('cp on a running container, both ways, and to a tar on stdout', () => {
    detached('busy', 'echo hello > /greeting');
    writeFileSync(host('to-running'), 'sent\n');
    ok('cp', host('to-running'), 'busy:/tmp/');
    expect(ok('exec', 'busy', 'cat', '/tmp/to-running')).toBe('sent\n');
    ok('cp', 'busy:/greeting', host('from-running'));
    expect(readFileSync(host('from-running'), 'utf8')).toBe('hello\n');
    const tar = execFileSync(process.execPath, env.args(['cp', 'busy:/greeting', '-']), { env: { ...process.env, ...env.env } });
    writeFileSync(host('greeting.tar'), tar);
    expect(execFileSync('tar', ['tf', host('greeting.tar')], { encoding: 'utf8' })).toBe('greeting\n');
  });

  it('cp, export and commit keep hard links, file capabilities and user attributes', async () => {
    const pinger = host('pinger');
    writeFileSync(pinger, '#!/bin/sh\necho pong\n', { mode: 0o755 });
    chownSync(pinger, 4321, 4321); // cp's chown to root must not drop the capability set later
    lsetxattr(pinger, 'security.capability', CAP_NET_RAW);
    lsetxattr(pinger, 'user.note', Buffer.from('kept'));
    ran('links', 'mkdir /l && echo same > /l/a && ln /l/a /l/b && ln /l/a /l/c');
    ok('cp', pinger, 'links:/l/pinger');

    // cp out: one inode for a, b and c; the attributes on pinger.
    ok('cp', 'links:/l', host('l-out'));
    const [a, b, c] = ['a', 'b', 'c'].map((n) => statSync(host('l-out', n)));
    expect([b!.ino, c!.ino]).toEqual([a!.ino, a!.ino]);
    expect(a!.nlink).toBe(3);
    expect(lgetxattr(host('l-out', 'pinger'), 'security.capability')).toEqual(CAP_NET_RAW);
    expect(lgetxattr(host('l-out', 'pinger'), 'user.note')?.toString()).toBe('kept');

    // export: b and c as links to a, the attributes as PAX records.
    ok('export', '-o', host('links.tar'), 'links');
    const listing = execFileSync('tar', ['tvf', host('links.tar')], { encoding: 'utf8' });
    expect(listing).toMatch(/ l\/b link to l\/a\n/);
    expect(listing).toMatch(/ l\/c link to l\/a\n/);
    const exported = await tarXattrs(readFileSync(host('links.tar')));
    expect(exported.get('l/pinger')?.get('security.capability')).toEqual(CAP_NET_RAW);
    expect(exported.get('l/pinger')?.get('user.note')?.toString()).toBe('kept');

    // commit: a container of the new image has both.
    ok('commit', 'links', 'links:v1');
    const inodes = ok('run', '--rm', '--network', 'none', 'links:v1', 'stat', '-c', '%i %h', '/l/a', '/l/b', '/l/c').split('\n').filter(Boolean);
    expect(new Set(inodes).size).toBe(1);
    expect(inodes[0]).toMatch(/ 3$/);
    ok('run', '--name', 'links-child', '--network', 'none', 'links:v1', 'true');
    ok('cp', 'links-child:/l/pinger', host('pinger-again'));
    expect(lgetxattr(host('pinger-again'), 'security.capability')).toEqual(CAP_NET_RAW);
    expect(lgetxattr(host('pinger-again'), 'user.note')?.toString()).toBe('kept');
  });

  describe('cp - CONTAINER:DIR (a tar on stdin)', () => {
    const untar = (target: string, tar: Buffer, ...flags: string[]): Result => env.run(['cp', ...flags, '-', target], { input: tar, timeout: 60_000 });
    const app = makeTar([
      { name: 'app/', type: 'dir', mode: 0o750, uid: 1000, gid: 1001, mtime: 1_600_000_000 },
      // No app/bin/ entry: the parent is made, 0755, as docker makes it.
      {
        name: 'app/bin/tool',
        content: 'tool\n',
        mode: 0o4755,
        uid: 1000,
        gid: 1001,
        pax: { 'SCHILY.xattr.security.capability': CAP_NET_RAW, 'SCHILY.xattr.trusted.overlay.redirect': '/etc', 'SCHILY.xattr.user.k': 'v' },
      },
      { name: 'app/tool-link', type: 'hardlink', linkname: 'app/bin/tool' },
      { name: 'app/sym', type: 'symlink', linkname: 'bin/tool' },
    ]);

    it('extracts into a running container: parents made, hard links kept, owners root, modes kept', () => {
      detached('untar-running', 'true');
      const r = untar('untar-running:/tmp', app);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const stat = ok('exec', 'untar-running', 'stat', '-c', '%n %u:%g %a %h', '/tmp/app', '/tmp/app/bin', '/tmp/app/bin/tool', '/tmp/app/tool-link');
      expect(stat).toBe(['/tmp/app 0:0 750 3', '/tmp/app/bin 0:0 755 2', '/tmp/app/bin/tool 0:0 4755 2', '/tmp/app/tool-link 0:0 4755 2', ''].join('\n'));
      expect(ok('exec', 'untar-running', 'sh', '-c', 'readlink /tmp/app/sym; cat /tmp/app/sym; [ /tmp/app/bin/tool -ef /tmp/app/tool-link ] && echo same')).toBe('bin/tool\ntool\nsame\n');
      expect(ok('exec', 'untar-running', 'stat', '-c', '%Y', '/tmp/app')).toBe('1600000000\n');
    });

    it('with -a into a stopped container, gzip-compressed: owners and file capabilities kept, overlayfs attributes dropped', () => {
      ran('untar-stopped', 'true');
      expect(untar('untar-stopped:/tmp/', gzipSync(app), '-a')).toMatchObject({ status: 0, stderr: '' });
      const upper = JSON.parse(ok('inspect', 'untar-stopped'))[0].GraphDriver.Data.UpperDir as string;
      const tool = join(upper, 'tmp/app/bin/tool');
      expect(statSync(tool)).toMatchObject({ uid: 1000, gid: 1001 });
      expect(statSync(tool).mode & 0o7777).toBe(0o4755);
      expect(lgetxattr(tool, 'security.capability')).toEqual(CAP_NET_RAW);
      expect(lgetxattr(tool, 'user.k')?.toString()).toBe('v');
      expect(lgetxattr(tool, 'trusted.overlay.redirect')).toBeUndefined();
      expect(statSync(join(upper, 'tmp/app/tool-link')).ino).toBe(statSync(tool).ino);
    });

    it('keeps a symlink in the tar or the container inside the container, and refuses .. and bad input', () => {
      ran('untar-traps', 'ln -s /etc /tmp/ctrap');
      const traps = makeTar([
        { name: 'trap', type: 'symlink', linkname: '/etc' },
        { name: `trap/${planted}`, content: 'x' },
        { name: `ctrap/${planted}-2`, content: 'y' },
      ]);
      expect(untar('untar-traps:/tmp', traps)).toMatchObject({ status: 0, stderr: '' });
      assertHostUntouched();
      ok('cp', `untar-traps:/etc/${planted}`, host('planted-inside'));
      ok('cp', `untar-traps:/etc/${planted}-2`, host('planted-inside-2'));
      expect(readFileSync(host('planted-inside'), 'utf8') + readFileSync(host('planted-inside-2'), 'utf8')).toBe('xy');

      const climbs = makeTar([{ name: '../../x', content: 'x' }]);
      expect(untar('untar-traps:/tmp', climbs)).toMatchObject({ status: 125, stderr: 'tsrun: the tar\'s entry "../../x" climbs out of the destination with ".."\n' });
      const linkOut = makeTar([{ name: 'hl', type: 'hardlink', linkname: '../../../etc/shadow' }]);
      expect(untar('untar-traps:/tmp', linkOut).stderr).toMatch(/climbs out of the destination/);
      assertHostUntouched();
      expect(untar('untar-traps:/tmp', Buffer.from('not a tar\n'))).toMatchObject({ status: 125, stderr: 'tsrun: stdin is not a tar archive (nor gzip or zstd)\n' });
      expect(untar('untar-traps:/tmp', Buffer.alloc(0)).stderr).toBe('tsrun: stdin is empty\n');
      expect(untar('untar-traps:/etc/passwd', app).stderr).toBe('tsrun: extraction point /etc/passwd is not a directory\n');
      expect(untar('untar-traps:/nowhere', app).stderr).toBe('tsrun: Could not find the file /nowhere in container untar-traps\n');
    });
  });

  it('diff lists A, C and D like docker, and nothing for an untouched container', () => {
    ran('untouched', 'true');
    expect(ok('diff', 'untouched')).toBe('');
    ran('changed', 'echo x >> /etc/passwd; rm /etc/group; mkdir -p /new/dir; echo n > /new/dir/f; rm -rf /home; mkdir /home; touch /home/h');
    expect(ok('diff', 'changed').split('\n').filter(Boolean)).toEqual([
      'C /etc',
      'D /etc/group',
      'C /etc/passwd',
      'C /home',
      'A /home/h',
      'A /new',
      'A /new/dir',
      'A /new/dir/f',
    ]);
  });

  it('export writes the merged file system, without what is mounted', () => {
    detached('exp', 'echo e > /exported; rm /etc/group');
    const file = host('exp.tar');
    ok('export', '-o', file, 'exp');
    const names = execFileSync('tar', ['tf', file], { encoding: 'utf8' }).split('\n');
    expect(names).toEqual(expect.arrayContaining(['exported', 'etc/passwd', 'bin/busybox', 'proc/', 'dev/']));
    expect(names).not.toContain('etc/group');
    expect(names.some((n) => n.startsWith('proc/1'))).toBe(false);
    expect(execFileSync('tar', ['xOf', file, 'exported'], { encoding: 'utf8' })).toBe('e\n');
    // To a pipe (no -o): the same archive.
    const piped = execFileSync(process.execPath, env.args(['export', 'exp']), { env: { ...process.env, ...env.env }, maxBuffer: 64 << 20 });
    expect(piped.length).toBe(readFileSync(file).length);
  });

  it('commit: the new image runs with the change, deletions stay deleted, -c applies', () => {
    ran('tocommit', 'echo committed > /etc/motd; rm /etc/group; mkdir -p /opt/app && echo v1 > /opt/app/version');
    const id = ok('commit', '-m', 'a message', '-a', 'tester', '-c', 'CMD ["cat", "/opt/app/version"]', '-c', 'ENV STAGE=test', 'tocommit', 'committed:v1').trim();
    expect(id).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(ok('run', '--rm', '--network', 'none', 'committed:v1')).toBe('v1\n');
    expect(ok('run', '--rm', '--network', 'none', 'committed:v1', 'sh', '-c', 'cat /etc/motd; echo $STAGE; test -e /etc/group || echo gone')).toBe('committed\ntest\ngone\n');
    const info = JSON.parse(ok('image', 'inspect', 'committed:v1'))[0];
    expect(info).toMatchObject({ Id: id, Author: 'tester', Comment: 'a message', RepoTags: ['committed:v1'] });
    expect(info.RootFS.Layers).toHaveLength(2);
    // A commit of a commit: the opaque directory case (rm -rf then recreate).
    ran('second', 'true');
    ok('rm', 'second');
    ok('run', '--name', 'second', '--network', 'none', 'committed:v1', 'sh', '-c', 'rm -rf /opt/app && mkdir /opt/app && echo v2 > /opt/app/new');
    ok('commit', 'second', 'committed:v2');
    expect(ok('run', '--rm', '--network', 'none', 'committed:v2', 'ls', '/opt/app')).toBe('new\n');
  });

  it('commit --pause freezes a running container only while it reads, and --pause=false does not', async () => {
    // Written whole (rename): a freeze cannot catch the file empty between truncate and write.
    detached('live', 'i=0; while :; do i=$((i+1)); echo $i > /counter.new; mv /counter.new /counter; sleep 0.05; done &');
    await sleep(300);
    ok('commit', 'live', 'live:paused');
    ok('commit', '--pause=false', 'live', 'live:unpaused');
    expect(ok('ps', '--filter', 'name=live', '--format', '{{.Status}}')).toMatch(/^Up /);
    expect(ok('inspect', '-f', '{{.State.Paused}}', 'live')).toBe('false\n');
    expect(ok('run', '--rm', '--network', 'none', 'live:paused', 'cat', '/counter')).toMatch(/^\d+\n$/);
  });

  it('top lists the container\'s processes with docker\'s columns, or the ps options given', () => {
    detached('topped', 'sleep 1000 &');
    const out = ok('top', 'topped');
    expect(out.split('\n')[0]).toMatch(/^UID\s+PID\s+PPID\s+C\s+STIME\s+TTY\s+TIME\s+CMD$/);
    expect(out).toContain('sleep 1000');
    expect(out).toContain('sleep 300');
    expect(out.split('\n').filter(Boolean)).toHaveLength(3);
    const custom = ok('top', 'topped', '-o', 'pid,comm');
    expect(custom.split('\n')[0]).toMatch(/^PID\s+COMMAND$/);
    expect(custom).toMatch(/\n\d+\s+sleep\n/);
    ran('nottop', 'true');
    expect(t('top', 'nottop').stderr).toContain('is not running');
  });

  it('create makes a container that start runs and wait waits for', () => {
    const id = ok('create', '--name', 'made', '--network', 'none', '-e', 'CODE=3', image, 'sh', '-c', 'exit $CODE').trim();
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    expect(ok('ps', '-a', '--filter', 'name=made', '--format', '{{.Status}}')).toBe('Created\n');
    expect(ok('start', 'made')).toBe('made\n');
    expect(ok('wait', 'made')).toBe('3\n');
  });

  it('a file copied into a created container is there when it starts', () => {
    ok('create', '--name', 'fed', '--network', 'none', image, 'cat', '/etc/fed');
    writeFileSync(host('fed'), 'fed before start\n');
    ok('cp', host('fed'), 'fed:/etc/');
    expect(ok('start', '-a', 'fed')).toBe('fed before start\n');
    expect(ok('diff', 'fed')).toBe('C /etc\nA /etc/fed\n');
  });
});
