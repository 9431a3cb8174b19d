// How long attach() and detach() take, and what the bridge and a published port cost in
// TCP throughput compared with the host's loopback (iperf3: apt-get install iperf3).
// Prints its numbers; the assertions only catch gross regressions.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePrivileged } from './helpers/env.js';
import { attach, createNetwork, detach, listNetworks, parsePublish, removeNetwork, type Attachment } from '../../src/netns/index.js';
import { teardownNetworkFirewall } from '../../src/netns/firewall.js';

const marker = `tst${randomBytes(3).toString('hex')}`;
const subnet = `10.213.${220 + Math.floor(Math.random() * 30)}.0/24`;
const stateDir = mkdtempSync(join(tmpdir(), 'tsrun-netns-perf-'));
const processes: ChildProcess[] = [];
const ids: string[] = [];
const hasIperf = spawnSync('iperf3', ['--version']).status === 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function netnsProcess(): Promise<number> {
  const p = spawn('unshare', ['--net', 'sleep', 'infinity'], { stdio: 'ignore' });
  processes.push(p);
  const ours = readlinkSync('/proc/self/ns/net');
  while (readlinkSync(`/proc/${p.pid}/ns/net`) === ours) await sleep(5);
  return p.pid!;
}

const inNs = (pid: number, args: string[]) => ['nsenter', '-t', String(pid), '-n', ...args];

function background(argv: string[]): ChildProcess {
  const p = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
  processes.push(p);
  return p;
}

/** Gbit/s received, from an iperf3 client run (the server was started with -1: one test). */
async function iperf(client: string[]): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const r = spawnSync(client[0]!, [...client.slice(1), '-t', '2', '-J'], { encoding: 'utf8', timeout: 20_000 });
    const bps = r.status === 0 ? JSON.parse(r.stdout).end?.sum_received?.bits_per_second : undefined;
    if (typeof bps === 'number') return bps / 1e9;
    if (attempt > 20) throw new Error(`iperf3 failed: ${r.stdout}${r.stderr}`);
    await sleep(100); // the server is not listening yet
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

describePrivileged('network layer performance', () => {
  const network = 'perf';
  let server: Attachment, serverPid: number, clientPid: number;

  beforeAll(async () => {
    await createNetwork(stateDir, { name: network, bridge: `${marker}p`, subnet });
  });

  afterAll(async () => {
    for (const id of ids) await detach(stateDir, id).catch(() => {});
    for (const p of processes) p.kill('SIGKILL');
    for (const n of listNetworks(stateDir)) await removeNetwork(stateDir, n.name).catch(() => {});
    await teardownNetworkFirewall(`${marker}p`).catch(() => {});
    rmSync(stateDir, { recursive: true, force: true });
    expect(execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' })).not.toContain(marker);
    expect(execFileSync('iptables-save', [], { encoding: 'utf8' })).not.toContain(marker);
  });

  it('times attach() and detach()', async () => {
    const pids = await Promise.all(Array.from({ length: 11 }, () => netnsProcess()));
    const times = { first: 0, attach: [] as number[], attachPorts: [] as number[], detach: [] as number[], detachPorts: [] as number[] };
    for (const [i, pid] of pids.entries()) {
      const id = randomBytes(32).toString('hex');
      ids.push(id);
      const withPorts = i % 2 === 0;
      let t = performance.now();
      await attach(stateDir, { id, name: `c${i}`, pid, network, ports: withPorts ? parsePublish('8080') : [] });
      const a = performance.now() - t;
      if (i === 0) times.first = a; // creates the bridge and the network's rules too
      else (withPorts ? times.attachPorts : times.attach).push(a);
      t = performance.now();
      await detach(stateDir, id);
      (withPorts ? times.detachPorts : times.detach).push(performance.now() - t);
    }
    const f = (x: number) => `${x.toFixed(1)} ms`;
    console.log(
      `attach: first on a new network ${f(times.first)}, then median ${f(median(times.attach))} (no ports), ${f(median(times.attachPorts))} (-p 8080)\n` +
        `detach: median ${f(median(times.detach))} (no ports), ${f(median(times.detachPorts))} (-p 8080)`,
    );
    expect(median(times.attach)).toBeLessThan(200);
  });

  it.skipIf(!hasIperf)('measures TCP throughput: container→container, host→published port, host loopback', async () => {
    [serverPid, clientPid] = await Promise.all([netnsProcess(), netnsProcess()]);
    const sid = randomBytes(32).toString('hex');
    const cid = randomBytes(32).toString('hex');
    ids.push(sid, cid);
    server = await attach(stateDir, { id: sid, name: 'server', pid: serverPid, network, ports: parsePublish('5201') });
    await attach(stateDir, { id: cid, name: 'client', pid: clientPid, network });

    background(inNs(serverPid, ['iperf3', '-s', '-1', '-p', '5201']));
    const c2c = await iperf(inNs(clientPid, ['iperf3', '-c', server.ip, '-p', '5201']));
    background(inNs(serverPid, ['iperf3', '-s', '-1', '-p', '5201']));
    const published = await iperf(['iperf3', '-c', '127.0.0.1', '-p', String(server.ports[0]!.hostPort)]);
    const port = 15201 + Math.floor(Math.random() * 1000);
    background(['iperf3', '-s', '-1', '-B', '127.0.0.1', '-p', String(port)]);
    const loopback = await iperf(['iperf3', '-c', '127.0.0.1', '-p', String(port)]);
    console.log(
      `TCP throughput (iperf3, 2 s): container→container ${c2c.toFixed(1)} Gbit/s, ` +
        `host→published port on 127.0.0.1 ${published.toFixed(1)} Gbit/s, host loopback ${loopback.toFixed(1)} Gbit/s`,
    );
    expect(c2c).toBeGreaterThan(0.1);
    expect(published).toBeGreaterThan(0.1);
  });
});
