// An OCI bundle's config.json, read as hostile input: every field the runtime spec defines is
// checked for its type, and what tsrun-runtime does not do is refused by its path
// ("linux.intelRdt: not supported by tsrun-runtime"), never skipped. The result is the same
// OciSpec type the engine writes, so one plan builder (namespaces/plan.ts) serves both halves.
import { closeSync, fstatSync, openSync, readSync, statSync, constants } from 'node:fs';
import { isAbsolute, join, posix, resolve } from 'node:path';
import { TsrunError } from '../errors.js';
import type { DeviceRule, Resources, ThrottleDevice } from '../cgroups/types.js';
import type { DeviceNode } from '../namespaces/devices.js';
import type { OciHook, OciHooks, OciMount, OciSpec } from '../namespaces/spec.js';
import type { IdMap } from '../namespaces/userns.js';
import type { OciSeccomp } from '../seccomp/types.js';
import { ALL_CAPABILITIES, DEFAULT_DEVICE_RULES } from '../namespaces/defaults.js';
import { sysctlScope } from '../namespaces/more-options.js';

/** config.json larger than this is refused before it is parsed. */
const MAX_CONFIG_BYTES = 4 << 20;

export const NAMESPACE_TYPES = ['pid', 'network', 'ipc', 'uts', 'mount', 'cgroup', 'user'] as const;
/** Mount options that change propagation; shared ones would let the container's mounts reach the host. */
const PROPAGATIONS = ['private', 'rprivate', 'slave', 'rslave'];
const REFUSED_OPTIONS = ['shared', 'rshared', 'unbindable', 'runbindable', 'idmap', 'ridmap', 'rro', 'rrw', 'rnosuid', 'rsuid', 'rnodev', 'rdev', 'rnoexec', 'rexec', 'rnoatime', 'ratime', 'rrelatime', 'rnorelatime', 'rstrictatime', 'rnostrictatime', 'rnodiratime', 'rdiratime', 'rnosymfollow', 'rsymfollow', 'nosymfollow', 'symfollow', 'copy-symlink', 'remount', 'move', 'rmove', 'mand', 'nomand', 'dirsync', 'sync', 'async', 'silent', 'loud'];
/** What a bind mount may carry (mountFlags in namespaces/plan.ts turns them into mount flags). */
const BIND_OPTIONS = ['bind', 'rbind', 'ro', 'rw', 'nosuid', 'suid', 'nodev', 'dev', 'noexec', 'exec', 'relatime', 'strictatime', 'noatime'];
const HOOK_KINDS = ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'] as const;
const SUPPORTED_HOOKS = new Set(['prestart', 'createRuntime', 'poststart', 'poststop']);

type Json = unknown;

export class SpecError extends TsrunError {
  constructor(path: string, message: string) {
    super('ESPEC', `config.json: ${path}: ${message}`);
  }
}

const unsupported = (path: string, why = 'not supported by tsrun-runtime') => new SpecError(path, why);

function obj(v: Json, path: string): Record<string, Json> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new SpecError(path, 'must be an object');
  return v as Record<string, Json>;
}
function optObj(v: Json, path: string): Record<string, Json> | undefined {
  return v === undefined || v === null ? undefined : obj(v, path);
}
function str(v: Json, path: string): string {
  if (typeof v !== 'string') throw new SpecError(path, 'must be a string');
  if (v.includes('\0')) throw new SpecError(path, 'must not contain a NUL byte');
  return v;
}
function optStr(v: Json, path: string): string | undefined {
  return v === undefined || v === null ? undefined : str(v, path);
}
function bool(v: Json, path: string): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw new SpecError(path, 'must be true or false');
  return v;
}
function int(v: Json, path: string, min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new SpecError(path, `must be an integer from ${min} to ${max}`);
  }
  return v;
}
function optInt(v: Json, path: string, min?: number, max?: number): number | undefined {
  return v === undefined || v === null ? undefined : int(v, path, min, max);
}
function arr(v: Json, path: string): Json[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new SpecError(path, 'must be an array');
  return v;
}
function strs(v: Json, path: string): string[] {
  return arr(v, path).map((x, i) => str(x, `${path}[${i}]`));
}
/** Fields this runtime does not implement: present and not empty is an error. */
function refuseSet(o: Record<string, Json> | undefined, prefix: string, names: string[]): void {
  if (!o) return;
  for (const n of names) {
    const v = o[n];
    const empty = v === undefined || v === null || v === '' || v === false || (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 0);
    if (!empty) throw unsupported(`${prefix}${n}`);
  }
}

export interface Bundle {
  /** Absolute path of the bundle directory. */
  dir: string;
  spec: OciSpec;
}

/** Read <bundle>/config.json and check it. */
export function loadBundle(bundleDir: string): Bundle {
  const dir = resolve(bundleDir);
  const file = join(dir, 'config.json');
  let text: string;
  let fd: number | undefined;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
    const size = fstatSync(fd).size;
    if (size > MAX_CONFIG_BYTES) throw new TsrunError('ESPEC', `${file}: ${size} bytes, more than the ${MAX_CONFIG_BYTES} tsrun-runtime reads`);
    const buf = Buffer.alloc(size);
    let off = 0;
    while (off < size) {
      const n = readSync(fd, buf, off, size - off, off);
      if (n === 0) break;
      off += n;
    }
    text = buf.subarray(0, off).toString('utf8');
  } catch (err) {
    if (err instanceof TsrunError) throw err;
    throw new TsrunError('ESPEC', `cannot read the bundle's config.json: ${(err as Error).message}`, { cause: err });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  let json: Json;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new TsrunError('ESPEC', `${file} is not JSON: ${(err as Error).message}`);
  }
  return { dir, spec: checkSpec(json, dir) };
}

/** The spec as tsrun runs it; `bundleDir` resolves a relative root.path and bind sources. */
export function checkSpec(json: Json, bundleDir: string): OciSpec {
  const c = obj(json, '(top level)');
  const ociVersion = str(c.ociVersion, 'ociVersion');
  if (!/^1\.\d+\.\d+/.test(ociVersion)) throw new SpecError('ociVersion', `"${ociVersion}" is not a 1.x runtime spec version`);
  refuseSet(c, '', ['solaris', 'windows', 'vm', 'zos', 'domainname']);

  const rootObj = obj(c.root, 'root');
  const rootPath = str(rootObj.path, 'root.path');
  if (rootPath === '') throw new SpecError('root.path', 'must not be empty');
  const root = { path: isAbsolute(rootPath) ? resolve(rootPath) : resolve(bundleDir, rootPath), readonly: bool(rootObj.readonly, 'root.readonly') };

  const linuxObj = obj(c.linux ?? {}, 'linux');
  const namespaces = checkNamespaces(linuxObj.namespaces);
  const made = (t: string) => namespaces.some((n) => n.type === t && !n.path);
  // Without a mount namespace of its own, pivot_root would move the root of the host.
  if (!made('mount')) throw new SpecError('linux.namespaces', 'a container needs a new mount namespace ({"type": "mount"}, without a path)');
  const hostname = optStr(c.hostname, 'hostname') ?? '';
  if (hostname !== '' && !made('uts')) {
    throw new SpecError('hostname', 'setting the hostname needs a new UTS namespace of the container\'s own (linux.namespaces)');
  }
  const process = checkProcess(c.process);
  const linux = checkLinux(linuxObj, namespaces);
  if ((linux.uidMappings?.length ?? 0) > 0 !== made('user')) {
    throw new SpecError('linux.uidMappings', made('user') ? 'a new user namespace needs uidMappings and gidMappings' : 'given without a new user namespace');
  }
  return {
    ociVersion,
    process,
    root,
    hostname,
    mounts: arr(c.mounts, 'mounts').map((m, i) => checkMount(m, `mounts[${i}]`, bundleDir)),
    ...(c.hooks !== undefined && c.hooks !== null && { hooks: checkHooks(c.hooks) }),
    linux,
    annotations: Object.fromEntries(Object.entries(optObj(c.annotations, 'annotations') ?? {}).map(([k, v]) => [k, str(v, `annotations.${k}`)])),
  };
}

function checkNamespaces(v: Json): OciSpec['linux']['namespaces'] {
  const seen = new Set<string>();
  return arr(v, 'linux.namespaces').map((n, i) => {
    const path = `linux.namespaces[${i}]`;
    const o = obj(n, path);
    const type = str(o.type, `${path}.type`);
    if (type === 'time') throw unsupported(`${path}.type`, 'a time namespace is not supported by tsrun-runtime');
    if (!(NAMESPACE_TYPES as readonly string[]).includes(type)) throw new SpecError(`${path}.type`, `"${type}" is not a namespace type`);
    if (seen.has(type)) throw new SpecError(`${path}.type`, `the ${type} namespace is listed twice`);
    seen.add(type);
    const nsPath = optStr(o.path, `${path}.path`);
    if (nsPath !== undefined && nsPath !== '' && !isAbsolute(nsPath)) throw new SpecError(`${path}.path`, 'must be absolute');
    if (nsPath && type === 'mount') throw unsupported(`${path}.path`, 'joining an existing mount namespace is not supported by tsrun-runtime');
    return { type: type as (typeof NAMESPACE_TYPES)[number], ...(nsPath && { path: nsPath }) };
  });
}

function checkProcess(v: Json): OciSpec['process'] {
  const p = obj(v, 'process');
  refuseSet(p, 'process.', ['apparmorProfile', 'selinuxLabel', 'ioPriority', 'scheduler', 'execCPUAffinity', 'commandLine']);
  const user = obj(p.user ?? {}, 'process.user');
  refuseSet(user, 'process.user.', ['username']);
  const args = strs(p.args, 'process.args');
  if (args.length === 0) throw new SpecError('process.args', 'must name a program');
  const cwd = str(p.cwd, 'process.cwd');
  if (!cwd.startsWith('/')) throw new SpecError('process.cwd', 'must be an absolute path');
  const env = strs(p.env, 'process.env');
  const caps = optObj(p.capabilities, 'process.capabilities') ?? {};
  const capSet = (name: string) =>
    strs(caps[name], `process.capabilities.${name}`).map((cap, i) => {
      if (!(ALL_CAPABILITIES as readonly string[]).includes(cap)) throw new SpecError(`process.capabilities.${name}[${i}]`, `unknown capability "${cap}"`);
      return cap;
    });
  const rlimits = arr(p.rlimits, 'process.rlimits').map((r, i) => {
    const o = obj(r, `process.rlimits[${i}]`);
    const type = str(o.type, `process.rlimits[${i}].type`);
    if (!/^RLIMIT_(CPU|FSIZE|DATA|STACK|CORE|RSS|NPROC|NOFILE|MEMLOCK|AS|LOCKS|SIGPENDING|MSGQUEUE|NICE|RTPRIO|RTTIME)$/.test(type)) {
      throw new SpecError(`process.rlimits[${i}].type`, `unknown rlimit "${type}"`);
    }
    // uint64 in the spec; JSON numbers above 2^53 lose precision, and "unlimited" is 2^64-1.
    const limit = (x: Json, f: string) => (typeof x === 'number' && x >= Number.MAX_SAFE_INTEGER ? -1 : int(x, `process.rlimits[${i}].${f}`, 0));
    const soft = limit(o.soft, 'soft');
    const hard = limit(o.hard, 'hard');
    if (hard !== -1 && (soft === -1 || soft > hard)) throw new SpecError(`process.rlimits[${i}]`, 'soft is above hard');
    return { type, soft, hard };
  });
  const umask = optInt(user.umask, 'process.user.umask', 0, 0o777);
  const oomScoreAdj = optInt(p.oomScoreAdj, 'process.oomScoreAdj', -1000, 1000);
  const consoleSize = optObj(p.consoleSize, 'process.consoleSize');
  if (consoleSize) {
    int(consoleSize.height, 'process.consoleSize.height', 0, 65535);
    int(consoleSize.width, 'process.consoleSize.width', 0, 65535);
  }
  return {
    terminal: bool(p.terminal, 'process.terminal'),
    user: {
      uid: int(user.uid ?? 0, 'process.user.uid', 0, 0xfffffffe),
      gid: int(user.gid ?? 0, 'process.user.gid', 0, 0xfffffffe),
      additionalGids: arr(user.additionalGids, 'process.user.additionalGids').map((g, i) => int(g, `process.user.additionalGids[${i}]`, 0, 0xfffffffe)),
    },
    args,
    env,
    cwd,
    capabilities: {
      bounding: capSet('bounding'),
      effective: capSet('effective'),
      permitted: capSet('permitted'),
      inheritable: capSet('inheritable'),
      ambient: capSet('ambient'),
    },
    rlimits,
    noNewPrivileges: bool(p.noNewPrivileges, 'process.noNewPrivileges'),
    ...(umask !== undefined && { umask }),
    ...(oomScoreAdj !== undefined && { oomScoreAdj }),
  };
}

/** An OCI process (`exec --process FILE`), checked as config.json's would be. */
export function checkProcessJson(json: Json): OciSpec['process'] {
  return checkProcess(json);
}

function checkMount(v: Json, path: string, bundleDir: string): OciMount {
  const m = obj(v, path);
  refuseSet(m, `${path}.`, ['uidMappings', 'gidMappings']);
  let destination = str(m.destination, `${path}.destination`);
  // runc's rule: a relative destination is taken from the root.
  if (!destination.startsWith('/')) destination = '/' + destination;
  destination = posix.normalize(destination);
  const options = strs(m.options, `${path}.options`);
  for (const o of options) if (REFUSED_OPTIONS.includes(o)) throw unsupported(`${path}.options`, `"${o}" is not supported by tsrun-runtime`);
  let type = optStr(m.type, `${path}.type`) ?? '';
  const bind = type === 'bind' || options.includes('bind') || options.includes('rbind');
  if (bind) {
    type = 'bind';
    if (!options.includes('bind') && !options.includes('rbind')) options.push('bind');
  } else if (type === '') {
    throw new SpecError(`${path}.type`, 'a mount that is not a bind mount needs a file system type');
  }
  let source = optStr(m.source, `${path}.source`) ?? '';
  if (bind) {
    if (source === '') throw new SpecError(`${path}.source`, 'a bind mount needs a source');
    if (!isAbsolute(source)) source = resolve(bundleDir, source);
  }
  if (options.filter((o) => PROPAGATIONS.includes(o)).length > 1) throw new SpecError(`${path}.options`, 'more than one propagation option');
  // A bind mount takes no file system data: an option the helper does not apply would be lost.
  for (const o of bind ? options : []) {
    if (!BIND_OPTIONS.includes(o) && !PROPAGATIONS.includes(o)) throw unsupported(`${path}.options`, `"${o}" on a bind mount is not supported by tsrun-runtime`);
  }
  return { destination, type, source: source || type, options };
}

function checkHooks(v: Json): OciHooks {
  const h = obj(v, 'hooks');
  const out: OciHooks = {};
  for (const kind of Object.keys(h)) {
    if (!(HOOK_KINDS as readonly string[]).includes(kind)) throw new SpecError(`hooks.${kind}`, 'not a hook the runtime spec defines');
    const list = arr(h[kind], `hooks.${kind}`);
    if (list.length === 0) continue;
    if (!SUPPORTED_HOOKS.has(kind)) throw unsupported(`hooks.${kind}`, `${kind} hooks are not supported by tsrun-runtime (createRuntime, prestart, poststart and poststop are)`);
    out[kind as keyof OciHooks] = list.map((x, i): OciHook => {
      const p = `hooks.${kind}[${i}]`;
      const o = obj(x, p);
      const hookPath = str(o.path, `${p}.path`);
      if (!isAbsolute(hookPath)) throw new SpecError(`${p}.path`, 'must be absolute');
      const timeout = optInt(o.timeout, `${p}.timeout`, 1);
      return { path: hookPath, args: strs(o.args, `${p}.args`), env: strs(o.env, `${p}.env`), ...(timeout !== undefined && { timeout }) };
    });
  }
  return out;
}

function checkLinux(l: Record<string, Json>, namespaces: OciSpec['linux']['namespaces']): OciSpec['linux'] {
  refuseSet(l, 'linux.', ['intelRdt', 'personality', 'mountLabel', 'timeOffsets', 'memoryPolicy', 'netDevices']);
  const propagation = optStr(l.rootfsPropagation, 'linux.rootfsPropagation');
  if (propagation !== undefined && propagation !== '' && !PROPAGATIONS.includes(propagation)) {
    throw unsupported('linux.rootfsPropagation', `"${propagation}" is not supported by tsrun-runtime (private, rprivate, slave and rslave are)`);
  }
  const maps = (name: string): IdMap[] =>
    arr(l[name], `linux.${name}`).map((m, i) => {
      const o = obj(m, `linux.${name}[${i}]`);
      return {
        containerID: int(o.containerID, `linux.${name}[${i}].containerID`, 0, 0xffffffff),
        hostID: int(o.hostID, `linux.${name}[${i}].hostID`, 0, 0xffffffff),
        size: int(o.size, `linux.${name}[${i}].size`, 1, 0xffffffff),
      };
    });
  const uidMappings = maps('uidMappings');
  const gidMappings = maps('gidMappings');
  const sysctl = optObj(l.sysctl, 'linux.sysctl');
  for (const [k, v] of Object.entries(sysctl ?? {})) {
    str(v, `linux.sysctl.${k}`);
    if (!/^[a-z0-9_]+(\.[a-zA-Z0-9_-]+)+$/.test(k)) throw new SpecError(`linux.sysctl.${k}`, 'not a sysctl name');
    // Anything else is the host's: the container's /proc/sys would write through to it.
    const scope = sysctlScope(k);
    if (!scope) throw new SpecError(`linux.sysctl.${k}`, 'not a namespaced sysctl (only net.*, fs.mqueue.*, kernel.msg*, kernel.sem, kernel.shm*, kernel.domainname and kernel.hostname are)');
    // A joined namespace may be our own (/proc/1/ns/net): writing there would change the host's.
    const ns = namespaces.find((n) => n.type === scope);
    if (!ns || (ns.path && isOurs(scope, ns.path))) throw new SpecError(`linux.sysctl.${k}`, `it belongs to the ${scope} namespace, and the container has none of its own`);
  }
  const cgroupsPath = optStr(l.cgroupsPath, 'linux.cgroupsPath') ?? '';
  const seccomp = checkSeccomp(l.seccomp);
  const devices = arr(l.devices, 'linux.devices').map((d, i) => checkDevice(d, `linux.devices[${i}]`));
  const resources = checkResources(l.resources);
  // The nodes the bundle asks for are usable, as with runc.
  if (resources.devices) resources.devices.push(...devices.map((d): DeviceRule => ({ allow: true, type: d.type, major: d.major, minor: d.minor, access: 'rwm' })));
  return {
    namespaces,
    maskedPaths: strs(l.maskedPaths, 'linux.maskedPaths').map((p, i) => absolute(p, `linux.maskedPaths[${i}]`)),
    readonlyPaths: strs(l.readonlyPaths, 'linux.readonlyPaths').map((p, i) => absolute(p, `linux.readonlyPaths[${i}]`)),
    ...(sysctl && Object.keys(sysctl).length > 0 && { sysctl: sysctl as Record<string, string> }),
    ...(uidMappings.length > 0 && { uidMappings, gidMappings }),
    cgroupsPath,
    resources,
    ...(propagation && { rootfsPropagation: propagation }),
    ...(devices.length > 0 && { devices }),
    ...(seccomp && { seccomp }),
  };
}

const PROC_NS: Record<string, string> = { network: 'net', ipc: 'ipc', uts: 'uts' };

/** Whether the namespace at `path` is the one this process is in (the host's, for tsrun-runtime). */
function isOurs(type: string, path: string): boolean {
  try {
    const theirs = statSync(path);
    const ours = statSync(`/proc/self/ns/${PROC_NS[type] ?? type}`);
    return theirs.ino === ours.ino && theirs.dev === ours.dev;
  } catch {
    return false; // no such namespace: joining it fails at create, saying so
  }
}

function absolute(p: string, path: string): string {
  if (!p.startsWith('/')) throw new SpecError(path, 'must be an absolute path');
  return p;
}

function checkDevice(v: Json, path: string): DeviceNode {
  const d = obj(v, path);
  const devPath = absolute(posix.normalize(str(d.path, `${path}.path`)), `${path}.path`);
  const type = str(d.type, `${path}.type`);
  if (type !== 'c' && type !== 'b') throw unsupported(`${path}.type`, `"${type}": tsrun-runtime makes character (c) and block (b) devices`);
  return {
    path: devPath,
    type,
    major: int(d.major, `${path}.major`, 0, 0xfff),
    minor: int(d.minor, `${path}.minor`, 0, 0xfffff),
    // podman writes the file type's bits too (0o20600 for a character device).
    fileMode: (optInt(d.fileMode, `${path}.fileMode`, 0, 0o177777) ?? 0o666) & 0o7777,
    uid: optInt(d.uid, `${path}.uid`, 0, 0xfffffffe) ?? 0,
    gid: optInt(d.gid, `${path}.gid`, 0, 0xfffffffe) ?? 0,
    // In a user namespace the host's node of the same path is bound in (runc does the same).
    hostPath: devPath,
  };
}

function checkSeccomp(v: Json): OciSeccomp | undefined {
  const s = optObj(v, 'linux.seccomp');
  if (!s) return undefined;
  refuseSet(s, 'linux.seccomp.', ['listenerPath', 'listenerMetadata']);
  const flags = strs(s.flags, 'linux.seccomp.flags');
  for (const f of flags) if (f !== 'SECCOMP_FILTER_FLAG_SPEC_ALLOW') throw unsupported('linux.seccomp.flags', `"${f}" is not supported by tsrun-runtime`);
  const action = (x: Json, path: string) => {
    const a = str(x, path);
    if (!/^SCMP_ACT_(ALLOW|ERRNO|KILL|KILL_PROCESS|KILL_THREAD|TRAP|TRACE|LOG)$/.test(a)) throw unsupported(path, `action "${a}" is not supported by tsrun-runtime`);
    return a;
  };
  const defaultErrnoRet = optInt(s.defaultErrnoRet, 'linux.seccomp.defaultErrnoRet', 0, 4095);
  return {
    defaultAction: action(s.defaultAction, 'linux.seccomp.defaultAction'),
    ...(defaultErrnoRet !== undefined && { defaultErrnoRet }),
    architectures: strs(s.architectures, 'linux.seccomp.architectures'),
    syscalls: arr(s.syscalls, 'linux.seccomp.syscalls').map((r, i) => {
      const p = `linux.seccomp.syscalls[${i}]`;
      const o = obj(r, p);
      const errnoRet = optInt(o.errnoRet, `${p}.errnoRet`, 0, 4095);
      return {
        names: strs(o.names, `${p}.names`),
        action: action(o.action, `${p}.action`),
        ...(errnoRet !== undefined && { errnoRet }),
        args: arr(o.args, `${p}.args`).map((a, j) => {
          const ao = obj(a, `${p}.args[${j}]`);
          const op = str(ao.op, `${p}.args[${j}].op`);
          if (!/^SCMP_CMP_(NE|LT|LE|EQ|GE|GT|MASKED_EQ)$/.test(op)) throw new SpecError(`${p}.args[${j}].op`, `unknown comparison "${op}"`);
          const valueTwo = optInt(ao.valueTwo, `${p}.args[${j}].valueTwo`, 0);
          return { index: int(ao.index, `${p}.args[${j}].index`, 0, 5), value: int(ao.value, `${p}.args[${j}].value`, 0), op, ...(valueTwo !== undefined && { valueTwo }) };
        }),
      };
    }),
  };
}

const throttles = (v: Json, path: string): ThrottleDevice[] | undefined => {
  const list = arr(v, path);
  if (list.length === 0) return undefined;
  return list.map((t, i) => {
    const o = obj(t, `${path}[${i}]`);
    return { major: int(o.major, `${path}[${i}].major`, 0), minor: int(o.minor, `${path}[${i}].minor`, 0), rate: int(o.rate, `${path}[${i}].rate`, 0) };
  });
};

/**
 * linux.resources: the part tsrun's cgroup drivers apply; anything else is refused by its path.
 * For `update` (runc's rule) device rules are not changed, and none given means no change.
 */
export function checkResources(v: Json, prefix = 'linux.resources', forUpdate = false): Resources {
  const r = optObj(v, prefix);
  // A container's devices are denied but runc's floor unless its rules say otherwise.
  if (!r) return forUpdate ? {} : { devices: deviceRules([], `${prefix}.devices`) };
  refuseSet(r, `${prefix}.`, ['hugepageLimits', 'network', 'rdma', 'unified']);
  const out: Resources = {};
  const memory = optObj(r.memory, `${prefix}.memory`);
  if (memory) {
    refuseSet(memory, `${prefix}.memory.`, ['kernel', 'kernelTCP', 'disableOOMKiller', 'checkBeforeUpdate']);
    if (memory.swappiness !== undefined && memory.swappiness !== null) throw unsupported(`${prefix}.memory.swappiness`);
    const limit = optInt(memory.limit, `${prefix}.memory.limit`, -1);
    const reservation = optInt(memory.reservation, `${prefix}.memory.reservation`, -1);
    const swap = optInt(memory.swap, `${prefix}.memory.swap`, -1);
    out.memory = { ...(limit !== undefined && limit !== 0 && { limit }), ...(reservation !== undefined && reservation !== 0 && { reservation }), ...(swap !== undefined && swap !== 0 && { swap }) };
  }
  const cpu = optObj(r.cpu, `${prefix}.cpu`);
  if (cpu) {
    refuseSet(cpu, `${prefix}.cpu.`, ['realtimeRuntime', 'realtimePeriod', 'idle', 'burst']);
    const shares = optInt(cpu.shares, `${prefix}.cpu.shares`, 0, 262144);
    const quota = optInt(cpu.quota, `${prefix}.cpu.quota`, -1);
    const period = optInt(cpu.period, `${prefix}.cpu.period`, 0, 1000000);
    const cpus = optStr(cpu.cpus, `${prefix}.cpu.cpus`);
    const mems = optStr(cpu.mems, `${prefix}.cpu.mems`);
    for (const [name, list] of [['cpus', cpus], ['mems', mems]] as const) {
      if (list && !/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(list)) throw new SpecError(`${prefix}.cpu.${name}`, `"${list}" is not a list like 0-2,4`);
    }
    out.cpu = {
      ...(shares && { shares }),
      ...(quota !== undefined && quota !== 0 && { quota }),
      ...(period && { period }),
      ...(cpus && { cpus }),
      ...(mems && { mems }),
    };
  }
  const pids = optObj(r.pids, `${prefix}.pids`);
  if (pids) out.pids = { limit: int(pids.limit ?? 0, `${prefix}.pids.limit`) };
  const io = optObj(r.blockIO, `${prefix}.blockIO`);
  if (io) {
    refuseSet(io, `${prefix}.blockIO.`, ['leafWeight', 'weightDevice']);
    const weight = optInt(io.weight, `${prefix}.blockIO.weight`, 0, 1000);
    const rb = throttles(io.throttleReadBpsDevice, `${prefix}.blockIO.throttleReadBpsDevice`);
    const wb = throttles(io.throttleWriteBpsDevice, `${prefix}.blockIO.throttleWriteBpsDevice`);
    const ri = throttles(io.throttleReadIOPSDevice, `${prefix}.blockIO.throttleReadIOPSDevice`);
    const wi = throttles(io.throttleWriteIOPSDevice, `${prefix}.blockIO.throttleWriteIOPSDevice`);
    out.blockIO = {
      ...(weight && { weight }),
      ...(rb && { throttleReadBpsDevice: rb }),
      ...(wb && { throttleWriteBpsDevice: wb }),
      ...(ri && { throttleReadIOPSDevice: ri }),
      ...(wi && { throttleWriteIOPSDevice: wi }),
    };
  }
  if (forUpdate) return out;
  if (r.devices === undefined || r.devices === null) {
    out.devices = deviceRules([], `${prefix}.devices`);
  } else {
    const rules = arr(r.devices, `${prefix}.devices`).map((d, i): DeviceRule => {
      const p = `${prefix}.devices[${i}]`;
      const o = obj(d, p);
      const type = optStr(o.type, `${p}.type`) ?? 'a';
      if (!['a', 'b', 'c'].includes(type)) throw new SpecError(`${p}.type`, `"${type}" is not a, b or c`);
      const access = optStr(o.access, `${p}.access`) ?? 'rwm';
      if (!/^[rwm]{1,3}$/.test(access) || new Set(access).size !== access.length) throw new SpecError(`${p}.access`, `"${access}" is not a combination of r, w and m`);
      const major = optInt(o.major, `${p}.major`, -1);
      const minor = optInt(o.minor, `${p}.minor`, -1);
      return {
        allow: bool(o.allow, `${p}.allow`),
        type: type as DeviceRule['type'],
        ...(major !== undefined && major >= 0 && { major }),
        ...(minor !== undefined && minor >= 0 && { minor }),
        access,
      };
    });
    out.devices = deviceRules(rules, `${prefix}.devices`);
  }
  return out;
}

/**
 * The device cgroup as tsrun's drivers take it: everything denied, then what is allowed. A
 * list that allows every device at the end (podman --privileged) needs no filter: undefined.
 */
function deviceRules(rules: DeviceRule[], path: string): DeviceRule[] | undefined {
  const everything = (r: DeviceRule) => (r.type ?? 'a') === 'a' && r.major === undefined && r.minor === undefined && r.access === 'rwm';
  // What counts is the last rule for "every device"; rules before it are overridden.
  let start = -1;
  for (let i = rules.length - 1; i >= 0; i--) {
    if (everything(rules[i]!)) {
      start = i;
      break;
    }
  }
  if (start >= 0 && rules[start]!.allow) {
    if (rules.slice(start + 1).some((r) => !r.allow)) throw unsupported(path, 'a deny rule after allowing every device is not supported by tsrun-runtime');
    return undefined;
  }
  // As runc: every device is denied unless allowed (with or without a leading deny-all rule)...
  const tail = start >= 0 ? rules.slice(start + 1) : rules;
  if (tail.some((r) => !r.allow)) throw unsupported(path, 'a deny rule after the first is not supported by tsrun-runtime');
  // ...but runc's floor, which bundles count on (containerd's default spec denies everything and
  // allows nothing itself): the standard nodes and the PTYs stay usable.
  return [{ allow: false, type: 'a', access: 'rwm' }, ...tail, ...DEFAULT_DEVICE_RULES];
}
