// tsrun's own version (from package.json, so it is written down once) and the native
// helper's (`tsrun-helper --version`), for `tsrun version` and `tsrun info`.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { helperPath } from '../sys/native-build.js';
import { hostInfo, ociArch } from './system.js';

/** The package's version: src/info/version.ts and dist/src/info/version.js both find it. */
export function tsrunVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'tsrun' && pkg.version) return pkg.version;
    }
    dir = dirname(dir);
  }
  return 'unknown';
}

export interface HelperInfo {
  /** Where tsrun looks for it (TSRUN_HELPER, else native/build/tsrun-helper). */
  path: string;
  /** "1" from "tsrun-helper 1"; empty when it could not be run. */
  version: string;
  /** Why it could not be found or run. */
  error?: string;
}

/** Finds the helper and asks it its version; never throws (info must print even without it). */
export function helperInfo(run: (path: string) => string = runVersion): HelperInfo {
  let path: string;
  try {
    path = helperPath();
  } catch (err) {
    return { path: '', version: '', error: (err as Error).message };
  }
  try {
    const out = run(path).trim();
    const m = /^tsrun-helper\s+(\S+)/.exec(out);
    return m ? { path, version: m[1]! } : { path, version: '', error: `unexpected output from ${path} --version: ${out}` };
  } catch (err) {
    return { path, version: '', error: `${path} --version: ${(err as Error).message}` };
  }
}

function runVersion(path: string): string {
  return execFileSync(path, ['--version'], { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'pipe'] });
}

export interface VersionInfo {
  Client: {
    Version: string;
    NodeVersion: string;
    Os: string;
    Arch: string;
    KernelVersion: string;
  };
  Helper: { Version: string; Path: string; Error?: string };
}

export function gatherVersion(): VersionInfo {
  const helper = helperInfo();
  return {
    Client: {
      Version: tsrunVersion(),
      NodeVersion: process.version,
      Os: process.platform,
      Arch: ociArch(),
      KernelVersion: hostInfo().kernelVersion,
    },
    Helper: { Version: helper.version, Path: helper.path, ...(helper.error !== undefined && { Error: helper.error }) },
  };
}
