// `network connect` / `network disconnect` through the CLI, on the real kernel: a second
// interface in a running container's namespace, names both ways on the new network, inspect
// and network inspect, the address given back, docker's refusals, a stopped container's
// networks attached at start, rm -f of a container on two networks, and connect killed with -9.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePrivileged, TestEnv, type Result } from './helpers/env.js';
import { loadBusybox } from './helpers/images.js';

const tag = `nc${process.pid % 10000}`;
// Clear of run-network.test.ts (10.214.100-199) and of every other file's subnets.
const subnetA = `10.214.${process.pid % 50}`;
const subnetB = `10.214.${50 + (process.pid % 50)}`;
const A = `${tag}-a`;
const B = `${tag}-b`;

/** The host's names for a container's network, derived as tsrun derives them (src/netns). */
const vethOf = (id: string, network?: string) => `veth${createHash('sha256').update(network === undefined ? id : `${id}+${network}`).digest('hex').slice(0, 8)}`;
const netnsOf = (id: string) => `/run/netns/tsrun-${id.slice(0, 12)}`;
const linkThere = (name: string) => existsSync(`/sys/class/net/${name}`);
const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

describePrivileged('tsrun network connect / disconnect', () => {
  let env: TestEnv;
  let image: string;
  const t = (args: string[], extraEnv: NodeJS.ProcessEnv = {}): Result => env.run(args, { timeout: 60_000, env: extraEnv });
  const ok = (args: string[]): string => {
    const r = t(args);
    expect(r, `tsrun ${args.join(' ')}`).toMatchObject({ status: 0 });
    return r.stdout;
  };
  const inspect = (name: string) => JSON.parse(ok(['inspect', name]))[0];
  const idOf = (name: string) => ok(['inspect', '-f', '{{.Id}}', name]).trim();
  const endpointFiles = () => (existsSync(join(env.root, 'endpoints')) ? readdirSync(join(env.root, 'endpoints')).filter((f) => f.endsWith('.json')) : []);
  /** The IPv4 address of an interface inside a container, or '' without one. */
  const addrOf = (name: string, ifname: string) => /inet (\d+\.\d+\.\d+\.\d+)\//.exec(t(['exec', name, 'ip', '-4', '-o', 'addr', 'show', ifname]).stdout)?.[1] ?? '';
  /** The address a name resolves to inside a container (busybox has no getent: ping says it). */
  const resolved = (name: string, host: string) => /^PING \S+ \((\d+\.\d+\.\d+\.\d+)\)/m.exec(t(['exec', name, 'ping', '-c', '1', '-W', '1', host]).stdout)?.[1] ?? '';
  /** Nothing of the container left on the host: veths, namespace, endpoint files, firewall rules. */
  const leftOf = (id: string, networks: string[]) => {
    const veths = [vethOf(id), ...networks.map((n) => vethOf(id, n))];
    // A veth the kernel is still removing with its namespace goes within the release grace.
    for (let i = 0; i < 60 && veths.some(linkThere); i++) sleepSync(50);
    const rules = execFileSync('iptables-save', { encoding: 'utf8' }).split('\n').filter((l) => l.includes(`:${id.slice(0, 12)}`));
    return [
      ...veths.filter(linkThere).map((v) => `veth ${v}`),
      ...(existsSync(netnsOf(id)) ? [`netns ${netnsOf(id)}`] : []),
      ...endpointFiles().filter((f) => f.startsWith(id)).map((f) => `endpoint ${f}`),
      ...rules.map((r) => `rule ${r}`),
    ];
  };

  beforeAll(() => {
    env = new TestEnv('netconn');
    image = loadBusybox(env);
    ok(['network', 'create', '--subnet', `${subnetA}.0/24`, '-o', `bridge=${tag}a`, A]);
    ok(['network', 'create', '--subnet', `${subnetB}.0/24`, '-o', `bridge=${tag}b`, B]);
  });
  afterAll(async () => {
    const all = t(['ps', '-aq']).stdout.split('\n').filter(Boolean);
    if (all.length) t(['rm', '-f', ...all]);
    await env.cleanup();
  });

  it('connects a running container to a second network: eth1 in its subnet, no second default route, names and aliases both ways', () => {
    ok(['run', '-d', '--name', 'web', '--network', A, image, 'sleep', '300']);
    ok(['run', '-d', '--name', 'db', '--network', B, image, 'sleep', '300']);
    expect(t(['exec', 'web', 'ping', '-c', '1', '-W', '1', 'db']).stderr).toContain('bad address'); // not yet
    expect(t(['network', 'connect', '--alias', 'www', '--alias', 'front', B, 'web'])).toMatchObject({ status: 0, stdout: '', stderr: '' });

    expect(addrOf('web', 'eth0')).toMatch(new RegExp(`^${subnetA.replaceAll('.', '\\.')}\\.\\d+$`));
    expect(addrOf('web', 'eth1')).toMatch(new RegExp(`^${subnetB.replaceAll('.', '\\.')}\\.\\d+$`));
    const routes = ok(['exec', 'web', 'ip', 'route']);
    expect(routes.split('\n').filter((l) => l.startsWith('default'))).toEqual([`default via ${subnetA}.1 dev eth0 `]);
    expect(routes).toContain(`${subnetB}.0/24 dev eth1`);
    // The peer on the new network finds it by name and by alias, and it finds the peer.
    for (const name of ['web', 'www', 'front']) expect(t(['exec', 'db', 'ping', '-c', '1', '-W', '2', name]).status, `db pings ${name}`).toBe(0);
    expect(resolved('db', 'www')).toBe(addrOf('web', 'eth1'));
    expect(t(['exec', 'web', 'ping', '-c', '1', '-W', '2', 'db']).status).toBe(0);
    expect(resolved('web', 'db')).toBe(addrOf('db', 'eth0'));
  });

  it('inspect shows both networks; network inspect lists the container with its address, MAC and endpoint', () => {
    const id = idOf('web');
    const nets = inspect('web').NetworkSettings.Networks;
    expect(Object.keys(nets).sort()).toEqual([A, B].sort());
    expect(nets[B]).toMatchObject({ IPAddress: addrOf('web', 'eth1'), IPPrefixLen: 24, Gateway: `${subnetB}.1`, Aliases: ['www', 'front'] });
    expect(nets[B].EndpointID).toMatch(/^[0-9a-f]{64}$/);
    expect(nets[B].EndpointID).not.toBe(nets[A].EndpointID);
    expect(nets[A]).toMatchObject({ IPAddress: addrOf('web', 'eth0'), Gateway: `${subnetA}.1` });
    // The MAC the kernel gave eth1 is the one recorded.
    const mac = ok(['exec', 'web', 'cat', '/sys/class/net/eth1/address']).trim();
    expect(nets[B].MacAddress).toBe(mac);

    const [net] = JSON.parse(ok(['network', 'inspect', B]));
    expect(Object.keys(net.Containers).sort()).toEqual([id, idOf('db')].sort());
    expect(net.Containers[id]).toEqual({ Name: 'web', EndpointID: nets[B].EndpointID, MacAddress: mac, IPv4Address: `${addrOf('web', 'eth1')}/24`, IPv6Address: '' });
    expect(ok(['network', 'inspect', '-f', '{{range .Containers}}{{.Name}} {{end}}', A]).trim()).toBe('web');
  });

  it('rename: the peers know the container by its new name at once (and its aliases still)', () => {
    ok(['rename', 'web', 'web2']);
    const hosts = ok(['exec', 'db', 'cat', '/etc/hosts']);
    expect(hosts).toMatch(new RegExp(`^${addrOf('web2', 'eth1').replaceAll('.', '\\.')}\\s+web2 www front$`, 'm'));
    expect(hosts).not.toMatch(/\bweb\b/);
    expect(t(['exec', 'db', 'ping', '-c', '1', '-W', '2', 'web2']).status).toBe(0);
    expect(JSON.parse(ok(['network', 'inspect', B]))[0].Containers[idOf('web2')].Name).toBe('web2');
    ok(['rename', 'web2', 'web']);
    expect(ok(['exec', 'db', 'cat', '/etc/hosts'])).toMatch(/\sweb www front$/m);
  });

  it('disconnect removes eth1, frees its address, and the peers forget the name', () => {
    const id = idOf('web');
    const was = addrOf('web', 'eth1');
    expect(t(['network', 'disconnect', B, 'web'])).toMatchObject({ status: 0, stdout: '', stderr: '' });
    expect(t(['exec', 'web', 'ip', 'link', 'show', 'eth1']).status).not.toBe(0);
    expect(linkThere(vethOf(id, B))).toBe(false);
    expect(addrOf('web', 'eth0')).not.toBe(''); // its first network stays
    expect(ok(['exec', 'db', 'cat', '/etc/hosts'])).not.toMatch(/\b(web|www|front)\b/);
    expect(t(['exec', 'db', 'ping', '-c', '1', '-W', '1', 'web']).stderr).toContain('bad address');
    expect(ok(['exec', 'web', 'cat', '/etc/hosts'])).not.toMatch(/\bdb\b/);
    expect(Object.keys(inspect('web').NetworkSettings.Networks)).toEqual([A]);
    expect(Object.keys(JSON.parse(ok(['network', 'inspect', B]))[0].Containers)).toEqual([idOf('db')]);
    expect(endpointFiles().filter((f) => f.includes('+'))).toEqual([]);
    // The lowest free address was its: the next container on B gets it.
    expect(ok(['run', '--rm', '--network', B, image, 'ip', '-4', '-o', 'addr', 'show', 'eth0'])).toContain(`inet ${was}/24`);
  });

  it('refuses what docker refuses: the same network twice, --network none, host or container:, a network it is not on', () => {
    ok(['network', 'connect', B, 'web']);
    const twice = t(['network', 'connect', B, 'web']);
    expect(twice.status).toBe(125);
    expect(twice.stderr).toBe(`tsrun: endpoint with name web already exists in network ${B}\n`);
    const first = t(['network', 'connect', A, 'web']);
    expect(first.stderr).toBe(`tsrun: endpoint with name web already exists in network ${A}\n`);
    ok(['network', 'disconnect', B, 'web']);

    ok(['run', '-d', '--name', 'alone', '--network', 'none', image, 'sleep', '300']);
    const none = t(['network', 'connect', B, 'alone']);
    expect(none.status).toBe(125);
    expect(none.stderr).toContain('container cannot be connected to multiple networks with one of the networks in private (none) mode');
    ok(['run', '-d', '--name', 'hosted', '--network', 'host', image, 'sleep', '300']);
    expect(t(['network', 'connect', B, 'hosted']).stderr).toContain('container sharing network namespace with another container or host cannot be connected to any other network');
    ok(['run', '-d', '--name', 'guest', '--network', 'container:web', image, 'sleep', '300']);
    expect(t(['network', 'connect', B, 'guest']).stderr).toContain('container sharing network namespace with another container or host cannot be connected to any other network');
    for (const c of ['alone', 'hosted', 'guest']) expect(t(['exec', c, 'ip', 'link', 'show', 'eth1']).status).not.toBe(0);

    const notOn = t(['network', 'disconnect', B, 'web']);
    expect(notOn.status).toBe(125);
    expect(notOn.stderr).toBe(`tsrun: container ${idOf('web')} is not connected to network ${B}\n`);
    expect(t(['network', 'connect', 'no-such-net', 'web']).stderr).toContain('network no-such-net not found');
    ok(['rm', '-f', 'alone', 'hosted', 'guest']);
  });

  it('connecting a stopped container records the network: every start attaches it', () => {
    ok(['create', '--name', 'later', '--network', A, image, 'sleep', '300']);
    ok(['network', 'connect', '--alias', 'cache', '--ip', `${subnetB}.77`, B, 'later']);
    expect(t(['network', 'connect', B, 'later']).stderr).toContain(`endpoint with name later already exists in network ${B}`);
    expect(inspect('later').NetworkSettings.Networks[B]).toMatchObject({ IPAMConfig: { IPv4Address: `${subnetB}.77` }, IPAddress: '', Aliases: ['cache'] });
    expect(endpointFiles().filter((f) => f.startsWith(idOf('later')))).toEqual([]); // nothing attached yet

    ok(['start', 'later']);
    expect(addrOf('later', 'eth1')).toBe(`${subnetB}.77`);
    expect(t(['exec', 'db', 'ping', '-c', '1', '-W', '2', 'cache']).status).toBe(0);
    ok(['stop', '-t', '0', 'later']);
    expect(ok(['exec', 'db', 'cat', '/etc/hosts'])).not.toMatch(/\b(later|cache)\b/);
    ok(['start', 'later']);
    expect(addrOf('later', 'eth1')).toBe(`${subnetB}.77`);
    ok(['stop', '-t', '0', 'later']);
    // Disconnected while stopped: the next start leaves it out.
    ok(['network', 'disconnect', B, 'later']);
    ok(['start', 'later']);
    expect(t(['exec', 'later', 'ip', 'link', 'show', 'eth1']).status).not.toBe(0);
    ok(['rm', '-f', 'later']);
  });

  it('rm -f of a container on two networks leaves no veth, netns, endpoint or firewall rule', () => {
    ok(['run', '-d', '--name', 'both', '--network', A, '-p', '127.0.0.1::80', image, 'sleep', '300']);
    const id = idOf('both');
    ok(['network', 'connect', B, 'both']);
    expect(linkThere(vethOf(id, B))).toBe(true);
    expect(execFileSync('iptables-save', { encoding: 'utf8' })).toContain(`:${id.slice(0, 12)}`);
    ok(['rm', '-f', 'both']);
    expect(leftOf(id, [A, B])).toEqual([]);
    expect(ok(['exec', 'db', 'cat', '/etc/hosts'])).not.toMatch(/\bboth\b/);
    expect(ok(['system', 'check'])).toBe('the store is consistent\n');
  });

  for (const point of ['connect:endpoint-written', 'connect:veth-made']) {
    it(`network connect killed at ${point}: the next connect, or system check --repair, undoes it; rm -f leaves nothing`, () => {
      ok(['run', '-d', '--name', 'victim', '--network', A, image, 'sleep', '300']);
      const id = idOf('victim');
      const crashed = () => {
        const r = t(['network', 'connect', B, 'victim'], { TSRUN_CRASH_AT: point });
        expect(r.status, `connect was to die at ${point}: ${r.stderr}`).toBeNull();
        expect(endpointFiles()).toContain(`${id}+${B}.json`);
        expect(linkThere(vethOf(id, B))).toBe(point === 'connect:veth-made');
      };

      // The next connect to that network takes over what the dead one left.
      crashed();
      ok(['network', 'connect', B, 'victim']);
      expect(addrOf('victim', 'eth1')).toMatch(new RegExp(`^${subnetB.replaceAll('.', '\\.')}\\.`));
      ok(['network', 'disconnect', B, 'victim']);

      // system check names it, and --repair undoes it alone: the container runs on.
      crashed();
      const found = JSON.parse(t(['system', 'check', '--format', 'json']).stdout) as Array<{ kind: string; detail: string }>;
      expect(found).toEqual([expect.objectContaining({ kind: 'endpoint', detail: expect.stringContaining('a network connect was killed half-way') })]);
      expect(t(['system', 'check', '--repair']).status).toBe(0);
      expect(endpointFiles()).not.toContain(`${id}+${B}.json`);
      expect(linkThere(vethOf(id, B))).toBe(false);
      expect(inspect('victim').State.Status).toBe('running');
      expect(addrOf('victim', 'eth0')).not.toBe('');
      expect(ok(['system', 'check'])).toBe('the store is consistent\n');

      // Killed once more, then removed: nothing of it stays.
      crashed();
      ok(['rm', '-f', 'victim']);
      expect(leftOf(id, [A, B])).toEqual([]);
      expect(ok(['system', 'check'])).toBe('the store is consistent\n');
    });
  }
});
