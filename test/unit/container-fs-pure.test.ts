// The data-in, data-out parts of cp, diff, export, commit, top, and the image extras.
import { describe, expect, it } from 'vitest';
import { splitCpArg } from '../../cli/cp.js';
import { topTable } from '../../cli/top.js';
import { applyChanges, containerConfig, words } from '../../src/container/commit.js';
import { pathIntent } from '../../src/container/cp.js';
import { comparePaths } from '../../src/container/diff.js';
import { cleanInRoot, failure, mountPointsOf } from '../../src/container/export.js';
import { devNumbers } from '../../src/overlay/walk.js';
import { parsePs } from '../../src/container/top.js';
import { TsrunError } from '../../src/errors.js';
import { diskUsage, humanSize, reclaimableCell, type ContainerRef } from '../../src/image/prune.js';
import type { StoredImage } from '../../src/image/store.js';
import type { ContainerOptions } from '../../src/namespaces/options.js';

describe('cp arguments', () => {
  it('splits CONTAINER:PATH as docker does', () => {
    expect(splitCpArg('c1:/etc/passwd')).toEqual({ container: 'c1', path: '/etc/passwd' });
    expect(splitCpArg('c1:')).toEqual({ container: 'c1', path: '/' });
    expect(splitCpArg('/abs/with:colon')).toEqual({ path: '/abs/with:colon' });
    expect(splitCpArg('./rel:colon')).toEqual({ path: './rel:colon' });
    expect(splitCpArg('plain')).toEqual({ path: 'plain' });
  });

  it('reads a trailing / and /. as docker does', () => {
    expect(pathIntent('/a/b')).toEqual({ trailingSlash: false, contents: false });
    expect(pathIntent('/a/b/')).toEqual({ trailingSlash: true, contents: false });
    expect(pathIntent('/a/b/.')).toEqual({ trailingSlash: false, contents: true });
    expect(pathIntent('.')).toEqual({ trailingSlash: false, contents: true });
  });

  it('cleans container paths lexically, never above the root', () => {
    expect(cleanInRoot('/')).toBe('');
    expect(cleanInRoot('/a/./b/../c/')).toBe('a/c');
    expect(cleanInRoot('../../etc/shadow')).toBe('etc/shadow');
    expect(cleanInRoot('a//b')).toBe('a/b');
  });
});

describe('export helpers', () => {
  it('reads mount points from mountinfo, unescaping octal', () => {
    const info = [
      '600 500 0:50 / / rw,relatime - overlay overlay rw,lowerdir=l/A',
      '601 600 0:51 / /proc rw,nosuid - proc proc rw',
      '602 600 8:1 /data/with\\040space /vol/with\\040space rw - ext4 /dev/sda1 rw',
      '',
    ].join('\n');
    expect([...mountPointsOf(info)]).toEqual(['proc', 'vol/with space']);
  });

  it('splits dev_t like glibc', () => {
    expect(devNumbers(0)).toEqual({ major: 0, minor: 0 });
    expect(devNumbers((1 << 8) | 3)).toEqual({ major: 1, minor: 3 }); // /dev/null
    expect(devNumbers((136 << 8) | 0)).toEqual({ major: 136, minor: 0 });
  });

  it('turns system errors into messages without /proc/self/fd paths', () => {
    const err = Object.assign(new Error("EROFS: read-only file system, copyfile '/proc/self/fd/22' -> '/proc/self/fd/21/h1'"), { code: 'EROFS' });
    const e = failure(err, 'copying h1 to ro:/h1');
    expect(e).toBeInstanceOf(TsrunError);
    expect(e.message).toBe('copying h1 to ro:/h1: EROFS: read-only file system');
    const own = new TsrunError('ESTATE', 'kept');
    expect(failure(own, 'x')).toBe(own);
  });
});

describe('diff ordering', () => {
  it('sorts by path components, as a tree walk visits them', () => {
    const paths = ['/a-b', '/a/b', '/a', '/b', '/a/b/c', '/a.x'];
    expect(paths.sort(comparePaths)).toEqual(['/a', '/a/b', '/a/b/c', '/a-b', '/a.x', '/b']);
  });
});

describe('commit --change', () => {
  const base = { Env: ['PATH=/bin', 'A=1'], Cmd: ['sh'], WorkingDir: '/app' };

  it('applies CMD and ENTRYPOINT in exec and shell form', () => {
    expect(applyChanges(base, ['CMD ["echo", "hi"]']).Cmd).toEqual(['echo', 'hi']);
    expect(applyChanges(base, ['CMD echo $HOME']).Cmd).toEqual(['/bin/sh', '-c', 'echo $HOME']);
    expect(applyChanges(base, ['entrypoint ["/init"]']).Entrypoint).toEqual(['/init']);
  });

  it('applies ENV, LABEL, EXPOSE, VOLUME, WORKDIR, USER, STOPSIGNAL', () => {
    const c = applyChanges(base, [
      'ENV A=2 B="two words"',
      'ENV LEGACY value with spaces',
      'LABEL org.example.x=1 "quoted key"=v',
      'EXPOSE 80 53/udp',
      'VOLUME ["/data"]',
      'VOLUME /cache /logs',
      'WORKDIR sub',
      'USER nobody',
      'STOPSIGNAL SIGINT',
    ]);
    expect(c.Env).toEqual(['PATH=/bin', 'A=2', 'B=two words', 'LEGACY=value with spaces']);
    expect(c.Labels).toEqual({ 'org.example.x': '1', 'quoted key': 'v' });
    expect(c.ExposedPorts).toEqual({ '80/tcp': {}, '53/udp': {} });
    expect(c.Volumes).toEqual({ '/data': {}, '/cache': {}, '/logs': {} });
    expect(c.WorkingDir).toBe('/app/sub');
    expect(c).toMatchObject({ User: 'nobody', StopSignal: 'SIGINT' });
    expect(base.Env).toEqual(['PATH=/bin', 'A=1']); // not modified in place
  });

  it('refuses what docker refuses', () => {
    expect(() => applyChanges(base, ['RUN make'])).toThrow('RUN is not a valid change command');
    expect(() => applyChanges(base, ['CMD'])).toThrow('requires at least one argument');
    expect(() => applyChanges(base, ['EXPOSE eighty'])).toThrow('invalid port');
    expect(() => applyChanges(base, ['ONBUILD RUN x'])).toThrow('not supported');
  });

  it('splits words with quotes and escapes', () => {
    expect(words(`a "b c" 'd e' f\\ g k="v w"`)).toEqual(['a', 'b c', 'd e', 'f g', 'k=v w']);
    expect(words('  ')).toEqual([]);
    expect(words('""')).toEqual(['']);
  });

  it("starts from the container's config, as docker commit does", () => {
    const options = { args: ['sh', '-c', 'echo hi'], env: ['A=9', 'NEW=1'], workdir: '/w', user: '1000', publish: [{ hostIp: '', hostPort: 0, containerPort: 8080, protocol: 'tcp' }] } as unknown as ContainerOptions;
    const image = { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers' as const, diff_ids: [] }, config: { ...base, Entrypoint: ['/entry'], Labels: { l: '1' } } };
    expect(containerConfig(image, { options })).toEqual({
      Env: ['PATH=/bin', 'A=9', 'NEW=1'],
      Cmd: ['sh', '-c', 'echo hi'],
      Entrypoint: ['/entry'],
      WorkingDir: '/w',
      User: '1000',
      Labels: { l: '1' },
      ExposedPorts: { '8080/tcp': {} },
    });
    const noArgs = { args: [], env: [], entrypoint: '/other', publish: [] } as unknown as ContainerOptions;
    expect(containerConfig(image, { options: noArgs })).toMatchObject({ Entrypoint: ['/other'], Cmd: null });
  });
});

describe('top', () => {
  const ps = [
    'UID          PID    PPID  C STIME TTY          TIME CMD',
    'root           1       0  0 10:00 ?        00:00:01 /sbin/init',
    'root        4242    4241  0 10:01 ?        00:00:00 sleep 300 with args',
    'nobody      4243    4242  1 10:01 pts/0    00:00:00 sh -c x',
    '',
  ].join('\n');

  it('keeps the container\'s pids, and the whole command in the last column', () => {
    const r = parsePs(ps, new Set([4242, 4243]));
    expect(r.titles).toEqual(['UID', 'PID', 'PPID', 'C', 'STIME', 'TTY', 'TIME', 'CMD']);
    expect(r.processes).toEqual([
      ['root', '4242', '4241', '0', '10:01', '?', '00:00:00', 'sleep 300 with args'],
      ['nobody', '4243', '4242', '1', '10:01', 'pts/0', '00:00:00', 'sh -c x'],
    ]);
  });

  it('needs a PID column', () => {
    expect(() => parsePs('USER COMMAND\nroot x\n', new Set([1]))).toThrow('PID');
  });

  it("prints docker's table: columns at least 20 wide, padding 3", () => {
    expect(topTable(['PID', 'COMMAND'], [['42', 'sleep 300']])).toBe(`${'PID'.padEnd(20)}COMMAND\n${'42'.padEnd(20)}sleep 300\n`);
    const long = 'x'.repeat(25);
    expect(topTable(['A', 'B'], [[long, 'y']]).split('\n')[1]).toBe(`${long}   y`);
  });
});

describe('system df', () => {
  const layer = (n: number, size: number) => ({ chainId: `sha256:${String(n).repeat(64)}`, diffId: `sha256:${String(n).repeat(64)}`, size, dir: '', link: '' });
  const img = (id: string, layers: ReturnType<typeof layer>[]) => ({ id, layers, names: [], manifestDigest: id, repoDigests: [], added: '', size: 0, config: {} }) as unknown as StoredImage;
  const ctr = (imageId: string, active: boolean, sizeRw: number): ContainerRef => ({ id: 'c', name: 'c', imageId, lowerDirs: [], active, sizeRw });

  it('counts shared layers once and what unused images would free', () => {
    const images = [img('sha256:a', [layer(1, 1000), layer(2, 500)]), img('sha256:b', [layer(1, 1000), layer(3, 250)])];
    const rows = diskUsage(images, [ctr('sha256:a', true, 100), ctr('sha256:a', false, 40)]);
    expect(rows[0]).toEqual({ type: 'Images', total: 2, active: 1, size: 1750, reclaimable: 250 });
    expect(rows[1]).toEqual({ type: 'Containers', total: 2, active: 1, size: 140, reclaimable: 40 });
    expect(reclaimableCell(rows[0]!)).toBe('250B (14%)');
    expect(reclaimableCell(rows[2]!)).toBe('0B');
  });

  it("formats sizes as go-units HumanSize (4 significant digits)", () => {
    expect(humanSize(0)).toBe('0B');
    expect(humanSize(999)).toBe('999B');
    expect(humanSize(2_146_000)).toBe('2.146MB');
    expect(humanSize(16_900)).toBe('16.9kB');
    expect(humanSize(1_000_000_000)).toBe('1GB');
  });
});
