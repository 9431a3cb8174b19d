// The registry timeout: where it is read from (TSRUN_REGISTRY_TIMEOUT, "registry-timeout" in the
// config file, the default), what a bad value says, and the clock (Patience) that retries share.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { readConfig, type TsrunConfig } from '../../src/registry-client/config.js';
import { InsecurePolicy } from '../../src/registry-client/insecure.js';
import { MIN_PROGRESS, Patience, uploadWithProgress, watchBody, type BodyWatch } from '../../src/registry-client/patience.js';
import { howToWaitLonger, registryTimeout, seconds, type RegistryTimeout } from '../../src/registry-client/timeout.js';

const dir = mkdtempSync(join(tmpdir(), 'tsrun-registry-timeout-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const config = (values: Record<string, unknown> = {}, path = '/etc/tsrun/config.json'): TsrunConfig => ({ path, exists: true, values });
const none: TsrunConfig = { path: '/etc/tsrun/config.json', exists: false, values: {} };

describe('registryTimeout', () => {
  it('is 45 s by default', () => {
    expect(registryTimeout({}, none)).toEqual({ ms: 45_000, source: 'default', configFile: '/etc/tsrun/config.json' });
  });

  it('reads TSRUN_REGISTRY_TIMEOUT in seconds, decimals allowed', () => {
    expect(registryTimeout({ TSRUN_REGISTRY_TIMEOUT: '2.5' }, none)).toMatchObject({ ms: 2500, source: 'env' });
    expect(registryTimeout({ TSRUN_REGISTRY_TIMEOUT: ' 120 ' }, none)).toMatchObject({ ms: 120_000, source: 'env' });
    // Set but empty, as `TSRUN_REGISTRY_TIMEOUT= tsrun pull` does: not set.
    expect(registryTimeout({ TSRUN_REGISTRY_TIMEOUT: '' }, none)).toMatchObject({ ms: 45_000, source: 'default' });
  });

  it('reads "registry-timeout" from the config file', () => {
    expect(registryTimeout({}, config({ 'registry-timeout': 90 }, '/x/config.json'))).toEqual({ ms: 90_000, source: 'config', configFile: '/x/config.json' });
    expect(registryTimeout({}, config({ 'registry-timeout': 0.5 }))).toMatchObject({ ms: 500, source: 'config' });
  });

  it('lets the variable win over the file, even over a bad value there', () => {
    expect(registryTimeout({ TSRUN_REGISTRY_TIMEOUT: '5' }, config({ 'registry-timeout': 90 }))).toMatchObject({ ms: 5000, source: 'env' });
    expect(registryTimeout({ TSRUN_REGISTRY_TIMEOUT: '5' }, config({ 'registry-timeout': 'soon' }))).toMatchObject({ ms: 5000, source: 'env' });
  });

  it('refuses a variable that is not a number of seconds, naming it', () => {
    for (const bad of ['abc', '0', '0.0001', '-1', '1e3', '45s', '0x10', '86401', 'none']) {
      expect(() => registryTimeout({ TSRUN_REGISTRY_TIMEOUT: bad }, none), bad).toThrow(
        expect.objectContaining({
          code: 'EINVAL_FLAG',
          message: `TSRUN_REGISTRY_TIMEOUT: expected a number of seconds greater than 0 and at most 86400, such as 45 or 2.5, got ${JSON.stringify(bad)}`,
        }),
      );
    }
  });

  it('refuses a config value that is not a positive number, naming the file and the key', () => {
    for (const bad of ['45', 0, -3, null, true, [45], 1e9]) {
      expect(() => registryTimeout({}, config({ 'registry-timeout': bad }, '/x/config.json')), String(bad)).toThrow(
        expect.objectContaining({ code: 'EINVAL_FLAG', message: expect.stringMatching(/^\/x\/config\.json: "registry-timeout": expected a number of seconds greater than 0/) }),
      );
    }
  });

  it('tells how to wait longer, and where the value in force comes from', () => {
    const t = (ms: number, source: RegistryTimeout['source']): RegistryTimeout => ({ ms, source, configFile: '/etc/tsrun/config.json' });
    const fix = 'to wait longer, set TSRUN_REGISTRY_TIMEOUT=<seconds> or "registry-timeout": <seconds> in /etc/tsrun/config.json';
    expect(howToWaitLonger(t(45_000, 'default'))).toBe(`${fix} (now 45 s, the default)`);
    expect(howToWaitLonger(t(2500, 'env'))).toBe(`${fix} (now 2.5 s, from TSRUN_REGISTRY_TIMEOUT)`);
    expect(howToWaitLonger(t(90_000, 'config'))).toBe(`${fix} (now 90 s, from /etc/tsrun/config.json)`);
    expect(seconds(1234)).toBe('1.2 s');
  });
});

describe('readConfig', () => {
  it('reads the file once for every key, and says when it is absent, broken or not an object', async () => {
    const path = join(dir, 'config.json');
    writeFileSync(path, JSON.stringify({ 'insecure-registries': ['10.0.0.5:5000'], 'registry-timeout': 60 }));
    const c = await readConfig(path);
    expect(c).toEqual({ path, exists: true, values: { 'insecure-registries': ['10.0.0.5:5000'], 'registry-timeout': 60 } });
    expect(registryTimeout({}, c)).toMatchObject({ ms: 60_000, source: 'config', configFile: path });
    // The policy takes the same reading (TSRUN_CONFIG points nowhere: nothing else is read).
    const policy = await InsecurePolicy.load([], { env: { TSRUN_CONFIG: join(dir, 'absent.json') }, config: c, implicitLoopback: false });
    expect(await policy.isInsecure('10.0.0.5:5000')).toBe(true);

    expect(await readConfig(join(dir, 'absent.json'))).toEqual({ path: join(dir, 'absent.json'), exists: false, values: {} });
    writeFileSync(join(dir, 'broken.json'), '{ "registry-timeout": ');
    await expect(readConfig(join(dir, 'broken.json'))).rejects.toMatchObject({ code: 'EINVAL_FLAG', message: expect.stringMatching(/^parse .*broken\.json: /) });
    writeFileSync(join(dir, 'list.json'), '[60]');
    await expect(readConfig(join(dir, 'list.json'))).rejects.toMatchObject({ code: 'EINVAL_FLAG', message: expect.stringMatching(/list\.json: expected a JSON object/) });
  });
});

describe('Patience', () => {
  const timeout: RegistryTimeout = { ms: 10_000, source: 'env', configFile: '/etc/tsrun/config.json' };
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it('counts time without progress; progress restarts the clock', () => {
    const p = new Patience(timeout);
    vi.advanceTimersByTime(7000);
    expect(p.leftMs()).toBe(3000);
    p.progress();
    expect(p.leftMs()).toBe(10_000);
  });

  it('takes bytes as progress only a KiB at a time', () => {
    const p = new Patience(timeout);
    vi.advanceTimersByTime(4000);
    expect(p.received(MIN_PROGRESS - 1)).toBe(false);
    expect(p.leftMs()).toBe(6000);
    expect(p.received(1)).toBe(true);
    expect(p.leftMs()).toBe(10_000);
  });

  it('stops while tsrun gets a token, which has a clock of its own', async () => {
    const p = new Patience(timeout);
    vi.advanceTimersByTime(3000);
    const token = p.aside(() => new Promise((r) => setTimeout(r, 20_000)));
    await vi.advanceTimersByTimeAsync(20_000);
    await token;
    expect(p.leftMs()).toBe(7000);
  });

  it('says what the registry did: nothing, a trickle, or answers that are no progress', () => {
    const hint = 'to wait longer, set TSRUN_REGISTRY_TIMEOUT=<seconds> or "registry-timeout": <seconds> in /etc/tsrun/config.json (now 10 s, from TSRUN_REGISTRY_TIMEOUT)';
    const p = new Patience(timeout);
    expect(p.exhausted('GET u').message).toBe(`GET u: the registry sent nothing for 10 s; ${hint}`);
    p.received(100);
    expect(p.exhausted('GET u', ' after 5 of 9 bytes').message).toBe(`GET u: the registry sent less than 1 KiB in 10 s after 5 of 9 bytes; ${hint}`);
    p.noProgress('HTTP 503');
    expect(p.exhausted('GET u').message).toBe(`GET u: no progress from the registry for 10 s over 1 attempt (last: HTTP 503); ${hint}`);
    p.progress(); // an answer at last: what came before no longer counts
    expect(p.exhausted('GET u').message).toBe(`GET u: the registry sent nothing for 10 s; ${hint}`);
    expect(new Patience(timeout, { who: 'the token server' }).exhausted('GET t').message).toBe(`GET t: the token server sent nothing for 10 s; ${hint}`);
  });

  it('lets a retry wait only when the wait ends within the registry timeout', () => {
    const p = new Patience(timeout);
    vi.advanceTimersByTime(4000);
    expect(() => p.beforeRetry('GET https://r/v2/app/manifests/v1', 5999, 'HTTP 503')).not.toThrow();
    vi.advanceTimersByTime(5999);
    expect(() => p.beforeRetry('GET https://r/v2/app/manifests/v1', 1, 'HTTP 503')).toThrow(
      expect.objectContaining({
        code: 'ENETWORK',
        message:
          'GET https://r/v2/app/manifests/v1: no progress from the registry for 10 s over 2 attempts (last: HTTP 503), and trying again in 0 s ' +
          'would pass the registry timeout; to wait longer, set TSRUN_REGISTRY_TIMEOUT=<seconds> or "registry-timeout": <seconds> in /etc/tsrun/config.json (now 10 s, from TSRUN_REGISTRY_TIMEOUT)',
      }),
    );
    vi.advanceTimersByTime(1);
    expect(() => p.beforeRetry('GET https://r/v2/app/manifests/v1', 1, 'HTTP 503')).toThrow(
      /: no progress from the registry for 10 s over 2 attempts \(last: HTTP 503\); to wait longer/,
    );
  });

  it('aborts an attempt when the time left runs out, unless progress came or it was stopped', async () => {
    const p = new Patience(timeout);
    vi.advanceTimersByTime(6000);
    const w = p.watch('GET https://r/v2/');
    const expired = w.expired.catch((e: Error) => e);
    vi.advanceTimersByTime(3999);
    expect(w.signal.aborted).toBe(false);
    p.progress(); // an upload's bytes: a full registry timeout again
    vi.advanceTimersByTime(9999);
    expect(w.signal.aborted).toBe(false);
    vi.advanceTimersByTime(1);
    expect(w.signal.aborted).toBe(true);
    expect(w.signal.reason).toMatchObject({ code: 'ENETWORK', message: expect.stringMatching(/^GET https:\/\/r\/v2\/: the registry sent nothing for 10 s; to wait longer/) });
    expect(await expired).toBe(w.signal.reason);

    const stopped = p.watch('GET https://r/v2/');
    stopped.stop();
    vi.advanceTimersByTime(60_000);
    expect(stopped.signal.aborted).toBe(false);
  });

  it("passes the caller's abort through, even once the headers are in", async () => {
    const outer = new AbortController();
    const w = new Patience(timeout).watch('GET https://r/v2/', outer.signal);
    w.stop();
    outer.abort(new Error('cancelled'));
    expect(w.signal.reason).toEqual(new Error('cancelled'));
    await expect(w.expired).rejects.toThrow('cancelled');
  });
});

describe('uploadWithProgress', () => {
  it('sends a large buffer in slices, each one progress; a small one as it is', async () => {
    const p = new Patience({ ms: 10_000, source: 'default', configFile: '/etc/tsrun/config.json' });
    const progress = vi.spyOn(p, 'progress');
    const big = Buffer.alloc(200 * 1024, 7);
    const stream = uploadWithProgress(big, p) as Readable;
    const parts: Buffer[] = [];
    for await (const c of stream) parts.push(c as Buffer);
    expect(parts.map((c) => c.length)).toEqual([65536, 65536, 65536, 8192]);
    expect(Buffer.concat(parts).equals(big)).toBe(true);
    expect(progress).toHaveBeenCalledTimes(4);
    const small = Buffer.from('{"schemaVersion":2}');
    expect(uploadWithProgress(small, p)).toBe(small);
  });
});

describe('watchBody', () => {
  const timeout: RegistryTimeout = { ms: 10_000, source: 'env', configFile: '/etc/tsrun/config.json' };
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  /** A body as undici gives it, watched against `p`; the registry pushes, tsrun reads. */
  function body(p: Patience, w: Partial<BodyWatch> = {}, highWaterMark = 64 * 1024): Readable {
    const b = new Readable({ read() {}, highWaterMark });
    b.on('error', () => {});
    watchBody(b, p, { what: 'GET https://r/v2/app/manifests/v1', answer: true, idleMs: timeout.ms, stalled: () => new Error('stalled'), ...w });
    return b;
  }
  const bytes = (n: number) => Buffer.alloc(n, 0x20);

  it('fails a body that trickles, with the clock’s error; a KiB restarts the clock', () => {
    const p = new Patience(timeout);
    const b = body(p);
    vi.advanceTimersByTime(1000);
    b.push(bytes(1000));
    vi.advanceTimersByTime(4000);
    b.push(bytes(24)); // 1 KiB in all: progress, at 5 s
    for (let i = 0; i < 9; i++) (b.push(bytes(100)), vi.advanceTimersByTime(1000)); // 900 bytes in 9 s
    expect(b.destroyed).toBe(false);
    vi.advanceTimersByTime(999);
    expect(b.destroyed).toBe(false);
    vi.advanceTimersByTime(1);
    expect(b.errored?.message).toMatch(/^GET https:\/\/r\/v2\/app\/manifests\/v1: the registry sent less than 1 KiB in 10 s; to wait longer/);
  });

  it('takes the end of a body as progress, however small', () => {
    const p = new Patience(timeout);
    const b = body(p);
    vi.advanceTimersByTime(9000);
    b.push('{}');
    b.push(null);
    expect(p.leftMs()).toBe(10_000);
    vi.advanceTimersByTime(60_000);
    expect(b.errored).toBeNull();
  });

  it('counts what undici pushed before the watch began', () => {
    const p = new Patience(timeout);
    vi.advanceTimersByTime(9000);
    const small = new Readable({ read() {} });
    small.push('{}');
    small.push(null);
    watchBody(small, p, { what: 'GET u', answer: true, idleMs: timeout.ms, stalled: () => new Error('stalled') });
    expect(p.leftMs()).toBe(10_000);
  });

  it('stops the clock while tsrun is the slow one (the buffer is full), and restarts it when tsrun reads', () => {
    const p = new Patience(timeout);
    const b = body(p, {}, 2048);
    expect(b.push(bytes(2048))).toBe(false);
    vi.advanceTimersByTime(60_000);
    expect(b.destroyed).toBe(false);
    b.read(); // tsrun reads and asks for more: the clock runs again, from now
    vi.advanceTimersByTime(9999);
    expect(b.destroyed).toBe(false);
    vi.advanceTimersByTime(1);
    expect(b.errored?.message).toMatch(/the registry sent nothing for 10 s/);
  });

  it('gives the body of an answer after a back-off the whole timeout, and a 503’s what is left', () => {
    const p = new Patience(timeout);
    vi.advanceTimersByTime(8000); // a back-off
    const drained = body(p, { answer: false });
    vi.advanceTimersByTime(2000);
    expect(drained.errored?.message).toMatch(/the registry sent nothing for 10 s/);

    const q = new Patience(timeout);
    vi.advanceTimersByTime(8000);
    q.progress(); // the answer's headers (transport.ts)
    const b = body(q);
    vi.advanceTimersByTime(9999);
    expect(b.destroyed).toBe(false);
    vi.advanceTimersByTime(1);
    expect(b.destroyed).toBe(true);
  });

  it('fails a body on the connection’s shorter limit with the stalled error (a blob resumes), the clock running on', () => {
    const p = new Patience(timeout);
    const b = body(p, { idleMs: 2000 });
    vi.advanceTimersByTime(1000);
    b.push(bytes(500));
    vi.advanceTimersByTime(1000);
    expect(b.errored).toEqual(new Error('stalled'));
    expect(p.leftMs()).toBe(8000);
  });

  it('never takes the body of an answer that is no progress (a 503, a redirect) as progress', () => {
    const p = new Patience(timeout);
    p.noProgress('HTTP 503');
    const b = body(p, { answer: false });
    vi.advanceTimersByTime(1000);
    b.push(bytes(5000));
    expect(p.leftMs()).toBe(9000);
    vi.advanceTimersByTime(9000);
    expect(b.errored?.message).toMatch(/: no progress from the registry for 10 s over 1 attempt \(last: HTTP 503\); /);
  });
});
