// Host devices in a container: `--device` and `--device-cgroup-rule`, as docker has them.
//
//   --device /dev/fuse                  the host's node, made at the same path in the container
//   --device /dev/sdc:/dev/xvdc:r       at another path, readable only
//   --device /dev/dri                   a directory: every device node below it
//   --device-cgroup-rule 'c 81:* rmw'   allowed in the device cgroup, no node made
//
// A device given with --device is made in the container (mknod, or a bind mount of the host's
// node in a user namespace) with the host node's mode and owner, and added to the allowlist of
// the device cgroup (defaults.ts: DEFAULT_DEVICE_RULES). In the spec the nodes are OCI's
// linux.devices and the allowlist is linux.resources.devices: deny all, then each allow rule.
import { lstatSync, readdirSync, realpathSync, type Stats } from 'node:fs';
import { join, posix } from 'node:path';
import { flagError, TsrunError } from '../errors.js';
import { DEFAULT_DEVICE_RULES, inKernelTree } from './defaults.js';
import type { DeviceRule } from '../cgroups/types.js';

export type { DeviceRule };

/** `--device HOST[:CONTAINER][:PERMISSIONS]`, as given. */
export interface DeviceMapping {
  hostPath: string;
  containerPath: string;
  /** A subset of "rwm": read, write, mknod. */
  permissions: string;
}

/** A node to make in the container (OCI linux.devices), and the host's node it comes from. */
export interface DeviceNode {
  path: string;
  type: 'c' | 'b';
  major: number;
  minor: number;
  fileMode: number;
  uid: number;
  gid: number;
  /** Not OCI's: bound in instead of made where mknod is refused (a user namespace). */
  hostPath: string;
}

const PERMISSIONS = /^[rwm]{1,3}$/;
const validPermissions = (p: string) => PERMISSIONS.test(p) && new Set(p).size === p.length;

/** docker's reading: with two fields, the second is permissions if it can be, else the container path. */
export function parseDevice(spec: string): DeviceMapping {
  const parts = spec.split(':');
  let [hostPath = '', containerPath = '', permissions = 'rwm'] = parts;
  if (parts.length > 3) throw flagError('--device', spec, 'expected /host/device[:/container/path][:rwm]');
  if (parts.length === 2 && validPermissions(containerPath)) [containerPath, permissions] = [hostPath, containerPath];
  else if (parts.length === 1) containerPath = hostPath;
  if (!hostPath.startsWith('/')) throw flagError('--device', spec, `"${hostPath}" is not an absolute host path`);
  if (!containerPath.startsWith('/')) throw flagError('--device', spec, `container path "${containerPath}" must be absolute`);
  if (posix.normalize(containerPath) === '/') throw flagError('--device', spec, 'cannot make a device over the container root');
  if (!validPermissions(permissions)) throw flagError('--device', spec, `bad permissions "${permissions}": a combination of r (read), w (write) and m (mknod)`);
  return { hostPath: posix.normalize(hostPath), containerPath: posix.normalize(containerPath), permissions };
}

/** `TYPE MAJOR:MINOR ACCESS`, e.g. `c 81:* rmw` or `a *:* rwm` (docker's --device-cgroup-rule). */
export function parseDeviceCgroupRule(spec: string): DeviceRule {
  const m = /^([abc]) (\d+|\*):(\d+|\*) ([rwm]{1,3})$/.exec(spec.trim());
  if (!m || !validPermissions(m[4]!)) throw flagError('--device-cgroup-rule', spec, 'expected TYPE MAJOR:MINOR ACCESS, e.g. "c 81:* rmw" (type a, b or c; * for any number; access from r, w, m)');
  const num = (s: string) => (s === '*' ? undefined : Number(s));
  const [major, minor] = [num(m[2]!), num(m[3]!)];
  // cgroup v1 reads any "a" line as "allow everything", whatever follows it: only that is taken.
  if (m[1] === 'a' && (major !== undefined || minor !== undefined || m[4]!.length !== 3)) {
    throw flagError('--device-cgroup-rule', spec, 'type a (every device) only as "a *:* rwm"; use b or c for a narrower rule');
  }
  if ((major ?? 0) > 0xfff || (minor ?? 0) > 0xfffff) throw flagError('--device-cgroup-rule', spec, 'device number out of range');
  return {
    allow: true,
    type: m[1] as DeviceRule['type'],
    ...(major !== undefined && { major }),
    ...(minor !== undefined && { minor }),
    access: m[4]!,
  };
}

function nodeFrom(st: Stats, hostPath: string, path: string): DeviceNode {
  return {
    path,
    type: st.isBlockDevice() ? 'b' : 'c',
    // Linux's dev_t: major in bits 8-19 (and 32-43), minor in 0-7 and 20-31.
    major: Number((BigInt(st.rdev) >> 8n) & 0xfffn),
    minor: Number((BigInt(st.rdev) & 0xffn) | ((BigInt(st.rdev) >> 12n) & 0xfff00n)),
    fileMode: st.mode & 0o7777,
    uid: st.uid,
    gid: st.gid,
    hostPath,
  };
}

/** --device's nodes; with --privileged, first every node of the host's /dev (the --device ones win). */
export function containerDevices(options: { privileged: boolean; devices?: DeviceMapping[] }): ResolvedDevice[] {
  const given = resolveDevices(options.devices ?? []);
  if (!options.privileged) return given;
  const paths = new Set(given.map(([node]) => node.path));
  return [...hostDevices().filter(([node]) => !paths.has(node.path)), ...given];
}

/** A node to make, and the access --device gave to it. */
export type ResolvedDevice = [node: DeviceNode, permissions: string];

/** What tsrun makes in a container's /dev itself: no --device may go there. */
const OWN_DEV = ['/dev/pts', '/dev/shm', '/dev/mqueue', '/dev/ptmx', '/dev/fd', '/dev/stdin', '/dev/stdout', '/dev/stderr', '/dev/console'];
const ownPath = (p: string) => p === '/dev' || OWN_DEV.some((own) => p === own || p.startsWith(`${own}/`));

/**
 * The host's nodes for each --device (a directory gives every node below it), or why not.
 * Two for one container path: the later one.
 */
export function resolveDevices(mappings: DeviceMapping[]): ResolvedDevice[] {
  const byPath = new Map<string, ResolvedDevice>();
  for (const [node, access] of mappings.flatMap(resolveOne)) {
    byPath.delete(node.path);
    byPath.set(node.path, [node, access]);
  }
  return [...byPath.values()];
}

function resolveOne(m: DeviceMapping): ResolvedDevice[] {
  const what = `--device ${m.hostPath}`;
  let real: string;
  let st: Stats;
  try {
    // A link such as /dev/disk/by-id/... names the device it points to.
    real = realpathSync(m.hostPath);
    st = lstatSync(real);
  } catch (err) {
    throw new TsrunError('EINVAL_FLAG', `${what}: no such device on this host`, { cause: err });
  }
  const nodes: ResolvedDevice[] = [];
  if (st.isCharacterDevice() || st.isBlockDevice()) {
    nodes.push([nodeFrom(st, real, m.containerPath), m.permissions]);
  } else if (st.isDirectory()) {
    let found: Array<[string, string, Stats]>;
    try {
      found = walkDevices(real);
    } catch (err) {
      throw new TsrunError('EINVAL_FLAG', `${what}: cannot read the directory (${(err as NodeJS.ErrnoException).code ?? err})`, { cause: err });
    }
    if (found.length === 0) throw new TsrunError('EINVAL_FLAG', `${what}: the directory holds no device`);
    for (const [hostPath, rel, node] of found) nodes.push([nodeFrom(node, hostPath, posix.join(m.containerPath, rel)), m.permissions]);
  } else {
    throw new TsrunError('EINVAL_FLAG', `${what}: not a device (nor a directory of devices)`);
  }
  for (const [node] of nodes) {
    const tree = inKernelTree(node.path);
    if (tree) throw new TsrunError('EINVAL_FLAG', `${what}: ${node.path} is in ${tree}, which belongs to the kernel`);
    if (ownPath(node.path)) throw new TsrunError('EINVAL_FLAG', `${what}: ${node.path} is the container's own (tsrun makes /dev's pts, shm, mqueue, ptmx, fd, std* and console)`);
  }
  return nodes;
}

/**
 * What --privileged adds, as runc's HostDevices: every node under the host's /dev at the same
 * path, but the terminal ones the container has its own of (console, ptmx, pts/) and the
 * directories of other file systems (shm, mqueue) or of links (fd).
 */
export function hostDevices(): ResolvedDevice[] {
  return walkDevices('/dev', '', HOST_DEV_SKIP).map(([hostPath, rel, st]): ResolvedDevice => [nodeFrom(st, hostPath, posix.join('/dev', rel)), 'rwm']);
}

const HOST_DEV_SKIP = new Set(['console', 'ptmx', 'pts', 'shm', 'mqueue', 'fd', '.lxc', '.lxd-mounts', '.udev']);

/**
 * Device nodes below `dir` (links not followed, as docker), but top-level names in `skip`:
 * [host path, path relative to dir, stat].
 */
function walkDevices(dir: string, rel = '', skip?: Set<string>): Array<[string, string, Stats]> {
  const out: Array<[string, string, Stats]> = [];
  for (const entry of readdirSync(join(dir, rel), { withFileTypes: true })) {
    if (skip?.has(entry.name)) continue;
    const r = posix.join(rel, entry.name);
    if (entry.isDirectory()) out.push(...walkDevices(dir, r));
    else if (entry.isCharacterDevice() || entry.isBlockDevice()) out.push([join(dir, r), r, lstatSync(join(dir, r))]);
  }
  return out;
}

/**
 * The spec's linux.resources.devices: deny everything, then docker's defaults, the --device
 * nodes and the --device-cgroup-rule rules. None with --privileged: every device may be used.
 */
export function deviceRules(privileged: boolean, devices: ResolvedDevice[], extra: DeviceRule[]): DeviceRule[] | undefined {
  if (privileged) return undefined;
  return [
    { allow: false, access: 'rwm' },
    ...DEFAULT_DEVICE_RULES,
    ...devices.map(([n, access]): DeviceRule => ({ allow: true, type: n.type, major: n.major, minor: n.minor, access })),
    ...extra,
  ];
}

/**
 * The allow rules as the helper's `devices` step and cgroup v1's devices.allow take them
 * (`c:1:3:rwm`), after the deny-all that tsrun's rules always start with.
 */
export function allowList(rules: DeviceRule[]): string[] {
  const [first, ...rest] = rules;
  if (!first || first.allow || (first.type ?? 'a') !== 'a' || first.major !== undefined || first.minor !== undefined) {
    throw new TsrunError('EINTERNAL', 'device rules must start with one that denies every device');
  }
  return rest.map((r) => {
    if (!r.allow) throw new TsrunError('EINTERNAL', 'device rules after the first must allow');
    return `${r.type ?? 'a'}:${r.major ?? '*'}:${r.minor ?? '*'}:${r.access ?? 'rwm'}`;
  });
}
