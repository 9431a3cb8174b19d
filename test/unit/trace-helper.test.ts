// The trace as HelperProcess hands it on: `trace <who> <step> <time> <text>` from a stand-in
// helper (a shell script on fd 3, as TSRUN_HELPER allows) becomes a TraceLine with the plan
// step's name and the time on performance.now()'s clock.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { HelperProcess, type TraceLine } from '../../src/namespaces/helper.js';
import type { Plan } from '../../src/namespaces/plan.js';

let dir: string | undefined;
const saved = process.env.TSRUN_HELPER;
afterEach(() => {
  if (saved === undefined) delete process.env.TSRUN_HELPER;
  else process.env.TSRUN_HELPER = saved;
  if (dir) rmSync(dir, { recursive: true, force: true });
});

it('names each child line by its plan step and puts the helper\'s clock on ours', async () => {
  dir = mkdtempSync(join(tmpdir(), 'tsrun-unit-trace-'));
  // CLOCK_MONOTONIC now, as the helper would read it; performance.now() at the same moment.
  const ns = process.hrtime.bigint();
  const expectedMs = performance.now();
  const script = join(dir, 'helper');
  writeFileSync(script, [
    '#!/bin/sh',
    `printf 'trace monitor 0 ${ns} clone3(...)%%20=%%2042\\n' >&3`,
    `printf 'trace child 0 ${ns + 1_000_000n} unshare(CLONE_NEWCGROUP)%%20=%%200\\n' >&3`,
    `printf 'trace child 2 ${ns + 2_500_000n} sethostname("box")%%20=%%200\\n' >&3`,
    `printf 'trace child 3 ${ns + 3_000_000n} execve("/bin/true",%%20["true"],%%20[0%%20vars])\\n' >&3`,
    'printf \'pid 42\\n\' >&3',
    // Keep fd 3 open until tsrun has read it all (EOF would end the test's wait early).
    'sleep 1',
  ].join('\n'));
  chmodSync(script, 0o755);
  process.env.TSRUN_HELPER = script;

  const plan: Plan = { monitor: [['trace', '1']], cloneFlags: ['newuts'], steps: [['setsid'], ['sethostname', 'box'], ['exec', '/bin/true', 'true']] };
  const lines: TraceLine[] = [];
  const helper = HelperProcess.launch(plan, { stdio: ['ignore', 'ignore', 'ignore'], onTrace: (l) => lines.push(l) });
  try {
    expect(await helper.waitPid()).toBe(42);
  } finally {
    helper.signal('SIGKILL');
  }

  expect(lines.map(({ at: _, ...l }) => l)).toEqual([
    { who: 'monitor', step: 0, text: 'clone3(...) = 42' },
    { who: 'child', step: 0, text: 'unshare(CLONE_NEWCGROUP) = 0' },
    { who: 'child', step: 2, op: 'sethostname', text: 'sethostname("box") = 0' },
    { who: 'child', step: 3, op: 'exec', text: 'execve("/bin/true", ["true"], [0 vars])' },
  ]);
  const at = lines.map((l) => l.at!);
  expect(at[0]).toBeCloseTo(expectedMs, 0);
  expect(at[2]! - at[0]!).toBeCloseTo(2.5, 3);
});
