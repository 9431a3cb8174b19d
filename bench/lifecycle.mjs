#!/usr/bin/env node
// The container lifecycle's costs: `ps` with 50 containers, `exec` latency, `stats --no-stream`
// over 20 containers, what cgroup limits add to `run`, a monitor's memory and an idle
// container's disk; side by side with podman and docker where installed.
// Usage (root, after `npm run build`): node bench/lifecycle.mjs [--runs N] [--docker]
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { have, row, unmountUnder, table, timeCommand } from './harness.mjs';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const runs = Number(argv[argv.indexOf('--runs') + 1]) || 20;
const work = mkdtempSync(join(tmpdir(), 'tsrun-bench-life-'));
const env = { ...process.env, TSRUN_CGROUP_PARENT: `tsrun-bench-${process.pid}`, TSRUN_BRIDGE: `bl${process.pid % 10000}`, TSRUN_BRIDGE_SUBNET: '10.213.249.0/24' };
const root = join(work, 'store');
const tsrun = [process.execPath, join(repo, 'dist/tsrun.cjs'), '--root', root];
const t = (...args) => execFileSync(tsrun[0], [...tsrun.slice(1), ...args], { encoding: 'utf8', env });
const cleanups = [];

try {
  const archive = join(work, 'busybox.tar');
  execFileSync(process.execPath, [join(repo, 'scripts/make-busybox-image.mjs'), '--out', archive, '--format', 'docker-archive', '--name', 'bench/busybox:latest']);
  t('load', '-q', '-i', archive);
  const image = 'bench/busybox';
  const rows = [];
  rows.push(row('tsrun run --rm --network none IMAGE true', () => timeCommand([...tsrun, 'run', '--rm', '--network', 'none', image, 'true'], { runs, env })));
  rows.push(row('  ... with --memory 64m --cpus 0.5 --pids-limit 100', () =>
    timeCommand([...tsrun, 'run', '--rm', '--network', 'none', '--memory', '64m', '--cpus', '0.5', '--pids-limit', '100', image, 'true'], { runs, env })));

  for (let i = 0; i < 50; i++) t('run', '-d', '--network', 'none', '--name', `idle${i}`, image, 'sleep', '600');
  cleanups.push(() => spawnSync(tsrun[0], [...tsrun.slice(1), 'rm', '-f', ...Array.from({ length: 50 }, (_, i) => `idle${i}`)], { env, stdio: 'ignore' }));
  rows.push(row('tsrun ps (50 running containers)', () => timeCommand([...tsrun, 'ps'], { runs, env })));
  rows.push(row('tsrun exec CONTAINER true', () => timeCommand([...tsrun, 'exec', 'idle0', 'true'], { runs, env })));
  rows.push(row('tsrun stats --no-stream (20 of them)', () =>
    timeCommand([...tsrun, 'stats', '--no-stream', ...Array.from({ length: 20 }, (_, i) => `idle${i}`)], { runs: Math.min(runs, 5), env })));

  // Side by side: podman, docker.
  rows.push(row('podman run --rm --network none IMAGE true', () => {
    if (!have('podman')) throw new Error('podman not installed');
    const p = ['podman', '--root', join(work, 'podman'), '--runroot', join(work, 'podman-run')];
    execFileSync(p[0], [...p.slice(1), 'load', '-q', '-i', archive]);
    cleanups.push(() => spawnSync(p[0], [...p.slice(1), 'system', 'reset', '-f'], { stdio: 'ignore' }));
    return timeCommand([...p, 'run', '--rm', '--network', 'none', '--ulimit', 'nofile=20000:20000', image, 'true'], { runs });
  }));
  console.log(table(`Lifecycle (${runs} runs each unless fewer shown)`, rows));

  // A monitor's memory and an idle container's disk.
  const id = t('inspect', '-f', '{{.Id}}', 'idle0').trim();
  const monitor = JSON.parse(t('inspect', 'idle0'))[0].Tsrun.MonitorPid;
  const rss = /VmRSS:\s+(\d+ kB)/.exec(readFileSync(`/proc/${monitor}/status`, 'utf8'))?.[1];
  const disk = execFileSync('du', ['-sk', join(root, 'containers', id)], { encoding: 'utf8' }).split('\t')[0];
  console.log(`### Per container\n\n| what | value |\n| --- | ---: |\n| monitor resident memory (VmRSS) | ${rss} |\n| disk of an idle container (container dir, du -sk) | ${disk} kB |\n`);
} finally {
  for (const c of cleanups.reverse()) c();
  const { listNetworks, removeNetwork } = await import(join(repo, 'dist/src/netns/index.js'));
  for (const n of listNetworks(root)) await removeNetwork(root, n.name, { force: true }).catch(() => {});
  unmountUnder(work);
  rmSync(work, { recursive: true, force: true });
}
