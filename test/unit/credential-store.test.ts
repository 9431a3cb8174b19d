// Storing and erasing credentials through docker's credential helpers (credsStore, credHelpers),
// with fake `docker-credential-<name>` scripts that record each call and answer per the protocol.
import { chmod, lstat, mkdir, mkdtemp, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { callHelper, lookupCredential, removeCredential, storeCredential } from '../../src/registry-client/credentials.js';

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

let dir: string;
let bin: string;
let dockerDir: string;
let file: string;
let env: NodeJS.ProcessEnv;

async function helper(name: string, script: string): Promise<string> {
  const path = join(bin, `docker-credential-${name}`);
  await writeFile(path, script);
  await chmod(path, 0o755);
  return path;
}

/** The calls a fake helper recorded: [action, stdin]. */
async function calls(name: string): Promise<string[][]> {
  const text = await readFile(join(bin, `docker-credential-${name}.calls`), 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean).map((l) => l.split('\t'));
}

async function config(value: unknown): Promise<Buffer> {
  const bytes = Buffer.from(JSON.stringify(value, null, 2));
  await writeFile(file, bytes, { mode: 0o600 });
  return bytes;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsrun-credstore-test-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

let n = 0;
beforeEach(async () => {
  const case_ = join(dir, `case-${n++}`);
  bin = join(case_, 'bin');
  dockerDir = join(case_, 'docker');
  file = join(dockerDir, 'config.json');
  await mkdir(bin, { recursive: true });
  await mkdir(dockerDir);
  env = { DOCKER_CONFIG: dockerDir, PATH: bin };
});

describe('login through a credential helper', () => {
  it('credsStore: runs `store` with ServerURL, Username, Secret; config.json keeps an empty entry and no secret', async () => {
    await helper('keeper', KEEPER);
    await config({
      credsStore: 'keeper',
      auths: { 'https://reg.example:5000/v2/': { auth: Buffer.from('old:plain').toString('base64') }, 'other.example': { auth: 'eDp5' } },
      psFormat: 'table',
      proxies: { default: { httpProxy: 'http://p:3128' } },
    });
    const r = await storeCredential('reg.example:5000', { username: 'alice', password: 's3cret' }, env);
    expect(r.store).toEqual({ kind: 'helper', helper: 'keeper', setting: 'credsStore' });
    expect(await calls('keeper')).toEqual([['store', JSON.stringify({ ServerURL: 'reg.example:5000', Username: 'alice', Secret: 's3cret' })]]);
    const text = await readFile(file, 'utf8');
    expect(text).not.toContain('s3cret');
    expect(text).not.toContain(Buffer.from('alice:s3cret').toString('base64'));
    const written = JSON.parse(text);
    // The old plain-text password for the same registry goes too.
    expect(written.auths).toEqual({ 'reg.example:5000': {}, 'other.example': { auth: 'eDp5' } });
    expect(written.credsStore).toBe('keeper');
    expect(written.psFormat).toBe('table');
    expect(written.proxies).toEqual({ default: { httpProxy: 'http://p:3128' } });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    // And reading it back asks the helper.
    expect(await lookupCredential('reg.example:5000', { env })).toEqual({ username: 'alice', password: 's3cret' });
    expect((await calls('keeper')).at(-1)).toEqual(['get', 'reg.example:5000']);
  });

  it("Docker Hub's ServerURL is https://index.docker.io/v1/", async () => {
    await helper('keeper', KEEPER);
    await config({ credsStore: 'keeper' });
    await storeCredential('docker.io', { username: 'me', password: 'pw' }, env);
    expect(JSON.parse((await calls('keeper'))[0]![1]!).ServerURL).toBe('https://index.docker.io/v1/');
    expect(JSON.parse(await readFile(file, 'utf8')).auths).toEqual({ 'https://index.docker.io/v1/': {} });
  });

  it('credHelpers for the registry wins over credsStore; an empty credHelpers entry means the file', async () => {
    await helper('keeper', KEEPER);
    await helper('perreg', KEEPER);
    await config({ credsStore: 'keeper', credHelpers: { 'https://reg.example:5000': 'perreg', 'plain.example': '' } });
    const r = await storeCredential('reg.example:5000', { username: 'alice', password: 's3cret' }, env);
    expect(r.store).toMatchObject({ helper: 'perreg', setting: 'credHelpers' });
    expect(await calls('perreg')).toHaveLength(1);
    expect(await calls('keeper')).toEqual([]);

    await storeCredential('plain.example', { username: 'bob', password: 'pw' }, env);
    expect(await calls('keeper')).toEqual([]);
    expect(JSON.parse(await readFile(file, 'utf8')).auths['plain.example']).toEqual({ auth: Buffer.from('bob:pw').toString('base64') });
  });

  it('a missing helper fails, naming docker-credential-<name>, and leaves config.json byte for byte', async () => {
    const before = await config({ credsStore: 'nosuch', auths: { 'reg.example:5000': { auth: 'YTpi' } }, detachKeys: 'ctrl-e' });
    const err = await storeCredential('reg.example:5000', { username: 'alice', password: 's3cret' }, env).catch((e) => e);
    expect(err.code).toBe('EAUTH');
    expect(err.message).toBe(
      `error storing credentials in docker-credential-nosuch (the "credsStore" of ${file}): exec: "docker-credential-nosuch": executable file not found in $PATH`,
    );
    expect(await readFile(file)).toEqual(before);
  });

  it("a helper that fails: its exit status and what it said, cleaned of control characters; config.json untouched", async () => {
    await helper('locked', '#!/bin/sh\n/bin/cat >/dev/null\nprintf "keychain is locked\\033]0;pwned\\007\\n" \nexit 3\n');
    const before = await config({ credsStore: 'locked' });
    const err = await storeCredential('reg.example:5000', { username: 'alice', password: 's3cret' }, env).catch((e) => e);
    expect(err.message).toBe(`error storing credentials in docker-credential-locked (the "credsStore" of ${file}): exit status 3: keychain is locked ]0;pwned`);
    expect(await readFile(file)).toEqual(before);
  });

  it('a helper that echoes its input back does not put the password in our message', async () => {
    await helper('echo', '#!/bin/sh\necho "bad request: $(/bin/cat)"\nexit 1\n');
    await config({ credsStore: 'echo' });
    const err = await storeCredential('reg.example:5000', { username: 'alice', password: 's3cret-pw' }, env).catch((e) => e);
    expect(err.message).toContain('exit status 1: bad request: {"ServerURL":"reg.example:5000","Username":"alice","Secret":"<secret>"}');
    expect(err.message).not.toContain('s3cret-pw');
  });

  it('a config.json that is a symlink stays one', async () => {
    await helper('keeper', KEEPER);
    const real = join(dockerDir, 'dotfiles-config.json');
    await writeFile(real, JSON.stringify({ credsStore: 'keeper' }));
    await symlink(real, file);
    await storeCredential('reg.example:5000', { username: 'alice', password: 's3cret' }, env);
    expect((await lstat(file)).isSymbolicLink()).toBe(true);
    expect(await readlink(file)).toBe(real);
    expect(JSON.parse(await readFile(real, 'utf8')).auths).toEqual({ 'reg.example:5000': {} });
  });

  it('refuses a helper name that is a path', async () => {
    await config({ credsStore: '../../bin/sh' });
    await expect(storeCredential('reg.example:5000', { username: 'a', password: 'b' }, env)).rejects.toThrow(/not a credential helper name/);
  });
});

describe('logout through a credential helper', () => {
  it('runs `erase` with the server URL, then drops the entry', async () => {
    await helper('keeper', KEEPER);
    await config({ credsStore: 'keeper', auths: { 'other.example': { auth: 'eDp5' } } });
    await storeCredential('reg.example:5000', { username: 'alice', password: 's3cret' }, env);
    expect(await removeCredential('reg.example:5000', env)).toBe(true);
    expect((await calls('keeper')).at(-1)).toEqual(['erase', 'reg.example:5000']);
    expect(JSON.parse(await readFile(file, 'utf8')).auths).toEqual({ 'other.example': { auth: 'eDp5' } });
    // Nothing left anywhere: not logged in.
    expect(await removeCredential('reg.example:5000', env)).toBe(false);
  });

  it('a helper that cannot erase fails the logout and keeps the entry', async () => {
    await helper('stuck', '#!/bin/sh\n/bin/cat >/dev/null\necho "the keyring daemon is not running"\nexit 1\n');
    const before = await config({ credsStore: 'stuck', auths: { 'reg.example:5000': {} } });
    const err = await removeCredential('reg.example:5000', env).catch((e) => e);
    expect(err.message).toBe(`error erasing credentials in docker-credential-stuck (the "credsStore" of ${file}): exit status 1: the keyring daemon is not running`);
    expect(await readFile(file)).toEqual(before);
  });

  it('a missing helper fails the logout of a registry logged in through it', async () => {
    const before = await config({ credsStore: 'nosuch', auths: { 'reg.example:5000': {} } });
    await expect(removeCredential('reg.example:5000', env)).rejects.toThrow('exec: "docker-credential-nosuch": executable file not found in $PATH');
    expect(await readFile(file)).toEqual(before);
    expect(await removeCredential('never.example', env)).toBe(false);
  });
});

describe("a helper's output is not trusted", () => {
  it('more than 1 MiB is cut off with a clear error', async () => {
    await helper('chatty', '#!/bin/sh\n/bin/cat >/dev/null\nexec /usr/bin/head -c 3000000 /dev/zero\n');
    await config({ credsStore: 'chatty' });
    await expect(lookupCredential('reg.example:5000', { env })).rejects.toThrow('docker-credential-chatty get: more than 1048576 bytes of output');
  });

  it('a helper that does not answer is killed', async () => {
    await helper('hang', '#!/bin/sh\nexec /bin/sleep 30\n');
    const started = Date.now();
    await expect(callHelper('hang', 'store', '{}', env, 300)).rejects.toThrow('docker-credential-hang store: no answer within 0.3 s');
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('JSON that is not an object of strings is an error, not a crash', async () => {
    await helper('odd', '#!/bin/sh\n/bin/cat >/dev/null\necho null\n');
    await config({ credsStore: 'odd' });
    await expect(lookupCredential('reg.example:5000', { env })).rejects.toMatchObject({ code: 'EAUTH', message: expect.stringMatching(/without a string "Secret"/) });
  });
});
