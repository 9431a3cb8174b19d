// `tsrun build` against a reference: Debian's buildah builds the same Dockerfiles
// (test/fixtures/build/<case>/) from the same base image, and each image tsrun makes must
// equal buildah's — its config (Env, Cmd, Entrypoint, WorkingDir, User, ExposedPorts, Labels,
// Volumes, StopSignal, Healthcheck, OnBuild, Shell, author) and its merged root file system
// (paths, types, modes, owners, contents, link targets, hard links, user xattrs; not times).
// History is not compared: how many entries, and which are empty layers, is each builder's own.
//
// The base image is the busybox fixture (two layers: a whiteout, an opaque dir, a hard link,
// an xattr, a setuid file) in a test registry on 127.0.0.1, given to both as --build-arg BASE.
// Where buildah 1.28 is known to differ from docker, the case says so (`dockerDiffers`,
// `treeDiffers`), pins buildah's value, and holds tsrun to docker's. Each case also checks a few
// facts of buildah's result, so that a reference that went wrong cannot pass unnoticed.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { cpSync, chmodSync, chownSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { setxattr } from '../../src/sys/libc.js';
import { makeTar } from '../fixtures/tar.js';
import { Buildah, mountsUnder, Podman, processesMentioning, type DockerConfig } from './helpers/buildah.js';
import { describePrivileged, repoRoot, TestEnv, type Result } from './helpers/env.js';
import { freePort, inspectRaw, pushLayout, startRegistry, type TestRegistry } from './helpers/registry.js';
import { describeTree } from './helpers/tree.js';

const FIXTURES = join(repoRoot, 'test', 'fixtures', 'build');
const NO_CREDENTIALS = { DOCKER_CONFIG: '/nonexistent', TSRUN_CONFIG: '/nonexistent' };
/** What both builders find locally under this name: the base image (see the multistage case). */
const LOCAL_BASE = 'build-ref-base:latest';
const PAYLOAD = 'served on 127.0.0.1 for ADD\n';
/** What metadata's ENV lines make (ARGs and the ENVs before expanded), besides PATH. */
const METADATA_ENV = ['A=1', 'B=two words', 'C=local-default-x', 'D=1-two words', 'E=fallback', 'F=set', 'G=global-default', 'H=from-cli', 'I=cli-value', 'X=new', 'Y=old', 'LITERAL=$A', 'QUOTED=single $A'];
/** The port of the file server ADD <url> fetches from (set in beforeAll). */
let httpPort = 0;

const CONFIG_KEYS = ['Env', 'Cmd', 'Entrypoint', 'WorkingDir', 'User', 'ExposedPorts', 'Labels', 'Volumes', 'StopSignal', 'Healthcheck', 'OnBuild', 'Shell'] as const;
type ConfigKey = (typeof CONFIG_KEYS)[number];

interface Built {
  config: Partial<Record<ConfigKey, unknown>>;
  author: string;
  tree: Map<string, string>;
}

interface Case {
  name: string;
  /** --build-arg values for both builders; by default BASE, the base image. */
  buildArgs?: (base: string) => Record<string, string>;
  /** The Dockerfile buildah builds instead of the case's own (a feature buildah 1.28 lacks). */
  referenceFile?: string;
  /** Makes what git cannot hold in the copied context (owners, setuid bits, hard links...). */
  prepare?: (context: string) => void;
  /** Config values where docker differs from buildah 1.28: buildah's, and docker's (tsrun's). */
  dockerDiffers?: Partial<Record<ConfigKey, { buildah: unknown; docker: unknown }>>;
  /** Paths where docker's tree differs from buildah 1.28's: buildah's line, and docker's. */
  treeDiffers?: Record<string, { buildah: string; docker: string }>;
  /** Paths on which docker's own two builders disagree: compared only where tsrun has them too. */
  eitherWay?: string[];
  /** Facts of buildah's result that pin the semantics down. */
  check: (ref: Built) => void;
}

// ---------------------------------------------------------------------------------------------
// Normalizing what each builder made into comparable values.

/** Absent, null, '' and empty arrays and objects all mean "not set". */
function normalizeConfig(c: DockerConfig | Record<string, unknown>): Built['config'] {
  const out: Built['config'] = {};
  for (const k of CONFIG_KEYS) {
    let v = (c as Record<string, unknown>)[k];
    if (k === 'Labels' && v && typeof v === 'object') {
      // buildah stamps every image with its version.
      const { 'io.buildah.version': _, ...rest } = v as Record<string, string>;
      v = rest;
    }
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v) ? v.length === 0 : typeof v === 'object' && Object.keys(v as object).length === 0) continue;
    out[k] = v;
  }
  return out;
}

/**
 * Paths a builder may leave as placeholders where the container it ran RUN in had a mount:
 * buildah leaves empty /etc/hosts, /etc/hostname, /etc/resolv.conf and an empty /run (where
 * /run/.containerenv was) in the layer of a RUN when the base has none; docker leaves none.
 * Excluded only while they are empty and root's, so real content still compares.
 */
const PLACEHOLDER_FILES = ['etc/hosts', 'etc/hostname', 'etc/resolv.conf', 'run/.containerenv'];
const PLACEHOLDER_DIRS = ['run'];

/**
 * A tree as lines (describeTree's, without mtimes), long contents as a digest, and each file
 * with more than one link listed with the paths that share its inode.
 */
function snapshot(dir: string): Map<string, string> {
  const raw = describeTree(dir);
  const byInode = new Map<number, string[]>();
  for (const p of raw.keys()) {
    if (p === '/') continue;
    const st = lstatSync(join(dir, p));
    if (st.isFile() && st.nlink > 1) byInode.set(st.ino, [...(byInode.get(st.ino) ?? []), p]);
  }
  const links = new Map<string, string>();
  for (const group of byInode.values()) for (const p of group) links.set(p, group.sort().join(','));
  const out = new Map<string, string>();
  for (const [p, line] of raw) {
    let l = line.replace(/ t-?\d+/, '');
    l = l.replace(/ (".*")$/s, (_, json: string) => {
      const content = JSON.parse(json) as string;
      return content.length > 200 ? ` sha256:${createHash('sha256').update(content, 'latin1').digest('hex').slice(0, 16)} (${content.length} bytes)` : ` ${json}`;
    });
    if (links.has(p)) l += ` links=${links.get(p)}`;
    out.set(p, l);
  }
  for (const p of PLACEHOLDER_FILES) if (/^file 0[0-7]{3} 0:0 \[\] ""$/.test(out.get(p) ?? '')) out.delete(p);
  for (const p of PLACEHOLDER_DIRS) {
    if (/^dir 0[0-7]{3} 0:0 \[\]$/.test(out.get(p) ?? '') && ![...out.keys()].some((q) => q.startsWith(`${p}/`))) out.delete(p);
  }
  return out;
}

function treeDifferences(got: Map<string, string>, want: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [p, w] of want) {
    const g = got.get(p);
    if (g === undefined) out.push(`missing /${p}: ${w}`);
    else if (g !== w) out.push(`/${p}: tsrun ${g}, reference ${w}`);
  }
  for (const [p, g] of got) if (!want.has(p)) out.push(`extra /${p}: ${g}`);
  return out;
}

// ---------------------------------------------------------------------------------------------
// The corpus.

const cases: Case[] = [
  {
    name: 'multistage',
    check: (ref) => {
      expect(ref.tree.get('app/upper.txt')).toBe('file 0640 0:0 [] "MADE IN THE BUILD STAGE\\n"');
      expect(ref.tree.get('app/link')).toBe('symlink 0:0 -> upper.txt');
      expect(ref.tree.get('app/by-index.txt')).toBe(ref.tree.get('app/upper.txt'));
      // From the image by name; the xattr comes along, the hard link does not (two sources).
      expect(ref.tree.get('from-image/motd')).toBe('file 0644 0:0 [user.tsrun.fixture=motd] "Hello from layer 2 of the tsrun busybox fixture\\n"');
      expect(ref.tree.get('from-image/bin/setuid-copy')).toMatch(/^file 4755 /);
      expect(ref.tree.has('src')).toBe(false);
      expect(ref.config.Cmd).toEqual(['cat', '/app/upper.txt']);
    },
  },
  {
    name: 'metadata',
    buildArgs: (base) => ({ BASE: base, OVERRIDDEN: 'from-cli', FROMCLI: 'cli-value' }),
    // A VOLUME's directory: buildah (like docker's classic builder, whose later RUNs mount the
    // volume) leaves it in the image; BuildKit does not.
    eitherWay: ['data', 'v1', 'v2'],
    dockerDiffers: {
      // docker runs a shell-form CMD/ENTRYPOINT with SHELL; buildah (imagebuilder) always with /bin/sh -c.
      Cmd: { buildah: ['/bin/sh', '-c', 'echo from cmd'], docker: ['/bin/sh', '-e', '-c', 'echo from cmd'] },
      // docker expands a port range (nat.ParsePortSpecs); buildah keeps it as one key.
      ExposedPorts: {
        buildah: { '80/tcp': {}, '443/tcp': {}, '53/udp': {}, '8080/tcp': {}, '7000-7001/tcp': {} },
        docker: { '80/tcp': {}, '443/tcp': {}, '53/udp': {}, '8080/tcp': {}, '7000/tcp': {}, '7001/tcp': {} },
      },
      // docker sets a variable the image has in its place; buildah moves it to the end.
      Env: {
        buildah: [...METADATA_ENV, 'PATH=/opt/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
        docker: ['PATH=/opt/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', ...METADATA_ENV],
      },
    },
    check: (ref) => {
      expect(ref.author).toBe('Jane Doe <jane@example.com>');
      expect(ref.tree.get('args.txt')).toBe(
        'file 0644 0:0 [] "local-default|cli-value|global-default|from-cli|1|two words|/opt/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\\n"',
      );
      expect(ref.config.WorkingDir).toBe('/work/sub/dir/1');
      expect(ref.tree.get('work/sub/dir/1/here.txt')).toBe('file 0644 0:0 [] "/work/sub/dir/1\\n"');
      expect(ref.config.Labels).toEqual({ a: 'b', 'quoted key': 'quoted value', multi: 'line1 line2', version: '1', escaped: 'a "quote"', empty: '' });
      expect(ref.config.Volumes).toEqual({ '/data': {}, '/v1': {}, '/v2': {} });
      expect(ref.config.Healthcheck).toEqual({ Test: ['CMD-SHELL', 'wget -q -O- http://localhost/ || exit 1'], Interval: 5e9, Timeout: 3e9, StartPeriod: 2e9, Retries: 4 });
      expect(ref.config.Shell).toEqual(['/bin/sh', '-e', '-c']);
      expect(ref.tree.get('shell-flags.txt')).toMatch(/flags=[a-z]*e/);
      expect(ref.tree.get('tmp/id.txt')).toBe('file 0644 65534:65534 [] "nobody 65534:65534\\n"');
      expect(ref.config).toMatchObject({ User: 'nobody', StopSignal: 'SIGUSR1', Entrypoint: ['/bin/echo', 'entry'] });
    },
  },
  {
    name: 'copy-add',
    prepare: (ctx) => {
      const s = join(ctx, 'special');
      mkdirSync(join(s, 'empty'), { recursive: true });
      chmodSync(join(s, 'empty'), 0o700);
      writeFileSync(join(s, 'setuid'), '#!/bin/sh\n');
      chmodSync(join(s, 'setuid'), 0o4755);
      writeFileSync(join(s, 'setgid'), 'g\n');
      chmodSync(join(s, 'setgid'), 0o2750);
      mkdirSync(join(s, 'sticky'));
      chmodSync(join(s, 'sticky'), 0o1777);
      writeFileSync(join(s, 'sticky', 'in-sticky'), 's\n');
      symlinkSync('setuid', join(s, 'relative-link'));
      symlinkSync('/etc/passwd', join(s, 'absolute-link'));
      symlinkSync('nowhere', join(s, 'dangling-link'));
      writeFileSync(join(s, 'hard1'), 'two names\n');
      linkSync(join(s, 'hard1'), join(s, 'hard2'));
      writeFileSync(join(s, 'xattr.txt'), 'x\n');
      setxattr(join(s, 'xattr.txt'), 'user.build-ref', Buffer.from('kept'));
      writeFileSync(join(ctx, 'owned.txt'), 'owned by 4321\n');
      chownSync(join(ctx, 'owned.txt'), 4321, 4321);
      const tar = makeTar([
        { name: 'top/', type: 'dir', mode: 0o750, uid: 1111, gid: 2222 },
        { name: 'top/a.txt', content: 'in a tar\n', mode: 0o600, uid: 1111, gid: 2222 },
        { name: 'top/link', type: 'symlink', linkname: 'a.txt' },
        { name: 'top/hard', type: 'hardlink', linkname: 'top/a.txt', mode: 0o600, uid: 1111, gid: 2222 },
        { name: 'root.txt', content: 'at the top\n', mode: 0o640 },
      ]);
      writeFileSync(join(ctx, 'archive.tar'), tar);
      writeFileSync(join(ctx, 'archive.tar.gz'), gzipSync(makeTar([{ name: 'gz/b.txt', content: 'in a tar.gz\n', mode: 0o644, uid: 7, gid: 8 }])));
    },
    treeDiffers: {
      // buildah's copier sets a file's mode, then its owner (root), and chown(2) clears the
      // setuid and setgid bits; docker chowns first, then sets the mode, and keeps them.
      'special/setuid': { buildah: 'file 0755 0:0 [] "#!/bin/sh\\n"', docker: 'file 4755 0:0 [] "#!/bin/sh\\n"' },
      'special/setgid': { buildah: 'file 0750 0:0 [] "g\\n"', docker: 'file 2750 0:0 [] "g\\n"' },
    },
    check: (ref) => {
      const t = ref.tree;
      expect([...t.keys()].filter((p) => /^wild(-class)?\//.test(p)).sort()).toEqual(['wild-class/a1.conf', 'wild-class/b2.conf', 'wild/one.txt', 'wild/two.txt']);
      expect(t.has('dir-contents/top.txt') && t.has('dir-contents/sub/inner.txt') && t.has('dir-no-slash/sub/inner.txt')).toBe(true);
      expect(t.get('renamed')).toBe('file 0644 0:0 [] "one\\n"');
      expect(t.has('into/one.txt')).toBe(true);
      expect(t.get('own/numeric')).toMatch(/^file 0644 1000:1000 /);
      expect(t.get('own/names')).toMatch(/^file 0644 65534:65534 /);
      expect(t.get('own/dir/sub/inner.txt')).toMatch(/^file 0644 1234:2345 /);
      expect(t.get('own/user-only')).toMatch(/^file 0644 1234:2345 /);
      expect(t.get('own/uid-only')).toMatch(/^file 0644 1234:1234 /);
      expect(t.get('mode/file')).toMatch(/^file 0751 0:0 /);
      expect(t.get('add/tar/top/a.txt')).toBe('file 0600 1111:2222 [] "in a tar\\n" links=add/tar/top/a.txt,add/tar/top/hard');
      expect(t.get('add/tgz/gz/b.txt')).toMatch(/^file 0644 7:8 /);
      expect(t.get('add/plain/one.txt')).toMatch(/^file 0644 0:0 /);
      expect(t.get('add/fake/not-a-tar.tar')).toMatch(/^file 0644 0:0 \[\] "not really a tar archive\\n"$/);
      expect(t.get('real/two.txt')).toMatch(/^file 0644 0:0 /);
      expect(t.get('link')).toBe('symlink 0:0 -> /real');
      expect(t.get('special/sticky')).toBe('dir 1777 0:0 []');
      expect(t.get('special/empty')).toBe('dir 0700 0:0 []');
      expect(t.get('special/dangling-link')).toBe('symlink 0:0 -> nowhere');
      expect(t.get('special/hard1')).toMatch(/links=special\/hard1,special\/hard2$/);
      expect(t.get('owned.txt')).toMatch(/^file 0644 0:0 /);
    },
  },
  {
    name: 'dockerignore',
    check: (ref) => {
      expect([...ref.tree.keys()].filter((p) => p.startsWith('ctx/')).sort()).toEqual([
        'ctx/docs', 'ctx/docs/README.md', 'ctx/docs/c.txt', 'ctx/docs/sub', 'ctx/keep.log', 'ctx/nested', 'ctx/nested/deep', 'ctx/nested/ok.txt',
        'ctx/src', 'ctx/src/main.c', 'ctx/sub', 'ctx/sub/x.log', 'ctx/tempAB',
      ]);
      expect([...ref.tree.keys()].filter((p) => /^(docs-only|logs)\//.test(p)).sort()).toEqual(['docs-only/README.md', 'docs-only/c.txt', 'docs-only/sub', 'logs/keep.log']);
    },
  },
  {
    name: 'heredoc',
    referenceFile: 'Dockerfile.reference',
    buildArgs: (base) => ({ BASE: base, WHO: 'there' }),
    check: (ref) => {
      expect(ref.tree.get('hd/run.txt')).toBe('file 0644 0:0 [] "line one\\nhello there\\n"');
      expect(ref.tree.get('hd/expanded.txt')).toBe('file 0644 0:0 [] "hello there\\n"');
      expect(ref.tree.get('hd/literal.txt')).toBe('file 0644 0:0 [] "$GREETING ${WHO}\\n"');
    },
  },
  {
    name: 'onbuild-parent',
    check: (ref) => {
      expect(ref.config.OnBuild).toEqual(['COPY trigger.txt /triggers/copied.txt', 'RUN echo ran > /triggers/ran.txt', 'ENV FROM_TRIGGER=yes']);
      expect(ref.tree.get('triggers')).toBe('dir 0755 0:0 []');
    },
  },
  {
    name: 'onbuild-child',
    buildArgs: () => ({ PARENT: 'ref-onbuild-parent:latest' }),
    check: (ref) => {
      expect(ref.tree.get('triggers/seen.txt')).toBe('file 0644 0:0 [] "ran\\ncopied by a trigger\\nyes\\n"');
      expect(ref.config.OnBuild).toBeUndefined();
      expect(ref.config.Env).toContain('FROM_TRIGGER=yes');
      expect(ref.config.Entrypoint).toEqual(['/bin/sh', '-c', 'exec cat /triggers/seen.txt']);
      // An ENTRYPOINT resets the CMD the parent image had.
      expect(ref.config.Cmd).toBeUndefined();
    },
  },
  {
    name: 'whiteouts',
    check: (ref) => {
      const t = ref.tree;
      for (const gone of ['gone', 'data/sub', 'usr/local/bin/hello', 'opt/opaque/new', 'etc/motd.hardlink']) expect(t.has(gone), gone).toBe(false);
      expect(t.get('home')).toBe('file 0644 0:0 [] "now a file\\n"');
      expect(t.get('data/file/inner')).toBe('file 0644 0:0 [] "in\\n"');
      expect(t.get('opt/opaque/again')).toBeDefined();
      expect(t.get('etc/motd')).toBe('file 0644 0:0 [] "replaced\\n"');
      expect(t.get('usr/local/bin/setuid-copy')).toMatch(/^file 0700 0:0 /);
      expect(t.get('etc/passwd')).toMatch(/^file 0644 1:2 /);
    },
  },
  {
    name: 'add-url',
    buildArgs: (base) => ({ BASE: base, URL: `http://127.0.0.1:${httpPort}/payload.txt` }),
    check: (ref) => {
      // docker: a downloaded file is 0600.
      expect(ref.tree.get('downloads/payload.txt')).toBe(`file 0600 0:0 [] ${JSON.stringify(PAYLOAD)}`);
      expect(ref.tree.get('downloads/renamed.txt')).toBe(`file 0600 0:0 [] ${JSON.stringify(PAYLOAD)}`);
    },
  },
];


describePrivileged('tsrun build matches buildah', () => {
  let env: TestEnv;
  let work: string;
  let registry: TestRegistry;
  let buildah: Buildah;
  let httpServer: ReturnType<typeof spawn> | undefined;
  let base: string;
  /** buildah's result per case: built one after the other in the background from beforeAll on. */
  const references = new Map<string, Promise<Built>>();
  let referencesDone: Promise<unknown> = Promise.resolve();

  /** tsrun, without blocking this process (builds may take a while). */
  const tsrun = (args: string[], timeout = 120_000): Promise<Result> =>
    new Promise((resolve, reject) => {
      const child = env.spawn(args, { env: NO_CREDENTIALS });
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (d: Buffer) => (stdout += d));
      child.stderr!.on('data', (d: Buffer) => (stderr += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
      child.on('error', reject);
      child.on('close', (status) => {
        clearTimeout(timer);
        resolve({ status, stdout, stderr });
      });
    });
  const ok = async (args: string[]): Promise<string> => {
    const r = await tsrun(args);
    if (r.status !== 0) throw new Error(`tsrun ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
    return r.stdout;
  };

  function contextFor(c: Case): string {
    const ctx = join(work, 'contexts', c.name);
    cpSync(join(FIXTURES, c.name), ctx, { recursive: true });
    c.prepare?.(ctx);
    return ctx;
  }

  function buildArgs(c: Case): Record<string, string> {
    return c.buildArgs?.(base) ?? { BASE: base };
  }

  async function buildWithBuildah(c: Case, ctx: string): Promise<Built> {
    const r = await buildah.bud(ctx, { tag: `ref-${c.name}`, buildArgs: buildArgs(c), ...(c.referenceFile && { file: join(ctx, c.referenceFile) }) });
    if (r.status !== 0) throw new Error(`buildah bud ${c.name} exited ${r.status}:\n${r.stderr}`);
    const { config, author } = await buildah.inspect(`ref-${c.name}`);
    const tree = await buildah.withRootfs(`ref-${c.name}`, snapshot);
    return { config: normalizeConfig(config), author, tree };
  }

  async function buildWithTsrun(c: Case, ctx: string): Promise<Built> {
    const args = ['build', '-q', '-t', `ref-${c.name}`];
    for (const [k, v] of Object.entries(buildArgs(c))) args.push('--build-arg', `${k}=${v}`);
    const r = await tsrun([...args, ctx]);
    expect(r.stderr, `tsrun build ${c.name}`).toBe('');
    expect(r.status).toBe(0);
    const [info] = JSON.parse(await ok(['image', 'inspect', `ref-${c.name}`]));
    expect(r.stdout.trim()).toBe(info.Id);
    const container = `ref-${c.name}-export`;
    const tarFile = join(work, `${c.name}.tar`);
    const rootfs = join(work, `${c.name}-rootfs`);
    await ok(['create', '--name', container, '--network', 'none', `ref-${c.name}`]);
    try {
      await ok(['export', '-o', tarFile, container]);
    } finally {
      await ok(['rm', container]);
    }
    mkdirSync(rootfs);
    try {
      // As root, GNU tar keeps owners, modes (setuid too), hard links and xattrs.
      execFileSync('tar', ['-x', '--xattrs', '--xattrs-include=*', '--same-owner', '--numeric-owner', '-p', '-f', tarFile, '-C', rootfs]);
      return { config: normalizeConfig(info.Config ?? {}), author: info.Author ?? '', tree: snapshot(rootfs) };
    } finally {
      rmSync(rootfs, { recursive: true, force: true });
      rmSync(tarFile, { force: true });
    }
  }

  function compare(c: Case, got: Built, ref: Built): void {
    const want = { ...ref.config };
    for (const [k, d] of Object.entries(c.dockerDiffers ?? {}) as Array<[ConfigKey, { buildah: unknown; docker: unknown }]>) {
      // If buildah starts to agree with docker, the exception is stale.
      expect(want[k], `buildah's ${k}`).toEqual(d.buildah);
      if (d.docker === undefined) delete want[k];
      else want[k] = d.docker;
    }
    expect(got.config).toEqual(want);
    expect(got.author).toBe(ref.author);
    const wantTree = new Map(ref.tree);
    for (const [p, d] of Object.entries(c.treeDiffers ?? {})) {
      expect(wantTree.get(p), `buildah's /${p}`).toBe(d.buildah);
      wantTree.set(p, d.docker);
    }
    for (const p of c.eitherWay ?? []) {
      expect(wantTree.has(p), `buildah's /${p}`).toBe(true);
      if (!got.tree.has(p)) wantTree.delete(p);
    }
    expect(treeDifferences(got.tree, wantTree)).toEqual([]);
  }

  beforeAll(async () => {
    const missing = ['buildah', 'podman', 'runc', 'skopeo'].filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
    if (missing.length > 0) throw new Error(`the reference builders are missing: apt-get install ${missing.join(' ')}`);
    env = new TestEnv('bref');
    work = mkdtempSync(join(tmpdir(), 'tsrun-build-ref-'));
    registry = await startRegistry({ mode: 'http' });
    const layout = join(work, 'busybox-oci');
    execFileSync(process.execPath, [join(repoRoot, 'scripts', 'make-busybox-image.mjs'), '--out', layout, '--format', 'oci', '--layers', '2']);
    await pushLayout(registry, layout, 'busybox:latest');
    base = `${registry.host}/busybox:latest`;
    buildah = new Buildah(work);
    // The base under a fixed local name, for COPY --from=<image> (buildah expands no variables there).
    await buildah.pull(base);
    await buildah.tag(base, LOCAL_BASE);
    await ok(['pull', '-q', base]);
    await ok(['tag', base, LOCAL_BASE]);
    // ADD <url>: a file server of its own (a child process: builds here run while this waits).
    const served = join(work, 'served');
    mkdirSync(served);
    writeFileSync(join(served, 'payload.txt'), PAYLOAD);
    httpPort = await freePort();
    httpServer = spawn('python3', ['-m', 'http.server', '--bind', '127.0.0.1', '--directory', served, String(httpPort)], { stdio: 'ignore' });
    const serving = async () => fetch(`http://127.0.0.1:${httpPort}/payload.txt`).then((r) => r.ok, () => false);
    for (let deadline = Date.now() + 10_000; !(await serving()); await new Promise((r) => setTimeout(r, 50))) {
      if (Date.now() > deadline) throw new Error(`python3 -m http.server did not serve on 127.0.0.1:${httpPort}`);
    }
    // buildah takes about half a second per step: its builds run meanwhile tsrun's, in order
    // (onbuild-child needs onbuild-parent), each reported by its case's test.
    for (const c of cases) {
      const ctx = contextFor(c);
      const ref = referencesDone.then(() => buildWithBuildah(c, ctx));
      ref.catch(() => {});
      references.set(c.name, ref);
      referencesDone = ref.catch(() => {});
    }
  }, 120_000);

  afterAll(async () => {
    const problems: string[] = [];
    await referencesDone;
    if (httpServer) {
      httpServer.kill();
      await new Promise((r) => (httpServer!.exitCode !== null || httpServer!.signalCode !== null ? r(null) : httpServer!.once('exit', r)));
    }
    if (env) {
      const ids = (await tsrun(['ps', '-aq'])).stdout.split('\n').filter(Boolean);
      if (ids.length) await tsrun(['rm', '-f', ...ids]);
    }
    if (buildah) problems.push(...(await buildah.cleanup()));
    await registry?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
    await env?.cleanup();
    expect(problems).toEqual([]);
  }, 120_000);

  for (const c of cases) {
    it(`${c.name}: the same image as buildah's`, async () => {
      const got = buildWithTsrun(c, join(work, 'contexts', c.name));
      got.catch(() => {}); // awaited below, after buildah's result is checked
      const ref = await references.get(c.name)!;
      c.check(ref);
      compare(c, await got, ref);
    }, 120_000);
  }

  it('failing-run: both fail; tsrun names the step, the line and the exit code, and leaves nothing', async () => {
    const c: Case = { name: 'failing-run', check: () => {} };
    const ctx = contextFor(c);
    const ref = await buildah.bud(ctx, { tag: 'ref-failing-run', buildArgs: buildArgs(c) });
    expect(ref.status).not.toBe(0);
    expect(ref.stderr).toMatch(/exit status 3/);
    expect(await buildah.images()).not.toContain('localhost/ref-failing-run:latest');

    const line = readFileSync(join(ctx, 'Dockerfile'), 'utf8').split('\n').indexOf('RUN exit 3') + 1;
    const imagesBefore = (await ok(['images', '-q', '--no-trunc'])).split('\n').filter(Boolean).sort();
    const r = await tsrun(['build', '-t', 'ref-failing-run', '--build-arg', `BASE=${base}`, ctx]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/RUN exit 3/);
    expect(r.stderr).toContain(`Dockerfile:${line}`);
    expect(r.stderr).toMatch(/exit(ed)?( with)?( code| status)?:? 3\b/i);
    expect((await ok(['images', '-q', '--no-trunc'])).split('\n').filter(Boolean).sort()).toEqual(imagesBefore);
    expect((await tsrun(['image', 'inspect', 'ref-failing-run'])).status).not.toBe(0);
    expect((await ok(['ps', '-aq'])).trim()).toBe('');
    expect(env.leaks()).toEqual([]);
    expect(mountsUnder(env.root)).toEqual([]);
  }, 120_000);

  it('images tsrun built, pushed to a registry, run in podman: their layers (whiteouts too) and config', async () => {
    // The images the cases above built: whiteouts' layers delete and replace what the base has;
    // metadata's config sets USER, WORKDIR, ENV, ENTRYPOINT and CMD.
    const pushed: Record<string, string> = {};
    for (const name of ['whiteouts', 'metadata']) {
      if ((await tsrun(['image', 'inspect', `ref-${name}`])).status !== 0) throw new Error(`tsrun did not build ref-${name} (see the ${name} case)`);
      pushed[name] = `${registry.host}/built/${name}:v1`;
      await ok(['tag', `ref-${name}`, pushed[name]]);
      await ok(['push', '-q', pushed[name]]);
      // Build keeps its layers as plain tars; push sends them gzip-compressed, as docker does.
      const sent = JSON.parse((await inspectRaw(registry, `built/${name}:v1`)).toString('utf8')) as { layers: Array<{ mediaType: string }> };
      for (const l of sent.layers) expect(l.mediaType).toMatch(/gzip$/);
    }
    const podman = new Podman(work, `tsrun-test-bref-podman-${process.pid}`);
    try {
      const script = [
        'cat /home /etc/motd /opt/opaque/* /data/file/*',
        'ls -A /opt/opaque | wc -l',
        'ls -d /gone /data/sub /usr/local/bin/hello /etc/motd.hardlink 2>/dev/null | wc -l',
        'stat -c "%a %u:%g" /usr/local/bin/setuid-copy /etc/passwd',
      ].join('; ');
      const files = await podman.runImage(pushed.whiteouts!, ['sh', '-c', script]);
      expect(files).toMatchObject({ status: 0, stdout: 'now a file\nreplaced\nagain\nin\n1\n0\n700 0:0\n644 1:2\n' });
      const byConfig = await podman.runImage(pushed.metadata!, []);
      expect(byConfig).toMatchObject({ status: 0, stdout: 'entry /bin/sh -e -c echo from cmd\n' });
      const inside = await podman.runImage(pushed.metadata!, ['-c', 'echo "$(id -u) $(pwd) $Y $B"'], ['--entrypoint', '/bin/sh']);
      expect(inside).toMatchObject({ status: 0, stdout: '65534 /work/sub/dir/1 old two words\n' });
    } finally {
      const problems = await podman.cleanup();
      expect(problems).toEqual([]);
      expect(processesMentioning(podman.dir)).toEqual([]);
    }
  }, 120_000);
});
