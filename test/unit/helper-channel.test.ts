// HelperProcess's channel to the helper (src/namespaces/helper.ts), read by the addon's thread
// instead of a net.Socket: messages arrive whole and in order, a helper that goes away early
// ends every wait with an error (never a hang), and a released helper no longer holds tsrun's
// event loop. Stand-in helpers are shell scripts on fd 3, as TSRUN_HELPER allows.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { HelperProcess } from '../../src/namespaces/helper.js';
import type { Plan } from '../../src/namespaces/plan.js';

let dir: string;
const saved = process.env.TSRUN_HELPER;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tsrun-unit-channel-'));
});
afterEach(() => {
  if (saved === undefined) delete process.env.TSRUN_HELPER;
  else process.env.TSRUN_HELPER = saved;
  rmSync(dir, { recursive: true, force: true });
});

const plan: Plan = { monitor: [], cloneFlags: ['newuts'], steps: [['setsid'], ['exec', '/bin/true', 'true']] };

function standIn(lines: string[]): string {
  const script = join(dir, 'helper');
  writeFileSync(script, ['#!/bin/sh', ...lines].join('\n'));
  chmodSync(script, 0o755);
  return script;
}

it('reads the plan out to the helper and its answers back, in order, to the exit status', async () => {
  // The helper reads the plan to its end, then waits for "go", as the real one does.
  process.env.TSRUN_HELPER = standIn([
    'while read -r line <&3; do [ "$line" = end ] && break; done',
    'printf "pid 4242\\n" >&3',
    'read -r go <&3; [ "$go" = go ] || exit 9',
    'printf "started\\nexit 7 0\\n" >&3',
  ]);
  const helper = HelperProcess.launch(plan, { stdio: ['ignore', 'ignore', 'ignore'] });
  expect(await helper.waitPid()).toBe(4242);
  helper.go();
  await helper.waitStarted();
  expect(await helper.waitExit()).toEqual({ code: 7, signal: 0 });
});

it('ends the waits with an error when the helper exits without a word', async () => {
  process.env.TSRUN_HELPER = standIn(['exec 3>&-', 'exit 0']);
  const helper = HelperProcess.launch(plan, { stdio: ['ignore', 'ignore', 'ignore'] });
  await expect(helper.waitPid()).rejects.toThrow(/the native helper stopped before reporting "pid"/);
});

it('lets tsrun exit once a helper that goes on is released (a detached container)', () => {
  // In a process of its own: the test is whether that process ends by itself.
  const helper = standIn([
    'while read -r line <&3; do [ "$line" = end ] && break; done',
    'printf "pid 1\\n" >&3',
    'exec sleep 30',
  ]);
  const module = resolve('dist/src/namespaces/helper.js');
  const script = `
    const { HelperProcess } = await import(${JSON.stringify(module)});
    const h = HelperProcess.launch(${JSON.stringify(plan)}, { stdio: ['ignore', 'ignore', 'ignore'] });
    await h.waitPid();
    h.release();
    console.log('released', h.pid);`;
  const started = Date.now();
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, TSRUN_HELPER: helper }, encoding: 'utf8', timeout: 10_000 });
  const pid = Number(/^released (\d+)$/m.exec(r.stdout)?.[1]);
  if (pid > 0) process.kill(pid, 'SIGKILL');
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(Date.now() - started).toBeLessThan(8_000);
});
