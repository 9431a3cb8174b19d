import { ALL_CAPABILITIES } from '../../src/namespaces/defaults.js';
import { specContext } from './spec-context.js';
import { describe, expect, it } from 'vitest';
import { createSpec, processArgs, processEnv, type SpecContext } from '../../src/namespaces/spec.js';
import type { ContainerOptions } from '../../src/namespaces/options.js';
import type { ImageConfig } from '../../src/image/types.js';
import { DEFAULT_CAPABILITIES } from '../../src/namespaces/defaults.js';

const image: ImageConfig = {
  architecture: 'amd64',
  os: 'linux',
  config: { Env: ['PATH=/bin', 'FOO=image'], Entrypoint: ['/entry'], Cmd: ['default'], WorkingDir: '/srv' },
  rootfs: { type: 'layers', diff_ids: [] },
};

function opts(over: Partial<ContainerOptions> = {}): ContainerOptions {
  return {
    args: [], env: [], volumes: [], tmpfs: [], readOnly: false, tty: false, interactive: false, init: false,
    ulimits: [], capAdd: [], capDrop: [], privileged: false, noNewPrivileges: true, network: 'none',
    pid: 'private', ipc: 'private', uts: 'private', trace: false, remove: false, resources: {}, cgroupParent: 'tsrun', ...over,
  };
}

const ctx: SpecContext = specContext('a'.repeat(64), '/store/containers/x/rootfs');

describe('processArgs (docker semantics)', () => {
  it('joins entrypoint and cmd', () => expect(processArgs(image, opts())).toEqual(['/entry', 'default']));
  it('trailing args replace cmd only', () => expect(processArgs(image, opts({ args: ['x'] }))).toEqual(['/entry', 'x']));
  it('--entrypoint drops the image cmd', () => expect(processArgs(image, opts({ entrypoint: '/bin/sh' }))).toEqual(['/bin/sh']));
  it("--entrypoint '' clears it", () => expect(processArgs(image, opts({ entrypoint: '', args: ['ls'] }))).toEqual(['ls']));
  it('refuses an empty command', () => {
    expect(() => processArgs({ ...image, config: {} }, opts())).toThrow(/no command specified/);
  });
});

describe('processEnv', () => {
  it('layers image env, defaults and -e in docker order', () => {
    const env = processEnv(image, opts({ env: ['FOO=cli'], tty: true }), 'host1', '/root');
    expect(env).toContain('PATH=/bin');
    expect(env).toContain('FOO=cli');
    expect(env).toContain('HOSTNAME=host1');
    expect(env).toContain('TERM=xterm');
    expect(env).toContain('HOME=/root');
    expect(env.filter((e) => e.startsWith('FOO='))).toHaveLength(1);
  });
});

describe('createSpec', () => {
  it("gives docker's 14 capabilities and no inheritable/ambient ones", () => {
    const s = createSpec(image, opts(), ctx);
    expect(s.process.capabilities.bounding).toHaveLength(14);
    expect(new Set(s.process.capabilities.effective)).toEqual(new Set(DEFAULT_CAPABILITIES));
    expect(s.process.capabilities.inheritable).toEqual([]);
    expect(s.process.capabilities.ambient).toEqual([]);
    expect(s.process.noNewPrivileges).toBe(true);
  });
  it('cap-add/cap-drop/ALL', () => {
    const s = createSpec(image, opts({ capAdd: ['CAP_NET_ADMIN'], capDrop: ['CAP_CHOWN'] }), ctx);
    expect(s.process.capabilities.bounding).toContain('CAP_NET_ADMIN');
    expect(s.process.capabilities.bounding).not.toContain('CAP_CHOWN');
    const none = createSpec(image, opts({ capDrop: ['ALL'], capAdd: ['CAP_KILL'] }), ctx);
    expect(none.process.capabilities.bounding).toEqual(['CAP_KILL']);
  });
  it('a non-root user has no effective capabilities', () => {
    const s = createSpec(image, opts(), { ...ctx, user: { uid: 1000, gid: 1000, additionalGids: [], home: '/' } });
    expect(s.process.capabilities.effective).toEqual([]);
    expect(s.process.capabilities.bounding).toHaveLength(14);
  });
  it('privileged: every capability, nothing masked, no no_new_privs', () => {
    const s = createSpec(image, opts({ privileged: true }), ctx);
    expect(s.process.capabilities.bounding.length).toBeGreaterThan(38);
    expect(s.linux.maskedPaths).toEqual([]);
    expect(s.process.noNewPrivileges).toBe(false);
  });
  it('masks and read-only paths by default', () => {
    const s = createSpec(image, opts(), ctx);
    expect(s.linux.maskedPaths).toContain('/proc/kcore');
    expect(s.linux.readonlyPaths).toContain('/proc/sys');
  });
  it('namespaces follow the host options', () => {
    const all = createSpec(image, opts(), ctx).linux.namespaces.map((n) => n.type).sort();
    expect(all).toEqual(['cgroup', 'ipc', 'mount', 'network', 'pid', 'uts']);
    const host = createSpec(image, opts({ pid: 'host', ipc: 'host', uts: 'host', network: 'host' }), ctx);
    expect(host.linux.namespaces.map((n) => n.type).sort()).toEqual(['cgroup', 'mount']);
  });
  it('caps RLIMIT_NOFILE at the host hard limit without CAP_SYS_RESOURCE', () => {
    const s = createSpec(image, opts(), ctx);
    expect(s.process.rlimits).toContainEqual({ type: 'RLIMIT_NOFILE', soft: 20000, hard: 20000 });
    const raised = createSpec(image, opts(), { ...ctx, canRaiseLimits: true });
    expect(raised.process.rlimits).toContainEqual({ type: 'RLIMIT_NOFILE', soft: 1048576, hard: 1048576 });
  });
  it('refuses a --ulimit above the host hard limit, naming the limit', () => {
    expect(() => createSpec(image, opts({ ulimits: [{ name: 'nofile', soft: 30000, hard: 30000 }] }), ctx)).toThrow(/host's \(20000\)/);
  });
  it('uses the image working dir, or -w', () => {
    expect(createSpec(image, opts(), ctx).process.cwd).toBe('/srv');
    expect(createSpec(image, opts({ workdir: '/tmp' }), ctx).process.cwd).toBe('/tmp');
  });
  it('binds /etc/hostname, hosts and resolv.conf unless a volume takes the path', () => {
    const s = createSpec(image, opts(), ctx);
    expect(s.mounts.map((m) => m.destination)).toEqual(expect.arrayContaining(['/etc/hostname', '/etc/hosts', '/etc/resolv.conf']));
    const v = createSpec(image, opts({ volumes: [{ source: '/h', target: '/etc/hosts', readonly: true }] }), ctx);
    expect(v.mounts.filter((m) => m.destination === '/etc/hosts')).toEqual([
      { destination: '/etc/hosts', type: 'bind', source: '/h', options: ['rbind', 'rprivate', 'ro'] },
    ]);
  });
  it('mounts volumes and tmpfs shallower first, so that -v /a/b -v /a does not hide /a/b (docker sorts them too)', () => {
    const s = createSpec(
      image,
      opts({
        volumes: [
          { source: '/h/ab', target: '/a/b', readonly: false },
          { source: '/h/a', target: '/a/', readonly: false },
          { source: '/h/c', target: '/c', readonly: false },
        ],
        tmpfs: [{ target: '/a/b/../b/c', options: [] }],
      }),
      ctx,
    );
    const user = s.mounts.filter((m) => m.destination.startsWith('/a') || m.destination === '/c').map((m) => m.destination);
    // Equal depths keep the order given.
    expect(user).toEqual(['/a/', '/c', '/a/b', '/a/b/../b/c']);
  });
  it('defaults the hostname to the short ID', () => {
    expect(createSpec(image, opts(), ctx).hostname).toBe('a'.repeat(12));
  });
  it('never grants what tsrun does not hold: "all" is all of its own, a named missing one is refused', () => {
    const host = ALL_CAPABILITIES.filter((c) => c !== 'CAP_SYS_RESOURCE');
    const priv = createSpec(image, opts({ privileged: true }), { ...ctx, hostCapabilities: host });
    expect(priv.process.capabilities.bounding).not.toContain('CAP_SYS_RESOURCE');
    expect(priv.process.capabilities.bounding).toContain('CAP_SYS_ADMIN');
    expect(() => createSpec(image, opts({ capAdd: ['CAP_SYS_RESOURCE'] }), { ...ctx, hostCapabilities: host })).toThrow(/does not hold CAP_SYS_RESOURCE/);
  });
});
