// The v2 driver against a real cgroup2 mount. On a hybrid host that is /sys/fs/cgroup/unified:
// it has no controllers, so limits must fail loudly, but membership, freezing (cgroup.freeze)
// and killing (cgroup.kill) are core cgroup2 features and work there.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { V2Driver, detectCgroups, parseResources, type CgroupHandle } from '../../src/cgroups/index.js';
import { TsrunError } from '../../src/errors.js';
import { describePrivileged, isRoot } from './helpers/env.js';

function hostLayout() {
  try {
    return isRoot ? detectCgroups() : undefined;
  } catch {
    return undefined;
  }
}
const layout = hostLayout();
const parent = `tsrun-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describePrivileged('cgroup v2 driver on the hybrid host\'s cgroup2 mount', () => {
  describe.skipIf(layout?.mode !== 'hybrid')('at /sys/fs/cgroup/unified', () => {
    const root = layout?.unified ?? '/sys/fs/cgroup/unified';
    const driver = new V2Driver(root);
    const handles: CgroupHandle[] = [];
    const children: ChildProcess[] = [];
    let subtreeBefore = '';
    beforeAll(() => {
      subtreeBefore = readFileSync(join(root, 'cgroup.subtree_control'), 'utf8');
    });

    function start(h: CgroupHandle, script: string) {
      const child = spawn('sh', ['-c', `read _go; ${script}`], { stdio: ['pipe', 'ignore', 'ignore'] });
      children.push(child);
      const exited = new Promise<[number | null, string | null]>((resolve) => child.on('exit', (c, s) => resolve([c, s])));
      for (const f of h.procsFiles) writeFileSync(f, String(child.pid));
      child.stdin?.write('go\n');
      return { pid: child.pid as number, exited };
    }

    afterAll(() => {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      for (const h of handles) {
        try {
          h.remove();
        } catch {
          // the check below reports it
        }
      }
      driver.removeParent(parent);
      const left = spawnSync('find', [root, '-maxdepth', '3', '-type', 'd', '-name', 'tsrun-test*'], { encoding: 'utf8' }).stdout;
      expect(left).toBe('');
      // tsrun never enabled anything in a hierarchy it does not own.
      expect(readFileSync(join(root, 'cgroup.subtree_control'), 'utf8')).toBe(subtreeBefore);
    });

    it('creates a cgroup and moves a process in through cgroup.procs', () => {
      const h = driver.create(parent, 'member', {});
      handles.push(h);
      expect(h.paths).toEqual({ unified: join(root, parent, 'member') });
      expect(h.procsFiles).toEqual([join(root, parent, 'member', 'cgroup.procs')]);
      const { pid } = start(h, 'exec sleep 30');
      expect(readFileSync(`/proc/${pid}/cgroup`, 'utf8')).toContain(`0::/${parent}/member\n`);
      expect(h.pids()).toEqual([pid]);
      expect(driver.list(parent)).toEqual(['member']);
    });

    it('refuses a limit with the controller and the hierarchy in the message, leaving nothing', () => {
      let err: unknown;
      try {
        driver.create(parent, 'limited', parseResources({ memory: '64m', pidsLimit: '10' }));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(TsrunError);
      expect((err as TsrunError).code).toBe('EKERNEL');
      expect((err as TsrunError).message).toBe(`--memory needs the memory controller, which is not available in ${root}/cgroup.controllers (cgroup v2)`);
      expect(driver.list(parent)).not.toContain('limited');
    });

    it('freezes with cgroup.freeze', async () => {
      const h = driver.create(parent, 'frozen', {});
      handles.push(h);
      start(h, 'while :; do :; done');
      await sleep(200);
      h.freeze();
      expect(readFileSync(join(h.paths.unified!, 'cgroup.events'), 'utf8')).toContain('frozen 1');
      const u1 = h.stats().cpuUsageNs;
      expect(u1).toBeGreaterThan(0); // cpu.stat counts even without the cpu controller
      await sleep(400);
      expect(h.stats().cpuUsageNs - u1).toBeLessThan(5e6);
      h.thaw();
      expect(readFileSync(join(h.paths.unified!, 'cgroup.events'), 'utf8')).toContain('frozen 0');
      await sleep(200);
      expect(h.stats().cpuUsageNs - u1).toBeGreaterThan(30e6);
    });

    it('kills everything with cgroup.kill and removes the cgroup', async () => {
      const h = driver.create(parent, 'killed', {});
      const { exited } = start(h, 'sleep 30 & sleep 30 & wait');
      await sleep(200);
      expect(h.pids().length).toBe(3);
      h.remove();
      expect(await exited).toEqual([null, 'SIGKILL']);
      expect(driver.open(parent, 'killed')).toBeUndefined();
    });
  });
});
