#!/usr/bin/env node
// tsrun-runtime as the OCI runtime of podman and containerd, beside runc in the same clients:
//
//   podman run --rm --network none bb true       podman 4.3 (conmon), --runtime runc | tsrun-runtime
//   ctr run --rm bb ID true                      containerd 1.6 (runc shim), --runc-binary runc | tsrun-runtime
//   RUNTIME run --bundle B ID                     the runtime alone on a busybox bundle
//   node -e 0, RUNTIME --version                  what any Node program pays to start, and ours
//
// The runtimes take turns, run by run, so a change in the machine's load falls on both alike.
// Every call a client makes to the runtime is counted (a wrapper logs its subcommand): a Node
// program pays Node's start on each, which is where most of the difference goes. podman and
// containerd have private storage, state and cgroup parents under one temp dir, removed at the
// end. Usage (root): node bench/runtime.mjs [--runs N]
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, rmdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { have, stats, table, unmountUnder } from './harness.mjs';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const runs = Number(argv[argv.indexOf('--runs') + 1]) || 10;
const work = mkdtempSync(join(tmpdir(), 'tsrun-bench-rt-'));
const cleanups = [];
const RUNTIME = join(repo, 'dist', 'tsrun-runtime.cjs');
const runc = execFileSync('sh', ['-c', 'command -v runc'], { encoding: 'utf8' }).trim();
const calls = join(work, 'calls.log');

/** A runtime under a name podman knows, that logs each subcommand and then runs the real one. */
function wrapper(name, exec) {
  const dir = join(work, `bin-${name}`);
  mkdirSync(dir, { recursive: true });
  const path = join(dir, name);
  // the subcommand: the first argument that is not a global flag or its value
  writeFileSync(path, `#!/bin/sh
sub=""; skip=0
for a in "$@"; do
  if [ $skip = 1 ]; then skip=0; continue; fi
  case "$a" in --root|--log|--log-format|--criu|--rootless) skip=1;; -*) ;; *) sub="$a"; break;; esac
done
echo "${name} $sub" >> ${calls}
exec ${exec} "$@"
`);
  chmodSync(path, 0o755);
  return path;
}

function time(argv, env) {
  const start = process.hrtime.bigint();
  const r = spawnSync(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status}): ${r.stderr.toString().slice(0, 500)}`);
  return ms;
}

/** Alternate the commands run by run; returns each one's stats and how many runtime calls a run made. */
function compare(title, commands) {
  const samples = commands.map(() => []);
  const perRun = commands.map(() => 0);
  for (let i = 0; i < runs + 2; i++) {
    commands.forEach((c, k) => {
      writeFileSync(calls, '');
      const ms = time(c.argv(i), c.env);
      if (i >= 2) samples[k].push(ms);
      perRun[k] = readFileSync(calls, 'utf8').split('\n').filter(Boolean).length;
    });
  }
  const rows = commands.map((c, k) => ({ name: `${c.name}${perRun[k] ? ` (${perRun[k]} runtime calls)` : ''}`, ...stats(samples[k]) }));
  console.log(table(title, rows));
  return rows;
}

function rmdirTree(dir) {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) rmdirTree(join(dir, e.name));
  try {
    rmdirSync(dir);
  } catch {
    // in use: left
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const parent = `tsrun-bench-rt-${process.pid}`;
const ns = `tsrun-bench-rt-${process.pid}`;
let containerd;
try {
  if (!existsSync(RUNTIME)) throw new Error('dist/tsrun-runtime.cjs is missing: npm run build');
  console.log(`## tsrun-runtime beside runc (${cpus().length} CPUs, load ${loadavg()[0].toFixed(2)}, ${runs} runs each, Node ${process.version})\n`);
  // native/build/tsrun-runtime: start, kill and delete in C, the rest in Node (native/runtime/fast.c)
  const tsrunRt = wrapper('tsrun-runtime', join(repo, 'native', 'build', 'tsrun-runtime'));
  const runcRt = wrapper('runc', runc);

  // the runtime alone, on a bundle
  const rootfs = join(work, 'bundle', 'rootfs');
  mkdirSync(join(rootfs, 'bin'), { recursive: true });
  execFileSync('cp', ['/bin/busybox', join(rootfs, 'bin', 'busybox')]);
  for (const a of ['sh', 'true']) symlinkSync('busybox', join(rootfs, 'bin', a));
  execFileSync(runc, ['spec', '--bundle', join(work, 'bundle')]);
  const spec = JSON.parse(readFileSync(join(work, 'bundle', 'config.json'), 'utf8'));
  spec.process.terminal = false;
  spec.process.args = ['true'];
  spec.linux.cgroupsPath = `/${parent}/bundle`;
  writeFileSync(join(work, 'bundle', 'config.json'), JSON.stringify(spec));
  compare('Start: Node itself, and each runtime\'s `--version`', [
    { name: 'node -e 0', argv: () => [process.execPath, '-e', '0'] },
    { name: 'tsrun-runtime --version', argv: () => [process.execPath, RUNTIME, '--version'] },
    { name: 'runc --version', argv: () => [runc, '--version'] },
  ]);
  compare('`run` of a busybox bundle (`true`), the runtime alone', [
    { name: 'tsrun-runtime run', argv: (i) => [tsrunRt, '--root', join(work, 'state-t'), 'run', '--bundle', join(work, 'bundle'), `t${i}`] },
    { name: 'runc run', argv: (i) => [runcRt, '--root', join(work, 'state-r'), 'run', '--bundle', join(work, 'bundle'), `r${i}`] },
  ]);

  if (have('podman')) {
    const archive = join(work, 'bb.tar');
    execFileSync(process.execPath, [join(repo, 'scripts', 'make-busybox-image.mjs'), '--out', archive, '--format', 'docker-archive', '--name', 'bb:latest']);
    const conf = join(work, 'containers.conf');
    writeFileSync(conf, '[engine]\nruntime_supports_json = ["crun", "runc", "tsrun-runtime"]\n');
    const runDir = mkdtempSync('/tmp/prb-');
    cleanups.push(() => rmSync(runDir, { recursive: true, force: true }));
    const podman = (runtime) => ['podman', '--root', join(work, 'podman'), '--runroot', runDir, '--tmpdir', join(work, 'podman-tmp'), '--storage-driver', 'vfs', '--cgroup-manager', 'cgroupfs', '--runtime', runtime, '--events-backend', 'none'];
    execFileSync(podman(runcRt)[0], [...podman(runcRt).slice(1), 'load', '-q', '-i', archive], { env: { ...process.env, CONTAINERS_CONF: conf } });
    cleanups.push(() => spawnSync(podman(runcRt)[0], [...podman(runcRt).slice(1), 'system', 'reset', '--force'], { stdio: 'ignore' }));
    const run = (runtime) => () => [...podman(runtime), 'run', '--rm', '--network', 'none', `--cgroup-parent=/${parent}`, '--ulimit', 'nofile=20000:20000', '--ulimit', 'nproc=1024:1024', 'bb', 'true'];
    const rows = compare('`podman run --rm --network none bb true`', [
      { name: 'podman + tsrun-runtime', argv: run(tsrunRt), env: { CONTAINERS_CONF: conf } },
      { name: 'podman + runc', argv: run(runcRt), env: { CONTAINERS_CONF: conf } },
    ]);
    console.log(`podman: tsrun-runtime / runc = ${(rows[0].median / rows[1].median).toFixed(2)}\n`);
  } else console.log('podman: not installed, skipped\n');

  if (have('containerd') && have('ctr')) {
    const base = mkdtempSync('/tmp/ctdb-');
    cleanups.push(() => {
      unmountUnder(base);
      rmSync(base, { recursive: true, force: true });
    });
    writeFileSync(join(base, 'config.toml'), [
      'version = 2', `root = "${base}/root"`, `state = "${base}/state"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp"]',
      `[grpc]\n  address = "${base}/sock"`, `[ttrpc]\n  address = "${base}/sock.ttrpc"`, '[debug]\n  address = ""', '[metrics]\n  address = ""', '',
    ].join('\n'));
    containerd = spawn('containerd', ['--config', join(base, 'config.toml')], { stdio: 'ignore' });
    const ctr = ['ctr', '--address', join(base, 'sock'), '--namespace', ns];
    for (let i = 0; i < 100 && spawnSync(ctr[0], [...ctr.slice(1), 'version'], { stdio: 'ignore' }).status !== 0; i++) await sleep(100);
    const archive = join(work, 'ctr-bb.tar');
    execFileSync(process.execPath, [join(repo, 'scripts', 'make-busybox-image.mjs'), '--out', archive, '--format', 'docker-archive', '--name', 'docker.io/library/bb:latest']);
    execFileSync(ctr[0], [...ctr.slice(1), 'image', 'import', archive], { stdio: 'ignore' });
    const run = (runtime, tag) => (i) => [...ctr, 'run', '--rm', '--runc-binary', runtime, 'docker.io/library/bb:latest', `${tag}${i}`, 'true'];
    const rows = compare('`ctr run --rm bb ID true`', [
      { name: 'containerd + tsrun-runtime', argv: run(tsrunRt, 't') },
      { name: 'containerd + runc', argv: run(runcRt, 'r') },
    ]);
    console.log(`containerd: tsrun-runtime / runc = ${(rows[0].median / rows[1].median).toFixed(2)}\n`);
    spawnSync(ctr[0], [...ctr.slice(1), 'image', 'rm', 'docker.io/library/bb:latest'], { stdio: 'ignore' });
    spawnSync(ctr[0], [...ctr.slice(1), 'namespace', 'remove', ns], { stdio: 'ignore' });
  } else console.log('containerd: not installed, skipped\n');
} finally {
  if (containerd) {
    containerd.kill('SIGTERM');
    await new Promise((r) => containerd.once('exit', r));
  }
  for (const c of cleanups.reverse()) c();
  unmountUnder(work);
  rmSync(join('/run/containerd/runc', ns), { recursive: true, force: true });
  for (const h of readdirSync('/sys/fs/cgroup')) for (const name of [parent, ns]) rmdirTree(join('/sys/fs/cgroup', h, name));
  rmSync(work, { recursive: true, force: true });
}
