// `tsrun login` / `logout` with docker's credential helpers, through the CLI, against a real
// registry with htpasswd auth: the password goes to `docker-credential-<x> store`, never into
// config.json; `pull` gets it back with `get`; `logout` runs `erase`; a missing or failing
// helper fails the login and leaves config.json as it was.
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePrivileged, TestEnv } from './helpers/env.js';
import { buildImage, pushLayout, startRegistry, type BuiltImage, type TestRegistry } from './helpers/registry.js';

/** A helper that keeps one credential in <script>.stored and appends "<action>\t<stdin>" to <script>.calls. */
const KEEPER = `#!/bin/sh
input=$(/bin/cat)
printf '%s\\t%s\\n' "$1" "$input" >> "$0.calls"
case "$1" in
  store) printf '%s' "$input" > "$0.stored" ;;
  get) if [ -f "$0.stored" ]; then /bin/cat "$0.stored"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  erase) if [ -f "$0.stored" ]; then /bin/rm "$0.stored"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  list) echo '{}' ;;
  *) echo "unknown action $1"; exit 1 ;;
esac
`;

describePrivileged('login and logout through credential helpers', () => {
  let env: TestEnv;
  let reg: TestRegistry;
  let image: BuiltImage;
  let work: string;
  let n = 0;

  beforeAll(async () => {
    env = new TestEnv('login-helpers');
    work = await mkdtemp(join(tmpdir(), 'tsrun-login-helpers-'));
    reg = await startRegistry({ mode: 'basic' });
    image = await buildImage({ layers: [{ 'etc/os-release': 'ID=test\n' }] });
    await pushLayout(reg, image.layoutDir, 'app:latest');
  });
  afterAll(async () => {
    await reg?.stop();
    if (image) await rm(image.layoutDir, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
    await env?.cleanup();
  });

  /** A fresh DOCKER_CONFIG with `config` in it, and a bin dir first on PATH with the given helpers. */
  async function setup(config: unknown, helpers: Record<string, string>) {
    const dir = join(work, `case-${n++}`);
    const bin = join(dir, 'bin');
    const dockerDir = join(dir, 'docker');
    await mkdir(bin, { recursive: true });
    await mkdir(dockerDir);
    for (const [name, script] of Object.entries(helpers)) {
      await writeFile(join(bin, `docker-credential-${name}`), script);
      await chmod(join(bin, `docker-credential-${name}`), 0o755);
    }
    const file = join(dockerDir, 'config.json');
    await writeFile(file, JSON.stringify(config, null, 2), { mode: 0o600 });
    const vars = { DOCKER_CONFIG: dockerDir, PATH: `${bin}:${process.env.PATH}` };
    return {
      file,
      tsrun: (args: string[], input?: string) => env.run(args, { env: vars, ...(input !== undefined && { input }) }),
      login: (password = reg.password!) => env.run(['login', '-u', reg.user!, '--password-stdin', reg.host], { env: vars, input: `${password}\n` }),
      calls: async (name: string) => {
        const text = await readFile(join(bin, `docker-credential-${name}.calls`), 'utf8').catch(() => '');
        return text.split('\n').filter(Boolean).map((l) => l.split('\t'));
      },
    };
  }

  it('credsStore: login runs `store`, config.json keeps no secret, pull runs `get`, logout runs `erase`', async () => {
    const s = await setup({ credsStore: 'keeper', psFormat: 'table' }, { keeper: KEEPER });
    const r = s.login();
    expect(r.stderr).not.toMatch(/error|unencrypted/i);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`Credentials saved in docker-credential-keeper (the "credsStore" of ${s.file})`);
    expect(await s.calls('keeper')).toEqual([['store', JSON.stringify({ ServerURL: reg.host, Username: reg.user, Secret: reg.password })]]);
    const text = await readFile(s.file, 'utf8');
    expect(text).not.toContain(reg.password!);
    expect(text).not.toContain(Buffer.from(`${reg.user}:${reg.password}`).toString('base64'));
    expect(JSON.parse(text)).toEqual({ credsStore: 'keeper', psFormat: 'table', auths: { [reg.host]: {} } });
    expect((await stat(s.file)).mode & 0o777).toBe(0o600);

    const pulled = s.tsrun(['pull', `${reg.host}/app`]);
    expect(pulled.stderr).not.toMatch(/error|unauthorized/i);
    expect(pulled.status).toBe(0);
    expect((await s.calls('keeper')).at(-1)).toEqual(['get', reg.host]);

    const out = s.tsrun(['logout', reg.host]);
    expect(out.status).toBe(0);
    expect(out.stdout).toBe(`Removing login credentials for ${reg.host}\n`);
    expect((await s.calls('keeper')).at(-1)).toEqual(['erase', reg.host]);
    expect(JSON.parse(await readFile(s.file, 'utf8')).auths).toEqual({});
    // The helper has nothing any more: the pull is anonymous, and refused.
    const refused = s.tsrun(['pull', `${reg.host}/app:latest`]);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(/tsrun login/);
  });

  it("credHelpers for the registry is used rather than credsStore", async () => {
    const s = await setup({ credsStore: 'keeper', credHelpers: { [reg.host]: 'perreg' } }, { keeper: KEEPER, perreg: KEEPER });
    const r = s.login();
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('Credentials saved in docker-credential-perreg (the "credHelpers"');
    expect((await s.calls('perreg')).map((c) => c[0])).toEqual(['store']);
    expect(await s.calls('keeper')).toEqual([]);
    expect(JSON.parse(await readFile(s.file, 'utf8')).auths).toEqual({ [reg.host]: {} });
  });

  it('a missing helper fails the login, naming docker-credential-<name>; config.json is unchanged byte for byte', async () => {
    const s = await setup({ credsStore: 'nosuch-helper', auths: { 'other.example': { auth: 'eDp5' } } }, {});
    const before = await readFile(s.file);
    const r = s.login();
    expect(r.status).not.toBe(0);
    expect(r.stdout).not.toContain('Login Succeeded');
    expect(r.stderr).toContain(
      `tsrun: login to ${reg.host}: error storing credentials in docker-credential-nosuch-helper (the "credsStore" of ${s.file}): ` +
        `exec: "docker-credential-nosuch-helper": executable file not found in $PATH\n`,
    );
    expect(await readFile(s.file)).toEqual(before);
  });

  it('a helper that exits non-zero fails the login with what it said; config.json is unchanged', async () => {
    const locked = '#!/bin/sh\n/bin/cat >/dev/null\necho "error: the keychain is locked"\nexit 2\n';
    const s = await setup({ credsStore: 'locked' }, { locked });
    const before = await readFile(s.file);
    const r = s.login();
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('docker-credential-locked');
    expect(r.stderr).toContain('exit status 2: error: the keychain is locked');
    expect(await readFile(s.file)).toEqual(before);
  });

  it('a helper that cannot erase fails the logout and keeps the entry', async () => {
    const stuck = '#!/bin/sh\n/bin/cat >/dev/null\necho "the keyring daemon is not running"\nexit 1\n';
    const s = await setup({ credsStore: 'stuck', auths: { [reg.host]: {} } }, { stuck });
    const before = await readFile(s.file);
    const r = s.tsrun(['logout', reg.host]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(`logout from ${reg.host}: error erasing credentials in docker-credential-stuck`);
    expect(r.stderr).toContain('the keyring daemon is not running');
    expect(await readFile(s.file)).toEqual(before);
  });
});
