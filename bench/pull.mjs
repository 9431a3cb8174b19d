#!/usr/bin/env node
// Cold and warm pull of a multi-layer Debian image (debootstrap minbase, split into layers by
// GNU tar) from a loopback registry, side by side with skopeo copy
// (download only), the download-plus-`tar -xzf` floor and the (with sha256), podman and
// docker where installed.
// Every engine gets the same procedure: its store emptied and `sync`ed before each timed run;
// tsrun, skopeo and the two floors run in interleaved rounds (podman and docker after them).
// Usage (root): node bench/pull.mjs [--runs N] [--docker] [--baseline DIR]
//   --baseline DIR: another built checkout of tsrun (a git worktree), pulled cold in the same
//   rounds: an A/B of two builds measured side by side, under the same disk weather.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { have, row, stats, unmountUnder, table, timeCommand, timeInterleaved } from './harness.mjs';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const runs = Number(argv[argv.indexOf('--runs') + 1]) || 5;
const baseline = argv.includes('--baseline') ? argv[argv.indexOf('--baseline') + 1] ?? '' : undefined;
if (baseline !== undefined && (baseline === '' || !existsSync(join(baseline, 'dist/tsrun.cjs')))) {
  console.error(`--baseline: no dist/tsrun.cjs under ${baseline} (build it first)`);
  process.exit(2);
}
const cache = process.env.TSRUN_BENCH_CACHE ?? '/var/cache/tsrun-bench';
const work = mkdtempSync(join(tmpdir(), 'tsrun-bench-pull-'));
const sh = (cmd, args, opts = {}) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], ...opts });
const cleanups = [];

/**
 * debootstrap minbase once (cached), then an OCI layout of 4 layers made by GNU tar and gzip —
 * as an image built in steps would have them: /usr/share, /usr/lib, the binaries, the rest.
 * (umoci 0.4.7's `insert` wrote truncated layers here, so the layout is assembled directly.)
 */
function buildImage() {
  const layout = join(cache, 'debian-oci-v2');
  if (existsSync(join(layout, 'index.json'))) return layout;
  mkdirSync(cache, { recursive: true });
  const rootfs = join(cache, 'minbase');
  if (!existsSync(join(rootfs, 'etc', 'debian_version'))) {
    if (!have('debootstrap')) sh('apt-get', ['install', '-y', '-qq', 'debootstrap']);
    sh('debootstrap', ['--variant=minbase', 'bookworm', rootfs, 'http://deb.debian.org/debian']);
  }
  const blobs = join(layout, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  const put = (file) => {
    const digest = sh('sha256sum', [file]).split(' ')[0];
    sh('mv', [file, join(blobs, digest)]);
    return { digest: `sha256:${digest}`, size: statSync(join(blobs, digest)).size };
  };
  const parts = [['./usr/share'], ['./usr/lib'], ['./usr/bin', './usr/sbin'], ['.', '--exclude=./usr/share', '--exclude=./usr/lib', '--exclude=./usr/bin', '--exclude=./usr/sbin']];
  const layers = [];
  const diffIds = [];
  for (const [i, part] of parts.entries()) {
    const tarFile = join(work, `layer${i}.tar`);
    const [paths, excludes] = [part.filter((p) => !p.startsWith('--')), part.filter((p) => p.startsWith('--'))];
    sh('tar', ['-C', rootfs, '--numeric-owner', '--sort=name', '--xattrs', ...excludes, '-cf', tarFile, ...paths]);
    diffIds.push(`sha256:${sh('sha256sum', [tarFile]).split(' ')[0]}`);
    sh('gzip', ['-6', tarFile]);
    layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...put(`${tarFile}.gz`) });
  }
  const json = (name, value) => {
    const file = join(work, name);
    writeFileSync(file, JSON.stringify(value));
    return put(file);
  };
  const config = json('config.json', {
    architecture: 'amd64', os: 'linux', created: '2026-01-01T00:00:00Z',
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['bash'] },
    rootfs: { type: 'layers', diff_ids: diffIds },
  });
  const manifest = json('manifest.json', {
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config }, layers,
  });
  writeFileSync(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(join(layout, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'latest' } }],
  }));
  return layout;
}

try {
  const layout = buildImage();
  const port = 15000 + (process.pid % 1000);
  const registry = `127.0.0.1:${port}`;
  const data = join(work, 'registry');
  writeFileSync(join(work, 'config.yml'), `version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: ${data}\nhttp:\n  addr: ${registry}\nlog:\n  level: error\n`);
  const reg = spawn('docker-registry', ['serve', join(work, 'config.yml')], { stdio: 'ignore' });
  cleanups.push(() => reg.kill());
  for (let i = 0; i < 50 && spawnSync('curl', ['-fs', `http://${registry}/v2/`]).status !== 0; i++) spawnSync('sleep', ['0.1']);
  sh('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:latest`, `docker://${registry}/debian:minbase`]);
  const ref = `${registry}/debian:minbase`;
  const manifest = JSON.parse(sh('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]));
  const compressed = manifest.layers.reduce((n, l) => n + l.size, 0);
  console.log(`Image: ${manifest.layers.length} layers, ${(compressed / 1e6).toFixed(1)} MB compressed\n`);

  const empty = (dir) => () => {
    rmSync(dir, { recursive: true, force: true });
    spawnSync('sync');
  };
  const tsrunRoot = join(work, 'tsrun');
  const tsrun = [process.execPath, join(repo, 'dist/tsrun.cjs'), '--root', tsrunRoot];
  const skopeoDir = join(work, 'skopeo');
  const floorDir = join(work, 'floor');
  const floor = manifest.layers
    .map((l, i) => `(mkdir -p ${floorDir}/${i} && curl -fsS http://${registry}/v2/debian/blobs/${l.digest} | tar -xzf - -C ${floorDir}/${i}) & p${i}=$!`)
    .join('\n');
  const waitAll = manifest.layers.map((_, i) => `wait $p${i}`).join(' && ');
  // The floor: what a pull must do at least, the digest check included. sha256sum reads
  // a copy of the download (through a FIFO) beside tar, and the layer is done when both are.
  const verified = manifest.layers
    .map((l, i) => `(set -o pipefail; mkdir -p ${floorDir}/${i} && rm -f ${floorDir}/${i}.fifo && mkfifo ${floorDir}/${i}.fifo && { sha256sum <${floorDir}/${i}.fifo >/dev/null & s=$!; curl -fsS http://${registry}/v2/debian/blobs/${l.digest} | tee ${floorDir}/${i}.fifo | tar -xzf - -C ${floorDir}/${i} && wait $s; }) & p${i}=$!`)
    .join('\n');
  // The cold rows in rounds, each round in a new order, every store emptied (and synced) right
  // before its run: this disk's speed drifts by tens of percent within minutes, which separate
  // rows measured one after the other would take for a difference between them.
  const cold = [
    { name: 'tsrun pull (cold)', argv: [...tsrun, 'pull', '-q', ref], before: empty(tsrunRoot) },
    { name: 'skopeo copy to dir: (download only)', argv: ['skopeo', 'copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `dir:${skopeoDir}`], before: empty(skopeoDir) },
    { name: 'download + tar -xzf, layers in parallel (the floor)', argv: ['bash', '-c', `${floor}\n${waitAll}`], before: empty(floorDir) },
    { name: 'download + sha256 + tar -xzf, layers in parallel', argv: ['bash', '-c', `${verified}\n${waitAll}`], before: empty(floorDir) },
  ];
  const baselineRoot = join(work, 'tsrun-baseline');
  const baselineRow = cold.length;
  if (baseline !== undefined) {
    // A code cache of its own: two builds sharing one directory remove each other's cache (the
    // launcher keeps one bundle's per command), and each would then compile its bundle every run.
    const baselineCache = join(work, 'baseline-code-cache');
    mkdirSync(baselineCache, { mode: 0o700 });
    cold.push({
      name: `tsrun pull (cold), the baseline build in ${baseline}`,
      argv: [process.execPath, join(baseline, 'dist/tsrun.cjs'), '--root', baselineRoot, 'pull', '-q', ref],
      env: { ...process.env, TSRUN_CODE_CACHE: baselineCache },
      before: empty(baselineRoot),
    });
  }
  const measured = timeInterleaved(cold, { runs, warmup: 1 });
  const rows = cold.map((c, i) => row(c.name, () => {
    if (measured[i].error) throw measured[i].error;
    return measured[i];
  }));
  // The ratio to the floor with sha256, round by round (both ran within seconds of each other).
  const [ts, , , floorSha] = measured;
  if (!ts.error && !floorSha.error) {
    const ratios = stats(ts.samples.map((t, i) => t / floorSha.samples[i]));
    console.log(`tsrun cold pull / (download + sha256 + tar -xzf), per round: median ${ratios.median.toFixed(2)}, ` +
      `min ${ratios.min.toFixed(2)}, max ${ratios.max.toFixed(2)} (${ts.samples.length} rounds); ratio of the medians ${(ts.median / floorSha.median).toFixed(2)}\n`);
  }
  const base = baseline === undefined ? undefined : measured[baselineRow];
  if (base && !ts.error && !base.error && !floorSha.error) {
    const ratios = stats(ts.samples.map((t, i) => t / base.samples[i]));
    console.log(`tsrun cold pull / the baseline build's, per round: median ${ratios.median.toFixed(2)}, min ${ratios.min.toFixed(2)}, max ${ratios.max.toFixed(2)}; ` +
      `ratio of the medians ${(ts.median / base.median).toFixed(2)}; the baseline / the floor with sha256: ${(base.median / floorSha.median).toFixed(2)}\n`);
  }
  rows.splice(1, 0, row('tsrun pull (warm: all present)', () => timeCommand([...tsrun, 'pull', '-q', ref], { runs: runs * 2, warmup: 1 })));
  // Peak RSS of the whole process, worker threads included (GNU time's %M, in KiB).
  const peakRss = (argv) => {
    const r = spawnSync('/usr/bin/time', ['-f', '%M', ...argv], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
    return r.status === 0 ? `${Math.round(Number(r.stderr.trim().split('\n').pop()) / 1024)} MB` : 'n/a';
  };
  if (existsSync('/usr/bin/time')) {
    const warm = peakRss([...tsrun, 'pull', '-q', ref]);
    empty(tsrunRoot)();
    console.log(`tsrun peak RSS: cold pull ${peakRss([...tsrun, 'pull', '-q', ref])}, warm pull ${warm}\n`);
  }
  rows.push(row('podman pull', () => {
    if (!have('podman')) throw new Error('podman not installed');
    const p = ['podman', '--root', join(work, 'podman'), '--runroot', join(work, 'podman-run')];
    return timeCommand([...p, 'pull', '-q', '--tls-verify=false', ref], {
      runs, warmup: 1, before: () => spawnSync(p[0], [...p.slice(1), 'system', 'reset', '-f'], { stdio: 'ignore' }),
    });
  }));
  rows.push(row('docker pull', () => {
    if (!argv.includes('--docker') || !have('dockerd')) throw new Error('pass --docker (and install docker.io) to start a private dockerd');
    const sock = `unix://${join(work, 'docker.sock')}`;
    const start = () => {
      const d = spawn('dockerd', ['--iptables=false', '--bridge=none', '--data-root', join(work, 'docker'), '--exec-root', join(work, 'docker-exec'), '-H', sock, '--pidfile', join(work, 'docker.pid')], { stdio: 'ignore' });
      for (let i = 0; i < 100 && spawnSync('docker', ['-H', sock, 'info'], { stdio: 'ignore' }).status !== 0; i++) spawnSync('sleep', ['0.2']);
      return d;
    };
    let d = start();
    cleanups.push(() => d.kill());
    return timeCommand(['docker', '-H', sock, 'pull', '-q', ref], {
      runs, warmup: 1,
      before: () => spawnSync('docker', ['-H', sock, 'image', 'rm', '-f', ref], { stdio: 'ignore' }),
    });
  }));
  console.log(table(`Pull of ${ref} from a loopback registry (${runs} runs each)`, rows));
} finally {
  for (const c of cleanups.reverse()) c();
  unmountUnder(work);
  rmSync(work, { recursive: true, force: true });
}
