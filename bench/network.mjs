#!/usr/bin/env node
// Networking costs: attach()/detach() times of the network layer, the start latency bridge
// networking adds to `tsrun run` over --network none, and TCP throughput (iperf3) container to
// container and host to a published port, against the host's loopback.
// Usage (root, after `npm run build`): node bench/network.mjs [--runs N]
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { have, row, stats, table, timeCommand } from './harness.mjs';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const runs = Number(argv[argv.indexOf('--runs') + 1]) || 20;
const net = await import(join(repo, 'dist/src/netns/index.js'));
const work = mkdtempSync(join(tmpdir(), 'tsrun-bench-net-'));
const tag = `bn${randomBytes(2).toString('hex')}`;
const env = { ...process.env, TSRUN_BRIDGE: `${tag}0`, TSRUN_BRIDGE_SUBNET: '10.213.250.0/24', TSRUN_CGROUP_PARENT: `tsrun-bench-${tag}` };
const processes = [];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function netnsProcess() {
  const p = spawn('unshare', ['--net', 'sleep', 'infinity'], { stdio: 'ignore' });
  processes.push(p);
  const ours = readlinkSync('/proc/self/ns/net');
  while (readlinkSync(`/proc/${p.pid}/ns/net`) === ours) await sleep(5);
  return p.pid;
}
const inNs = (pid, args) => ['nsenter', '-t', String(pid), '-n', ...args];
async function iperf(client) {
  for (let attempt = 0; ; attempt++) {
    const r = spawnSync(client[0], [...client.slice(1), '-t', '3', '-J'], { encoding: 'utf8', timeout: 20_000 });
    const bps = r.status === 0 ? JSON.parse(r.stdout).end?.sum_received?.bits_per_second : undefined;
    if (typeof bps === 'number') return bps / 1e9;
    if (attempt > 20) throw new Error(`iperf3 failed: ${r.stdout}${r.stderr}`);
    await sleep(100);
  }
}

const stateDir = join(work, 'store');
try {
  // 1. The network layer alone.
  await net.createNetwork(stateDir, { name: 'perf', bridge: `${tag}p`, subnet: '10.213.251.0/24' });
  const attachTimes = [];
  const detachTimes = [];
  const handOffTimes = [];
  for (let i = 0; i < 21; i++) {
    const pid = await netnsProcess();
    const id = randomBytes(32).toString('hex');
    let t = performance.now();
    await net.attach(stateDir, { id, name: `c${i}`, pid, network: 'perf' });
    if (i > 0) attachTimes.push(performance.now() - t);
    // Odd runs: the container has ended (as when cleanup detaches it), so the kernel may remove
    // the veth with the namespace; even runs: its process still runs, the veth is deleted now.
    const ended = i % 2 === 1;
    if (ended) {
      const p = processes.find((x) => x.pid === pid);
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGKILL');
      await exited;
    }
    t = performance.now();
    await net.detach(stateDir, id, { processesGone: ended });
    if (i > 0) (ended ? handOffTimes : detachTimes).push(performance.now() - t);
  }
  // With a published port: the firewall rules are made at the same time as the links.
  const publishTimes = [];
  for (let i = 0; i < 11; i++) {
    const pid = await netnsProcess();
    const id = randomBytes(32).toString('hex');
    const t = performance.now();
    await net.attach(stateDir, { id, name: `p${i}`, pid, network: 'perf', ports: net.parsePublish('18081:80') });
    if (i > 0) publishTimes.push(performance.now() - t);
    await net.detach(stateDir, id);
  }
  const rows = [
    { name: 'netns attach() (veth, address, route)', ...stats(attachTimes) },
    { name: 'netns attach() with -p 18081:80 (and its firewall rules)', ...stats(publishTimes) },
    { name: 'netns detach() of a running container (ip link del)', ...stats(detachTimes) },
    { name: 'netns detach() of an ended container (the kernel removes the veth)', ...stats(handOffTimes) },
  ];

  // 2. What bridge networking adds to a whole `tsrun run`.
  const store = join(work, 'tsrun');
  const tsrun = [process.execPath, join(repo, 'dist/tsrun.cjs'), '--root', store];
  const archive = join(work, 'busybox.tar');
  execFileSync(process.execPath, [join(repo, 'scripts/make-busybox-image.mjs'), '--out', archive, '--format', 'docker-archive', '--name', 'bench/busybox:latest']);
  execFileSync(tsrun[0], [...tsrun.slice(1), 'load', '-q', '-i', archive], { env });
  rows.push(row('tsrun run --rm --network none IMAGE true', () => timeCommand([...tsrun, 'run', '--rm', '--network', 'none', 'bench/busybox', 'true'], { runs, env })));
  rows.push(row('tsrun run --rm (bridge) IMAGE true', () => timeCommand([...tsrun, 'run', '--rm', 'bench/busybox', 'true'], { runs, env })));
  rows.push(row('tsrun run --rm -p 8080:80 IMAGE true', () => timeCommand([...tsrun, 'run', '--rm', '-p', '18080:80', 'bench/busybox', 'true'], { runs, env })));
  console.log(table(`Network setup (${runs} runs for tsrun rows)`, rows));

  // 3. Throughput.
  if (have('iperf3')) {
    const [serverPid, clientPid] = await Promise.all([netnsProcess(), netnsProcess()]);
    const server = await net.attach(stateDir, { id: randomBytes(32).toString('hex'), name: 'server', pid: serverPid, network: 'perf', ports: net.parsePublish('5201') });
    await net.attach(stateDir, { id: randomBytes(32).toString('hex'), name: 'client', pid: clientPid, network: 'perf' });
    const serve = (argv) => processes.push(spawn(argv[0], argv.slice(1), { stdio: 'ignore' }));
    serve(inNs(serverPid, ['iperf3', '-s', '-1', '-p', '5201']));
    const c2c = await iperf(inNs(clientPid, ['iperf3', '-c', server.ip, '-p', '5201']));
    serve(inNs(serverPid, ['iperf3', '-s', '-1', '-p', '5201']));
    const published = await iperf(['iperf3', '-c', '127.0.0.1', '-p', String(server.ports[0].hostPort)]);
    serve(['iperf3', '-s', '-1', '-B', '127.0.0.1', '-p', '15299']);
    const loopback = await iperf(['iperf3', '-c', '127.0.0.1', '-p', '15299']);
    console.log(`### TCP throughput (iperf3, 3 s)\n\n| path | Gbit/s |\n| --- | ---: |\n| container → container (bridge) | ${c2c.toFixed(1)} |\n| host → published port on 127.0.0.1 | ${published.toFixed(1)} |\n| host loopback | ${loopback.toFixed(1)} |\n`);
  } else {
    console.log('iperf3 not installed: no throughput numbers (apt-get install iperf3)');
  }
} finally {
  for (const p of processes) p.kill('SIGKILL');
  for (const ep of net.listNetworks(stateDir)) {
    for (const c of net.inspectNetwork(stateDir, ep.name).containers) await net.detach(stateDir, c.id).catch(() => {});
    await net.removeNetwork(stateDir, ep.name, { force: true }).catch(() => {});
  }
  for (const n of net.listNetworks(join(work, 'tsrun'))) await net.removeNetwork(join(work, 'tsrun'), n.name, { force: true }).catch(() => {});
  rmSync(work, { recursive: true, force: true });
}
