// The bench harness: time whole commands over repeated runs and print a markdown table.
// Every engine is measured by the same procedure in the same run, so the rows compare.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Run `argv` `runs` times (after `warmup` untimed runs); returns wall-time stats in ms. */
export function timeCommand(argv, { runs = 20, warmup = 3, env, before, after } = {}) {
  const samples = [];
  for (let i = 0; i < warmup + runs; i++) {
    if (before) before(i);
    const ms = runOnce(argv, env);
    if (after) after(i);
    if (i >= warmup) samples.push(ms);
  }
  return stats(samples);
}

/**
 * timeCommand for several commands ({ argv, env, before, after }) at once, interleaved: each command's
 * warm-up runs, then `runs` rounds that run every command once in turn. On a machine whose speed
 * drifts (a shared VM) every command is then slowed alike, and their differences hold; each round
 * runs them in a new random order. A command that fails gets { error } and is left out of the
 * next rounds. `before` and `after` run, untimed, before and after each run of their command
 * (emptying its store; removing what it started). Each result keeps its samples in round order.
 */
export function timeInterleaved(commands, { runs = 20, warmup = 3 } = {}) {
  const results = commands.map(() => ({ samples: [] }));
  for (let i = 0; i < warmup + runs; i++) {
    // Each round in a new order: what a command leaves running (dockerd removing a container
    // after `docker run --rm` returns) slows whichever command comes next, so no row may
    // always be the one after it.
    const order = [...commands.keys()];
    for (let k = order.length - 1; k > 0; k--) {
      const j = Math.floor(Math.random() * (k + 1));
      [order[k], order[j]] = [order[j], order[k]];
    }
    for (const n of order) {
      const c = commands[n];
      if (results[n].error) continue;
      try {
        c.before?.();
        const ms = runOnce(c.argv, c.env);
        c.after?.();
        if (i >= warmup) results[n].samples.push(ms);
      } catch (err) {
        results[n].error = err;
      }
    }
  }
  return results.map((r) => (r.error ? { error: r.error } : { ...stats(r.samples), samples: r.samples }));
}

function runOnce(argv, env) {
  const start = process.hrtime.bigint();
  const r = spawnSync(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], env: env ?? process.env });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0) {
    throw new Error(`${argv[0]} failed (status ${r.status}):\n${r.stderr?.toString().slice(0, 2000)}`);
  }
  return ms;
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

/** Rows that carry `load` (the 1-minute load average when they were measured) get a column for it. */
export function table(title, rows, unit = 'ms') {
  const f = (x) => (typeof x === 'number' ? x.toFixed(1) : x);
  const load = rows.some((r) => r.load !== undefined);
  const out = [`### ${title}`, '', `| command | median ${unit} | min | max | runs |${load ? ' load |' : ''}`, `| --- | ---: | ---: | ---: | ---: |${load ? ' ---: |' : ''}`];
  for (const r of rows) {
    const l = load ? ` ${r.load?.toFixed(2) ?? ''} |` : '';
    if (r.skipped) out.push(`| ${r.name} | n/a | | | ${r.skipped} |${l}`);
    else out.push(`| ${r.name} | ${f(r.median)} | ${f(r.min)} | ${f(r.max)} | ${r.runs} |${l}`);
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
 * `bridge: { name, cidr }` (e.g. { name: 'td42', cidr: '10.213.243.1/24' }) gives dockerd a
 * default bridge of its own instead of none: made here, deleted after dockerd stops. With
 * --iptables=false docker adds no rules for it; without -p it would add none per container anyway.
 */
export function startDockerd(work, cleanups, { bridge } = {}) {
  if (!have('dockerd')) throw new Error('dockerd not installed (apt-get install docker.io)');
  const client = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';
  const sock = `unix://${join(work, 'docker.sock')}`;
  // dockerd (cgroupfs driver) makes a `docker` cgroup in each hierarchy and leaves it; the ones it
  // made are removed after it stops (rmdir removes only empty cgroups).
  const cgroups = readdirSync('/sys/fs/cgroup').map((h) => join('/sys/fs/cgroup', h, 'docker')).filter((c) => !existsSync(c));
  cleanups.push(() => cgroups.forEach(rmdirTree));
  if (bridge) {
    // Pushed before dockerd's stop, so it runs after it (cleanups run in reverse).
    cleanups.push(() => spawnSync('ip', ['link', 'del', bridge.name], { stdio: 'ignore' }));
    for (const args of [['link', 'add', 'name', bridge.name, 'type', 'bridge'], ['addr', 'add', bridge.cidr, 'dev', bridge.name], ['link', 'set', bridge.name, 'up']]) {
      const r = spawnSync('ip', args, { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr.trim()}`);
    }
  }
  const d = spawn('dockerd', ['--iptables=false', `--bridge=${bridge?.name ?? 'none'}`, '--data-root', join(work, 'docker'), '--exec-root', join(work, 'docker-exec'),
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

/**
 * The `tsrun` command as users run it: the native front when the build has one (it execs node
 * for most commands), else dist/tsrun.cjs run as an executable, so that its shebang
 * (`#!/usr/bin/env node`) picks the node on PATH.
 */
export function tsrunCommand(build) {
  const front = join(build, 'native/build/tsrun');
  if (existsSync(front)) return { argv: [front], how: `${front} (the native front)` };
  const launcher = join(build, 'dist/tsrun.cjs');
  return { argv: [launcher], how: `${launcher} (run as an executable: #!/usr/bin/env node)` };
}

/**
 * Remove everything a bench made with tsrun under `root`: its containers (one rm -f), the default
 * network's bridge and firewall rules (network prune), the cgroup parent's directories.
 */
export function cleanupTsrun(tsrun, env, cgroupParent) {
  const t = (...args) => spawnSync(tsrun[0], [...tsrun.slice(1), ...args], { env, encoding: 'utf8' });
  const ids = t('ps', '-aq').stdout?.split('\n').filter(Boolean) ?? [];
  if (ids.length > 0) t('rm', '-f', ...ids);
  t('network', 'prune', '-f');
  for (const h of readdirSync('/sys/fs/cgroup')) rmdirTree(join('/sys/fs/cgroup', h, cgroupParent));
}

/**
 * podman with its storage, run and tmp dirs under `work` (argv returned; its reset pushed onto
 * `cleanups`). What podman still makes outside them on its default network (CNI here: the bridge
 * cni-podman0, the firewall plugin's CNI-* chains, /var/lib/cni), its runtimes' state dirs
 * (/run/crun, /run/runc) and its cgroups are removed after the reset when a bench made them.
 * "A bench", not "this one": two benches may run at once, and the second finds what the first
 * made; the first records it in PODMAN_MADE, and whichever ends last with the network unused
 * removes it.
 */
export function startPodman(work, cleanups) {
  if (!have('podman')) throw new Error('podman not installed');
  const podman = ['podman', '--root', join(work, 'podman'), '--runroot', join(work, 'podman-run'), '--tmpdir', join(work, 'podman-tmp'),
    '--storage-driver', 'overlay'];
  // With the cgroupfs manager podman makes libpod_parent in each hierarchy and leaves it.
  const cgroups = readdirSync('/sys/fs/cgroup').map((h) => join('/sys/fs/cgroup', h, 'libpod_parent')).filter((c) => !existsSync(c));
  const made = readMade() ?? { paths: PODMAN_PATHS.filter((p) => !existsSync(p)), rules: cniRules() };
  writeFileSync(PODMAN_MADE, JSON.stringify(made));
  cleanups.push(() => {
    spawnSync(podman[0], [...podman.slice(1), 'rm', '-a', '-f', '-t', '0'], { stdio: 'ignore' });
    spawnSync(podman[0], [...podman.slice(1), 'system', 'reset', '-f'], { stdio: 'ignore' });
    cgroups.forEach(rmdirTree);
    // Another bench's podman may be on that network now: its veths on the bridge, its
    // addresses reserved in /var/lib/cni. Then that bench removes it all when it ends.
    if (entries('/sys/class/net/cni-podman0/brif').length > 0 || entries('/var/lib/cni/networks/podman').some((f) => /^\d/.test(f))) return;
    for (const p of made.paths) {
      if (p.startsWith('/sys/class/net/')) spawnSync('ip', ['link', 'del', p.split('/').pop()], { stdio: 'ignore' });
      else if (p === '/var/lib/cni') rmSync(p, { recursive: true, force: true });
      else rmdirIfEmpty(p);
    }
    // The rules podman added: deleted, then its chains, in one iptables-restore per table.
    const byTable = new Map();
    for (const l of cniRules().filter((x) => !made.rules.includes(x))) {
      const [table, rule] = l.split('\t');
      if (!byTable.has(table)) byTable.set(table, { del: [], chains: new Set() });
      const t = byTable.get(table);
      if (rule.startsWith('-A ')) t.del.push(`-D ${rule.slice(3)}`);
      else if (rule.startsWith(':')) t.chains.add(rule.slice(1).split(' ')[0]);
    }
    for (const [table, { del, chains }] of byTable) {
      const lines = [...del, ...[...chains].map((c) => `-F ${c}`), ...[...chains].map((c) => `-X ${c}`)];
      spawnSync('iptables-restore', ['--noflush', '-w'], { input: `*${table}\n${lines.join('\n')}\nCOMMIT\n`, stdio: ['pipe', 'ignore', 'ignore'] });
    }
    rmSync(PODMAN_MADE, { force: true });
  });
  mkdirSync(join(work, 'podman-tmp'), { recursive: true });
  return podman;
}

/** What benches' podman made outside their work dirs (see startPodman); gone with a reboot. */
const PODMAN_MADE = '/run/tsrun-bench-podman.json';
const PODMAN_PATHS = ['/sys/class/net/cni-podman0', '/var/lib/cni', '/run/crun', '/run/runc'];

/** rmdir, waiting up to 2 s for the last entries: podman's cleanup of an ended container's
 * runtime state runs after `rm` returns (conmon's exit command). */
function rmdirIfEmpty(dir) {
  for (let i = 0; i < 20; i++) {
    try {
      rmdirSync(dir);
      return;
    } catch (err) {
      if (err.code !== 'ENOTEMPTY') return;
      spawnSync('sleep', ['0.1']);
    }
  }
  // still not empty: a runtime's state of someone else's container is in it
}

function readMade() {
  try {
    return JSON.parse(readFileSync(PODMAN_MADE, 'utf8'));
  } catch {
    return undefined;
  }
}

function entries(dir) {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** iptables-save lines that name CNI chains, as "table\tline", counters left out. */
function cniRules() {
  const out = spawnSync('iptables-save', [], { encoding: 'utf8' }).stdout ?? '';
  let table = '';
  const lines = [];
  for (const l of out.split('\n')) {
    if (l.startsWith('*')) table = l.slice(1);
    else if (/CNI-/.test(l)) lines.push(`${table}\t${l.replace(/ \[\d+:\d+\]$/, '')}`);
  }
  return lines;
}

/**
 * What of a bench could be on the host, by its names: links, iptables lines and cgroups (a
 * hierarchy's children) that contain one of `names`, and tsrun-* and cni-* network namespaces.
 * Taken before and after a run, the lines only the second has are what the run left (or what
 * another user made meanwhile: network namespaces of their containers would show too).
 */
export function hostState(names) {
  const has = (l) => names.some((n) => l.includes(n));
  const found = [];
  for (const l of spawnSync('ip', ['-o', 'link'], { encoding: 'utf8' }).stdout.split('\n')) if (has(l)) found.push(`link: ${l.split(':')[1].trim()}`);
  for (const l of spawnSync('iptables-save', [], { encoding: 'utf8' }).stdout.split('\n')) if (has(l)) found.push(`iptables: ${l.replace(/ \[\d+:\d+\]$/, '')}`);
  for (const h of readdirSync('/sys/fs/cgroup')) {
    try {
      for (const c of readdirSync(join('/sys/fs/cgroup', h))) if (has(c)) found.push(`cgroup: ${h}/${c}`);
    } catch {
      // not a directory
    }
  }
  const netns = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').map((l) => l.split(' ')[0]);
  for (const n of netns) if (/^(tsrun|cni)-/.test(n)) found.push(`netns: ${n}`);
  return found;
}

/**
 * What hostState(names) has now and did not have `before` (a Set of its lines); a network
 * namespace only if it is still there 2 s later: another user's containers come and go.
 */
export function leftBehind(names, before) {
  const first = hostState(names).filter((l) => !before.has(l));
  if (!first.some((l) => l.startsWith('netns:'))) return first;
  spawnSync('sleep', ['2']);
  const again = new Set(hostState(names));
  return first.filter((l) => !l.startsWith('netns:') || again.has(l));
}

/**
 * `count` IPv4 subnets of prefix length `prefixLen` inside `within` (a CIDR) that overlap no route
 * of the host: the ones another bench (or a test) running meanwhile has not taken for its bridge.
 */
export function freeSubnets(within, prefixLen, count) {
  const ip = (s) => s.split('.').reduce((a, b) => a * 256 + Number(b), 0);
  const text = (n) => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
  // /proc/net/route: destination and mask in hex, host byte order (little-endian here).
  const le = (hex) => Number.parseInt(hex.match(/../g).reverse().join(''), 16);
  const routes = readFileSync('/proc/net/route', 'utf8').split('\n').slice(1).map((l) => l.trim().split(/\s+/)).filter((f) => f.length >= 8)
    .map((f) => ({ base: le(f[1]), size: 2 ** 32 - le(f[7]) })).filter((r) => r.size < 2 ** 32);
  const [base, len] = within.split('/');
  const size = 2 ** (32 - prefixLen);
  const free = [];
  for (let b = ip(base); b < ip(base) + 2 ** (32 - Number(len)) && free.length < count; b += size) {
    if (!routes.some((r) => b < r.base + r.size && r.base < b + size)) free.push(`${text(b)}/${prefixLen}`);
  }
  if (free.length < count) throw new Error(`no ${count} free /${prefixLen} subnets left in ${within} (host routes take them)`);
  return free;
}

/**
 * Other benches and test runs on this machine now (their command lines): they share its cores,
 * and a table measured meanwhile says so.
 */
export function othersRunning() {
  const benches = readdirSync(dirname(fileURLToPath(import.meta.url))).filter((f) => f.endsWith('.mjs') && f !== 'harness.mjs');
  const found = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)) {
    let cmd;
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
    } catch {
      continue; // gone meanwhile
    }
    const node = /^(\S*\/)?node /.test(cmd);
    if (node && (/\bvitest\b/.test(cmd) || benches.some((b) => cmd.includes(`${b} `) || cmd.endsWith(b)))) found.push(`${pid}: ${cmd.slice(0, 120)}`);
  }
  return found;
}
