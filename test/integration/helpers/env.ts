// Each integration test file gets its own store root (under /tmp, named tsrun-test-*), runs the
// real CLI — the `tsrun` front in native/build, which runs dist/ with the Node that runs the
// tests — and removes everything afterwards.
import { spawn, spawnSync, type SpawnOptions, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe } from 'vitest';
import { findLeaks } from '../../leaks.js';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const cliPath = join(repoRoot, 'dist', 'tsrun.cjs');
/** The `tsrun` users run (native/front/tsrun.c): it answers a plain exec itself and runs cliPath
 * with the Node on PATH for everything else. The tests go through it, as users do. */
export const frontPath = join(repoRoot, 'native', 'build', 'tsrun');
export const isRoot = process.getuid?.() === 0;
let nextNetwork = 0;

/**
 * describe() for tests that need root. Outside CI they are skipped for ordinary users; in CI
 * (TSRUN_REQUIRE_PRIVILEGED=1, set by .ci/run) a missing privilege is a failure, not a skip.
 */
export function describePrivileged(name: string, fn: () => void): void {
  if (!isRoot && process.env.TSRUN_REQUIRE_PRIVILEGED === '1') {
    describe(name, () => {
      throw new Error(`"${name}" needs root, and TSRUN_REQUIRE_PRIVILEGED=1 forbids skipping it`);
    });
    return;
  }
  describe.skipIf(!isRoot)(name, fn);
}

export interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

export class TestEnv {
  readonly root: string;
  /** This file's own cgroup parent, removed with its last container. */
  readonly cgroupParent: string;
  /** This file's own default bridge and subnet, so tests never touch tsrun0. */
  readonly env: NodeJS.ProcessEnv;

  constructor(label: string) {
    this.root = mkdtempSync(join(tmpdir(), `tsrun-test-${label}-`));
    this.cgroupParent = `tsrun-test-${label}-${process.pid}`;
    const n = nextNetwork++;
    this.env = {
      TSRUN_CGROUP_PARENT: this.cgroupParent,
      TSRUN_BRIDGE: `tt${process.pid % 100000}x${n}`,
      TSRUN_BRIDGE_SUBNET: `10.212.${(process.pid + n * 37) % 250}.0/24`,
    };
  }

  args(args: string[]): string[] {
    return [cliPath, '--root', this.root, ...args];
  }

  /** The front's argv and environment: the Node that runs the tests first on PATH, so that the
   * front's `node` is this one. */
  private front(args: string[], env: NodeJS.ProcessEnv | undefined): [string, string[], NodeJS.ProcessEnv] {
    const all = { ...process.env, ...this.env, ...env };
    return [frontPath, ['--root', this.root, ...args], { ...all, PATH: `${dirname(process.execPath)}:${all.PATH ?? ''}` }];
  }

  /** Run tsrun to completion. */
  run(args: string[], opts: { input?: string | Buffer; env?: NodeJS.ProcessEnv; timeout?: number } = {}): Result {
    const [file, argv, env] = this.front(args, opts.env);
    const r: SpawnSyncReturns<string> = spawnSync(file, argv, {
      encoding: 'utf8',
      input: opts.input ?? '',
      env,
      timeout: opts.timeout ?? 30_000,
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  /** Start tsrun and return the child (for signals and concurrent checks). */
  spawn(args: string[], opts: SpawnOptions = {}) {
    const [file, argv, env] = this.front(args, opts.env);
    return spawn(file, argv, { stdio: ['ignore', 'pipe', 'pipe'], ...opts, env });
  }

  leaks(): string[] {
    return findLeaks({ root: this.root, cgroupParent: this.cgroupParent });
  }

  /** Removes the networks and the store; fails if anything the tests made is still mounted or running. */
  async cleanup(): Promise<void> {
    // Networks first: removing one deletes the veths of its containers that the kernel has yet
    // to remove (released endpoints, see src/netns/endpoint.ts) — or fails, for a container
    // still attached, which the leak check then names.
    const { listNetworks, removeNetwork } = await import('../../../src/netns/index.js');
    const failures: string[] = [];
    for (const n of listNetworks(this.root)) {
      await removeNetwork(this.root, n.name, { force: true }).catch((err: Error) => failures.push(`network ${n.name}: ${err.message}`));
    }
    const leaks = [...failures, ...this.leaks()];
    rmSync(this.root, { recursive: true, force: true });
    if (leaks.length > 0) throw new Error(`left behind:\n${leaks.join('\n')}`);
  }
}
