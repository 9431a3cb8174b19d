#!/usr/bin/env node
// How the costs grow with the number of containers: N containers started one by one on the
// default bridge (each start timed), `ps` along the way, `stats --no-stream` and one `rm -f` of
// all N at the end; the same procedure for podman and docker when installed, so the columns
// compare.
// Usage (root): node bench/scale.mjs [--count N] [--build DIR] [--docker]
//   --build: the tsrun build to measure (a checkout after `npm run build`; default this one).
//   --docker: start a private dockerd (data, exec root, socket and bridge its own).
//   --tsrun-only: leave podman and docker out.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanupTsrun, freeSubnets, hostState, leftBehind, othersRunning, startDockerd, startPodman, stats, timeCommand, timeInterleaved, tsrunCommand, unmountUnder } from './harness.mjs';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const option = (name) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined);
const count = Number(option('--count')) || 50;
const build = resolve(option('--build') ?? repo);
const work = mkdtempSync(join(tmpdir(), 'tsrun-bench-scale-'));
// Names of our own, so that nothing here meets another user's tsrun on this host and what is
// left afterwards can be told apart. The code cache too (see latency.mjs: another build's
// command would replace this one's cache file).
const cgroupParent = `tsrun-bench-${process.pid}`;
const bridge = `tb${process.pid % 10000}`;
// A second tsrun store with no container, for starts interleaved with those beside N running.
const emptyBridge = `te${process.pid % 10000}`;
const dockerBridge = `td${process.pid % 10000}`;
// Subnets no bridge on the host has, big enough for N containers (and tsrun's one more, timed
// beside them), the gateway and the network's own two addresses: tsrun's and docker's (a /24
// up to 252 containers). The empty store's holds one container: a /28 from another range
// (freeSubnets knows only the host's routes, so two calls on one range could give the same).
const [subnet, dockerSubnet] = freeSubnets('10.213.240.0/22', Math.min(24, 32 - Math.ceil(Math.log2(count + 4))), 2);
const [emptySubnet] = freeSubnets('10.213.244.0/22', 28, 1);
const env = { ...process.env, TSRUN_CGROUP_PARENT: cgroupParent, TSRUN_BRIDGE: bridge, TSRUN_BRIDGE_SUBNET: subnet,
  TSRUN_CODE_CACHE: join(work, 'code-cache') };
const root = join(work, 'store');
const front = tsrunCommand(build);
const tsrun = [...front.argv, '--root', root];
const emptyEnv = { ...env, TSRUN_BRIDGE: emptyBridge, TSRUN_BRIDGE_SUBNET: emptySubnet };
const tsrunEmpty = [...front.argv, '--root', join(work, 'store-empty')];
const sh = (cmd, args) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env });
const node = sh('sh', ['-c', 'command -v node']).trim();
// What is on the host under the names this run uses, peers' included: the leak check at the end
// reports what was not there before.
const watched = [bridge, emptyBridge, cgroupParent, dockerBridge, subnet, dockerSubnet, emptySubnet, 'cni-podman0', 'CNI-', 'libpod_parent', 'docker'];
const hostBefore = new Set(hostState(watched));
const image = 'bench/busybox:latest';
const names = Array.from({ length: count }, (_, i) => `s${i + 1}`);
// ps is timed with 1, N/4, N/2 and N containers running.
const psAt = [...new Set([1, Math.round(count / 4), Math.round(count / 2), count])].filter((n) => n >= 1);

/** Wall time of one run of `cmd`, in ms; a failure throws with what the command printed. */
function once(cmd) {
  const start = process.hrtime.bigint();
  const r = spawnSync(cmd[0], cmd.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], env, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd.slice(0, 4).join(' ')} ... failed (status ${r.status}): ${r.stderr.trim().split('\n')[0]}`);
  return ms;
}

/**
 * The procedure, the same for each engine: `cli` is its argv, `runArgs` what its `run` needs
 * besides; `rm` the flags that make its rm -f kill at once. With `empty` (the same engine on a
 * store of its own with no container: { cli, env }), the start beside N running is also timed
 * in rounds against a start there, in turn: one after the other, N starts take minutes, and
 * this VM's speed drifts more than that between the first and the last.
 */
function scale(cli, { runArgs = [], rm = ['-f'], empty } = {}) {
  const c = (...args) => [...cli, ...args];
  // One container first, so that the first timed start does not also make the bridge (and
  // the code cache): it measures a start with no other container, as the Nth with N-1.
  once(c('run', '--rm', ...runArgs, image, 'true'));
  const starts = [];
  const ps = {};
  for (const [i, name] of names.entries()) {
    starts.push(once(c('run', '-d', '--name', name, ...runArgs, image, 'sleep', '3600')));
    if (psAt.includes(i + 1)) ps[i + 1] = timeCommand(c('ps'), { runs: 5, warmup: 1, env }).median;
  }
  // ps's floor, next to it (the VM's level drifts), and the load before rm -f, which runs
  // several removals at once and raises it itself.
  const nodeMs = timeCommand([node, '-e', '0'], { runs: 5, warmup: 1, env }).median;
  const load = loadavg()[0];
  const statsMs = timeCommand(c('stats', '--no-stream'), { runs: 3, warmup: 1, env }).median;
  let growth;
  if (empty) {
    // Each start removed after it (untimed); a removal that fails fails its row, which the next
    // round's start of the same name would otherwise do less clearly.
    const removeGrow = (argv, e) => () => {
      const r = spawnSync(argv[0], [...argv.slice(1), 'rm', '-f', 'grow'], { env: e, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`rm -f grow failed (status ${r.status}): ${r.stderr}`);
    };
    const start = (argv, e) => ({ argv: [...argv, 'run', '-d', '--name', 'grow', ...runArgs, image, 'sleep', '3600'], env: e, after: removeGrow(argv, e) });
    const [full, none] = timeInterleaved([start(cli, env), start(empty.cli, empty.env)], { runs: 20, warmup: 2 });
    // A failure is this row's, not the rest's: the N containers are still removed below.
    if (full.error || none.error) growth = { error: `${full.error ? 'beside N running' : 'in the empty store'}: ${String((full.error ?? none.error).message).split('\n').find((l) => /tsrun:|rror/.test(l) && !l.includes(' failed (status')) ?? ''}` };
    else growth = { full: full.median, none: none.median, ratios: full.samples.map((t, i) => t / none.samples[i]) };
  }
  const rmMs = once(c('rm', ...rm, ...names));
  return { starts, ps, nodeMs, stats: statsMs, rm: rmMs, load, growth };
}

const cleanups = [];
const started = performance.now();
const results = [];
let podmanHow;
try {
  console.log(`tsrun command: ${front.how}`);
  for (const o of othersRunning()) console.log(`running beside this bench (its rows will show it): ${o}`);
  console.log(`node on PATH: ${node} ${sh(node, ['--version']).trim()}; load average at start: ${loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);
  const archive = join(work, 'image.tar');
  sh(process.execPath, [join(repo, 'scripts/make-busybox-image.mjs'), '--out', archive, '--format', 'docker-archive', '--name', image]);
  sh(tsrun[0], [...tsrun.slice(1), 'load', '-q', '-i', archive]);
  execFileSync(tsrunEmpty[0], [...tsrunEmpty.slice(1), 'load', '-q', '-i', archive], { stdio: 'ignore', env: emptyEnv });

  const measure = (name, fn) => {
    const t0 = performance.now();
    try {
      results.push({ name, ...fn() });
    } catch (err) {
      // The line that says why (a tsrun error), not the command line that failed.
      const lines = String(err.message).split('\n');
      results.push({ name, skipped: (lines.find((l) => /tsrun:|rror/.test(l) && !l.includes(' failed (status')) ?? lines[0]).slice(0, 200) });
    }
    console.log(`(${name}: ${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  };
  measure('tsrun', () => scale(tsrun, { empty: { cli: tsrunEmpty, env: emptyEnv } }));

  measure('podman', () => {
    if (argv.includes('--tsrun-only')) throw new Error('--tsrun-only');
    const podman = startPodman(work, cleanups);
    sh(podman[0], [...podman.slice(1), 'load', '-q', '-i', archive]);
    // Its default runtime first; where that refuses the host, runc with a lower RLIMIT_NPROC
    // (as in latency.mjs). -t 0: rm -f kills at once, as docker's and tsrun's do, instead of
    // waiting 10 s for a SIGTERM that sleep as PID 1 ignores.
    let cli = podman;
    let runArgs = ['--ulimit', 'nofile=20000:20000'];
    try {
      once([...cli, 'run', '--rm', '--network', 'none', ...runArgs, image, 'true']);
    } catch {
      cli = [...podman, '--runtime', 'runc'];
      runArgs = [...runArgs, '--ulimit', 'nproc=4096:4096'];
      podmanHow = 'podman --runtime runc, --ulimit nproc=4096:4096 (its default runtime, crun, refuses this host)';
    }
    return scale(cli, { runArgs, rm: ['-f', '-t', '0'] });
  });

  measure('docker', () => {
    if (argv.includes('--tsrun-only')) throw new Error('--tsrun-only');
    if (!argv.includes('--docker')) throw new Error('pass --docker to start a private dockerd');
    // Its default bridge a private one: docker's veth/netns/IPAM work, without iptables rules
    // (which docker makes per network, and per container only for -p).
    const docker = startDockerd(work, cleanups, { bridge: { name: dockerBridge, cidr: dockerSubnet.replace(/\.0\//, '.1/') } });
    sh(docker[0], [...docker.slice(1), 'load', '-q', '-i', archive]);
    return scale(docker);
  });

  // One column per engine.
  const f = (x) => (typeof x === 'number' ? x.toFixed(x < 10 ? 2 : 0) : x);
  const cell = (r, fn) => (r.skipped ? 'n/a' : f(fn(r)));
  const median = (a) => stats(a).median;
  const lines = [
    `### Scale: ${count} containers started one by one on the default bridge (one run of bench/scale.mjs)`,
    '',
    `| | ${results.map((r) => r.name).join(' | ')} |`,
    `| --- | ${results.map(() => '---:').join(' | ')} |`,
    `| 1st start, ms | ${results.map((r) => cell(r, (x) => x.starts[0])).join(' | ')} |`,
    `| median start, ms | ${results.map((r) => cell(r, (x) => median(x.starts))).join(' | ')} |`,
    `| last start (no. ${count}), ms | ${results.map((r) => cell(r, (x) => x.starts.at(-1))).join(' | ')} |`,
    `| last / 1st | ${results.map((r) => cell(r, (x) => x.starts.at(-1) / x.starts[0])).join(' | ')} |`,
    // Single starts are noisy: the medians of the first and last tenth say the same, steadier.
    `| median of the last ${Math.ceil(count / 10)} / of the first ${Math.ceil(count / 10)} | ${results.map((r) => cell(r, (x) => median(x.starts.slice(-Math.ceil(count / 10))) / median(x.starts.slice(0, Math.ceil(count / 10))))).join(' | ')} |`,
    `| start beside ${count} running / in an empty store, in turn (20 rounds: ratio of the medians) | ${results.map((r) => (r.skipped || !r.growth || r.growth.error ? 'n/a' : f(r.growth.full / r.growth.none))).join(' | ')} |`,
    ...psAt.map((n) => `| ps with ${n} running, ms (median of 5) | ${results.map((r) => cell(r, (x) => x.ps[n])).join(' | ')} |`),
    `| node -e 0 right after, ms (median of 5) | ${results.map((r) => cell(r, (x) => x.nodeMs)).join(' | ')} |`,
    `| stats --no-stream with ${count}, ms (median of 3) | ${results.map((r) => cell(r, (x) => x.stats)).join(' | ')} |`,
    `| one rm -f of all ${count}, ms | ${results.map((r) => cell(r, (x) => x.rm)).join(' | ')} |`,
    // tsrun's starts alone keep it near 1 (one process at a time): more means other work shared
    // the 2 cores meanwhile. podman and docker raise it themselves (daemons, threads).
    `| 1-minute load average after the starts and ps | ${results.map((r) => (r.skipped ? 'n/a' : r.load.toFixed(2))).join(' | ')} |`,
    '',
  ];
  for (const r of results.filter((x) => x.skipped)) lines.push(`${r.name}: n/a: ${r.skipped}`);
  if (podmanHow) lines.push(`podman: ${podmanHow}; rm -f -t 0`);
  if (results.some((r) => r.name === 'docker' && !r.skipped)) lines.push(`docker: a private default bridge (dockerd --bridge ${dockerBridge} --iptables=false)`);
  console.log(lines.join('\n') + '\n');

  // The targets.
  const [ts, , dk] = ['tsrun', 'podman', 'docker'].map((n) => results.find((r) => r.name === n));
  const row = (name, measured, target, met) => `| ${name} | ${measured} | ${target} | ${met === undefined ? '' : met ? 'met' : 'MISSED'} |`;
  const checks = [];
  if (!ts.skipped) {
    const growth = ts.starts.at(-1) / ts.starts[0];
    checks.push(row(`tsrun start no. ${count} / 1st (single starts, minutes apart)`, `${f(ts.starts.at(-1))} / ${f(ts.starts[0])} = ${growth.toFixed(2)}`, '<= 1.1 (at 200)'));
    const g = ts.growth;
    if (g.error) {
      checks.push(row(`tsrun start beside ${count} running / in an empty store, in turn`, `n/a (${g.error.slice(0, 160)})`, '<= 1.1 (at 200)'));
    } else {
      const inTurn = g.full / g.none;
      checks.push(row(`tsrun start beside ${count} running / in an empty store, in turn`, `${f(g.full)} / ${f(g.none)} = ${inTurn.toFixed(2)} (per round: median ${stats(g.ratios).median.toFixed(2)})`, '<= 1.1 (at 200)', inTurn <= 1.1));
    }
    const ps = ts.ps[count] - ts.nodeMs;
    checks.push(row(`tsrun ps with ${count} - node -e 0`, `${f(ts.ps[count])} - ${f(ts.nodeMs)} = ${ps.toFixed(1)} ms`, '<= 15 ms', ps <= 15));
    checks.push(row(`tsrun stats --no-stream with ${count}`, `${f(ts.stats)} ms`, '< 1000 ms (at 200)', ts.stats < 1000));
    if (dk && !dk.skipped) {
      const v = ts.rm / dk.rm;
      checks.push(row('tsrun rm -f / docker rm -f', `${f(ts.rm)} / ${f(dk.rm)} = ${v.toFixed(2)}`, '<= 0.5', v <= 0.5));
    } else {
      checks.push(row('tsrun rm -f / docker rm -f', 'n/a (docker not measured)', '<= 0.5'));
    }
  }
  console.log(['### Against the issue\'s targets', '', '| ratio | measured | target | |', '| --- | --- | --- | --- |', ...checks, ''].join('\n'));
  console.log(`node -e 0 next to ps with ${count}: ${ts.skipped ? 'n/a' : f(ts.nodeMs)} ms (median of 5); load average at end: ${loadavg().map((l) => l.toFixed(2)).join(' ')}; measuring took ${((performance.now() - started) / 1000).toFixed(0)} s`);
  for (const o of othersRunning()) console.log(`running beside this bench at its end: ${o}`);
} finally {
  cleanupTsrun(tsrun, env, cgroupParent);
  cleanupTsrun(tsrunEmpty, emptyEnv, cgroupParent);
  for (const c of cleanups.reverse()) c();
  unmountUnder(work);
  rmSync(work, { recursive: true, force: true });
  const left = leftBehind(watched, hostBefore);
  console.log(left.length ? `\nLEFT ON THE HOST after cleanup (or made meanwhile by a run beside this one):\n${left.join('\n')}` : '\nleak check after cleanup: nothing of this run is left (links, iptables, cgroups, netns)');
}
