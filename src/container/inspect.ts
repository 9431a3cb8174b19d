// inspect: a container as docker shows it, plus tsrun's own section (namespace inodes, cgroup
// paths, the files a learner can cat). What ps shows of it is in list.ts.
import { readFileSync, readlinkSync } from 'node:fs';
import type { OciSpec } from '../namespaces/spec.js';
import { seccompSecurityOpt } from '../seccomp/security-opt.js';
import { inspectNetworks } from './network.js';
import { ContainerPaths } from './paths.js';
import type { ContainerRecord } from './record.js';
import { observe } from './status.js';
import { healthOf } from './list.js';

function nsInodes(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  if (!pid) return out;
  for (const ns of ['cgroup', 'ipc', 'mnt', 'net', 'pid', 'user', 'uts']) {
    try {
      out[ns] = readlinkSync(`/proc/${pid}/ns/${ns}`);
    } catch {
      // gone
    }
  }
  return out;
}

/** docker inspect's shape, with the fields tsrun has; plus a `Tsrun` section for learners. */
export async function inspectContainer(storeRoot: string, record: ContainerRecord): Promise<Record<string, unknown>> {
  const paths = new ContainerPaths(storeRoot, record.id);
  const seen = observe(paths);
  const spec = JSON.parse(readFileSync(paths.config, 'utf8')) as OciSpec;
  const o = record.options;
  const limits = spec.linux.resources;
  const net = seen.state.network;
  const health = healthOf(storeRoot, record, seen);
  // As docker: a container between two runs of its restart policy is still running, and restarting.
  const running = seen.status === 'running' || seen.status === 'paused' || seen.status === 'restarting';
  const ports: Record<string, Array<{ HostIp: string; HostPort: string }> | null> = {};
  for (const p of net?.ports ?? []) {
    ports[`${p.containerPort}/${p.protocol}`] = [{ HostIp: p.hostIp || '0.0.0.0', HostPort: String(p.hostPort) }];
  }
  return {
    Id: record.id,
    Created: record.created,
    Path: record.path,
    Args: record.args,
    State: {
      Status: seen.status,
      Running: running,
      Paused: seen.status === 'paused',
      Restarting: seen.status === 'restarting',
      OOMKilled: seen.state.oomKilled,
      Dead: seen.status === 'dead',
      Pid: seen.pid,
      ExitCode: seen.exitCode ?? 0,
      StartedAt: seen.monitor?.startedAt ?? seen.state.startedAt ?? '0001-01-01T00:00:00Z',
      // Between two runs: when the last one ended, as docker.
      FinishedAt: (running && seen.status !== 'restarting' ? null : (seen.monitor?.finishedAt ?? seen.state.finishedAt)) ?? '0001-01-01T00:00:00Z',
      ...(health && { Health: health }),
    },
    Image: record.imageId,
    ResolvConfPath: paths.resolvConf,
    HostnamePath: paths.hostname,
    HostsPath: paths.hosts,
    LogPath: paths.log,
    Name: `/${record.name}`,
    RestartCount: seen.monitor?.restartCount ?? 0,
    Driver: 'overlay',
    HostConfig: {
      AutoRemove: o.remove,
      RestartPolicy: { Name: record.restartPolicy.name, MaximumRetryCount: record.restartPolicy.maximumRetryCount },
      LogConfig: record.logConfig.driver === 'none'
        ? { Type: 'none', Config: {} }
        : { Type: 'json-file', Config: { 'max-size': String(record.logConfig.maxSize), 'max-file': String(record.logConfig.maxFile) } },
      NetworkMode: o.network,
      PortBindings: Object.fromEntries(o.publish.map((p) => [`${p.containerPort}/${p.protocol}`, [{ HostIp: p.hostIp, HostPort: p.hostPort ? String(p.hostPort) : '' }]])),
      Binds: o.volumes.map((v) => `${v.volume ?? v.source}:${v.target}${v.readonly ? ':ro' : ''}`),
      Tmpfs: Object.fromEntries(o.tmpfs.map((t) => [t.target, t.options.join(',')])),
      ReadonlyRootfs: o.readOnly,
      Privileged: o.privileged,
      CapAdd: o.capAdd,
      CapDrop: o.capDrop,
      SecurityOpt: [...(o.noNewPrivileges ? ['no-new-privileges'] : []), ...seccompSecurityOpt(o.seccomp)],
      PidMode: o.pid === 'host' ? 'host' : '',
      IpcMode: o.ipc === 'host' ? 'host' : 'private',
      UTSMode: o.uts === 'host' ? 'host' : '',
      UsernsMode: o.userns ? 'private' : '',
      Sysctls: o.sysctls ?? {},
      ShmSize: o.shmSize ?? 65536 * 1024,
      GroupAdd: o.groupAdd ?? [],
      Devices: (o.devices ?? []).map((d) => ({ PathOnHost: d.hostPath, PathInContainer: d.containerPath, CgroupPermissions: d.permissions })),
      DeviceCgroupRules: (o.deviceCgroupRules ?? []).map((r) => `${r.type ?? 'a'} ${r.major ?? '*'}:${r.minor ?? '*'} ${r.access ?? 'rwm'}`),
      CgroupParent: o.cgroupParent,
      Init: o.init,
      // The limits from the one place they are kept (and `update` changes): the spec.
      Memory: limits.memory?.limit ?? 0,
      NanoCpus: limits.cpu?.quota && limits.cpu.period ? Math.round((limits.cpu.quota / limits.cpu.period) * 1e9) : 0,
      PidsLimit: limits.pids?.limit ?? null,
      Ulimits: o.ulimits.map((u) => ({ Name: u.name, Soft: u.soft, Hard: u.hard })),
    },
    GraphDriver: {
      Name: 'overlay',
      Data: {
        LowerDir: record.lowerDirs.map((l) => `${storeRoot}/${l}`).join(':'),
        UpperDir: `${storeRoot}/${paths.upperRel}`,
        WorkDir: `${storeRoot}/${paths.workRel}`,
        MergedDir: paths.rootfs,
      },
    },
    Mounts: o.volumes.map((v) => ({
      Type: v.volume ? 'volume' : 'bind',
      ...(v.volume && { Name: v.volume, Driver: 'local' }),
      Source: v.source,
      Destination: v.target,
      Mode: v.readonly ? 'ro' : '',
      RW: !v.readonly,
      Propagation: v.volume ? '' : 'rprivate',
    })),
    Config: {
      Hostname: record.hostname,
      User: spec.process.user.uid === 0 ? '' : `${spec.process.user.uid}:${spec.process.user.gid}`,
      Tty: spec.process.terminal,
      OpenStdin: o.interactive,
      Env: spec.process.env,
      Cmd: record.args,
      Image: record.image,
      WorkingDir: spec.process.cwd,
      Entrypoint: o.entrypoint === undefined ? null : [o.entrypoint],
      StopSignal: record.stopSignal,
      ...(record.stopTimeout !== undefined && { StopTimeout: record.stopTimeout }),
      Labels: record.labels ?? {},
      ...(o.healthcheck && { Healthcheck: o.healthcheck }),
    },
    NetworkSettings: {
      SandboxKey: net?.netnsPath ?? '',
      Ports: ports,
      IPAddress: running ? (net?.ip ?? '') : '',
      IPPrefixLen: running ? (net?.prefixLen ?? 0) : 0,
      Gateway: running ? (net?.gateway ?? '') : '',
      MacAddress: running ? (net?.mac ?? '') : '',
      // Every network: the one it was created with, and those `network connect` added.
      Networks: inspectNetworks(storeRoot, record, running, net),
    },
    Tsrun: {
      ContainerDir: paths.dir,
      MonitorPid: running ? (seen.monitor?.monitorPid ?? 0) : 0,
      Namespaces: running ? nsInodes(seen.pid) : {},
      CgroupPaths: running ? seen.state.cgroupPaths : {},
      Limits: spec.linux.resources,
      Capabilities: spec.process.capabilities.bounding,
      NoNewPrivileges: spec.process.noNewPrivileges,
      // Described at its start; a container never started: here, with the compiler.
      Seccomp: seen.state.seccomp ?? (await import('../seccomp/index.js')).describeSeccomp(o.seccomp, o.privileged, spec.linux.seccomp),
      // The maps as /proc/<pid>/uid_map has them, and how image files get the right owners.
      UserNamespace: o.userns
        ? {
            UidMap: o.userns.uidMap.map((m) => `${m.containerID}:${m.hostID}:${m.size}`),
            GidMap: o.userns.gidMap.map((m) => `${m.containerID}:${m.hostID}:${m.size}`),
            Files: seen.state.usernsFiles === 'copy' ? 'a copy of the layers with shifted owners' : 'an idmapped mount of the store (no copy)',
          }
        : null,
      HostVeth: running ? (net?.hostVeth ?? '') : '',
      OciConfig: paths.config,
    },
  };
}
