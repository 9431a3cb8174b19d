// The bench harness: time whole commands over repeated runs and print a markdown table.
// Every engine is measured by the same procedure in the same run, so the rows compare.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';

/** Run `argv` `runs` times (after `warmup` untimed runs); returns wall-time stats in ms. */
export function timeCommand(argv, { runs = 20, warmup = 3, env, before } = {}) {
  const samples = [];
  for (let i = 0; i < warmup + runs; i++) {
    if (before) before(i);
    const start = process.hrtime.bigint();
    const r = spawnSync(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], env: env ?? process.env });
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    if (r.status !== 0) {
      throw new Error(`${argv[0]} failed (status ${r.status}):\n${r.stderr?.toString().slice(0, 2000)}`);
    }
    if (i >= warmup) samples.push(ms);
  }
  return stats(samples);
}

export function stats(samples) {
  const s = [...samples].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { runs: s.length, median, min: s[0], max: s.at(-1) };
}

/** Whether a program is on PATH. */
export function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

export function table(title, rows, unit = 'ms') {
  const f = (x) => (typeof x === 'number' ? x.toFixed(1) : x);
  const out = [`### ${title}`, '', `| command | median ${unit} | min | max | runs |`, '| --- | ---: | ---: | ---: | ---: |'];
  for (const r of rows) {
    if (r.skipped) out.push(`| ${r.name} | n/a | | | ${r.skipped} |`);
    else out.push(`| ${r.name} | ${f(r.median)} | ${f(r.min)} | ${f(r.max)} | ${r.runs} |`);
  }
  return out.join('\n') + '\n';
}

/** Measure one row, or record why it could not be measured (engine missing, failed). */
export function row(name, fn) {
  try {
    return { name, ...fn() };
  } catch (err) {
    // The first line that says why (a tsrun error, not the command line that failed).
    const lines = String(err.message ?? err).split('\n');
    const why = lines.find((l) => /tsrun:|error|Error/.test(l) && !l.includes(' failed (status')) ?? lines[0];
    return { name, skipped: why.slice(0, 160) };
  }
}

/** Unmount whatever an engine left mounted under `dir` (podman's storage does), deepest first. */
export function unmountUnder(dir) {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .map((l) => l.split(' ')[4]).filter((m) => m && m.startsWith(dir)).sort().reverse();
  for (const m of mounts) spawnSync('umount', ['-l', m]);
}

/**
 * Start a private dockerd (its data and exec roots under `work`, no iptables, no bridge) and
 * return the client argv that talks to it; its stop is pushed onto `cleanups`. The client is the
 * one packaged with dockerd when there is one (/usr/bin/docker of docker.io): a newer CLI
 * elsewhere on PATH may lack the builder the daemon speaks (docker 23+ needs buildx for BuildKit).
 */
export function startDockerd(work, cleanups) {
  if (!have('dockerd')) throw new Error('dockerd not installed (apt-get install docker.io)');
  const client = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';
  const sock = `unix://${join(work, 'docker.sock')}`;
  // dockerd (cgroupfs driver) makes a `docker` cgroup in each hierarchy and leaves it; the ones it
  // made are removed after it stops (rmdir removes only empty cgroups).
  const cgroups = readdirSync('/sys/fs/cgroup').map((h) => join('/sys/fs/cgroup', h, 'docker')).filter((c) => !existsSync(c));
  cleanups.push(() => cgroups.forEach(rmdirTree));
  const d = spawn('dockerd', ['--iptables=false', '--bridge=none', '--data-root', join(work, 'docker'), '--exec-root', join(work, 'docker-exec'),
    '-H', sock, '--pidfile', join(work, 'docker.pid')], { stdio: 'ignore' });
  // dockerd is our child: once it exits it stays a zombie until this process ends, so only
  // wait (bounded) for it to stop being a running process.
  cleanups.push(() => { d.kill('SIGTERM'); spawnSync('sh', ['-c', `for i in $(seq 100); do grep -q '^State:.*Z' /proc/${d.pid}/status 2>/dev/null && break; kill -0 ${d.pid} 2>/dev/null || break; sleep 0.1; done`]); });
  const docker = [client, '-H', sock];
  for (let i = 0; i < 100 && spawnSync(client, [...docker.slice(1), 'info'], { stdio: 'ignore' }).status !== 0; i++) spawnSync('sleep', ['0.2']);
  return docker;
}

/** rmdir a cgroup and the cgroups under it, deepest first; one still in use stays. */
function rmdirTree(dir) {
  let subdirs = [];
  try {
    subdirs = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory());
  } catch {
    return;
  }
  for (const e of subdirs) rmdirTree(join(dir, e.name));
  try {
    rmdirSync(dir);
  } catch {
    // in use (or not ours after all): left alone
  }
}

/**
 * Run `argv` once under GNU time: its wall time, its stderr, and the peak resident memory of the
 * largest process among it and the children it waited for (ru_maxrss), in kB.
 */
export function peakRss(argv, { env } = {}) {
  if (!existsSync('/usr/bin/time')) throw new Error('/usr/bin/time not installed (apt-get install time)');
  const start = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', 'peak-rss-kb %M', ...argv], { stdio: ['ignore', 'ignore', 'pipe'], env: env ?? process.env, maxBuffer: 64 << 20 });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  const stderr = r.stderr.toString();
  if (r.status !== 0) throw new Error(`${argv[0]} failed (status ${r.status}):\n${stderr.slice(-2000)}`);
  const kb = Number(/peak-rss-kb (\d+)\s*$/.exec(stderr)?.[1]);
  return { kb, ms, stderr };
}
