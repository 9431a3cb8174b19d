// Bridge networking on the real kernel (root). "Containers" are `unshare --net sleep`
// processes: each has a fresh network namespace, as the helper's child has between clone and
// exec. A "client host" and a stand-in for "the internet" are more namespaces, each linked to
// the host by a veth pair of the test's own. Everything is named after a random marker and
// removed in afterAll; the last test checks nothing is left.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePrivileged } from './helpers/env.js';
import { RELEASE_GRACE_MS } from '../../src/netns/released.js';
import { attach, createNetwork, detach, firewallBackend, hostVethName, reloadFirewall, inspectNetwork, listNetworks, netnsName, parsePublish, recover, removeNetwork, type Attachment } from '../../src/netns/index.js';
import { hostRoutes } from '../../src/netns/bridge.js';
import { teardownNetworkFirewall } from '../../src/netns/firewall.js';
import { formatCidr } from '../../src/netns/ipv4.js';

const marker = `tst${randomBytes(3).toString('hex')}`; // bridges tstXXXXXXa/b, links tstXXXXXXc/i
const octet = 10 + Math.floor(Math.random() * 200); // 10.213.<octet..octet+3>.0/24
const net = (i: number) => `10.213.${octet + i}`;
const stateDir = mkdtempSync(join(tmpdir(), 'tsrun-netns-test-'));
const wwwDir = mkdtempSync(join(tmpdir(), 'tsrun-netns-www-'));
const processes: ChildProcess[] = [];
const ids: string[] = [];
let tsrunRulesBefore = '';

function run(cmd: string, args: string[], timeout = 10_000): string {
  return execFileSync(cmd, args, { encoding: 'utf8', timeout, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** The client address a CGI saw (busybox httpd listens on IPv6 too: [::ffff:10.0.0.1]). */
const remoteAddr = (text: string) => /(\d+\.\d+\.\d+\.\d+)/.exec(text)?.[1];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function eventually<T>(fn: () => T, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(50);
    }
  }
}

/** A process in a network namespace of its own: what a container is to the network layer. */
class Box {
  private constructor(readonly proc: ChildProcess) {}
  get pid(): number {
    return this.proc.pid!;
  }

  static async start(): Promise<Box> {
    const proc = spawn('unshare', ['--net', 'sleep', 'infinity'], { stdio: 'ignore' });
    processes.push(proc);
    const box = new Box(proc);
    const ours = readlinkSync('/proc/self/ns/net');
    // unshare(1) calls unshare(CLONE_NEWNET) and then execs sleep: wait until the namespace is new.
    await eventually(() => {
      if (readlinkSync(`/proc/${box.pid}/ns/net`) === ours) throw new Error('not yet');
    });
    return box;
  }

  exec(args: string[], timeout?: number): string {
    return run('nsenter', ['-t', String(this.pid), '-n', ...args], timeout);
  }

  background(args: string[]): ChildProcess {
    const p = spawn('nsenter', ['-t', String(this.pid), '-n', ...args], { stdio: 'ignore' });
    processes.push(p);
    return p;
  }

  kill(): void {
    this.proc.kill('SIGKILL');
  }
}

function newId(): string {
  const id = randomBytes(32).toString('hex');
  ids.push(id);
  return id;
}

/** busybox wget; throws when nothing answers within `timeout` seconds. (busybox 1.35's own -T segfaults.) */
function wget(url: string, box?: Box, timeout = 2): string {
  const args = ['timeout', String(timeout), 'busybox', 'wget', '-q', '-O', '-', url];
  return box ? box.exec(args, (timeout + 3) * 1000) : run(args[0]!, args.slice(1), (timeout + 3) * 1000);
}

function unreachable(url: string, box?: Box): boolean {
  try {
    wget(url, box, 1);
    return false;
  } catch {
    return true;
  }
}

/** A namespace linked to the host by a veth pair `<marker><suffix>` on 10.213.<i>.0/24 (host .1, it .2). */
async function linkedHost(suffix: string, i: number, routeVia: boolean): Promise<Box> {
  const box = await Box.start();
  const link = `${marker}${suffix}`;
  run('ip', ['link', 'add', link, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', String(box.pid)]);
  run('ip', ['addr', 'add', `${net(i)}.1/24`, 'dev', link]);
  run('ip', ['link', 'set', link, 'up']);
  box.exec(['ip', 'addr', 'add', `${net(i)}.2/24`, 'dev', 'eth0']);
  box.exec(['ip', 'link', 'set', 'eth0', 'up']);
  box.exec(['ip', 'link', 'set', 'lo', 'up']);
  if (routeVia) box.exec(['ip', 'route', 'add', 'default', 'via', `${net(i)}.1`]);
  return box;
}

function startHttpd(box: Box, port: number): void {
  box.background(['busybox', 'httpd', '-f', '-p', String(port), '-h', wwwDir]);
}

describePrivileged('bridge networking (netns)', () => {
  const A = 'nets-a';
  const B = 'nets-b';
  let a1: Box, a2: Box, b1: Box;
  let at1: Attachment, at2: Attachment, bt1: Attachment;
  const [a1Id, a2Id, b1Id] = [newId(), newId(), newId()];

  beforeAll(async () => {
    tsrunRulesBefore = run('iptables-save', []).split('\n').filter((l) => /tsrun/i.test(l) && !l.startsWith('#')).join('\n');
    writeFileSync(join(wwwDir, 'index.html'), 'hello from the container\n');
    mkdirSync(join(wwwDir, 'cgi-bin'));
    // Tells the client's address as the server saw it.
    writeFileSync(join(wwwDir, 'cgi-bin', 'addr'), '#!/bin/sh\necho "Content-Type: text/plain"\necho\necho "$REMOTE_ADDR"\n');
    chmodSync(join(wwwDir, 'cgi-bin', 'addr'), 0o755);
    await createNetwork(stateDir, { name: A, bridge: `${marker}a`, subnet: `${net(0)}.0/24` });
    await createNetwork(stateDir, { name: B, bridge: `${marker}b`, subnet: `${net(1)}.0/24` });
    [a1, a2, b1] = await Promise.all([Box.start(), Box.start(), Box.start()]);
    at1 = await attach(stateDir, { id: a1Id, name: 'web', pid: a1.pid, network: A, ports: [...parsePublish('8080'), ...parsePublish('127.0.0.1::8080')], aliases: ['www'] });
    at2 = await attach(stateDir, { id: a2Id, name: 'client', pid: a2.pid, network: A });
    bt1 = await attach(stateDir, { id: b1Id, name: 'other', pid: b1.pid, network: B });
    startHttpd(a1, 8080);
    startHttpd(b1, 8080);
    await eventually(() => wget(`http://${at1.ip}:8080/`, a2));
  });

  afterAll(async () => {
    const errors: unknown[] = [];
    const attempt = async (fn: () => unknown) => {
      try {
        await fn();
      } catch (err) {
        errors.push(err);
      }
    };
    for (const id of ids) await attempt(() => detach(stateDir, id));
    for (const p of processes) p.kill('SIGKILL');
    for (const n of listNetworks(stateDir)) await attempt(() => removeNetwork(stateDir, n.name));
    // Whatever a failed test left: the test's links, and rules tagged with its bridges.
    for (const line of run('ip', ['-o', 'link']).split('\n')) {
      const name = /^\d+: ([^:@]+)/.exec(line)?.[1];
      if (name?.startsWith(marker)) await attempt(() => run('ip', ['link', 'del', name]));
    }
    for (const br of [`${marker}a`, `${marker}b`]) await attempt(() => teardownNetworkFirewall(br));
    rmSync(stateDir, { recursive: true, force: true });
    rmSync(wwwDir, { recursive: true, force: true });
    if (errors.length > 0) throw errors[0];
  });

  it('gives the container eth0 with its address, MAC, MTU and default route, and a netns `ip netns` lists', () => {
    const addr = JSON.parse(a1.exec(['ip', '-j', 'addr', 'show', 'eth0']))[0];
    expect(addr.address).toBe(at1.mac);
    expect(addr.mtu).toBe(at1.mtu);
    expect(addr.addr_info.find((i: { family: string }) => i.family === 'inet')).toMatchObject({ local: at1.ip, prefixlen: 24 });
    expect(a1.exec(['ip', 'route', 'show', 'default'])).toContain(`default via ${net(0)}.1 dev eth0`);
    expect(at1).toMatchObject({ ip: `${net(0)}.2`, gateway: `${net(0)}.1`, prefixLen: 24, bridge: `${marker}a` });
    expect(at1.hostVeth).toMatch(/^veth[0-9a-f]{8}$/);
    expect(run('ip', ['-o', 'link', 'show', at1.hostVeth])).toContain(`master ${marker}a`);
    expect(run('ip', ['netns', 'list'])).toContain(at1.netnsName);
    expect(run('ip', ['netns', 'exec', at1.netnsName, 'ip', '-o', 'addr', 'show', 'eth0'])).toContain(at1.ip);
  });

  it('lets two containers on one network exchange data, and names each other in /etc/hosts entries', () => {
    expect(wget(`http://${at1.ip}:8080/`, a2)).toBe('hello from the container\n');
    expect(at2.hostsEntries).toEqual([[at1.ip, 'web www']]);
    expect(inspectNetwork(stateDir, A).containers.map((c) => c.name).sort()).toEqual(['client', 'web']);
  });

  it('publishes a port on 127.0.0.1, the gateway and the host addresses, and to another host', async () => {
    const [all, local] = at1.ports;
    expect(all).toMatchObject({ hostIp: '', containerPort: 8080, protocol: 'tcp' });
    expect(local).toMatchObject({ hostIp: '127.0.0.1', containerPort: 8080 });
    expect(all!.hostPort).toBeGreaterThan(1024);
    const client = await linkedHost('c', 2, true);
    const hostAddr = `${net(2)}.1`;
    for (const host of ['127.0.0.1', at1.gateway, hostAddr]) {
      expect(wget(`http://${host}:${all!.hostPort}/`)).toBe('hello from the container\n');
    }
    expect(wget(`http://127.0.0.1:${local!.hostPort}/`)).toBe('hello from the container\n');
    expect(wget(`http://${hostAddr}:${all!.hostPort}/`, client)).toBe('hello from the container\n');
    // The client saw the host's address; the container sees the client's own.
    expect(remoteAddr(wget(`http://${hostAddr}:${all!.hostPort}/cgi-bin/addr`, client))).toBe(`${net(2)}.2`);
    // Hairpin: containers reach published ports through a host address, their own included.
    expect(wget(`http://${at1.gateway}:${all!.hostPort}/`, a2)).toBe('hello from the container\n');
    expect(wget(`http://${hostAddr}:${all!.hostPort}/`, a1)).toBe('hello from the container\n');
    // Published on 127.0.0.1 only: not from elsewhere.
    expect(unreachable(`http://${hostAddr}:${local!.hostPort}/`, client)).toBe(true);
    // Not published: even with a route to the containers' subnet, nothing unsolicited gets in.
    startHttpd(a1, 9090);
    await eventually(() => wget(`http://${at1.ip}:9090/`, a2));
    client.exec(['ip', 'route', 'add', `${net(0)}.0/24`, 'via', hostAddr]);
    expect(unreachable(`http://${at1.ip}:9090/`, client)).toBe(true);
  });

  it('publishes UDP ports', async () => {
    const box = await Box.start();
    const id = newId();
    const att = await attach(stateDir, { id, name: 'udp', pid: box.pid, network: A, ports: parsePublish('5353/udp') });
    // busybox nc has no -u: the UDP server is this Node, run inside the namespace.
    const script = "require('dgram').createSocket('udp4').on('message', (m) => console.log(String(m))).bind(5353)";
    const server = spawn('nsenter', ['-t', String(box.pid), '-n', process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'ignore'] });
    processes.push(server);
    let received = '';
    server.stdout.on('data', (d: Buffer) => (received += d.toString()));
    const client = createSocket('udp4');
    await eventually(() => {
      client.send('ping', att.ports[0]!.hostPort, '127.0.0.1');
      if (!received.includes('ping')) throw new Error('nothing received yet');
    });
    client.close();
    server.kill('SIGKILL');
    await detach(stateDir, id);
    box.kill();
  });

  it('puts the rules back after the firewall was flushed (reloadFirewall)', async () => {
    const [all] = at1.ports;
    for (const br of [`${marker}a`, `${marker}b`]) await teardownNetworkFirewall(br);
    expect(run('iptables-save', [])).not.toContain(marker);
    expect(unreachable(`http://127.0.0.1:${all!.hostPort}/`)).toBe(true);
    await reloadFirewall(stateDir);
    await reloadFirewall(stateDir); // idempotent
    expect(wget(`http://127.0.0.1:${all!.hostPort}/`)).toBe('hello from the container\n');
    const rules = run('iptables-save', []).split('\n');
    expect(rules.filter((l) => l.includes(`tsrun:${marker}a:${a1Id.slice(0, 12)}`))).toHaveLength(4); // 2 ports × (DNAT + accept)
    expect((await firewallBackend()).backend).toMatch(/^iptables-(nft|legacy)$/);
  });

  it('masquerades outbound traffic: the server sees the host address on its link', async () => {
    const internet = await linkedHost('i', 3, false); // no route back to the containers' subnet
    startHttpd(internet, 80);
    await eventually(() => wget(`http://${net(3)}.2/`));
    expect(remoteAddr(wget(`http://${net(3)}.2/cgi-bin/addr`, a2))).toBe(`${net(3)}.1`);
  });

  it('keeps containers on different networks apart', () => {
    expect(wget(`http://${bt1.ip}:8080/`, b1)).toBe('hello from the container\n'); // the server works
    expect(unreachable(`http://${bt1.ip}:8080/`, a2)).toBe(true);
    expect(unreachable(`http://${at1.ip}:8080/`, b1)).toBe(true);
    expect(bt1.hostsEntries).toEqual([]);
  });

  it('gives 20 containers attached at once 20 distinct addresses', async () => {
    const boxes = await Promise.all(Array.from({ length: 20 }, () => Box.start()));
    const batchIds = boxes.map(() => newId());
    const atts = await Promise.all(boxes.map((b, i) => attach(stateDir, { id: batchIds[i]!, name: `p${i}`, pid: b.pid, network: A })));
    const ips = atts.map((x) => x.ip);
    expect(new Set(ips).size).toBe(20);
    for (const ip of ips) expect(ip.startsWith(`${net(0)}.`) && ![at1.ip, at2.ip, at1.gateway].includes(ip)).toBe(true);
    expect(wget(`http://${at1.ip}:8080/`, boxes[19])).toBe('hello from the container\n');
    await Promise.all(batchIds.map((id) => detach(stateDir, id)));
    for (const b of boxes) b.kill();
    expect(readdirSync(join(stateDir, 'endpoints')).sort()).toEqual([a1Id, a2Id, b1Id].map((id) => `${id}.json`).sort());
  });

  it('waits for another process holding the state lock', async () => {
    const holder = spawn('flock', [join(stateDir, 'networks', '.lock'), 'sleep', '0.5'], { stdio: 'ignore' });
    processes.push(holder);
    await sleep(100);
    const box = await Box.start();
    const t0 = Date.now();
    const id = newId();
    await attach(stateDir, { id, name: 'late', pid: box.pid, network: A });
    expect(Date.now() - t0).toBeGreaterThan(250);
    await detach(stateDir, id);
    box.kill();
  });

  it('refuses to remove a network with containers, or to overlap subnets', async () => {
    await expect(removeNetwork(stateDir, B)).rejects.toThrow(/active endpoints/);
    await expect(createNetwork(stateDir, { name: 'overlap', bridge: `${marker}x`, subnet: `${net(1)}.128/25` })).rejects.toThrow(/overlaps with network nets-b/);
    const route = hostRoutes().find((r) => r.cidr.prefixLen >= 8 && r.cidr.prefixLen <= 30 && !r.iface.startsWith(marker));
    if (route) {
      const subnet = formatCidr(route.cidr);
      await expect(createNetwork(stateDir, { name: 'overlap', bridge: `${marker}x`, subnet })).rejects.toThrow(`overlaps with the host's route to ${subnet} on ${route.iface}`);
    }
    expect(listNetworks(stateDir).map((n) => n.name)).toEqual([A, B]);
  });

  it('undoes a failed attach: a process that is gone, a host port already published', async () => {
    const gone = await Box.start();
    gone.kill();
    await eventually(() => {
      if (existsSync(`/proc/${gone.pid}/ns`)) throw new Error('still there');
    });
    const id1 = newId();
    await expect(attach(stateDir, { id: id1, name: 'gone', pid: gone.pid, network: A })).rejects.toMatchObject({ code: 'ENETWORK' });
    const box = await Box.start();
    const id2 = newId();
    const taken = `${at1.ports[0]!.hostPort}:80`;
    await expect(attach(stateDir, { id: id2, name: 'dup', pid: box.pid, network: A, ports: parsePublish(taken) })).rejects.toThrow(/port is already allocated/);
    for (const id of [id1, id2]) {
      expect(existsSync(join(stateDir, 'endpoints', `${id}.json`))).toBe(false);
      expect(run('ip', ['-o', 'link'])).not.toContain(hostVethName(id));
      expect(existsSync(`/run/netns/${netnsName(id)}`)).toBe(false);
    }
    box.kill();
  });

  it('releases everything of a container whose engine and process were killed', async () => {
    const box = await Box.start();
    const id = newId();
    const att = await attach(stateDir, { id, name: 'crashy', pid: box.pid, network: B, ports: parsePublish('18080:8080/udp') });
    expect(run('iptables-save', [])).toContain(id.slice(0, 12));
    box.kill(); // the bind mount keeps its namespace, veth and rules alive: only recover() frees them
    await sleep(100);
    const released = await recover(stateDir, (x) => x !== id);
    expect(released).toEqual([id]);
    expect(run('ip', ['-o', 'link'])).not.toContain(att.hostVeth);
    expect(run('ip', ['netns', 'list'])).not.toContain(att.netnsName);
    expect(run('iptables-save', [])).not.toContain(id.slice(0, 12));
    expect(existsSync(join(stateDir, 'endpoints', `${id}.json`))).toBe(false);
    await detach(stateDir, id); // idempotent
  });

  it("hands a gone container's veth to the kernel, its address taken until the veth is gone", async () => {
    const released = (id: string) => existsSync(join(stateDir, 'released', `${id}.json`));
    const vethThere = (name: string) => existsSync(`/sys/class/net/${name}`);
    /** A box attached to `network`, then killed: what cleanup sees after a container ends. */
    const ended = async (name: string, network: string, id = newId(), hold = false) => {
      const box = await Box.start();
      const att = await attach(stateDir, { id, name, pid: box.pid, network });
      // Someone else in the namespace (an `ip netns exec` shell): it outlives the bind mount.
      const holder = hold ? spawn('ip', ['netns', 'exec', att.netnsName, 'sleep', 'infinity'], { stdio: 'ignore' }) : undefined;
      if (holder) {
        processes.push(holder);
        await eventually(() => {
          if (readlinkSync(`/proc/${holder.pid}/ns/net`) !== readlinkSync(`/proc/${box.pid}/ns/net`)) throw new Error('not in yet');
        });
      }
      box.kill();
      await eventually(() => {
        if (existsSync(`/proc/${box.pid}/ns/net`)) throw new Error('still there');
      });
      await detach(stateDir, id, { processesGone: true });
      expect(existsSync(join(stateDir, 'endpoints', `${id}.json`))).toBe(false);
      expect(existsSync(`/run/netns/${att.netnsName}`)).toBe(false);
      return { id, att, holder };
    };

    // Nobody holds the namespace: the kernel removes the veth by itself, and the next attach
    // forgets the released endpoint and may take its address.
    const brief = await ended('brief', B);
    expect(released(brief.id)).toBe(true);
    await eventually(() => {
      if (vethThere(brief.att.hostVeth)) throw new Error('veth still there');
    }, 3000);
    const next = await attach(stateDir, { id: newId(), name: 'next', pid: (await Box.start()).pid, network: B });
    expect(next.ip).toBe(brief.att.ip);
    expect(released(brief.id)).toBe(false);

    // Held: the veth stays, so does the claim on its address...
    const held = await ended('held', B, newId(), true);
    await sleep(300);
    expect(vethThere(held.att.hostVeth)).toBe(true);
    const other = await attach(stateDir, { id: newId(), name: 'other-held', pid: (await Box.start()).pid, network: B });
    expect(other.ip).not.toBe(held.att.ip);
    expect(released(held.id)).toBe(true);
    // ...until the same container attaches again (it needs the veth's name: the old one is deleted)...
    const again = await attach(stateDir, { id: held.id, name: 'held', pid: (await Box.start()).pid, network: B });
    expect(again.hostVeth).toBe(held.att.hostVeth);
    expect(released(held.id)).toBe(false);
    expect(run('nsenter', ['-t', String(held.holder!.pid), '-n', 'ip', '-o', 'link'])).not.toContain('eth0');

    // ...or RELEASE_GRACE_MS passes and an attach finds it still there...
    const overdue = await ended('overdue', B, newId(), true);
    await sleep(RELEASE_GRACE_MS + 100);
    expect(vethThere(overdue.att.hostVeth)).toBe(true);
    const late = await attach(stateDir, { id: newId(), name: 'late', pid: (await Box.start()).pid, network: B });
    expect(vethThere(overdue.att.hostVeth)).toBe(false);
    expect(released(overdue.id)).toBe(false);
    expect(late.ip).toBe(overdue.att.ip);

    // ...or its network is removed.
    await createNetwork(stateDir, { name: 'nets-r', bridge: `${marker}r`, subnet: `${net(4)}.0/24` });
    const onRemoved = await ended('on-removed', 'nets-r', newId(), true);
    expect(vethThere(onRemoved.att.hostVeth)).toBe(true);
    await removeNetwork(stateDir, 'nets-r');
    expect(vethThere(onRemoved.att.hostVeth)).toBe(false);
    expect(released(onRemoved.id)).toBe(false);
  });

  it('leaves nothing behind once the containers are detached and the networks removed', async () => {
    for (const id of ids) await detach(stateDir, id);
    await removeNetwork(stateDir, A);
    await removeNetwork(stateDir, B);
    for (const b of [a1, a2, b1]) b.kill();
    for (const link of [`${marker}c`, `${marker}i`]) if (existsSync(`/sys/class/net/${link}`)) run('ip', ['link', 'del', link]);
    const links = run('ip', ['-o', 'link']);
    expect(links).not.toContain(marker);
    for (const id of ids) expect(links).not.toContain(id.slice(0, 8));
    expect(run('ip', ['netns', 'list'])).not.toMatch(new RegExp(ids.map((id) => id.slice(0, 12)).join('|')));
    const rules = run('iptables-save', []);
    expect(rules).not.toContain(marker);
    const tsrunRules = rules.split('\n').filter((l) => /tsrun/i.test(l) && !l.startsWith('#')).join('\n');
    expect(tsrunRules).toBe(tsrunRulesBefore);
    expect(readdirSync(join(stateDir, 'endpoints'))).toEqual([]);
    expect(listNetworks(stateDir)).toEqual([]);
  });
});
