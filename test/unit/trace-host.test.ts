// The seams --trace watches the host through: cgroup directories made, cgroup files written,
// commands run (argv and stdin). Nothing watches unless an observer is set.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { makeDir, setCgroupMkdirObserver, setCgroupWriteObserver, writeValue } from '../../src/cgroups/fsio.js';
import { observeCommands, runCommand } from '../../src/netns/exec.js';

let tmp: string;
beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'tsrun-unit-trace-host-'));
});
afterEach(() => {
  setCgroupMkdirObserver(undefined);
  setCgroupWriteObserver(undefined);
  observeCommands(undefined);
  rmSync(tmp, { recursive: true, force: true });
});

it('sees a cgroup directory once it is made, and not one that was there', () => {
  const seen: string[] = [];
  expect(setCgroupMkdirObserver((d) => seen.push(d))).toBeUndefined();
  makeDir(join(tmp, 'a'));
  expect(() => makeDir(join(tmp, 'a'))).toThrow(/EEXIST/);
  expect(seen).toEqual([join(tmp, 'a')]);
  setCgroupMkdirObserver(undefined);
  makeDir(join(tmp, 'b'));
  expect(seen).toHaveLength(1);
});

it('sees a cgroup file written, before the write', () => {
  mkdirSync(join(tmp, 'cg'));
  writeFileSync(join(tmp, 'cg', 'pids.max'), 'max');
  const seen: Array<[string, string]> = [];
  setCgroupWriteObserver((p, v) => seen.push([p, v]));
  writeValue(join(tmp, 'cg'), 'pids.max', 50);
  expect(seen).toEqual([[join(tmp, 'cg', 'pids.max'), '50']]);
});

it('sees each command with its input', async () => {
  const seen: Array<[string[], string]> = [];
  observeCommands((argv, input) => seen.push([argv, input]));
  await runCommand(['sh', '-c', 'cat >/dev/null'], 'link set lo up\n', 'test');
  expect(seen).toEqual([[['sh', '-c', 'cat >/dev/null'], 'link set lo up\n']]);
});
