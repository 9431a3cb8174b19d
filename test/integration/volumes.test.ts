// Named volumes through the CLI: -v NAME:/path and --mount type=volume make them, they outlive
// their containers, an empty one first gets the image's content at its mount point (whiteouts
// and opaque directories as overlayfs merges them; links and attributes kept), one in use cannot be removed, prune takes
// the unused ones.
import { existsSync, lstatSync, readFileSync, statSync } from 'node:fs';
import { lgetxattr } from '../../src/sys/libc.js';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePrivileged, TestEnv, type Result } from './helpers/env.js';
import { loadBusybox } from './helpers/images.js';

describePrivileged('volumes', () => {
  const env = new TestEnv('volumes');
  let image = '';
  const t = (...args: string[]) => env.run(args);
  const ok = (r: Result): string => {
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    return r.stdout;
  };
  const sh = (script: string, ...flags: string[]) => ok(t('run', '--rm', '--network', 'none', ...flags, image, 'sh', '-c', script));
  const data = (name: string) => join(env.root, 'volumes', name, '_data');

  beforeAll(() => {
    image = loadBusybox(env, 'busybox:2layers', ['--layers', '2']);
  });
  afterAll(() => env.cleanup());

  it('keeps what one container wrote for the next, and mounts it read-only when asked', () => {
    sh('echo kept > /data/file', '-v', 'notes:/data');
    expect(readFileSync(join(data('notes'), 'file'), 'utf8')).toBe('kept\n');
    expect(sh('cat /data/file', '--mount', 'type=volume,source=notes,target=/data')).toBe('kept\n');
    const ro = t('run', '--rm', '--network', 'none', '-v', 'notes:/data:ro', image, 'sh', '-c', 'touch /data/x');
    expect(ro.stderr).toContain('Read-only file system');
    const inspected = JSON.parse(ok(t('volume', 'inspect', 'notes')))[0];
    expect(inspected).toMatchObject({ Name: 'notes', Driver: 'local', Mountpoint: data('notes'), Scope: 'local' });
    expect(ok(t('volume', 'ls', '-q'))).toBe('notes\n');
  });

  it("fills an empty volume with the image's directory, as the merged layers have it", () => {
    expect(sh('ls /etc', '-v', 'etc:/etc').split('\n')).toContain('passwd');
    // Layer 2 deleted /etc/deleteme (a whiteout) and made /opt/opaque opaque.
    expect(existsSync(join(data('etc'), 'deleteme'))).toBe(false);
    expect(readFileSync(join(data('etc'), 'passwd'), 'utf8')).toContain('root:x:0:0');
    // Layer 2's /etc/motd has a user.* attribute and a hard link, /etc/motd.hardlink.
    expect(lgetxattr(join(data('etc'), 'motd'), 'user.tsrun.fixture')?.toString()).toBe('motd');
    expect(statSync(join(data('etc'), 'motd.hardlink')).ino).toBe(statSync(join(data('etc'), 'motd')).ino);
    expect(sh('ls -A /opt/opaque', '-v', 'opaque:/opt/opaque')).toBe(ok(t('run', '--rm', '--network', 'none', image, 'ls', '-A', '/opt/opaque')));
    // Links stay links, modes stay.
    sh('true', '-v', 'bin:/bin');
    expect(lstatSync(join(data('bin'), 'sh')).isSymbolicLink()).toBe(true);
    expect(lstatSync(join(data('bin'), 'busybox')).mode & 0o777).toBe(0o755);
    // nocopy: left empty.
    expect(sh('ls -A /opt/opaque | wc -l', '-v', 'nocopy:/opt/opaque:nocopy').trim()).toBe('0');
    ok(t('volume', 'rm', 'nocopy'));
    // A volume with content is left as it is.
    sh('echo mine > /etc/only', '-v', 'etc:/etc');
    expect(sh('ls /etc/only; cat /etc/only', '-v', 'etc:/etc')).toBe('/etc/only\nmine\n');
  });

  it('refuses to remove a volume a container names; prune takes the unused ones', () => {
    const id = ok(t('create', '--network', 'none', '-v', 'busy:/data', image, 'true')).trim();
    const rm = t('volume', 'rm', 'busy');
    expect(rm.status).toBe(125);
    expect(rm.stderr).toContain(`remove busy: volume is in use - [${id.slice(0, 12)}]`);
    expect(JSON.parse(ok(t('inspect', '-f', '{{json .Mounts}}', id)))).toEqual([
      expect.objectContaining({ Type: 'volume', Name: 'busy', Source: data('busy'), Destination: '/data', RW: true }),
    ]);
    // As docker since 23.0: named volumes go only with -a.
    const kept = t('volume', 'prune', '-f');
    expect(kept.stdout).toBe('');
    expect(kept.stderr).toContain('-a removes the named ones no container uses');
    expect(ok(t('volume', 'ls', '-q')).split('\n').filter(Boolean)).toHaveLength(5);
    // system df counts them: 5 volumes, 1 named by a container, the others' data reclaimable.
    expect(ok(t('system', 'df')).split('\n').find((l) => l.startsWith('Local Volumes'))).toMatch(/^Local Volumes\s+5\s+1\s+\d[\d.]*[kMG]?B\s+\d[\d.]*[kMG]?B \(\d+%\)$/);
    expect(ok(t('volume', 'prune', '-a', '-f')).split('\n').filter(Boolean).sort()).toEqual(['Deleted Volumes:', 'bin', 'etc', 'notes', 'opaque'].sort());
    expect(ok(t('volume', 'ls', '-q'))).toBe('busy\n');
    ok(t('rm', id));
    expect(ok(t('volume', 'rm', 'busy'))).toBe('busy\n');
    expect(existsSync(join(env.root, 'volumes', 'busy'))).toBe(false);
  });

  it('says what is wrong with a bad volume, and creates nothing', () => {
    for (const [args, why] of [
      [['run', '--rm', '-v', 'b@d:/x', image, 'true'], '"b@d" is neither an absolute host path nor a volume name'],
      [['run', '--rm', '-v', 'v1:/x/..', image, 'true'], 'cannot mount over the container root'],
      [['run', '--rm', '--mount', 'type=volume,source=v1,target=/.', image, 'true'], 'cannot mount over the container root'],
      [['volume', 'rm', 'nope'], 'no such volume: nope'],
      [['volume', 'create', '-x'], "unknown option '-x'"],
    ] as const) {
      const r = t(...args);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain(why);
    }
    expect(ok(t('volume', 'ls', '-q'))).toBe('');
    expect(ok(t('ps', '-aq'))).toBe('');
  });
});
