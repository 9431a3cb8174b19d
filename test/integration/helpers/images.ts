// Puts a busybox image (built from the host's busybox-static) into a test's store.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot, type TestEnv } from './env.js';

/** Builds and loads the image; returns the name to run it by. */
export function loadBusybox(env: TestEnv, name = 'busybox:latest', extra: string[] = []): string {
  const archive = join(env.root, `${name.replace(/[^a-z0-9]/g, '_')}.tar`);
  execFileSync(process.execPath, [join(repoRoot, 'scripts', 'make-busybox-image.mjs'), '--out', archive, '--format', 'docker-archive', '--name', name, ...extra]);
  const r = env.run(['load', '-q', '-i', archive]);
  if (r.status !== 0) throw new Error(`tsrun load failed: ${r.stderr}`);
  return name;
}
