// Where the native parts built by scripts/build-native.mjs are: <package>/native/build/.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TsrunError } from '../errors.js';

/** The path of native/build/<name>, found from this file (dist/src/sys/, src/sys/, or the bundle in dist/). */
export function nativeBuildFile(name: string): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    const candidate = join(dir, 'native', 'build', name);
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new TsrunError('EHELPER', `native/build/${name} is not built: run \`npm run build:native\` (it needs a C compiler: apt-get install gcc)`);
}

/**
 * The C helper: TSRUN_HELPER, else native/build/tsrun-helper. Here, not in namespaces/helper.ts,
 * so that rootless.ts (which every command's bundle holds) does not bring in the launch plan's
 * encoder and the seccomp tables with that module.
 */
export function helperPath(): string {
  return process.env.TSRUN_HELPER || nativeBuildFile('tsrun-helper');
}
