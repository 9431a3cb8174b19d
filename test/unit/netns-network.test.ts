// Network records and the batches attach() sends to ip: no root, no kernel changes.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bridgeBatch, hostRoutes } from '../../src/netns/bridge.js';
import { containerBatch, hostBatch, hostsEntries, hostVethName, networkPeers } from '../../src/netns/endpoint.js';
import { createNetwork, findNetwork, inspectNetwork, listNetworks, pruneNetworks } from '../../src/netns/network.js';
import { endpointPath, ensureDirs, writeJsonAtomic, type Endpoint } from '../../src/netns/store.js';

let stateDir: string;
beforeEach(() => {
  stateDir = mkdtempSync(join(tmpdir(), 'tsrun-netns-unit-'));
});
afterEach(() => rmSync(stateDir, { recursive: true, force: true }));

function endpoint(id: string, name: string, ip: string, network: string): Endpoint {
  return {
    id, name, aliases: [], network, bridge: 'br', ip, prefixLen: 24, gateway: '10.213.7.1', mac: '02:74:0a:d5:07:02', mtu: 1500,
    hostVeth: hostVethName(id), netnsName: `tsrun-${id.slice(0, 12)}`, netnsPath: `/run/netns/tsrun-${id.slice(0, 12)}`, ports: [], pid: 42, created: '',
  };
}

describe('networks', () => {
  it('creates the default network with tsrun0 and 10.99.0.0/24, others on the next free /24', async () => {
    const def = await createNetwork(stateDir, { name: 'bridge', mtu: 1500 });
    expect(def).toMatchObject({ name: 'bridge', bridge: 'tsrun0', subnet: '10.99.0.0/24', gateway: '10.99.0.1', mtu: 1500 });
    const one = await createNetwork(stateDir, { name: 'one' });
    expect(one.subnet).toMatch(/^10\.99\.([1-9]|[1-9]\d|1\d\d|2[0-5]\d)\.0\/24$/); // 10.89.1.0/24 unless the host routes it
    expect(one.bridge).toBe(`tsrun-${one.id.slice(0, 8)}`);
    const two = await createNetwork(stateDir, { name: 'two' });
    expect(two.subnet).toMatch(/^10\.99\.\d+\.0\/24$/);
    expect(two.subnet).not.toBe(one.subnet);
    expect(listNetworks(stateDir).map((n) => n.name)).toEqual(['bridge', 'one', 'two']);
    expect(findNetwork(stateDir, one.id.slice(0, 6))?.name).toBe('one');
    expect(inspectNetwork(stateDir, 'one').containers).toEqual([]);
  });

  it('network prune removes the temporary records of writers killed before their rename (a crash)', async () => {
    const dir = join(stateDir, 'networks');
    mkdirSync(dir, { recursive: true });
    // createJsonExclusive's (a pid) and writeFileAtomic's (pid and hex; hex before) names; and
    // what is no such file. Every writer of networks/ holds the lock prune holds: all are dead.
    const names = ['crashnet.json.tmp-12393', 'next.json.tmp-12393-a1b2c3d4e5f6', 'other.json.tmp-a1b2c3d4e5f6', 'notes.txt', 'x.json.tmp-zz'];
    for (const f of names) writeFileSync(join(dir, f), '{');
    expect(await pruneNetworks(stateDir)).toEqual([]);
    expect(readdirSync(dir).filter((f) => !f.startsWith('.')).sort()).toEqual(['notes.txt', 'x.json.tmp-zz']);
  });

  it('network prune removes the temporary endpoint and released records of dead writers only', async () => {
    ensureDirs(stateDir);
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!; // exited: no such process now
    const live = process.pid;
    const id = 'ab'.repeat(32);
    for (const d of ['endpoints', 'released']) {
      const names = [
        `${id}.json.tmp-${dead}`, // createJsonExclusive, killed
        `${id}+net.json.tmp-${dead}-a1b2c3d4e5f6`, // writeFileAtomic, killed
        `${id}.json.tmp-${live}-a1b2c3d4e5f6`, // a writer still at work: detach() takes no lock
        `${id}.json.tmp-1`, // pid 1 lives
        `${id}.json.tmp-a1b2c3d4e5f6`, // no pid: whose it is cannot be known
      ];
      for (const f of names) writeFileSync(join(stateDir, d, f), '{');
    }
    await pruneNetworks(stateDir);
    for (const d of ['endpoints', 'released']) {
      expect(readdirSync(join(stateDir, d)).sort(), d).toEqual([`${id}.json.tmp-${live}-a1b2c3d4e5f6`, `${id}.json.tmp-1`, `${id}.json.tmp-a1b2c3d4e5f6`].sort());
    }
  });

  it('refuses duplicates, overlaps and malformed values', async () => {
    await createNetwork(stateDir, { name: 'a', subnet: '10.213.7.0/24', bridge: 'tstunit' });
    await expect(createNetwork(stateDir, { name: 'a' })).rejects.toThrow('network with name a already exists');
    await expect(createNetwork(stateDir, { name: 'b', subnet: '10.213.0.0/16' })).rejects.toThrow('overlaps with network a (10.213.7.0/24)');
    await expect(createNetwork(stateDir, { name: 'b', bridge: 'tstunit' })).rejects.toThrow('bridge tstunit is already used by network a');
    await expect(createNetwork(stateDir, { name: 'b', subnet: '10.213.8.1/24' })).rejects.toThrow('did you mean 10.213.8.0/24?');
    await expect(createNetwork(stateDir, { name: 'b', subnet: '10.213.8.0/24', gateway: '10.213.9.1' })).rejects.toThrow('invalid gateway');
    await expect(createNetwork(stateDir, { name: 'b', bridge: 'a-very-long-bridge' })).rejects.toThrow('at most 15 characters');
    await expect(createNetwork(stateDir, { name: '-x' })).rejects.toThrow('invalid network name');
  });

  it('lists the peers of a user-defined network for /etc/hosts, none on the default network', async () => {
    await createNetwork(stateDir, { name: 'app', subnet: '10.213.7.0/24', bridge: 'tstunit' });
    ensureDirs(stateDir);
    const db = { ...endpoint('d'.repeat(64), 'db', '10.213.7.2', 'app'), aliases: ['postgres'] };
    for (const e of [db, endpoint('e'.repeat(64), 'web', '10.213.7.3', 'app'), endpoint('f'.repeat(64), 'lone', '10.89.0.2', 'bridge')]) {
      writeJsonAtomic(endpointPath(stateDir, e.id), e);
    }
    expect(hostsEntries(stateDir, 'e'.repeat(64))).toEqual([['10.213.7.2', 'db postgres']]);
    expect(hostsEntries(stateDir, 'f'.repeat(64))).toEqual([]);
    expect(networkPeers(stateDir, 'app').map((p) => p.name)).toEqual(['db', 'web']);
  });
});

describe('ip batches', () => {
  it('creates the veth pair with eth0 directly in the container namespace, then configures it there', () => {
    const e = endpoint('0123456789abcdef', 'web', '10.213.7.2', 'app');
    expect(e.hostVeth).toMatch(/^veth[0-9a-f]{8}$/);
    expect(hostBatch(e)).toBe(
      `link add ${e.hostVeth} mtu 1500 type veth peer name eth0 mtu 1500 address 02:74:0a:d5:07:02 netns 42\n` +
        `link set ${e.hostVeth} master br up\nlink set ${e.hostVeth} type bridge_slave hairpin on\nnetns attach tsrun-0123456789ab 42\n`,
    );
    expect(containerBatch(e)).toBe('link set lo up\nlink set eth0 up\naddr add 10.213.7.2/24 brd + dev eth0\nroute add default via 10.213.7.1 dev eth0\n');
  });

  it('creates a bridge with a fixed MAC and the gateway address', () => {
    const b = bridgeBatch({ name: 'n', id: '', bridge: 'tsrun0', subnet: '10.99.0.0/24', gateway: '10.99.0.1', mtu: 1400, created: '' });
    expect(b).toBe('link add name tsrun0 address 02:74:0a:63:00:01 mtu 1400 type bridge\naddr add 10.99.0.1/24 brd + dev tsrun0\nlink set tsrun0 up\n');
  });

  it('reads /proc/net/route', () => {
    const text = 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n' +
      'eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n' +
      'eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n';
    expect(hostRoutes(text)).toEqual([
      { iface: 'eth0', cidr: { base: 0, prefixLen: 0 } },
      { iface: 'eth0', cidr: { base: 0xc0000200, prefixLen: 24 } },
    ]);
  });
});
