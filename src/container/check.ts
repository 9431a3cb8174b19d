// `tsrun system check`: the store's invariants (docs/store.md) verified against the kernel, and
// with `repair` what a crash left put right. Every repair is one an interrupted command would
// have done itself had it lived; nothing that belongs to a live tsrun, or to another store
// sharing this host (its cgroups, its namespaces), is touched.
import { existsSync, readFileSync, rmSync, symlinkSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { detectCgroups, openDriver } from '../cgroups/index.js';
import { frozenInKernel } from '../cgroups/freezer.js';
import { blocksDir } from '../namespaces/userns.js';
import { cleanupContainer } from './cleanup.js';
import { entries, isDebris, linkTarget, removeDebris } from './create.js';
import { removeContainer } from './remove.js';
import { pidAlive, tokenAlive } from '../sys/proc.js';
import { withLock } from '../sys/lock.js';
import { ContainerPaths, namesDir } from './paths.js';
import { listIds, readRecord, updateState } from './record.js';
import { observe } from './status.js';
import { volumesDir } from './volumes.js';
import { connectKilled, readEndpoints, type Endpoint } from '../netns/store.js';

export interface Finding {
  /** What kind of thing is wrong: container, name, endpoint, cgroup, userns, trash, image, content. */
  kind: string;
  /** What it is wrong with: a container's short ID, a path, a name. */
  subject: string;
  detail: string;
  /** With repair: whether it was put right (when not, detail says what the user can do). */
  repaired: boolean;
}

export async function checkStore(storeRoot: string, opts: { repair: boolean }): Promise<Finding[]> {
  const findings: Finding[] = [];
  /** Record a finding; with `repair`, apply its fix (a fix that fails leaves it unrepaired, and says why). */
  const found = async (kind: string, subject: string, detail: string, fix?: () => unknown) => {
    const f: Finding = { kind, subject, detail, repaired: false };
    findings.push(f);
    if (!opts.repair || !fix) return;
    try {
      await fix();
      f.repaired = true;
    } catch (err) {
      f.detail += `; the repair failed: ${(err as Error).message}`;
    }
  };
  const ids = new Set(listIds(storeRoot));

  for (const id of ids) {
    const paths = new ContainerPaths(storeRoot, id);
    const short = id.slice(0, 12);
    const record = readRecord(paths);
    if (!record) {
      if (!isDebris(paths)) continue; // being created
      await found('container', short, 'left half-made by a create that was killed', () => removeDebris(storeRoot, id));
      continue;
    }
    if (record.buildOwner !== undefined && !tokenAlive(record.buildOwner)) {
      // A step's container, of a build that was killed: nothing will ever use it again.
      await found('container', short, 'a step container of a build that was killed', () => removeContainer(storeRoot, { paths, record }, true));
      continue;
    }
    const seen = observe(paths);
    if (seen.starting) continue;
    if (seen.orphaned) {
      const what = seen.state.startingBy ? 'a start was killed before its monitor took over' : 'its monitor died (kill -9 or reboot) before releasing it';
      await found('container', short, `${what}: its cgroup and network may remain`, () => cleanupContainer(storeRoot, id, { autoRemove: false }));
      continue;
    }
    const active = seen.status === 'running' || seen.status === 'paused' || seen.status === 'restarting';
    if (seen.status === 'running' || seen.status === 'paused') {
      const frozen = frozenInKernel(seen.state.cgroupPaths);
      if (frozen !== undefined && frozen !== seen.state.paused) {
        await found('container', short, `state.json says ${seen.state.paused ? '' : 'not '}paused, its cgroup is ${frozen ? '' : 'not '}frozen`, () =>
          locked(paths, () => updateState(paths, { paused: frozen })),
        );
      }
    }
    if (!active) {
      // Released (cleanedUp) yet something of it remains in the kernel.
      const driver = openDriver(detectCgroups());
      const cgroup = driver.open(record.options.cgroupParent, id);
      if (cgroup) {
        await found('cgroup', short, `container is ${seen.status} but its cgroup remains (${Object.values(cgroup.paths)[0]})`, () =>
          locked(paths, () => {
            // Asked again under the lock: a start may have begun meanwhile (`run` starts
            // without the lock; its startingBy is written before its cgroup exists).
            const now = observe(paths);
            if (now.starting || now.status !== seen.status) return;
            cgroup.remove();
            driver.removeParent(record.options.cgroupParent);
          }),
        );
      }
    }
    const name = join(namesDir(storeRoot), record.name);
    if (linkTarget(name) !== join('..', 'containers', id)) {
      await found('name', record.name, `container ${short} does not hold its name`, () => symlinkSync(join('..', 'containers', id), name));
    }
  }

  const { releaseStray } = await import('../netns/index.js');
  for (const { ep, why } of strayEndpoints(storeRoot)) {
    await found('endpoint', `${ep.network}/${ep.ip}`, `${why}, yet it holds ${ep.ip}, ${ep.hostVeth} and ${ep.netnsPath}`, () => releaseStray(storeRoot, ep));
  }

  // Names: each is held by the container it points at, under the name its record gives.
  for (const name of entries(namesDir(storeRoot))) {
    const link = join(namesDir(storeRoot), name);
    const id = linkTarget(link)?.split('/').pop() ?? '';
    // A create begun since the listing has its directory (made before its name): not stray.
    if (!ids.has(id) && !existsSync(new ContainerPaths(storeRoot, id).dir)) {
      await found('name', name, 'reserved for a container that does not exist', () => unlinkSync(link));
      continue;
    }
    const paths = new ContainerPaths(storeRoot, id);
    const record = readRecord(paths);
    if (!record || record.name === name) continue; // (a directory being created holds its name before its record)
    await found('name', name, `reserved for container ${id.slice(0, 12)}, which is called ${record.name} (a rename that was killed)`, () =>
      locked(paths, () => {
        if (readRecord(paths)?.name !== name) unlinkSync(link);
      }),
    );
  }

  // User namespace blocks: each is held by a container.
  for (const block of entries(blocksDir(storeRoot)).filter((b) => /^\d+$/.test(b))) {
    const file = join(blocksDir(storeRoot), block);
    let holder = '';
    try {
      holder = blockHolder(file);
    } catch {
      continue;
    }
    if (ids.has(holder) || (holder !== '' && existsSync(new ContainerPaths(storeRoot, holder).dir))) continue;
    await found('userns', `block ${block}`, `held for ${holder.slice(0, 12) || 'nobody'}, which does not exist`, () => rmSync(file, { force: true }));
  }

  // What a killed rm, volume rm or volume create left aside: `.removing-*` / `.new-*` with a dead owner.
  for (const dir of [join(storeRoot, 'containers'), volumesDir(storeRoot)]) {
    for (const name of entries(dir)) {
      const m = /^\.(?:removing|new)-.*-(\d+)$/.exec(name);
      if (!m || pidAlive(Number(m[1]))) continue;
      const full = join(dir, name);
      await found('trash', full, 'left by a command that was killed while it removed or made it', () => rmSync(full, { recursive: true, force: true }));
    }
  }

  // The image store: what it records must be there (its own temp files it sweeps when opened).
  const { ImageStore } = await import('../image/store.js');
  const store = await ImageStore.open(storeRoot);
  for (const problem of await store.verify()) {
    await found('image', problem.image, `${problem.detail}; remove it (tsrun rmi) and pull or load it again`);
  }
  // Content no image records: what a killed pull, load, commit or build wrote, or what an rmi
  // killed between its record and its deletes left. While a writer lives it may still record
  // it (leases.ts): then it is not garbage yet.
  const [{ containerRefs }, { mountedLinks }] = await Promise.all([import('./diff.js'), import('../image/prune.js')]);
  const mounted = mountedLinks(await containerRefs(storeRoot));
  const garbage = await store.garbage(mounted);
  const count = garbage.layers.length + garbage.blobs.length;
  if (count > 0 && garbage.leases.live.length === 0) {
    const what = `${garbage.layers.length} layer(s), ${garbage.blobs.length} blob(s)`;
    await found('content', what, 'no image records them: left by a pull, load, commit or build that was killed, or an rmi killed half-way', async () => {
      const done = await store.collect(mounted);
      if (done.writers.length > 0) throw new Error(`a writer started meanwhile (${done.writers.join(', ')}); run the check again once it is done`);
    });
  }
  return findings;
}

/**
 * Endpoints no container holds: an endpoint belongs to a container that runs, is being started,
 * or is between restarts. Any other is what a killed start or cleanup left (its address taken).
 */
export function strayEndpoints(storeRoot: string): Array<{ ep: Endpoint; why: string }> {
  const out: Array<{ ep: Endpoint; why: string }> = [];
  for (const ep of readEndpoints(storeRoot)) {
    const paths = new ContainerPaths(storeRoot, ep.id);
    const owner = readRecord(paths) ? observe(paths) : undefined;
    // A `network connect` killed half-way leaves an endpoint on a container that runs on.
    const killed = connectKilled(ep);
    if (owner && !killed && (owner.starting || owner.status === 'running' || owner.status === 'paused' || owner.status === 'restarting')) continue;
    out.push({ ep, why: killed ? 'a network connect was killed half-way' : owner ? `container is ${owner.status}` : 'no such container' });
  }
  return out;
}

/** A repair of one container, under its lock (as every command that changes it). */
function locked(paths: ContainerPaths, fn: () => unknown): Promise<unknown> {
  return withLock(paths.lock, fn, { createDir: false });
}

/** A userns block file names its container (userns.ts allocateUserns). */
function blockHolder(path: string): string {
  return readFileSync(path, 'utf8').trim();
}
