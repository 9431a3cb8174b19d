// vagrant/provision.sh, for real, on this machine: run twice, isolated from the system (its
// own install prefix, bin dir, config file, registry state and port; the registry as a
// background process, not a service). The first run does the work; the second must find
// everything in place and change nothing. Then the registry answers, and the tsrun it
// installed pulls from it. The first run needs the npm registry (it runs `npm ci`).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describePrivileged, repoRoot } from './helpers/env.js';
import { freePort } from './helpers/registry.js';

const script = join(repoRoot, 'vagrant', 'provision.sh');

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

// What can be checked without a hypervisor: the Vagrantfile (with `vagrant validate` where
// Vagrant is installed, else Ruby's syntax check), and the shell scripts.
describe('vagrant/ files', () => {
  // One test, so that CI (which refuses skipped tests) checks whichever this machine allows.
  it('the Vagrantfile validates (vagrant validate, or Ruby\'s syntax check without Vagrant)', () => {
    if (!has('vagrant')) {
      if (!has('ruby')) throw new Error('neither vagrant nor ruby is installed: the Vagrantfile cannot be checked');
      expect(execFileSync('ruby', ['-c', join(repoRoot, 'vagrant', 'Vagrantfile')], { encoding: 'utf8' })).toContain('Syntax OK');
      return;
    }
    // Vagrant keeps its state in vagrant/.vagrant unless told otherwise.
    const dotfile = mkdtempSync(join(tmpdir(), 'tsrun-vagrant-'));
    try {
      const out = execFileSync('vagrant', ['validate', '--ignore-provider'], {
        cwd: join(repoRoot, 'vagrant'),
        encoding: 'utf8',
        env: { ...process.env, VAGRANT_DOTFILE_PATH: dotfile },
      });
      expect(out).toContain('Vagrantfile validated successfully');
    } finally {
      rmSync(dotfile, { recursive: true, force: true });
    }
  }, 60_000);

  it('the scripts parse, and pass shellcheck where it is installed', () => {
    // The Vagrant box's, and the README's main job and CI's, which run them.
    const scripts = ['vagrant/provision.sh', 'vagrant/ci.sh', 'scripts/setup-and-demo.sh', '.ci/run'].map((f) => join(repoRoot, f));
    for (const f of scripts) execFileSync('bash', ['-n', f]);
    if (has('shellcheck')) execFileSync('shellcheck', scripts);
  });
});
const PEER = '192.168.56.11:5000';

/** Every path under `dir` with its type, size, mode, mtime and link target: "nothing changed" means this is equal. */
function snapshot(dir: string, out: string[] = [], rel = ''): string[] {
  for (const name of readdirSync(join(dir, rel)).sort()) {
    const p = join(rel, name);
    const st = lstatSync(join(dir, p));
    const link = st.isSymbolicLink() ? ` -> ${readlinkSync(join(dir, p))}` : '';
    out.push(`${p} ${st.mode.toString(8)} ${st.size} ${st.mtimeMs}${link}`);
    if (st.isDirectory()) snapshot(dir, out, p);
  }
  return out;
}

describePrivileged('vagrant/provision.sh', () => {
  let tmp: string;
  let addr: string;
  let env: NodeJS.ProcessEnv;
  const runs: Array<{ status: number | null; output: string }> = [];
  const snapshots: string[][] = [];

  const provision = (...args: string[]) => {
    const r = spawnSync('bash', [script, ...args], { encoding: 'utf8', env, timeout: 600_000 });
    return { status: r.status, output: `${r.stdout}${r.stderr}` };
  };
  const state = () => [
    ...snapshot(tmp).filter((l) => !l.startsWith('store')),
    `config: ${readFileSync(join(tmp, 'etc', 'config.json'), 'utf8')}`,
    `pid: ${readFileSync(join(tmp, 'state', 'registry.pid'), 'utf8')}`,
  ];

  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'tsrun-test-provision-'));
    // A copy of the checkout, so that edits made meanwhile do not count as changes.
    mkdirSync(join(tmp, 'src'));
    execFileSync('sh', ['-c', `tar -C "$1" --exclude=./.git --exclude=./node_modules --exclude=./dist --exclude=./native/build --exclude=./vagrant/.vagrant -cf - . | tar -C "$2" -xf -`, 'sh', repoRoot, join(tmp, 'src')]);
  });

  afterAll(() => {
    if (env) provision('--stop');
    rmSync(tmp, { recursive: true, force: true });
  });

  it('provisions a machine the first time', async () => {
    addr = `127.0.0.1:${await freePort()}`;
    env = {
      ...process.env,
      TSRUN_PROVISION_SOURCE: join(tmp, 'src'),
      TSRUN_PROVISION_PREFIX: join(tmp, 'opt', 'tsrun'),
      TSRUN_PROVISION_BIN_DIR: join(tmp, 'bin'),
      TSRUN_PROVISION_CONFIG: join(tmp, 'etc', 'config.json'),
      TSRUN_PROVISION_STATE: join(tmp, 'state'),
      TSRUN_PROVISION_REGISTRY_ADDR: addr,
      TSRUN_PROVISION_PEER: PEER,
      TSRUN_PROVISION_SERVICES: '0',
    };
    const r = provision();
    runs.push(r);
    expect(r.status, r.output).toBe(0);
    expect(r.output).toMatch(/^changed: built tsrun from /m);
    expect(r.output).toMatch(/^changed: started the registry on /m);
    expect(r.output).toMatch(/^changed: pushed busybox:latest to /m);
    snapshots.push(state());
  }, 600_000);

  it('changes nothing the second time', () => {
    expect(runs).toHaveLength(1);
    const r = provision();
    expect(r.status, r.output).toBe(0);
    expect(r.output.split('\n').filter((l) => l.startsWith('changed:'))).toEqual([]);
    expect(r.output).toMatch(/^provision: done, 0 change\(s\)/m);
    expect(state()).toEqual(snapshots[0]);
  }, 120_000);

  it('leaves a registry that answers, and a tsrun that pulls from it', async () => {
    expect(snapshots).toHaveLength(1);
    const pid = Number(readFileSync(join(tmp, 'state', 'registry.pid'), 'utf8'));
    expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8')).toContain('docker-registry');
    const catalog = await fetch(`http://${addr}/v2/_catalog`);
    expect(catalog.status).toBe(200);
    expect(await catalog.json()).toEqual({ repositories: ['busybox'] });

    const tsrun = join(tmp, 'bin', 'tsrun');
    expect(readlinkSync(tsrun)).toBe(join(tmp, 'opt', 'tsrun', 'dist', 'tsrun.cjs'));
    const run = (...args: string[]) =>
      execFileSync(tsrun, ['--root', join(tmp, 'store'), ...args], { encoding: 'utf8', env: { ...process.env, TSRUN_CONFIG: join(tmp, 'etc', 'config.json') } });
    expect(run('pull', '-q', `${addr}/busybox:latest`).trim()).toBe(`${addr}/busybox:latest`);
    expect(run('images')).toMatch(new RegExp(`^${addr.replace(/\./g, '\\.')}/busybox\\s+latest\\s`, 'm'));
  }, 120_000);

  it("declares the peer's registry insecure in the config file it wrote", () => {
    expect(JSON.parse(readFileSync(join(tmp, 'etc', 'config.json'), 'utf8'))).toEqual({ 'insecure-registries': [PEER] });
  });

  it('stops the registry it started', () => {
    const pid = Number(readFileSync(join(tmp, 'state', 'registry.pid'), 'utf8'));
    const r = provision('--stop');
    expect(r.status, r.output).toBe(0);
    expect(existsSync(`/proc/${pid}`)).toBe(false);
    expect(existsSync(join(tmp, 'state', 'registry.pid'))).toBe(false);
  });
});
