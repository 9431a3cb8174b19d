// More of `docker run`'s flags: labels, --mount, --sysctl, --shm-size, --stop-signal and
// --stop-timeout, --group-add. Each parser names the flag in its error, as docker does.
import { flagError } from '../errors.js';
import { parseSize } from '../cgroups/flags.js';
import { anonymousVolume, mountTarget, namedVolume, normalizePath, parseTmpfs, VOLUME_NAME, type TmpfsMount, type VolumeMount } from './options.js';

/** `-l key=value` (a bare `key` is an empty value), and `--label-file` lines. */
export function parseLabels(labels: string[], files: Array<{ name: string; text: string }>): Record<string, string> {
  const out: Record<string, string> = {};
  const add = (flag: string, entry: string) => {
    const eq = entry.indexOf('=');
    const key = eq < 0 ? entry : entry.slice(0, eq);
    if (key === '') throw flagError(flag, entry, 'a label needs a key');
    out[key] = eq < 0 ? '' : entry.slice(eq + 1);
  };
  for (const f of files) {
    for (const line of f.text.split('\n')) {
      const l = line.trim();
      if (l && !l.startsWith('#')) add('--label-file', l);
    }
  }
  for (const l of labels) add('--label', l);
  return out;
}

/**
 * `--mount type=bind,source=/a,target=/b[,readonly]` and `type=tmpfs,target=/t[,tmpfs-size=64m]
 * [,tmpfs-mode=1777]`: the same mounts as -v and --tmpfs, in docker's long form.
 */
export function parseMount(spec: string): { volume?: VolumeMount; tmpfs?: TmpfsMount } {
  const kv = new Map<string, string>();
  for (const part of spec.split(',')) {
    const eq = part.indexOf('=');
    const key = (eq < 0 ? part : part.slice(0, eq)).trim();
    const value = eq < 0 ? 'true' : part.slice(eq + 1);
    const canonical = ({ src: 'source', dst: 'target', destination: 'target', ro: 'readonly' } as Record<string, string>)[key] ?? key;
    kv.set(canonical, value);
  }
  const type = kv.get('type') ?? 'volume';
  const target = kv.get('target');
  if (!target) throw flagError('--mount', spec, 'a target (target=/path in the container) is required');
  const known: Record<string, string[]> = {
    bind: ['type', 'source', 'target', 'readonly', 'bind-propagation'],
    tmpfs: ['type', 'target', 'tmpfs-size', 'tmpfs-mode', 'readonly'],
    volume: ['type', 'source', 'target', 'readonly', 'volume-nocopy'],
  };
  if (!known[type]) throw flagError('--mount', spec, `unknown type "${type}" (bind, volume or tmpfs)`);
  for (const k of kv.keys()) if (!known[type]!.includes(k)) throw flagError('--mount', spec, `unknown option "${k}" for type=${type}`);
  const readonly = ['true', '1'].includes(kv.get('readonly') ?? 'false');
  if (type === 'bind') {
    const source = kv.get('source');
    if (!source?.startsWith('/')) throw flagError('--mount', spec, 'a bind mount needs an absolute source=/host/path');
    return { volume: { source: normalizePath(source), target: mountTarget('--mount', spec, target), readonly } };
  }
  if (type === 'volume') {
    const source = kv.get('source');
    // No source: a fresh anonymous volume, as docker makes one.
    if (!source) return { volume: anonymousVolume(mountTarget('--mount', spec, target), readonly) };
    if (source.startsWith('/')) throw flagError('--mount', spec, 'a volume\'s source is its name (type=bind takes a host path)');
    if (!VOLUME_NAME.test(source)) throw flagError('--mount', spec, `"${source}" is not a volume name (letters, digits, _ . -, two or more)`);
    return { volume: namedVolume(source, mountTarget('--mount', spec, target), readonly, ['true', '1'].includes(kv.get('volume-nocopy') ?? 'false')) };
  }
  const opts: string[] = [];
  if (kv.has('tmpfs-size')) opts.push(`size=${parseSize('--mount', kv.get('tmpfs-size')!)}`);
  if (kv.has('tmpfs-mode')) opts.push(`mode=${kv.get('tmpfs-mode')}`);
  if (readonly) opts.push('ro');
  // The target checked against the --mount text the user wrote, for the message.
  mountTarget('--mount', spec, target);
  return { tmpfs: parseTmpfs(`${target}${opts.length ? `:${opts.join(',')}` : ''}`, '--mount') };
}

/** The sysctls a container may set: those its own namespaces scope, as docker allows. */
const NAMESPACED_IPC = ['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced'];

/** The namespace a sysctl belongs to (writing it changes only that namespace), or undefined: the host's. */
export function sysctlScope(name: string): 'ipc' | 'uts' | 'network' | undefined {
  if (NAMESPACED_IPC.includes(name) || name.startsWith('fs.mqueue.')) return 'ipc';
  if (name === 'kernel.domainname' || name === 'kernel.hostname') return 'uts';
  if (name.startsWith('net.')) return 'network';
  return undefined;
}

/** `--sysctl net.ipv4.ip_forward=1`: only what the container's namespaces own. */
export function parseSysctl(spec: string, ctx: { hostNetwork: boolean; hostIpc: boolean; hostUts: boolean }): [string, string] {
  const eq = spec.indexOf('=');
  if (eq <= 0) throw flagError('--sysctl', spec, 'expected name=value');
  const name = spec.slice(0, eq).replace(/\//g, '.');
  const value = spec.slice(eq + 1);
  if (!/^[a-z0-9_]+(\.[a-zA-Z0-9_-]+)+$/.test(name)) throw flagError('--sysctl', spec, `"${name}" is not a sysctl name`);
  const scope = sysctlScope(name);
  const ipc = scope === 'ipc';
  const uts = scope === 'uts';
  const net = scope === 'network';
  if (!scope) throw flagError('--sysctl', spec, 'not a namespaced sysctl: only net.*, fs.mqueue.*, kernel.msg*, kernel.sem, kernel.shm* and kernel.domainname may be set');
  if (net && ctx.hostNetwork) throw flagError('--sysctl', spec, 'net.* cannot be set with --network host (it would change the host)');
  if (ipc && ctx.hostIpc) throw flagError('--sysctl', spec, 'IPC sysctls cannot be set with --ipc host');
  if (uts && ctx.hostUts) throw flagError('--sysctl', spec, 'UTS sysctls cannot be set with --uts host');
  if (name === 'kernel.hostname') throw flagError('--sysctl', spec, 'use --hostname');
  return [name, value];
}

/** `--shm-size 256m`: the size of /dev/shm in bytes. */
export function parseShmSize(value: string): number {
  const n = parseSize('--shm-size', value);
  if (n <= 0) throw flagError('--shm-size', value, 'must be more than 0');
  return n;
}

/** `--stop-timeout N` seconds (-1: wait forever). */
export function parseStopTimeout(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < -1) throw flagError('--stop-timeout', value, 'expected whole seconds (-1: wait forever)');
  return n;
}

/** `--group-add 10` or a group name from the image's /etc/group (resolved at create). */
export function checkGroupAdd(value: string): string {
  if (!/^[a-zA-Z0-9_.][a-zA-Z0-9_.-]*\$?$/.test(value)) throw flagError('--group-add', value, 'expected a group name or a number');
  return value;
}
