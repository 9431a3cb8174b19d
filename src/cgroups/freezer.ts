// Freezing: stop every task of a cgroup where it stands, without signals it could see.
//   v1 (freezer): freezer.state THAWED → FREEZING → FROZEN
//   v2 (core, no controller): cgroup.freeze 1, done when cgroup.events says "frozen 1"
import { TsrunError } from '../errors.js';
import { readFlatKeyed, readOptional, readText, waitUntil, writeValue } from './fsio.js';

const TIMEOUT_MS = 5000;

export function freezeV1(dir: string): void {
  // A task that forks while the cgroup freezes can leave it stuck in FREEZING; writing FROZEN
  // again makes the kernel retry the stragglers (runc does the same).
  let lastWrite = 0;
  const frozen = waitUntil(() => {
    if (Date.now() - lastWrite > 100) {
      writeValue(dir, 'freezer.state', 'FROZEN');
      lastWrite = Date.now();
    }
    return readText(dir, 'freezer.state') === 'FROZEN';
  }, TIMEOUT_MS);
  if (!frozen) {
    throw new TsrunError('EINTERNAL', `freeze ${dir}: freezer.state is still ${readText(dir, 'freezer.state')} after ${TIMEOUT_MS / 1000} s`);
  }
}

export function thawV1(dir: string): void {
  writeValue(dir, 'freezer.state', 'THAWED');
  if (!waitUntil(() => readText(dir, 'freezer.state') === 'THAWED', TIMEOUT_MS)) {
    throw new TsrunError('EINTERNAL', `thaw ${dir}: freezer.state is still ${readText(dir, 'freezer.state')}`);
  }
}

function setV2(dir: string, on: 0 | 1): void {
  writeValue(dir, 'cgroup.freeze', on);
  const done = waitUntil(() => (readFlatKeyed(dir, 'cgroup.events')?.frozen ?? on) === on, TIMEOUT_MS);
  if (!done) throw new TsrunError('EINTERNAL', `${on ? 'freeze' : 'thaw'} ${dir}: cgroup.events does not say "frozen ${on}" after ${TIMEOUT_MS / 1000} s`);
}

export const freezeV2 = (dir: string) => setV2(dir, 1);
export const thawV2 = (dir: string) => setV2(dir, 0);

/**
 * Whether the kernel holds this cgroup frozen, from a handle's paths (CgroupHandle.paths, kept
 * in a container's state): v1's freezer.state (FREEZING counts: a freeze whose maker died
 * half-way), else cgroup.events of the cgroup2 directory. Undefined when neither can be read
 * (no freezer, or the cgroup is gone). The truth `ps` and `inspect` show: a `commit` killed
 * with -9 while it held the container frozen leaves it paused, and `unpause` thaws it.
 */
export function frozenInKernel(paths: Record<string, string>): boolean | undefined {
  if (paths.freezer) {
    const state = readOptional(paths.freezer, 'freezer.state');
    if (state !== undefined) return state !== 'THAWED';
  }
  if (paths.unified) {
    const events = readOptional(paths.unified, 'cgroup.events');
    const frozen = events && /^frozen (\d)$/m.exec(events);
    if (frozen) return frozen[1] === '1';
  }
  return undefined;
}
