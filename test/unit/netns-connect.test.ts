// The records and batches of `network connect`: endpoints per (container, network), files from
// before connect existed read as they are, the ip lines, /etc/hosts over several networks, and
// what `network inspect` prints. No root, no kernel changes.
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connectContainerBatch, connectHostBatch, nextIfname } from '../../src/netns/connect.js';
import { hostsEntries, hostVethName } from '../../src/netns/endpoint.js';
import { createNetwork, inspectNetwork, networkJson } from '../../src/netns/network.js';
import {
  connectKilled,
  endpointFile,
  endpointFileOf,
  endpointId,
  endpointPath,
  ensureDirs,
  readConnected,
  readContainerEndpoints,
  readEndpoints,
  writeJsonAtomic,
  type Endpoint,
} from '../../src/netns/store.js';
import { selfToken } from '../../src/sys/proc.js';

let stateDir: string;
beforeEach(() => {
  stateDir = mkdtempSync(join(tmpdir(), 'tsrun-netns-connect-'));
  ensureDirs(stateDir);
});
afterEach(() => rmSync(stateDir, { recursive: true, force: true }));

const [web, db] = ['a'.repeat(64), 'b'.repeat(64)];

function endpoint(id: string, name: string, network: string, ip: string, ifname?: string): Endpoint {
  return {
    id, name, aliases: [], network, bridge: `br-${network}`, ip, prefixLen: 24, gateway: ip.replace(/\d+$/, '1'), mac: '02:74:0a:d6:03:02', mtu: 1500,
    hostVeth: hostVethName(id, ifname === undefined ? undefined : network), netnsName: `tsrun-${id.slice(0, 12)}`, netnsPath: `/run/netns/tsrun-${id.slice(0, 12)}`,
    ports: [], pid: 0, created: '2024-05-01T10:00:00.000Z', ...(ifname !== undefined && { ifname }),
  };
}

const save = (e: Endpoint) => writeJsonAtomic(join(stateDir, 'endpoints', endpointFileOf(e)), e);

describe('endpoint files', () => {
  it('keeps the namespace\'s own endpoint at <id>.json and each connected one at <id>+<network>.json', () => {
    expect(endpointFile(web)).toBe(`${web}.json`);
    expect(endpointFile(web, 'app')).toBe(`${web}+app.json`);
    expect(endpointFileOf(endpoint(web, 'web', 'bridge', '10.99.0.2'))).toBe(`${web}.json`);
    expect(endpointFileOf(endpoint(web, 'web', 'app', '10.98.0.3', 'eth1'))).toBe(`${web}+app.json`);
    expect(endpointPath(stateDir, web, 'app')).toBe(join(stateDir, 'endpoints', `${web}+app.json`));
    expect(() => endpointFile(web, 'no/slash')).toThrow(/invalid network name/);
  });

  it('reads a file written before connect existed as the namespace\'s own endpoint, unchanged', () => {
    // Exactly what an older tsrun wrote: no ifname, no connectingBy.
    const old = endpoint(web, 'web', 'bridge', '10.99.0.2');
    writeFileSync(join(stateDir, 'endpoints', `${web}.json`), JSON.stringify(old, null, 2) + '\n');
    save(endpoint(web, 'web', 'app', '10.98.0.3', 'eth1'));
    save(endpoint(db, 'db', 'app', '10.98.0.2'));
    const own = readContainerEndpoints(stateDir, web);
    expect(own.map((e) => [e.network, e.ifname ?? 'eth0'])).toEqual([['bridge', 'eth0'], ['app', 'eth1']]);
    expect(own[0]).toEqual(old);
    expect(readConnected(stateDir, web).map((e) => e.network)).toEqual(['app']);
    expect(readConnected(stateDir, db)).toEqual([]);
    expect(readEndpoints(stateDir)).toHaveLength(3);
  });

  it('names a connected veth after the container and the network, apart from the first', () => {
    expect(hostVethName(web, 'app')).toMatch(/^veth[0-9a-f]{8}$/);
    expect(hostVethName(web, 'app')).toBe(hostVethName(web, 'app'));
    expect(new Set([hostVethName(web), hostVethName(web, 'app'), hostVethName(web, 'other'), hostVethName(db, 'app')]).size).toBe(4);
  });

  it('gives each joining of a network its own EndpointID', () => {
    const e = endpoint(web, 'web', 'app', '10.98.0.3', 'eth1');
    expect(endpointId(e)).toMatch(/^[0-9a-f]{64}$/);
    expect(endpointId(e)).toBe(endpointId({ ...e }));
    expect(endpointId({ ...e, created: '2024-05-01T10:00:01.000Z' })).not.toBe(endpointId(e));
    expect(endpointId({ ...e, network: 'other' })).not.toBe(endpointId(e));
  });

  it('tells an endpoint a killed connect left from one being made or done', () => {
    const e = endpoint(web, 'web', 'app', '10.98.0.3', 'eth1');
    expect(connectKilled(e)).toBe(false);
    expect(connectKilled({ ...e, connectingBy: selfToken() })).toBe(false);
    expect(connectKilled({ ...e, connectingBy: '999999999@1' })).toBe(true);
  });
});

describe('ip batches of a connect', () => {
  it('makes the pair with its end directly in the namespace, then an address and no route', () => {
    const e = endpoint(web, 'web', 'app', '10.98.0.3', 'eth1');
    expect(connectHostBatch(e)).toBe(
      `link add ${e.hostVeth} mtu 1500 type veth peer name eth1 mtu 1500 address 02:74:0a:d6:03:02 netns tsrun-aaaaaaaaaaaa\n` + `link set ${e.hostVeth} master br-app up\n`,
    );
    expect(connectContainerBatch(e)).toBe('link set eth1 up\naddr add 10.98.0.3/24 brd + dev eth1\n');
    expect(connectContainerBatch(e)).not.toContain('route');
  });

  it('takes the lowest ethN the container does not use', () => {
    expect(nextIfname([endpoint(web, 'web', 'bridge', '10.99.0.2')])).toBe('eth1');
    expect(nextIfname([endpoint(web, 'web', 'bridge', '10.99.0.2'), endpoint(web, 'web', 'x', '10.98.0.2', 'eth1'), endpoint(web, 'web', 'y', '10.97.0.2', 'eth3')])).toBe('eth2');
    expect(nextIfname([])).toBe('eth1');
  });
});

describe('peers over several networks', () => {
  it('names the peers of every user-defined network the container is on, none of the default network', () => {
    save(endpoint(web, 'web', 'bridge', '10.99.0.2'));
    save({ ...endpoint(web, 'web', 'app', '10.98.0.3', 'eth1'), aliases: ['www'] });
    save(endpoint(db, 'db', 'app', '10.98.0.2'));
    save(endpoint('c'.repeat(64), 'lone', 'bridge', '10.99.0.3'));
    expect(hostsEntries(stateDir, web)).toEqual([['10.98.0.2', 'db']]);
    expect(hostsEntries(stateDir, db)).toEqual([['10.98.0.3', 'web www']]);
    expect(hostsEntries(stateDir, 'c'.repeat(64))).toEqual([]);
  });
});

describe('network inspect', () => {
  it('lists every container on the network as docker does, those connected later too', async () => {
    await createNetwork(stateDir, { name: 'app', subnet: '10.98.0.0/24', bridge: 'tstconn', mtu: 1500 });
    const connected = endpoint(web, 'web', 'app', '10.98.0.3', 'eth1');
    save(endpoint(web, 'web', 'bridge', '10.99.0.2'));
    save(connected);
    save(endpoint(db, 'db', 'app', '10.98.0.2'));
    const n = inspectNetwork(stateDir, 'app');
    expect(n.containers.map((c) => [c.name, c.ifname])).toEqual([['web', 'eth1'], ['db', 'eth0']]);
    const printed = networkJson(n);
    expect(printed).toMatchObject({ name: 'app', bridge: 'tstconn', subnet: '10.98.0.0/24' });
    expect(printed).not.toHaveProperty('containers');
    expect(printed.Containers).toEqual({
      [web]: { Name: 'web', EndpointID: endpointId(connected), MacAddress: '02:74:0a:d6:03:02', IPv4Address: '10.98.0.3/24', IPv6Address: '' },
      [db]: { Name: 'db', EndpointID: expect.stringMatching(/^[0-9a-f]{64}$/), MacAddress: '02:74:0a:d6:03:02', IPv4Address: '10.98.0.2/24', IPv6Address: '' },
    });
    expect(readdirSync(join(stateDir, 'endpoints')).sort()).toEqual([`${web}+app.json`, `${web}.json`, `${db}.json`].sort());
  });
});
