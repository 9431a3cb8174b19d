// Anonymous volumes, as docker makes them: `-v /path` and each path of the image's VOLUME that no
// mount of the run covers get a volume named by 64 random hex digits, filled from the image;
// `rm -v` and `run --rm` remove them (never a named one), plain `rm` leaves them for
// `volume prune`, and a create killed with -9 leaves none behind once `system check --repair` ran.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePrivileged, TestEnv, type Result } from './helpers/env.js';
import { loadBusybox } from './helpers/images.js';

const HEX64 = /^[0-9a-f]{64}$/;

describePrivileged('anonymous volumes', () => {
  const env = new TestEnv('anonvol');
  let work = '';
  const t = (args: string[], extraEnv: NodeJS.ProcessEnv = {}): Result => env.run(args, { timeout: 120_000, env: extraEnv });
  const ok = (...args: string[]): string => {
    const r = t(args);
    expect(r.stderr, `tsrun ${args.join(' ')}`).toBe('');
    expect(r.status, `tsrun ${args.join(' ')}`).toBe(0);
    return r.stdout;
  };
  const volumes = () => ok('volume', 'ls', '-q').split('\n').filter(Boolean).sort();
  const mounts = (name: string) => JSON.parse(ok('inspect', '-f', '{{json .Mounts}}', name)) as Array<Record<string, unknown>>;
  const data = (name: string) => join(env.root, 'volumes', name, '_data');
  /** The image's VOLUME /data, with a file in it to copy up. */
  const SEEDED = 'seeded:v1';

  beforeAll(() => {
    loadBusybox(env);
    work = mkdtempSync(join(tmpdir(), 'tsrun-anonvol-'));
    const dir = join(work, 'seeded');
    mkdirSync(dir);
    writeFileSync(join(dir, 'Dockerfile'), 'FROM busybox\nRUN mkdir -p /data && echo seed > /data/seed\nVOLUME /data\n');
    ok('build', '-q', '-t', SEEDED, dir);
  });
  afterAll(async () => {
    const ids = t(['ps', '-aq']).stdout.split('\n').filter(Boolean);
    if (ids.length) t(['rm', '-f', ...ids]);
    t(['volume', 'prune', '-a', '-f']);
    rmSync(work, { recursive: true, force: true });
    await env.cleanup();
  });

  it('run -v /data: a volume named by 64 hex digits, in volume ls and in inspect Mounts; in use, it cannot be removed', () => {
    // The build's own step containers made none, though its image has a VOLUME.
    expect(volumes()).toEqual([]);
    ok('run', '--name', 'anon', '--network', 'none', '-v', '/data', 'busybox', 'sh', '-c', 'echo mine > /data/f');
    const [name] = volumes();
    expect(name).toMatch(HEX64);
    expect(volumes()).toHaveLength(1);
    expect(readFileSync(join(data(name!), 'f'), 'utf8')).toBe('mine\n');
    expect(mounts('anon')).toEqual([
      expect.objectContaining({ Type: 'volume', Name: name, Source: data(name!), Destination: '/data', Driver: 'local', RW: true }),
    ]);
    // Labelled as docker labels it (what volume prune without -a looks for).
    expect(JSON.parse(ok('volume', 'inspect', name!))[0].Labels).toEqual({ 'com.docker.volume.anonymous': '' });
    const rm = t(['volume', 'rm', name!]);
    expect(rm.status).toBe(125);
    expect(rm.stderr).toContain(`remove ${name}: volume is in use`);
    ok('rm', '-v', 'anon');
    expect(volumes()).toEqual([]);
  });

  it("the image's VOLUME gets one, with the image's files copied up", () => {
    expect(ok('run', '--name', 'img', '--network', 'none', SEEDED, 'cat', '/data/seed')).toBe('seed\n');
    const [name] = volumes();
    expect(name).toMatch(HEX64);
    expect(readFileSync(join(data(name!), 'seed'), 'utf8')).toBe('seed\n');
    expect(mounts('img')).toEqual([expect.objectContaining({ Type: 'volume', Name: name, Source: data(name!), Destination: '/data', RW: true })]);
    // Each container its own.
    ok('create', '--name', 'img2', '--network', 'none', SEEDED, 'true');
    expect(volumes()).toHaveLength(2);
    ok('rm', '-v', 'img', 'img2');
    expect(volumes()).toEqual([]);
  });

  it("-v NAME:/data (or --tmpfs /data) covers the image's VOLUME: no anonymous volume", () => {
    expect(ok('run', '--name', 'named', '--network', 'none', '-v', 'mydata:/data', '-v', '/other', SEEDED, 'cat', '/data/seed')).toBe('seed\n');
    // One anonymous volume, for /other alone.
    const [other] = volumes().filter((v) => v !== 'mydata');
    expect(other).toMatch(HEX64);
    expect(volumes()).toEqual(['mydata', other].sort());
    expect(mounts('named')).toEqual([
      expect.objectContaining({ Type: 'volume', Name: 'mydata', Destination: '/data' }),
      expect.objectContaining({ Type: 'volume', Name: other, Destination: '/other' }),
    ]);
    ok('rm', '-v', 'named');
    expect(volumes()).toEqual(['mydata']);
    ok('run', '--rm', '--network', 'none', '--tmpfs', '/data', SEEDED, 'true');
    ok('run', '--rm', '--network', 'none', '-v', `${work}:/data`, SEEDED, 'true');
    expect(volumes()).toEqual(['mydata']);
    ok('volume', 'rm', 'mydata');
  });

  it('rm -v removes the anonymous volumes and keeps the named one', () => {
    ok('create', '--name', 'mixed', '--network', 'none', '-v', 'kept:/kept', '-v', '/anon', SEEDED, 'true');
    const anonymous = volumes().filter((v) => v !== 'kept');
    expect(anonymous).toHaveLength(2); // -v /anon and the image's /data
    for (const v of anonymous) expect(v).toMatch(HEX64);
    expect(mounts('mixed').map((m) => m.Destination).sort()).toEqual(['/anon', '/data', '/kept']);
    ok('rm', '-v', 'mixed');
    expect(volumes()).toEqual(['kept']);
    ok('volume', 'rm', 'kept');
  });

  it('run --rm leaves no volume behind', () => {
    expect(ok('run', '--rm', '--network', 'none', '-v', '/scratch', SEEDED, 'sh', '-c', 'ls /data; echo x > /scratch/x')).toBe('seed\n');
    expect(volumes()).toEqual([]);
    // A detached one, removed by its monitor's cleanup.
    const id = ok('run', '-d', '--rm', '--network', 'none', SEEDED, 'true').trim();
    for (let i = 0; i < 100 && ok('ps', '-aq', '--no-trunc').includes(id); i++) sleepSync(100);
    expect(ok('ps', '-aq', '--no-trunc')).not.toContain(id);
    expect(volumes()).toEqual([]);
  });

  it('plain rm keeps them; volume prune removes the unused anonymous ones, not the named ones', () => {
    ok('run', '--name', 'plain', '--network', 'none', '-v', 'stays:/stays', SEEDED, 'true');
    ok('rm', 'plain');
    const [anonymous] = volumes().filter((v) => v !== 'stays');
    expect(anonymous).toMatch(HEX64);
    expect(volumes()).toHaveLength(2);
    expect(ok('volume', 'prune', '-f')).toBe(`Deleted Volumes:\n${anonymous}\n`);
    expect(volumes()).toEqual(['stays']);
    ok('volume', 'rm', 'stays');
  });

  it('a run killed at create:dir-made: system check --repair leaves no anonymous volume behind', () => {
    const r = t(['run', '--network', 'none', '-v', '/data', SEEDED, 'true'], { TSRUN_CRASH_AT: 'create:dir-made' });
    expect(r.status, r.stderr).toBeNull(); // killed by its crash point
    // The create had made its volumes (the image's /data and /data from -v are one: /data).
    expect(volumes()).toHaveLength(1);
    expect(volumes()[0]).toMatch(HEX64);
    const check = t(['system', 'check', '--repair']);
    expect(check.stdout).toMatch(/half-made by a create that was killed \(repaired\)/);
    expect(volumes()).toEqual([]);
    expect(readdirSync(join(env.root, 'volumes')).filter((d) => d !== '.lock')).toEqual([]);
    expect(readdirSync(join(env.root, 'containers')).filter((d) => !d.startsWith('.'))).toEqual([]);
    expect(t(['system', 'check']).stdout).toBe('the store is consistent\n');
  });
});

/** The tests run tsrun synchronously: so do their waits. */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
