import { describe, expect, it } from 'vitest';
import { checkGroupAdd, parseLabels, parseMount, parseShmSize, parseStopTimeout, parseSysctl } from '../../src/namespaces/more-options.js';
import { parseTmpfs, parseVolume } from '../../src/namespaces/options.js';

const privateNs = { hostNetwork: false, hostIpc: false, hostUts: false };

describe('docker run flags: labels, --mount, --sysctl, --shm-size, --stop-timeout, --group-add', () => {
  it('labels: key=value, bare keys, files with comments; flags win over files', () => {
    expect(parseLabels(['a=1', 'b', 'c=x=y', 'team=flag'], [{ name: 'f', text: '# note\nteam=file\n\nenv=ci\n' }])).toEqual({ team: 'flag', env: 'ci', a: '1', b: '', 'c': 'x=y' });
    expect(() => parseLabels(['=v'], [])).toThrow(/"=v" for "--label" flag: a label needs a key/);
  });

  it('--mount in docker\'s long form, with its aliases', () => {
    expect(parseMount('type=bind,src=/a/,dst=/b,ro')).toEqual({ volume: { source: '/a', target: '/b', readonly: true } });
    expect(parseMount('type=bind,source=/a,target=/b')).toEqual({ volume: { source: '/a', target: '/b', readonly: false } });
    expect(parseMount('type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770').tmpfs).toEqual({ target: '/t', options: ['size=1048576', 'mode=1770'] });
    expect(parseMount('type=volume,source=data,target=/d,readonly')).toEqual({ volume: { source: '', target: '/d', readonly: true, volume: 'data' } });
    expect(parseMount('type=volume,target=/d')).toEqual({ volume: { source: '', target: '/d', readonly: false, anonymous: true } });
    expect(() => parseMount('type=volume,source=/abs,target=/d')).toThrow(/a volume's source is its name/);
    expect(() => parseMount('type=bind,source=rel,target=/d')).toThrow(/absolute source/);
    expect(() => parseMount('type=bind,source=/a')).toThrow(/a target .* is required/);
    expect(() => parseMount('type=tmpfs,target=/t,source=/x')).toThrow(/unknown option "source" for type=tmpfs/);
    expect(() => parseMount('type=nfs,target=/t')).toThrow(/unknown type "nfs"/);
  });

  it('no -v, --mount or --tmpfs in /proc or /sys, however the path is spelled (issue 13)', () => {
    const refused = /cannot mount on \/(proc|sys)\S*: \/(proc|sys) belongs to the kernel/;
    for (const target of ['/proc', '/proc/self', '/proc/./self/', '//proc//sys', '/tmp/../proc/1', '/sys', '/sys/fs/cgroup', '/sys/../sys/kernel']) {
      expect(() => parseVolume(`/tmp/evil:${target}`), target).toThrow(refused);
      expect(() => parseVolume(`vol:${target}:ro`), target).toThrow(refused);
      expect(() => parseMount(`type=bind,source=/tmp/evil,target=${target}`), target).toThrow(refused);
      expect(() => parseMount(`type=volume,source=vol,target=${target}`), target).toThrow(refused);
      expect(() => parseMount(`type=tmpfs,target=${target}`), target).toThrow(refused);
      expect(() => parseTmpfs(`${target}:size=1m`), target).toThrow(refused);
    }
    // Names that only begin like the kernel's trees are ordinary paths.
    expect(parseVolume('/tmp/a:/procfiles').target).toBe('/procfiles');
    expect(parseTmpfs('/system').target).toBe('/system');
    expect(() => parseTmpfs('/')).toThrow(/cannot mount over the container root/);
  });

  it('--sysctl: only what the container\'s own namespaces scope', () => {
    expect(parseSysctl('net.ipv4.ip_forward=1', privateNs)).toEqual(['net.ipv4.ip_forward', '1']);
    expect(parseSysctl('net/ipv4/ip_forward=1', privateNs)).toEqual(['net.ipv4.ip_forward', '1']);
    expect(parseSysctl('kernel.shmmax=100', privateNs)).toEqual(['kernel.shmmax', '100']);
    expect(parseSysctl('fs.mqueue.msg_max=20', privateNs)).toEqual(['fs.mqueue.msg_max', '20']);
    expect(() => parseSysctl('vm.swappiness=1', privateNs)).toThrow(/not a namespaced sysctl/);
    expect(() => parseSysctl('kernel.panic=1', privateNs)).toThrow(/not a namespaced sysctl/);
    expect(() => parseSysctl('net.core.somaxconn=1', { ...privateNs, hostNetwork: true })).toThrow(/--network host/);
    expect(() => parseSysctl('kernel.sem=1 2 3 4', { ...privateNs, hostIpc: true })).toThrow(/--ipc host/);
    expect(() => parseSysctl('net.ipv4.ip_forward', privateNs)).toThrow(/expected name=value/);
    expect(() => parseSysctl('net.../x=1', privateNs)).toThrow(/is not a sysctl name/);
  });

  it('sizes, timeouts and groups', () => {
    expect(parseShmSize('128m')).toBe(128 * 1024 * 1024);
    expect(() => parseShmSize('0')).toThrow(/must be more than 0/);
    expect(parseStopTimeout('-1')).toBe(-1);
    expect(() => parseStopTimeout('1.5')).toThrow(/whole seconds/);
    expect(checkGroupAdd('audio')).toBe('audio');
    expect(() => checkGroupAdd('a:b')).toThrow(/group name or a number/);
  });
});
