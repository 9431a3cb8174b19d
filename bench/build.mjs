#!/usr/bin/env node
// `tsrun build` of a small Dockerfile beside `buildah bud --layers` and `docker build` (BuildKit
// and the legacy builder, when dockerd is installed: a private daemon is started and stopped).
// The Dockerfile: FROM the busybox of scripts/make-busybox-image.mjs, COPY of a 2,000-file /
// 20 MB context (pseudo-random bytes: gzip cannot shrink them), three RUNs, ENV, WORKDIR, CMD.
//
//   cold    --no-cache, the base present; before each run (untimed) the engine's previous
//           image and its build cache are removed, then `sync` — the same for every engine
//   cached  the same build again, nothing changed (the warmup run fills the cache)
//
// The engines take turns, run by run, so a change in the machine's load falls on all alike.
// RUN steps use --network none everywhere (no engine needs a network here; tsrun's default, the
// bridge, has a row of its own). Each engine has a private store under one temp dir, removed at
// the end with whatever it left mounted. Then one more tsrun cold build with --progress plain:
// its steps' times and the peak resident memory of the build (GNU time). tsrun runs from a
// copy of dist/ and the helper made at the start, so a rebuild meanwhile cannot mix two versions.
// Usage (root): node bench/build.mjs [--runs N] [--no-docker]
import { execFileSync, spawnSync } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { have, peakRss, row, startDockerd, stats, table, timeCommand, unmountUnder } from './harness.mjs';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const runs = Number(argv[argv.indexOf('--runs') + 1]) || 5;
const warmup = 1;
const work = mkdtempSync(join(tmpdir(), 'tsrun-bench-build-'));
const sh = (cmd, args, opts = {}) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20, ...opts });
const quiet = (cmd, args) => spawnSync(cmd, args, { stdio: 'ignore' });
const sync = () => quiet('sync', []);
const BASE = 'bench/busybox:latest';
const OUT = 'bench/build-out';

const DOCKERFILE = `FROM ${BASE}
COPY data /data
RUN find /data -type f | wc -l > /count
RUN cat /data/0/0 > /first && sed -i 's/^/files=/' /count
RUN mkdir /out && cp /data/1/1 /out/
ENV BENCH=build
WORKDIR /out
CMD ["cat", "/count"]
`;

/** 20 dirs × 100 files × 10 KiB from AES-CTR over zeros: the same bytes every time, incompressible. */
function makeContext(dir) {
  const stream = createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), Buffer.alloc(16, 0));
  const mtime = new Date('2024-01-01T00:00:00Z');
  for (let d = 0; d < 20; d++) {
    mkdirSync(join(dir, 'data', String(d)), { recursive: true });
    for (let f = 0; f < 100; f++) {
      const file = join(dir, 'data', String(d), String(f));
      writeFileSync(file, stream.update(Buffer.alloc(10240)));
      utimesSync(file, mtime, mtime);
    }
  }
  writeFileSync(join(dir, 'Dockerfile'), DOCKERFILE);
}

/** dist/'s files, the helper and package.json copied under `dir` (node_modules linked): a fixed tsrun. */
function snapshotTsrun(dir) {
  mkdirSync(join(dir, 'dist'), { recursive: true });
  mkdirSync(join(dir, 'native', 'build'), { recursive: true });
  for (const f of readdirSync(join(repo, 'dist'))) {
    if (statSync(join(repo, 'dist', f)).isFile()) copyFileSync(join(repo, 'dist', f), join(dir, 'dist', f));
  }
  copyFileSync(join(repo, 'native', 'build', 'tsrun-helper'), join(dir, 'native', 'build', 'tsrun-helper'));
  copyFileSync(join(repo, 'package.json'), join(dir, 'package.json'));
  symlinkSync(join(repo, 'node_modules'), join(dir, 'node_modules'));
  return join(dir, 'dist', 'tsrun.cjs');
}

/**
 * One table: the engines' runs interleaved (a round of every engine, `runs` times, after a warmup
 * round), so a change in the machine's load meanwhile falls on all of them alike. An engine is
 * { name, build(noCache) → argv, reset(), env }; reset() (cold only) removes its previous image
 * and build cache, the base stays. A failed or missing engine becomes a row saying why.
 */
function measure(engines, noCache) {
  const samples = new Map(engines.filter((e) => !e.skipped).map((e) => [e, []]));
  const failed = new Map();
  for (let i = 0; i < warmup + runs; i++) {
    for (const [e, got] of samples) {
      if (failed.has(e)) continue;
      const before = noCache ? () => { e.reset(); sync(); } : sync;
      const r = row(e.name, () => timeCommand(e.build(noCache), { runs: 1, warmup: 0, env: e.env, before }));
      if (r.skipped) failed.set(e, r.skipped);
      else if (i >= warmup) got.push(r.median);
    }
  }
  return engines.map((e) => {
    const name = `${e.name}${noCache ? ' --no-cache' : ', cached'}`;
    if (e.skipped || failed.has(e)) return { name, skipped: e.skipped ?? failed.get(e) };
    return { name, ...stats(samples.get(e)) };
  });
}

const cleanups = [];
const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');
const loadBefore = load();
try {
  const context = join(work, 'context');
  makeContext(context);
  const archive = join(work, 'busybox.tar');
  sh(process.execPath, [join(repo, 'scripts/make-busybox-image.mjs'), '--out', archive, '--tag', 'latest', '--format', 'docker-archive', '--name', BASE]);

  // ---- tsrun ------------------------------------------------------------------------------
  const tsrun = [process.execPath, snapshotTsrun(join(work, 'tsrun-pkg')), '--root', join(work, 'tsrun'), '--runroot', join(work, 'tsrun-run')];
  const t = (...args) => sh(tsrun[0], [...tsrun.slice(1), ...args]);
  const tsrunReset = () => {
    spawnSync(tsrun[0], [...tsrun.slice(1), 'rmi', OUT], { stdio: 'ignore' });
    t('builder', 'prune', '-af');
    t('image', 'prune', '-f');
  };
  const tsrunBuild = (network) => (noCache) => [...tsrun, 'build', ...(noCache ? ['--no-cache'] : []), ...(network ? ['--network', network] : []), '-q', '-t', OUT, context];
  const tsrunLoaded = row('tsrun load', () => {
    t('load', '-q', '-i', archive);
    return {};
  });
  const tsrunEngine = { name: 'tsrun build', build: tsrunBuild('none'), reset: tsrunReset, skipped: tsrunLoaded.skipped };
  const bridge = { name: '  ... RUN on the bridge (tsrun\'s default network)', build: tsrunBuild(undefined), reset: tsrunReset, skipped: tsrunLoaded.skipped };

  // ---- buildah ----------------------------------------------------------------------------
  const buildahRows = row('buildah', () => {
    if (!have('buildah')) throw new Error('buildah not installed');
    const version = sh('buildah', ['--version']).split(' ')[2];
    // overlay if this kernel and filesystem take it, else vfs (a full copy per layer).
    let driver;
    let b;
    for (const d of ['overlay', 'vfs']) {
      b = ['buildah', '--root', join(work, `buildah-${d}`), '--runroot', join(work, `buildah-${d}-run`), '--storage-driver', d];
      if (spawnSync(b[0], [...b.slice(1), 'pull', '-q', `docker-archive:${archive}`], { stdio: 'ignore' }).status === 0) {
        driver = d;
        break;
      }
    }
    if (!driver) throw new Error(`buildah pull docker-archive: fails with overlay and vfs`);
    // Its default runtime first; crun 1.8 refuses a hybrid cgroup host, runc or chroot then.
    const probe = join(work, 'probe');
    mkdirSync(probe);
    writeFileSync(join(probe, 'Dockerfile'), `FROM ${BASE}\nRUN true\n`);
    let runtime;
    for (const r of [[], ['--runtime', 'runc'], ['--isolation', 'chroot']]) {
      if (spawnSync(b[0], [...b.slice(1), 'bud', '-q', '--network', 'none', ...r, '-t', 'bench/probe', probe], { stdio: 'ignore' }).status === 0) {
        runtime = r;
        break;
      }
    }
    if (!runtime) throw new Error('buildah bud fails with its default runtime, runc and chroot isolation');
    quiet(b[0], [...b.slice(1), 'rmi', '-f', 'bench/probe']);
    quiet(b[0], [...b.slice(1), 'rmi', '--prune']);
    const how = [driver, runtime.length ? runtime.join(' ') : 'default runtime'].join(', ');
    const build = (noCache) => [...b, 'bud', '--layers', ...(noCache ? ['--no-cache'] : []), '--network', 'none', ...runtime, '-q', '-t', OUT, context];
    const reset = () => {
      quiet(b[0], [...b.slice(1), 'rmi', '-f', OUT]);
      quiet(b[0], [...b.slice(1), 'rmi', '--prune']); // the --layers intermediate images
    };
    return { name: `buildah ${version} bud --layers (${how})`, build, reset };
  });
  const buildah = buildahRows.skipped ? { name: 'buildah bud --layers', skipped: buildahRows.skipped } : buildahRows;

  // ---- docker -----------------------------------------------------------------------------
  const dockerUp = row('docker', () => {
    if (argv.includes('--no-docker')) throw new Error('--no-docker');
    const docker = startDockerd(work, cleanups);
    sh(docker[0], [...docker.slice(1), 'load', '-q', '-i', archive]);
    const version = sh(docker[0], [...docker.slice(1), 'version', '--format', '{{.Server.Version}}']).trim();
    return { docker, version };
  });
  const dockers = [['BuildKit', '1', `${OUT}-buildkit`], ['legacy builder', '0', `${OUT}-legacy`]].map(([builder, flag, tag]) => {
    const name = `docker build (${builder}${dockerUp.version ? `, dockerd ${dockerUp.version}` : ''})`;
    if (dockerUp.skipped) return { name, skipped: dockerUp.skipped };
    const d = dockerUp.docker;
    return {
      name,
      env: { ...process.env, DOCKER_BUILDKIT: flag },
      build: (noCache) => [...d, 'build', ...(noCache ? ['--no-cache'] : []), '--network', 'none', '-q', '-t', tag, context],
      reset: () => {
        quiet(d[0], [...d.slice(1), 'rmi', '-f', tag]);
        quiet(d[0], [...d.slice(1), 'builder', 'prune', '-af']); // BuildKit's cache
        quiet(d[0], [...d.slice(1), 'image', 'prune', '-f']); // the legacy builder's intermediate images
      },
    };
  });

  const cold = measure([tsrunEngine, bridge, buildah, ...dockers], true);
  const cached = measure([tsrunEngine, buildah, ...dockers], false);

  console.log(table(`Build the 8-line Dockerfile, cold: --no-cache, base present (${runs} runs each)`, cold));
  console.log(table(`The same build again, fully cached (${runs} runs each)`, cached));
  const median = (rows, prefix) => rows.find((r) => r.name.startsWith(prefix) && !r.skipped)?.median;
  const ratio = (rows, target) => {
    const a = median(rows, 'tsrun build');
    const b = median(rows, 'buildah');
    return a && b ? `${(a / b).toFixed(2)} (target ≤ ${target})` : 'n/a';
  };
  console.log(`Load average (1, 5, 15 min) before: ${loadBefore}; after: ${load()}, which counts these builds too (${cpus().length} CPUs).\n`);
  console.log(`| ratio | value |\n| --- | ---: |\n| tsrun cold / buildah cold | ${ratio(cold, 0.5)} |\n| tsrun cached / buildah cached | ${ratio(cached, 0.25)} |\n`);

  // ---- where tsrun's cold build goes ------------------------------------------------------
  if (!tsrunEngine.skipped) {
    const steps = row('steps', () => {
      tsrunReset();
      sync();
      const r = peakRss([...tsrun, 'build', '--no-cache', '--network', 'none', '--progress', 'plain', '-t', OUT, context]);
      const text = new Map();
      const lines = [];
      let sum = 0;
      for (const l of r.stderr.split('\n')) {
        const s = /^#(\d+) (\[.*)$/.exec(l);
        if (s) text.set(s[1], s[2]);
        const done = /^#(\d+) DONE ([\d.]+)s$/.exec(l);
        if (done) {
          sum += Number(done[2]) * 1000;
          lines.push(`| ${(text.get(done[1]) ?? `#${done[1]}`).replaceAll('|', '\\|')} | ${(Number(done[2]) * 1000).toFixed(0)} |`);
        }
      }
      lines.push(`| the rest (Node and the CLI starting, the context scanned, the image recorded) | ${(r.ms - sum).toFixed(0)} |`);
      lines.push(`| **total** | ${r.ms.toFixed(0)} |`);
      const warm = peakRss(tsrunBuild('none')(false));
      let buildahKb = 'n/a';
      if (!buildah.skipped) {
        buildah.reset();
        sync();
        buildahKb = peakRss(buildah.build(true)).kb;
      }
      return { lines, cold: r.kb, cached: warm.kb, buildah: buildahKb };
    });
    if (steps.skipped) {
      console.log(`### tsrun build --no-cache, step by step\n\nn/a: ${steps.skipped}\n`);
    } else {
      console.log(`### tsrun build --no-cache, step by step (one more run, --progress plain)\n\n| step | ms |\n| --- | ---: |\n${steps.lines.join('\n')}\n`);
      console.log(`| peak resident memory of \`tsrun build\` (GNU time: its largest process) | kB |\n| --- | ---: |\n| cold | ${steps.cold} |\n| cached | ${steps.cached} |\n| (buildah bud --no-cache, the same way) | ${steps.buildah} |\n`);
    }
  }
} finally {
  for (const c of cleanups.reverse()) c();
  unmountUnder(work);
  rmSync(work, { recursive: true, force: true });
}
