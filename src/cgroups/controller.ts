// What each controller file provides to the drivers. A controller's functions take the cgroup
// directory as a parameter and nothing else, so unit tests run them against a temp dir.
import { TsrunError } from '../errors.js';
import { exists, readOptional } from './fsio.js';
import type { Resources } from './types.js';

export interface Controller {
  /** The v1 subsystem (its hierarchy's name) and the v2 controller name. */
  readonly v1: string;
  readonly v2: string;
  /** The docker flags present in `r` that need this controller (empty: nothing asked of it). */
  flags(r: Resources): string[];
  applyV1(dir: string, r: Resources): void;
  applyV2(dir: string, r: Resources): void;
  /** Interface file → value in force. */
  limitsV1(dir: string): Record<string, string>;
  limitsV2(dir: string): Record<string, string>;
}

/** A limit the controller is there for, but whose interface file this kernel lacks. */
export function missingFile(flag: string, dir: string, files: string[], why: string, version: 1 | 2): TsrunError {
  const names = files.join(' or ');
  return new TsrunError('EKERNEL', `${flag} needs ${names} in ${dir}, which this kernel does not provide (${why}; cgroup v${version})`);
}

export function requireFile(flag: string, dir: string, file: string, why: string, version: 1 | 2): void {
  if (!exists(dir, file)) throw missingFile(flag, dir, [file], why, version);
}

/** The first of `files` that exists in dir. */
export function firstExisting(dir: string, files: string[]): string | undefined {
  return files.find((f) => exists(dir, f));
}

/** The files of `files` that exist → their values (multi-line values joined with "; "). */
export function readFiles(dir: string, files: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of files) {
    const v = readOptional(dir, f);
    if (v !== undefined) out[f] = v.split('\n').join('; ');
  }
  return out;
}
