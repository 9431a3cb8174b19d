// Leases: which live processes are writing content into the image store.
//
// A pull, load, commit or build writes its layers and blobs first and records the image last,
// so for a while its content is referenced by nothing. Garbage collection must not take it;
// and once the writer is dead (kill -9, a full disk, a crash), nothing will ever record it, and
// garbage collection should take it at once, not after some grace period.
//
// So each writer holds a lease, an empty file <root>/leases/<PID@START-TIME>, taken under the
// store's lock before it looks at what the store holds (a layer it finds present is one it will
// reuse) and removed when the process exits. Garbage collection runs under the same lock and
// collects only while no lease is alive: then nothing unreferenced can become referenced. A
// lease whose process is gone (selfToken names one process for the whole boot) is dead and
// swept. containerd leases its content the same way, with expiring leases instead of process
// lifetimes.
import { mkdirSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { selfToken, tokenAlive } from '../sys/proc.js';

const dirOf = (root: string) => path.join(root, 'leases');

let held: string | undefined;

/**
 * Takes this process's lease; false when it holds one already (a build that pulls its base
 * image: the pull must not give back the build's lease). The caller holds the store's lock.
 * The file goes when the process exits in any way Node sees; a kill leaves it, dead.
 */
export function takeLease(root: string): boolean {
  if (held !== undefined) return false;
  const token = selfToken();
  // Without its start time a lease would read as dead at once, and protect nothing.
  if (!tokenAlive(token)) throw new Error(`cannot name this process for a lease (${token}): is /proc mounted?`);
  const dir = dirOf(root);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, token);
  writeFileSync(file, '');
  held = file;
  process.once('exit', () => rmSync(file, { force: true }));
  return true;
}

/**
 * Gives this process's lease back, once what it wrote is recorded (a `run` that pulled goes on
 * running its container for hours: its lease must not hold garbage collection that long). Only
 * the one that took it (takeLease said true) gives it back.
 */
export function releaseLease(): void {
  if (held === undefined) return;
  rmSync(held, { force: true });
  held = undefined;
}

export interface Leases {
  /** Processes writing content now (this one's lease included). */
  live: string[];
  /** Leases of processes that are gone: what they wrote and did not record is garbage. */
  dead: string[];
}

/** Whether a process other than this one holds a live lease. */
export function othersWriting(root: string): boolean {
  const own = held === undefined ? undefined : path.basename(held);
  return readLeases(root).live.some((l) => l !== own);
}

export function readLeases(root: string): Leases {
  let names: string[];
  try {
    names = readdirSync(dirOf(root));
  } catch {
    return { live: [], dead: [] };
  }
  const live: string[] = [];
  const dead: string[] = [];
  for (const name of names) (tokenAlive(name) ? live : dead).push(name);
  return { live, dead };
}

/** Removes dead leases (the caller holds the store's lock, or the leases are known dead). */
export function sweepLeases(root: string, dead: string[]): void {
  for (const name of dead) {
    try {
      unlinkSync(path.join(dirOf(root), name));
    } catch {
      // gone meanwhile
    }
  }
}
