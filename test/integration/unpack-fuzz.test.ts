// An unpack fuzzer: crafted layers, generated from a seed, unpacked as a pull unpacks them
// (unpackTar, then what each layer takes from below), each into a layer directory inside a
// canary tree. Every case must leave everything outside its layer directories as it was, and
// either be refused cleanly (EUNSAFE or EBADIMAGE, with a message) or give, merged by the
// kernel's overlayfs, the tree the spec's model gives (test/fixtures/changeset-model.ts).
//
//   about a minute in CI; longer:   TSRUN_FUZZ_SECONDS=600 npm test -- unpack-fuzz
//   one case again, alone:          TSRUN_FUZZ_SEED=<the seed a failure prints> npm test -- unpack-fuzz
//   a run's cases again:            TSRUN_FUZZ_BASE=<the base it printed> (default: from the commit)
//
// Every case it found is a named regression test at the bottom of this file.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { TsrunError } from '../../src/errors.js';
import { unpackTar } from '../../src/image/unpack.js';
import { applyFromBelow, needsBelow } from '../../src/overlay/inherit.js';
import { LowerLayers } from '../../src/overlay/lower-layers.js';
import { Refused, Unmodelled, applyLayers, describeModel } from '../fixtures/changeset-model.js';
import { chunks, makeTar, type TarEntry } from '../fixtures/tar.js';
import { describePrivileged, repoRoot } from './helpers/env.js';
import { describeTree, treeDiff, withMergedLayers } from './helpers/tree.js';

const SECONDS = Number(process.env.TSRUN_FUZZ_SECONDS ?? 50);
const ONLY = process.env.TSRUN_FUZZ_SEED;
/** A name no fuzz case may ever create outside its layers (checked at / and /tmp too). */
const MARK = `tsrun-fuzz-${process.pid}`;

/** A number from the commit checked out, or a random one outside a git checkout. */
function commitSeed(): number {
  const head = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' }).stdout?.trim();
  return head && /^[0-9a-f]{8}/.test(head) ? parseInt(head.slice(0, 8), 16) >>> 1 : Math.floor(Math.random() * 2 ** 31);
}

/** mulberry32: small, fast and the same everywhere, so a seed is a case. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Case {
  seed: number;
  layers: TarEntry[][];
  /** A tar-level mutation of one layer's bytes (truncation, a corrupt or oversized header). */
  mangle?: { layer: number; kind: 'truncate' | 'checksum' | 'huge-pax' | 'huge-size'; at: number };
}

/** One case from a seed; `canary` is where absolute symlinks point. */
function generate(seed: number, canary: string): Case {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const chance = (p: number) => r() < p;
  const names = ['a', 'b', 'c', 'a/b', 'a/b/c', 'b/c', 'd', 'd/e', MARK, 'victim', `a/${MARK}`];
  // Spellings of a name: most the same path written otherwise; a few refused (a `..` that
  // climbs out, the root): each entry is refused rarely enough that most cases are taken whole
  // and their trees compared with the model.
  const spell = (n: string): string => {
    const roll = r();
    if (roll < 0.6) return n;
    if (roll < 0.7) return `./${n}`;
    if (roll < 0.75) return `/${n}`;
    if (roll < 0.8) return n.replace('/', '//');
    if (roll < 0.85) return `x/../${n}`;
    if (roll < 0.86) return `../${n}`;
    if (roll < 0.87) return `${n}/../../${n}`;
    if (roll < 0.92) return `${'long'.repeat(30)}/${n}`;
    if (roll < 0.93) return pick(['.', './', '/', '', '//', 'a/..']);
    return `${n}/.`;
  };
  const targets = [canary, `${canary}/dir`, `${canary}/victim`, '../../canary', '../../../canary', '/', '.', '..', 'a', 'a/b', 'b', '/a', '../a', 'victim'];
  const layers: TarEntry[][] = [];
  const nLayers = 1 + Math.floor(r() * 3);
  for (let l = 0; l < nLayers; l++) {
    const entries: TarEntry[] = [];
    const n = 1 + Math.floor(r() * 7);
    for (let i = 0; i < n; i++) {
      const base = pick(names);
      const dir = base.includes('/') ? base.slice(0, base.lastIndexOf('/')) : '';
      const mtime = 1_600_000_000 + l * 100 + i;
      const owner = { uid: pick([0, 0, 1000, 65534]), gid: pick([0, 0, 1000, 65534]) };
      const kind = r();
      let e: TarEntry;
      if (kind < 0.3) e = { name: spell(base), content: `L${l}E${i}`, mode: pick([0o644, 0o755, 0o600, 0o4755, 0o000]), ...owner, mtime };
      else if (kind < 0.48) e = { name: `${spell(base)}/`, type: 'dir', mode: pick([0o755, 0o700, 0o1777, 0o555]), ...owner, mtime };
      else if (kind < 0.62) e = { name: spell(base), type: 'symlink', linkname: pick(targets), ...owner, mtime };
      else if (kind < 0.7) {
        // Mostly to an earlier entry of the layer, sometimes anywhere (refused but for those).
        const earlier = entries.filter((x) => !x.type || x.type === 'symlink').map((x) => x.name);
        e = { name: spell(base), type: 'hardlink', linkname: earlier.length > 0 && chance(0.7) ? pick(earlier) : pick([...names, ...targets]) };
      } else if (kind < 0.76) e = { name: spell(base), ...pick([{ type: 'char', devmajor: 1, devminor: 3 }, { type: 'block', devmajor: 7, devminor: 0 }, { type: 'fifo' }, { type: 'fifo' }, { type: 'char', devmajor: 1, devminor: 5 }, { type: 'char', devmajor: 0, devminor: 0 }] as const), mode: 0o640, mtime };
      else if (kind < 0.89) e = { name: `${dir ? `${spell(dir)}/` : ''}.wh.${pick(['a', 'b', 'c', 'd', 'e', MARK])}` };
      else if (kind < 0.985) e = { name: `${dir ? `${spell(dir)}/` : ''}.wh..wh..opq` };
      else e = { name: `${dir ? `${dir}/` : ''}${pick(['.wh.', '.wh..', '.wh...', '.wh..wh.plnk'])}` };
      if (chance(0.08) && e.type !== 'hardlink') e.pax = { ...e.pax, 'SCHILY.xattr.user.fuzz': `v${i}` };
      if (chance(0.005)) e.pax = { ...e.pax, 'SCHILY.xattr.trusted.overlay.opaque': 'y' };
      if (chance(0.3)) e.gnu = true;
      entries.push(e);
    }
    layers.push(entries);
  }
  const c: Case = { seed, layers };
  if (chance(0.05)) c.mangle = { layer: Math.floor(r() * nLayers), kind: pick(['truncate', 'checksum', 'huge-pax', 'huge-size'] as const), at: r() };
  return c;
}

function tarOf(c: Case, l: number): Buffer {
  let tar = makeTar(c.layers[l]!);
  const m = c.mangle;
  if (!m || m.layer !== l) return tar;
  const block = Math.floor((m.at * (tar.length - 1024)) / 512) * 512;
  if (m.kind === 'truncate') tar = tar.subarray(0, Math.max(1, Math.floor(m.at * tar.length)));
  else if (m.kind === 'checksum') tar = Buffer.concat([tar.subarray(0, block + 148), Buffer.from('9999999\0'), tar.subarray(block + 156)]);
  else if (m.kind === 'huge-size') tar = Buffer.concat([tar.subarray(0, block + 124), Buffer.from('77777777777\0'), tar.subarray(block + 136)]);
  else tar = Buffer.concat([makeTar([{ name: 'p', content: '', pax: { path: 'x'.repeat(5 * 1024 * 1024) } }]).subarray(0, 512 * 3), tar]);
  return tar;
}

/** Everything under `dir` but `skip` (its layer directories): names, types, modes, contents. */
function snapshot(dir: string, skip: string): string {
  const h = createHash('sha256');
  const visit = (p: string) => {
    if (p === skip) return;
    const st = fs.lstatSync(p);
    h.update(`${p} ${st.mode} ${st.uid}:${st.gid} ${st.isSymbolicLink() ? fs.readlinkSync(p) : st.isFile() ? fs.readFileSync(p).toString('hex') : ''}\n`);
    if (st.isDirectory()) for (const n of fs.readdirSync(p).sort()) visit(path.join(p, n));
  };
  visit(dir);
  return h.digest('hex');
}

type Outcome = { kind: 'refused'; message: string } | { kind: 'unmodelled' } | { kind: 'model-refused'; message: string } | { kind: 'matched' };

describePrivileged('unpack fuzzer', () => {
  let work: string;
  const stats = { cases: 0, refused: 0, unmodelled: 0, matched: 0 };

  beforeAll(() => {
    work = fs.mkdtempSync(path.join('/tmp', 'tsrun-test-fuzz-'));
  });
  afterAll(() => {
    fs.rmSync(work, { recursive: true, force: true });
    for (const p of [`/${MARK}`, `/tmp/${MARK}`]) fs.rmSync(p, { recursive: true, force: true });
  });

  /** Runs one case (a seed's, or given) in its own directory; returns what happened, or throws a finding. */
  async function runCase(which: number | Case): Promise<Outcome> {
    const seed = typeof which === 'number' ? which : which.seed;
    const dir = fs.mkdtempSync(path.join(work, `case-${seed}-`));
    const canary = path.join(dir, 'canary');
    fs.mkdirSync(path.join(canary, 'dir'), { recursive: true });
    fs.writeFileSync(path.join(canary, 'victim'), 'original');
    fs.writeFileSync(path.join(canary, 'dir', 'victim'), 'original');
    fs.symlinkSync('victim', path.join(canary, 'link'));
    const layersDir = path.join(dir, 'layers');
    fs.mkdirSync(layersDir, { mode: 0o700 });
    const c = typeof which === 'number' ? generate(seed, canary) : which;
    const before = snapshot(dir, layersDir);
    const siblings = fs.readdirSync(work).length;
    const layerDirs: string[] = [];
    let outcome: Outcome | undefined;
    try {
      for (let l = 0; l < c.layers.length && !outcome; l++) {
        const ld = path.join(layersDir, `L${l}`);
        fs.mkdirSync(ld);
        try {
          const r = await unpackTar(chunks(tarOf(c, l), 997), ld);
          if (needsBelow(r.fromBelow)) applyFromBelow(ld, r.fromBelow, new LowerLayers([...layerDirs].reverse()));
          layerDirs.push(ld);
        } catch (err) {
          if (!(err instanceof TsrunError) || !['EUNSAFE', 'EBADIMAGE'].includes(err.code) || err.message.length < 10) {
            throw new Error(`not a clean refusal: ${String((err as Error)?.stack ?? err)}`);
          }
          outcome = { kind: 'refused', message: err.message };
        }
      }
      // Nothing outside the layer directories changed, whatever the outcome.
      if (snapshot(dir, layersDir) !== before) throw new Error('the canary tree changed');
      if (fs.readdirSync(work).length !== siblings) throw new Error('a new entry appeared beside the case');
      for (const p of [`/${MARK}`, `/tmp/${MARK}`]) if (fs.existsSync(p)) throw new Error(`${p} appeared on the host`);
      if (outcome) return outcome;
      // A mangled tar that was still taken says something else than its entries: safety only.
      if (c.mangle) return { kind: 'unmodelled' };
      let want: Map<string, string>;
      try {
        want = describeModel(applyLayers(c.layers));
      } catch (err) {
        if (err instanceof Unmodelled) return { kind: 'unmodelled' };
        if (err instanceof Refused) return { kind: 'model-refused', message: err.message };
        throw err;
      }
      const got = await withMergedLayers(layerDirs, dir, describeTree);
      const diff = treeDiff(got, want);
      if (diff.length > 0) throw new Error(`the merged tree is not the model's:\n  ${diff.join('\n  ')}`);
      return { kind: 'matched' };
    } catch (err) {
      const how = typeof which === 'number' ? `TSRUN_FUZZ_SEED=${seed} npx vitest run test/integration/unpack-fuzz.test.ts` : 'a regression case';
      throw new Error(`fuzz case ${seed} (${how}): ${(err as Error).message}\nlayers: ${JSON.stringify(c.layers)}${c.mangle ? `\nmangled: ${JSON.stringify(c.mangle)}` : ''}`, { cause: err });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  it(ONLY ? `case ${ONLY}` : `cases for ${SECONDS} s`, async () => {
    // The seeds follow from the commit under test (or TSRUN_FUZZ_BASE): a CI run can be run
    // again to the same cases, and each new commit explores new ones.
    const base = ONLY ? Number(ONLY) : Number(process.env.TSRUN_FUZZ_BASE ?? commitSeed());
    if (!ONLY) console.log(`unpack fuzzer: seeds from ${base} for ${SECONDS} s (TSRUN_FUZZ_BASE=${base} to run them again)`);
    const deadline = Date.now() + SECONDS * 1000;
    const findings: string[] = [];
    const modelRefused: string[] = [];
    const reasons = new Map<string, number>();
    for (let i = 0; ONLY ? i < 1 : Date.now() < deadline; i++) {
      const seed = (base + i) >>> 0;
      try {
        const o = await runCase(seed);
        stats.cases++;
        if (o.kind === 'refused') {
          stats.refused++;
          const why = o.message.replace(/^[^:]*: /, '').replace(/"[^"]*"|\S*\/\S*/g, '_').slice(0, 60);
          reasons.set(why, (reasons.get(why) ?? 0) + 1);
        }
        else if (o.kind === 'unmodelled') stats.unmodelled++;
        else if (o.kind === 'matched') stats.matched++;
        else modelRefused.push(`${seed}: ${o.message}: ${JSON.stringify(generate(seed, '/CANARY').layers)}`);
      } catch (err) {
        findings.push((err as Error).message);
        if (findings.length >= 3) break;
      }
    }
    console.log(`unpack fuzzer: ${JSON.stringify(stats)}, ${modelRefused.length} the model refused and tsrun took, ${findings.length} findings`);
    for (const m of modelRefused.slice(0, 5)) console.log(`the model refused, tsrun took: ${m}`);
    if (process.env.TSRUN_FUZZ_VERBOSE) console.log([...reasons].sort((a, b) => b[1] - a[1]).slice(0, 15).map(([w, n]) => `${n} ${w}`).join('\n'));
    expect(findings).toEqual([]);
    // tsrun may refuse more than the model (any clean refusal passes), but never take what the
    // model refuses: that is a path the spec's rules do not allow.
    expect(modelRefused).toEqual([]);
    if (!ONLY) {
      // A fuzzer that only ever refused, or never compared a tree, would test nothing.
      expect(stats.matched).toBeGreaterThan(stats.cases * 0.2);
      expect(stats.refused).toBeGreaterThan(stats.cases * 0.05);
    }
  }, (SECONDS + 60) * 1000);

  // What the fuzzer found, each reduced to its essence; `kind` is the outcome that is right.
  const T = 1_600_000_000;
  const regressions: Array<[string, TarEntry[][], Outcome['kind']]> = [
    ['a whiteout of nothing in a directory only its layer has leaves no name that cannot be opened', [[{ name: 'a', content: 'file' }], [{ name: 'a/./.wh.d' }, { name: 'd', type: 'symlink', linkname: 'a' }]], 'matched'],
    ['a whiteout under an opaque directory of its layer leaves no name that cannot be opened', [[{ name: 'a/.wh..wh..opq' }, { name: 'a/b/', type: 'dir', mtime: T }, { name: 'a/b/.wh.x' }]], 'matched'],
    ['removing a whiteout that hides nothing keeps its directory\'s time', [[{ name: 'd/', type: 'dir', mtime: T }], [{ name: 'd/', type: 'dir', mtime: T + 5 }, { name: 'd/.wh.nothing' }]], 'matched'],
    ['a 0/0 character device entry, which overlayfs would take for a whiteout, is refused', [[{ name: 'a', content: 'x' }, { name: 'd', type: 'char', devmajor: 0, devminor: 0 }]], 'refused'],
    ['an opaque marker in a file of its own layer is refused, as any entry below a file', [[{ name: 'd', content: 'f' }, { name: 'd/.wh..wh..opq' }]], 'refused'],
    ['a directory entry over one its layer has replaces its xattrs', [[{ name: 'x/', type: 'dir', mtime: T, pax: { 'SCHILY.xattr.user.fuzz': 'v' } }, { name: 'x/', type: 'dir', mtime: T }]], 'matched'],
    ['a user xattr on a symlink, which the kernel cannot keep, is dropped', [[{ name: 'l', type: 'symlink', linkname: 'a', mtime: T, pax: { 'SCHILY.xattr.user.fuzz': 'v' } }]], 'matched'],
    ['a directory replaced by a symlink takes what was noted of it along: its old modes land nowhere', [[{ name: 'b/c/', type: 'dir', mode: 0o1777, mtime: T }, { name: 'a/b/c/', type: 'dir', mode: 0o700, mtime: T + 4 }, { name: 'b', type: 'symlink', linkname: 'a/b', mtime: T }]], 'matched'],
    ['an overlayfs attribute is refused on any entry, a device or a whiteout too', [[{ name: 'b', type: 'block', devmajor: 7, devminor: 0, pax: { 'SCHILY.xattr.trusted.overlay.opaque': 'y' } }]], 'refused'],
    ['a file then a directory of the same name hides the lower directory\'s content', [[{ name: 'd/old', content: 'o' }], [{ name: 'd', content: 'f' }, { name: 'd/', type: 'dir', mtime: T }]], 'matched'],
  ];
  for (const [name, layers, kind] of regressions) {
    it(`regression: ${name}`, async () => {
      expect((await runCase({ seed: 0, layers })).kind).toBe(kind);
    });
  }
});
