// User namespaces (`--userns`, `--uidmap`, `--gidmap`): who the container's root is on the host.
//
// `private` (or `auto`) gives each container its own block of 65536 host ids out of tsrun's
// subordinate range in /etc/subuid and /etc/subgid, the files shadow-utils and podman use (a
// `tsrun` entry is added on first use, after every range already there). A block is taken
// with an O_EXCL file in the store (`userns/<n>`, holding the container's ID) and given back
// when the container is removed, so concurrent creates never share one.
import { appendFileSync, mkdirSync, openSync, closeSync, readdirSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { TsrunError, errnoOf } from '../errors.js';
import { flagError } from '../errors.js';

/** One line of /proc/<pid>/uid_map: `containerID hostID size`. */
export interface IdMap {
  containerID: number;
  hostID: number;
  size: number;
}

export interface UsernsOption {
  mode: 'host' | 'private';
  uidMap: IdMap[];
  gidMap: IdMap[];
  /** The block of tsrun's subordinate range this container holds (private without maps). */
  block?: number;
}

export const BLOCK = 65536;
/** Room for 1024 containers at once; podman's `containers` entry is much the same size. */
const RANGE = BLOCK * 1024;
export const SUBUID = '/etc/subuid';
export const SUBGID = '/etc/subgid';
const OWNER = 'tsrun';

/** `--uidmap 0:100000:65536` (podman's container:host:size). */
export function parseIdMap(flag: string, value: string): IdMap {
  const m = /^(\d+):(\d+):(\d+)$/.exec(value);
  if (!m) throw flagError(flag, value, 'expected container-id:host-id:size, e.g. 0:100000:65536');
  const [containerID, hostID, size] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (size === 0) throw flagError(flag, value, 'the size must be at least 1');
  if (containerID + size > 2 ** 32 - 1 || hostID + size > 2 ** 32 - 1) throw flagError(flag, value, 'ids must stay below 4294967295');
  return { containerID, hostID, size };
}

/** The kernel's rules for a map, checked here so the error names the flag: no overlaps, root mapped. */
export function checkIdMaps(flag: string, maps: IdMap[]): void {
  if (maps.length > 340) throw new TsrunError('EINVAL_FLAG', `${flag}: at most 340 ranges`);
  const overlap = (key: 'containerID' | 'hostID') => {
    const sorted = [...maps].sort((a, b) => a[key] - b[key]);
    return sorted.some((m, i) => i > 0 && sorted[i - 1]![key] + sorted[i - 1]!.size > m[key]);
  };
  if (overlap('containerID')) throw new TsrunError('EINVAL_FLAG', `${flag}: the container ranges overlap`);
  if (overlap('hostID')) throw new TsrunError('EINVAL_FLAG', `${flag}: the host ranges overlap`);
  if (!maps.some((m) => m.containerID === 0)) {
    throw new TsrunError('EINVAL_FLAG', `${flag}: container id 0 must be mapped (the container starts as its root)`);
  }
}

/** The flags → the option; undefined for the default (the host's user namespace). */
export function parseUserns(mode: string | undefined, uidmap: string[], gidmap: string[], privileged: boolean): UsernsOption | undefined {
  const m = mode === undefined || mode === '' ? undefined : mode;
  if (m !== undefined && !['host', 'private', 'auto'].includes(m)) throw flagError('--userns', m, 'expected host, private or auto');
  if (m === 'host' && (uidmap.length > 0 || gidmap.length > 0)) {
    throw new TsrunError('EINVAL_FLAG', 'conflicting options: --userns host and --uidmap/--gidmap');
  }
  if ((m === undefined || m === 'host') && uidmap.length === 0 && gidmap.length === 0) return undefined;
  if (privileged) {
    throw new TsrunError('EINVAL_FLAG', 'conflicting options: --privileged and a user namespace (root in a user namespace cannot have the host\'s privileges); add --userns host');
  }
  const uidMap = uidmap.map((v) => parseIdMap('--uidmap', v));
  // podman's rule: a --uidmap alone serves for the groups too.
  const gidMap = gidmap.length > 0 ? gidmap.map((v) => parseIdMap('--gidmap', v)) : uidMap;
  if (uidMap.length > 0) checkIdMaps('--uidmap', uidMap);
  if (gidmap.length > 0) checkIdMaps('--gidmap', gidMap);
  if (gidmap.length > 0 && uidMap.length === 0) throw new TsrunError('EINVAL_FLAG', '--gidmap needs a --uidmap too');
  return { mode: 'private', uidMap, gidMap };
}

interface SubRange {
  start: number;
  size: number;
}

/** Every `name:start:size` line of a subordinate id file. */
export function parseSubIds(text: string): Array<{ owner: string } & SubRange> {
  const out: Array<{ owner: string } & SubRange> = [];
  for (const line of text.split('\n')) {
    const m = /^([^:#\s]+):(\d+):(\d+)\s*$/.exec(line);
    if (m) out.push({ owner: m[1]!, start: Number(m[2]), size: Number(m[3]) });
  }
  return out;
}

/** The first non-empty range of a user (by name or uid), as shadow-utils' newuidmap reads it. */
export function subordinateRange(text: string, name: string, uid: number): SubRange | undefined {
  const e = parseSubIds(text).find((r) => (r.owner === name || r.owner === String(uid)) && r.size > 0);
  return e && { start: e.start, size: e.size };
}

/** tsrun's range in one file, added after every other range when there is none. */
export function ensureSubIds(file: string): SubRange {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (errnoOf(err) !== 'ENOENT') throw err;
  }
  const entries = parseSubIds(text);
  const mine = entries.find((e) => e.owner === OWNER);
  if (mine) return { start: mine.start, size: mine.size };
  const end = Math.max(100000, ...entries.map((e) => e.start + e.size));
  const start = Math.ceil(end / BLOCK) * BLOCK;
  if (start + RANGE > 2 ** 32 - 1) throw new TsrunError('EUSERNS', `${file} has no room left for tsrun's ${RANGE} ids`);
  try {
    appendFileSync(file, `${text && !text.endsWith('\n') ? '\n' : ''}${OWNER}:${start}:${RANGE}\n`);
  } catch (err) {
    throw new TsrunError('EUSERNS', `cannot add tsrun's subordinate ids to ${file}: ${errnoOf(err) ?? String(err)}`, { cause: err });
  }
  return { start, size: RANGE };
}

/** The directory name of one map's copies under `<store>/userns/`. */
export const mapKey = (u: Pick<UsernsOption, 'uidMap' | 'gidMap'>) =>
  [...u.uidMap.map((m) => `u${m.containerID}-${m.hostID}-${m.size}`), ...u.gidMap.map((m) => `g${m.containerID}-${m.hostID}-${m.size}`)].join('_');

export const blocksDir = (storeRoot: string) => join(storeRoot, 'userns');

/** Take a free block of tsrun's range for container `id`; the maps that go with it. */
export function allocateUserns(
  storeRoot: string,
  id: string,
  // The files can be others (tests; a host that keeps them elsewhere).
  files = { uid: process.env.TSRUN_SUBUID_FILE || SUBUID, gid: process.env.TSRUN_SUBGID_FILE || SUBGID },
): UsernsOption {
  const uids = ensureSubIds(files.uid);
  const gids = ensureSubIds(files.gid);
  const blocks = Math.min(Math.floor(uids.size / BLOCK), Math.floor(gids.size / BLOCK));
  mkdirSync(blocksDir(storeRoot), { recursive: true, mode: 0o700 });
  for (let n = 0; n < blocks; n++) {
    let fd: number;
    try {
      fd = openSync(join(blocksDir(storeRoot), String(n)), 'wx', 0o600);
    } catch (err) {
      if (errnoOf(err) === 'EEXIST') continue;
      throw err;
    }
    writeSync(fd, id);
    closeSync(fd);
    return {
      mode: 'private',
      block: n,
      uidMap: [{ containerID: 0, hostID: uids.start + n * BLOCK, size: BLOCK }],
      gidMap: [{ containerID: 0, hostID: gids.start + n * BLOCK, size: BLOCK }],
    };
  }
  throw new TsrunError('EUSERNS', `all ${blocks} user namespace blocks of tsrun's subordinate ids are in use; remove some containers`);
}

/** Give a removed container's block back (only if it is still that container's). */
export function releaseUserns(storeRoot: string, id: string, userns: UsernsOption | undefined): void {
  if (userns?.block !== undefined) releaseBlock(storeRoot, id, userns.block);
}

/** A block file is removed only by the container it names. */
function releaseBlock(storeRoot: string, id: string, block: number): void {
  const file = join(blocksDir(storeRoot), String(block));
  try {
    if (readFileSync(file, 'utf8') === id) unlinkSync(file);
  } catch (err) {
    if (errnoOf(err) !== 'ENOENT') throw err;
  }
}

/** Release whatever block names container `id` (a killed create's: its record never said which). */
export function releaseUsernsOf(storeRoot: string, id: string): void {
  let blocks: string[];
  try {
    blocks = readdirSync(blocksDir(storeRoot)).filter((b) => /^\d+$/.test(b));
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return;
    throw err;
  }
  for (const b of blocks) releaseBlock(storeRoot, id, Number(b));
}

/** The blocks in use (for `info` and the tests). */
export function blocksInUse(storeRoot: string): number[] {
  try {
    return readdirSync(blocksDir(storeRoot)).filter((f) => /^\d+$/.test(f)).map(Number);
  } catch {
    return [];
  }
}
