// Rootless tsrun: an ordinary user with subordinate ids in /etc/subuid and /etc/subgid.
//
// Most commands re-run themselves as root of a user namespace that maps the user's uid to 0 and
// its subordinate range to 1..N (native/unshare.c, through the setuid newuidmap/newgidmap). There
// layers unpack with their owners, overlays mount and containers get their namespaces, as
// with podman. The store, with its locks, is the user's own (`$XDG_DATA_HOME/tsrun`). What needs the host's root stays out: cgroup limits, bridge networks and
// published ports (the default network is the host's), device nodes in layers.
// `tsrun exec` runs as the user on the host: from there it may join the container's
// namespaces, which a sibling user namespace could not.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { constants, homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import { TsrunError } from './errors.js';

/** Set (to the user's host uid) inside the user namespace rootless tsrun made for itself. */
export const USERNS_ENV = 'TSRUN_USERNS';

export function inOwnUserns(): boolean {
  return Boolean(process.env[USERNS_ENV]);
}

/** tsrun runs for an ordinary user: on the host as that user, or inside its user namespace. */
export function isRootless(): boolean {
  return process.geteuid?.() !== 0 || inOwnUserns();
}

/** Where a rootless store goes unless --root says otherwise. */
export function rootlessPaths(): { root: string } {
  const data = process.env.XDG_DATA_HOME || join(process.env.HOME || homedir(), '.local', 'share');
  return { root: join(data, 'tsrun') };
}

/**
 * Run this very command again as root of a new user namespace with the user's maps, and exit
 * with its status. Signals sent to us are passed on by the helper.
 */
export async function reexecInUserns(): Promise<never> {
  const uid = process.geteuid?.() ?? 0;
  const gid = process.getegid?.() ?? 0;
  const name = userInfo().username;
  const [{ helperPath }, { subordinateRange }] = await Promise.all([import('./sys/native-build.js'), import('./namespaces/userns.js')]);
  // newuidmap's triples: the user's own id (uid, or gid for newgidmap) is 0, its range 1..N.
  const mapFor = (file: string, ownId: number): string => {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      // no file: no range
    }
    const range = subordinateRange(text, name, uid);
    if (!range) {
      throw new TsrunError(
        'EUSERNS',
        `rootless tsrun needs subordinate ids, and ${file} has none for ${name}: ask an administrator for ` +
          `\`usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${name}\``,
      );
    }
    return `0:${ownId}:1,1:${range.start}:${range.size}`;
  };
  const uidMap = mapFor('/etc/subuid', uid);
  const gidMap = mapFor('/etc/subgid', gid);
  const argv = [process.execPath, ...process.execArgv, ...process.argv.slice(1)];
  // Required here, not imported: every command loads this file, few start a process (~5 ms).
  const { spawn } = createRequire(import.meta.url)('node:child_process') as typeof import('node:child_process');
  const child = spawn(helperPath(), ['--userns-exec', uidMap, gidMap, argv[0]!, ...argv], {
    stdio: 'inherit',
    env: { ...process.env, [USERNS_ENV]: String(uid) },
  });
  // What is sent to us alone (timeout, systemd) goes on to the helper, which passes it to the
  // inner tsrun. What a terminal sends reaches all three of us anyway: not passed on again.
  for (const sig of ['SIGTERM', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'] as const) process.on(sig, () => child.kill(sig));
  for (const sig of ['SIGINT', 'SIGQUIT'] as const) process.on(sig, () => {});
  const code = await new Promise<number>((resolve) => {
    child.on('error', (err) => {
      process.stderr.write(`tsrun: rootless: cannot run the native helper: ${err.message}\n`);
      resolve(125);
    });
    child.on('exit', (c, sig) => resolve(c ?? 128 + (sig ? constants.signals[sig] : 0)));
  });
  process.exit(code);
}

/** Commands that run as the user on the host, outside tsrun's user namespace. */
const ON_HOST = new Set(['exec', 'version', 'help', 'completion', 'login', 'logout']);

/** Whether this command must re-run itself in the user namespace first. */
export function needsUserns(command: string | undefined): boolean {
  return process.geteuid?.() !== 0 && !inOwnUserns() && command !== undefined && !ON_HOST.has(command);
}
