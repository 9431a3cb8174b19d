import * as fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openContext, readDockerfile, resolveSources, sourcesDigest, walkSource, type BuildContext, type SourceEntry } from '../../src/build/context.js';
import { IgnoreRules, globSegment, hasWildcards, parseDockerignore } from '../../src/build/context-ignore.js';
import { makeTar, type TarEntry } from '../fixtures/tar.js';

const isRoot = process.getuid?.() === 0;
let top: string; // holds ctx/, temp/ (tempRoot), outside/ and a victim file: only ctx/ and temp/ may change
let ctxDir: string;
let tempRoot: string;
let opened: BuildContext[] = [];

beforeEach(() => {
  top = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-bctx-'));
  ctxDir = path.join(top, 'ctx');
  tempRoot = path.join(top, 'temp');
  fs.mkdirSync(ctxDir);
  fs.mkdirSync(path.join(top, 'outside'));
  fs.writeFileSync(path.join(top, 'victim'), 'original');
  opened = [];
});

afterEach(async () => {
  for (const c of opened) await c.close();
  fs.rmSync(top, { recursive: true, force: true });
});

/** Creates files under ctx/: `name/` a directory, `name -> target` a symlink, else a file. */
function tree(spec: Record<string, string>): void {
  for (const [name, content] of Object.entries(spec)) {
    const p = path.join(ctxDir, name.replace(/\/$/, ''));
    fs.mkdirSync(path.dirname(p), { recursive: true });
    if (name.endsWith('/')) fs.mkdirSync(p, { recursive: true });
    else if (content.startsWith('-> ')) fs.symlinkSync(content.slice(3), p);
    else fs.writeFileSync(p, content);
  }
}

async function open(opts: { path?: string; stdin?: Buffer; maxEntries?: number } = {}): Promise<BuildContext> {
  const c = await openContext({
    path: opts.path ?? ctxDir,
    tempRoot,
    ...(opts.stdin ? { stdin: Readable.from([opts.stdin]) } : {}),
    ...(opts.maxEntries ? { maxEntries: opts.maxEntries } : {}),
  });
  opened.push(c);
  return c;
}

const rels = (ms: SourceEntry[]): string[] => ms.map((m) => m.rel);
const walked = (c: BuildContext, e: SourceEntry): string[] =>
  [...walkSource(c, e)].map((w) => w.rel + (w.stat.isDirectory() ? '/' : w.stat.isSymbolicLink() ? '@' : ''));
const only = (c: BuildContext, source: string): SourceEntry => resolveSources(c, [source])[0]!.matches[0]!;

/** What is in `top` outside ctx/ and temp/: an escape would change it. */
function outside(): string[] {
  const out: string[] = [];
  const visit = (dir: string, rel: string): void => {
    for (const name of fs.readdirSync(dir)) {
      const r = rel ? `${rel}/${name}` : name;
      if (r === 'ctx' || r === 'temp') continue;
      const p = path.join(dir, name);
      const st = fs.lstatSync(p);
      if (st.isDirectory()) visit(p, r);
      else out.push(`${r}:${st.isFile() ? fs.readFileSync(p, 'utf8') : 'other'}`);
    }
  };
  visit(top, '');
  return out.sort();
}

describe('.dockerignore rules (docker documentation examples)', () => {
  const rules = (text: string) => new IgnoreRules(text);

  it('*/temp* excludes temp-names one level down only', () => {
    const r = rules('*/temp*');
    expect(r.ignored('somedir/temporary.txt')).toBe(true);
    expect(r.ignored('somedir/temp')).toBe(true);
    expect(r.ignored('somedir/temp/below')).toBe(true);
    expect(r.ignored('temp')).toBe(false);
    expect(r.ignored('a/b/temp')).toBe(false);
  });

  it('*/*/temp* excludes two levels down', () => {
    const r = rules('*/*/temp*');
    expect(r.ignored('somedir/subdir/temporary.txt')).toBe(true);
    expect(r.ignored('somedir/temporary.txt')).toBe(false);
  });

  it('temp? matches one character', () => {
    const r = rules('temp?');
    expect(r.ignored('tempa')).toBe(true);
    expect(r.ignored('temp')).toBe(false);
    expect(r.ignored('tempab')).toBe(false);
    expect(r.ignored('x/tempa')).toBe(false);
  });

  it('**/*.go matches at any depth, the root included', () => {
    const r = rules('**/*.go');
    expect(r.ignored('main.go')).toBe(true);
    expect(r.ignored('a/b/c.go')).toBe(true);
    expect(r.ignored('a/go')).toBe(false);
  });

  it('! exceptions: the last matching line wins', () => {
    const a = rules('*.md\n!README.md');
    expect(a.ignored('CHANGES.md')).toBe(true);
    expect(a.ignored('README.md')).toBe(false);
    const b = rules('*.md\n!README*.md\nREADME-secret.md');
    expect(b.ignored('README-secret.md')).toBe(true);
    expect(b.ignored('README-public.md')).toBe(false);
    const c = rules('*.md\nREADME-secret.md\n!README*.md');
    expect(c.ignored('README-secret.md')).toBe(false);
  });

  it('a directory excluded, a file inside it re-included', () => {
    const r = rules('docs\n!docs/keep.md');
    expect(r.ignored('docs')).toBe(true);
    expect(r.ignored('docs/other.md')).toBe(true);
    expect(r.ignored('docs/keep.md')).toBe(false);
    expect(r.reincludesBelow('docs')).toBe(true);
    expect(r.reincludesBelow('docs/sub')).toBe(false);
    expect(r.reincludesBelow('src')).toBe(false);
    expect(rules('docs\n!*/keep.md').reincludesBelow('docs')).toBe(true);
    expect(rules('docs\n!**/keep.md').reincludesBelow('docs/a/b')).toBe(true);
    expect(rules('docs').reincludesBelow('docs')).toBe(false);
  });

  it('reads the file as moby does: comments, BOM, cleaning, case-sensitive', () => {
    expect(parseDockerignore('\uFEFF# comment\n  /a/b/  \n ./c\n\n!  /d\n #x')).toEqual(['a/b', 'c', '!d', '#x']);
    const r = rules('/A.MD\n./sub/../x');
    expect(r.ignored('A.MD')).toBe(true);
    expect(r.ignored('a.md')).toBe(false);
    expect(r.ignored('x')).toBe(true);
    expect(r.ignored('')).toBe(false);
    expect(() => rules('a(')).toThrow(expect.objectContaining({ code: 'EBUILD' }));
    expect(() => rules('a\n!')).toThrow('illegal exclusion pattern');
    expect(rules(' #x').ignored('#x')).toBe(true); // not a comment: `#` is not in the first column
  });
});

describe('Go filepath.Match segments', () => {
  it('matches *, ?, classes, escapes', () => {
    expect(globSegment('*.txt').test('.hidden.txt')).toBe(true);
    expect(globSegment('?.c').test('ab.c')).toBe(false);
    expect(globSegment('[ab].c').test('b.c')).toBe(true);
    expect(globSegment('[ab].c').test('c.c')).toBe(false);
    expect(globSegment('[^ab].c').test('c.c')).toBe(true);
    expect(globSegment('[a-c]x').test('bx')).toBe(true);
    expect(globSegment('\\*').test('*')).toBe(true);
    expect(globSegment('\\*').test('a')).toBe(false);
    expect(globSegment('a.(b)+').test('a.(b)+')).toBe(true);
    for (const bad of ['[a', '[]', 'x\\', '[z-a]']) expect(() => globSegment(bad)).toThrow(/syntax error in pattern/);
    expect(hasWildcards('a\\*b')).toBe(false);
    expect(hasWildcards('a[b]')).toBe(true);
  });
});

describe('resolveSources', () => {
  beforeEach(() => {
    tree({ 'a.txt': 'a', 'b.txt': 'b', 'c.md': 'c', 'a.c': '', 'b.c': '', 'c.c': '', 'dir/x': 'x', 'dir/y/': '', 'secret.txt': 's', 'dir2/z.txt': 'z' });
    fs.writeFileSync(path.join(ctxDir, '.dockerignore'), 'secret.txt\n');
  });

  it('expands wildcards per segment, sorted', async () => {
    const c = await open();
    const [txt, inDir, cls, deep] = resolveSources(c, ['*.txt', 'dir/*', '[ab].c', '*/z.txt']);
    expect(rels(txt!.matches)).toEqual(['a.txt', 'b.txt']); // secret.txt is ignored
    expect(rels(inDir!.matches)).toEqual(['dir/x', 'dir/y']);
    expect(rels(cls!.matches)).toEqual(['a.c', 'b.c']);
    expect(rels(deep!.matches)).toEqual(['dir2/z.txt']);
    expect(txt!.matches[0]!.path).toBe(path.join(fs.realpathSync(ctxDir), 'a.txt'));
  });

  it('a wildcard that matches nothing, a missing path and an ignored file are errors', async () => {
    const c = await open();
    expect(() => resolveSources(c, ['*.nothing'])).toThrow(/COPY failed: no source files were specified: "\*\.nothing"/);
    expect(() => resolveSources(c, ['missing'], 'ADD')).toThrow('ADD failed: "/missing": not found');
    expect(() => resolveSources(c, ['secret.txt'])).toThrow('"/secret.txt": not found');
    expect(() => resolveSources(c, ['secret.*'])).toThrow(/no source files were specified/);
  });

  it('.. and / cannot leave the context', async () => {
    const c = await open();
    expect(rels(resolveSources(c, ['../a.txt'])[0]!.matches)).toEqual(['a.txt']);
    expect(rels(resolveSources(c, ['/../../dir/x'])[0]!.matches)).toEqual(['dir/x']);
    const rootEntry = only(c, '..');
    expect(rootEntry.rel).toBe('');
    expect(rootEntry.path).toBe(fs.realpathSync(ctxDir));
  });

  it('walks a directory depth-first in name order, skipping what is ignored', async () => {
    tree({ 'w/b/2': '', 'w/b/1': '', 'w/a': '', 'w/c': '-> /etc/passwd', 'w/skip/f': '' });
    fs.appendFileSync(path.join(ctxDir, '.dockerignore'), 'w/skip\n');
    const c = await open();
    expect(walked(c, only(c, 'w'))).toEqual(['/', 'a', 'b/', 'b/1', 'b/2', 'c@']);
  });

  it('an excluded directory is walked for re-included entries, and shown only if it has one', async () => {
    tree({ 'docs/keep.md': 'k', 'docs/other.md': 'o', 'docs/sub/keep.md': 'k2', 'empty/x': '', 'src/a': '' });
    fs.writeFileSync(path.join(ctxDir, '.dockerignore'), 'docs\n!docs/keep.md\n!docs/sub/keep.md\nempty\n!empty/keep.md\n');
    const c = await open();
    const rootWalk = walked(c, only(c, '.'));
    expect(rootWalk).toContain('docs/');
    expect(rootWalk).toContain('docs/keep.md');
    expect(rootWalk).toContain('docs/sub/');
    expect(rootWalk).toContain('docs/sub/keep.md');
    expect(rootWalk).not.toContain('docs/other.md');
    expect(rootWalk.filter((r) => r.startsWith('empty'))).toEqual([]);
    expect(rootWalk).toContain('docs/'); // present at all: -1 would pass the order check below
    expect(rootWalk.indexOf('docs/')).toBeLessThan(rootWalk.indexOf('docs/keep.md'));
    // Named as a source: found because it holds a re-included file.
    expect(walked(c, only(c, 'docs'))).toEqual(['/', 'keep.md', 'sub/', 'sub/keep.md']);
    expect(() => resolveSources(c, ['empty'])).toThrow('not found');
  });
});

describe('symlinks in the context', () => {
  it('a source symlink pointing outside is resolved inside the context root', async () => {
    tree({ x: '-> /etc/passwd', up: '-> ../../../../..', rel: '-> ../outside' });
    fs.writeFileSync(path.join(top, 'outside', 'f'), 'host file');
    const c = await open();
    expect(() => resolveSources(c, ['x'])).toThrow('"/x": not found');
    expect(() => resolveSources(c, ['rel/f'])).toThrow('not found');
    // `up` climbs to the context root and no further.
    const u = only(c, 'up');
    expect(u.path).toBe(fs.realpathSync(ctxDir));
    expect(u.realRel).toBe('');
    // With an etc/passwd inside the context, that is what x names.
    tree({ 'etc/passwd': 'context passwd' });
    const e = only(c, 'x');
    expect(e.rel).toBe('x');
    expect(e.realRel).toBe('etc/passwd');
    expect(e.stat.isFile()).toBe(true);
    expect(fs.readFileSync(e.path, 'utf8')).toBe('context passwd');
  });

  it('a wildcard match that is a symlink is followed, scoped; below a directory symlinks stay symlinks', async () => {
    tree({ 'real/f.txt': 'f', link: '-> real', 'l.txt': '-> /real/f.txt', 'real/out': '-> /etc/passwd' });
    const c = await open();
    const m = resolveSources(c, ['l*'])[0]!.matches;
    expect(m.map((e) => [e.rel, e.realRel])).toEqual([
      ['l.txt', 'real/f.txt'],
      ['link', 'real'],
    ]);
    const ws = [...walkSource(c, m[1]!)];
    expect(ws.map((w) => w.rel)).toEqual(['', 'f.txt', 'out']);
    expect(ws[2]!.stat.isSymbolicLink()).toBe(true);
    expect(ws.every((w) => w.path.startsWith(fs.realpathSync(ctxDir) + '/'))).toBe(true);
    expect(rels(resolveSources(c, ['link/*.txt'])[0]!.matches)).toEqual(['link/f.txt']);
  });

  it('a file name that is not UTF-8 is an error, not silently left out', async () => {
    tree({ 'n/ok': '' });
    fs.writeFileSync(Buffer.concat([Buffer.from(path.join(ctxDir, 'n') + '/'), Buffer.from([0xff, 0x41])]), 'x');
    const c = await open();
    expect(() => [...walkSource(c, only(c, 'n'))]).toThrow(/not valid UTF-8/);
  });

  it('a symlink to an ignored file is not found', async () => {
    tree({ 'hidden.key': 'k', k: '-> hidden.key' });
    fs.writeFileSync(path.join(ctxDir, '.dockerignore'), '*.key\n');
    const c = await open();
    expect(() => resolveSources(c, ['k'])).toThrow('not found');
  });
});

describe('sourcesDigest', () => {
  const digestOf = async (c: BuildContext, ...sources: string[]) => sourcesDigest(c, resolveSources(c, sources).flatMap((s) => s.matches));

  it('changes with content, mode, names and owner, not with times', async () => {
    tree({ 'd/a': 'one', 'd/b/c': 'two', 'd/l': '-> a' });
    const c = await open();
    const d0 = await digestOf(c, 'd');
    expect(d0).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await digestOf(c, 'd')).toBe(d0);
    fs.utimesSync(path.join(ctxDir, 'd/a'), 1000, 1000);
    fs.utimesSync(path.join(ctxDir, 'd'), 1000, 1000);
    expect(await digestOf(c, 'd')).toBe(d0);
    fs.writeFileSync(path.join(ctxDir, 'd/a'), 'One');
    const d1 = await digestOf(c, 'd');
    expect(d1).not.toBe(d0);
    fs.chmodSync(path.join(ctxDir, 'd/b/c'), 0o755);
    const d2 = await digestOf(c, 'd');
    expect(d2).not.toBe(d1);
    fs.unlinkSync(path.join(ctxDir, 'd/l'));
    fs.symlinkSync('b', path.join(ctxDir, 'd/l'));
    const d3 = await digestOf(c, 'd');
    expect(d3).not.toBe(d2);
    fs.renameSync(path.join(ctxDir, 'd/b/c'), path.join(ctxDir, 'd/b/e'));
    const d4 = await digestOf(c, 'd');
    expect(d4).not.toBe(d3);
    if (isRoot) {
      fs.lchownSync(path.join(ctxDir, 'd/a'), 1234, 1234);
      expect(await digestOf(c, 'd')).not.toBe(d4);
    }
  });

  it('depends on which sources, in order', async () => {
    tree({ a: 'x', b: 'x' });
    const c = await open();
    expect(await digestOf(c, 'a')).not.toBe(await digestOf(c, 'b'));
    expect(await digestOf(c, 'a', 'b')).not.toBe(await digestOf(c, 'b', 'a'));
  });

  it('hashes a tree of 2,000 files: the same tree gives the same digest, one changed byte another', async () => {
    const chunk = Buffer.alloc(10 * 1024, 7);
    for (let d = 0; d < 20; d++) {
      fs.mkdirSync(path.join(ctxDir, `big/${d}`), { recursive: true });
      for (let f = 0; f < 100; f++) fs.writeFileSync(path.join(ctxDir, `big/${d}/${f}`), Buffer.concat([chunk, Buffer.from(`${d}/${f}`)]));
    }
    const before = await digestOf(await open(), 'big');
    expect(await digestOf(await open(), 'big')).toBe(before);
    fs.writeFileSync(path.join(ctxDir, 'big/19/99'), Buffer.concat([chunk, Buffer.from('19/9x')]));
    expect(await digestOf(await open(), 'big')).not.toBe(before);
  });

  it("takes a file's hash from FileHashes while its lstat is the same, and hashes it again once written", async () => {
    tree({ 'h/a': 'one', 'h/b': 'two' });
    const c = await open();
    const real = await digestOf(c, 'h');
    const seen = new Map<string, string>();
    const known = { get: (k: string) => seen.get(k), set: (k: string, v: string) => void seen.set(k, v) };
    const digest = (k?: typeof known) => sourcesDigest(c, resolveSources(c, ['h']).flatMap((s) => s.matches), k);
    expect(await digest(known)).toBe(real);
    expect(seen.size).toBe(2);
    // What is remembered is used: a wrong hash under the same lstat changes the digest.
    for (const k of seen.keys()) seen.set(k, '0'.repeat(64));
    expect(await digest(known)).not.toBe(real);
    // A write changes the file's ctime, so its remembered hash no longer applies.
    fs.writeFileSync(path.join(ctxDir, 'h/a'), 'ONE');
    fs.writeFileSync(path.join(ctxDir, 'h/b'), 'two');
    expect(await digest(known)).toBe(await digest());
  });
});

describe('a context from stdin', () => {
  const tarOf = (entries: TarEntry[]) => makeTar(entries);

  it('unpacks a plain or gzip tar into a private temp dir that close() removes', async () => {
    const entries: TarEntry[] = [
      { name: './', type: 'dir', mode: 0o755 },
      { name: 'Dockerfile', content: 'FROM scratch\nCOPY . /\n' },
      { name: 'src/', type: 'dir', mode: 0o750 },
      { name: 'src/main.c', content: 'int main;', mode: 0o640, uid: 1000, gid: 1000 },
      { name: 'src/link', type: 'symlink', linkname: 'main.c' },
      { name: 'src/hard', type: 'hardlink', linkname: 'src/main.c' },
      { name: 'dev', type: 'char', devmajor: 1, devminor: 3 },
      { name: '.wh.x', content: 'just a name' },
    ];
    for (const bytes of [tarOf(entries), zlib.gzipSync(tarOf(entries))]) {
      const c = await open({ path: '-', stdin: bytes });
      expect(c.dir.startsWith(fs.realpathSync(tempRoot))).toBe(true);
      expect(fs.statSync(c.dir).mode & 0o777).toBe(0o755);
      expect(c.dockerfileFromStdin).toBeUndefined();
      expect(fs.readFileSync(path.join(c.dir, 'src/main.c'), 'utf8')).toBe('int main;');
      expect(fs.statSync(path.join(c.dir, 'src/main.c')).mode & 0o777).toBe(0o640);
      expect(fs.statSync(path.join(c.dir, 'src')).mode & 0o777).toBe(0o750);
      if (isRoot) expect(fs.statSync(path.join(c.dir, 'src/main.c')).uid).toBe(1000);
      expect(fs.readlinkSync(path.join(c.dir, 'src/link'))).toBe('main.c');
      expect(fs.statSync(path.join(c.dir, 'src/hard')).ino).toBe(fs.statSync(path.join(c.dir, 'src/main.c')).ino);
      expect(fs.existsSync(path.join(c.dir, 'dev'))).toBe(false); // devices are skipped
      expect(fs.lstatSync(path.join(c.dir, '.wh.x')).isFile()).toBe(true); // no whiteouts in a context
      expect((await readDockerfile(c, undefined)).text).toBe('FROM scratch\nCOPY . /\n');
      expect(await readDockerfile(c, 'src/main.c')).toEqual({ text: 'int main;', name: 'src/main.c' }); // -f inside the archive
      await c.close();
      await c.close();
      expect(fs.existsSync(c.dir)).toBe(false);
    }
  });

  it('refuses a hostile tar without writing outside the temp dir, and leaves nothing behind', async () => {
    const hostile: Array<[string, TarEntry[]]> = [
      ['dotdot', [{ name: '../../victim', content: 'pwned' }]],
      ['dotdot-inner', [{ name: 'a/../../../victim', content: 'pwned' }]],
      ['hardlink-out', [{ name: 'h', type: 'hardlink', linkname: '../../victim' }]],
      ['root-symlink', [{ name: './', type: 'symlink', linkname: '/' }]],
      [
        'hardlink-through-symlink',
        [
          { name: 'l', type: 'symlink', linkname: '/' },
          { name: 'h', type: 'hardlink', linkname: `l${top}/victim` },
        ],
      ],
    ];
    for (const [what, entries] of hostile) {
      await expect(open({ path: '-', stdin: makeTar(entries) }), what).rejects.toMatchObject({ code: 'EUNSAFE' });
      expect(fs.readdirSync(tempRoot), what).toEqual([]);
    }
    expect(outside()).toEqual(['victim:original']);
  });

  it('keeps absolute names and writes through symlinks inside the temp dir', async () => {
    const victim = path.join(top, 'victim');
    const c = await open({
      path: '-',
      stdin: makeTar([
        { name: '/abs/x', content: 'abs' },
        { name: 'l', type: 'symlink', linkname: '/' },
        { name: `l${victim}`, content: 'through l' },
        { name: 'up', type: 'symlink', linkname: '../../../../../../..' },
        { name: 'up/escape', content: 'through up' },
        { name: 'ov', type: 'symlink', linkname: victim },
        { name: 'ov', content: 'replaces the symlink' },
      ]),
    });
    expect(fs.readFileSync(path.join(c.dir, 'abs/x'), 'utf8')).toBe('abs');
    expect(fs.readFileSync(path.join(c.dir, victim), 'utf8')).toBe('through l');
    expect(fs.readFileSync(path.join(c.dir, 'escape'), 'utf8')).toBe('through up');
    expect(fs.lstatSync(path.join(c.dir, 'ov')).isFile()).toBe(true);
    expect(outside()).toEqual(['victim:original']);
  });

  it('caps the number of entries', async () => {
    const entries = Array.from({ length: 5 }, (_, i) => ({ name: `f${i}`, content: '' }));
    await expect(open({ path: '-', stdin: makeTar(entries), maxEntries: 3 })).rejects.toThrow(/more than 3 entries/);
    expect(fs.readdirSync(tempRoot)).toEqual([]);
  });

  it('takes a plain Dockerfile on stdin as the Dockerfile, with an empty context', async () => {
    const c = await open({ path: '-', stdin: Buffer.from('FROM busybox\nRUN true\n') });
    expect(c.dockerfileFromStdin).toBe('FROM busybox\nRUN true\n');
    expect(await readDockerfile(c, undefined)).toEqual({ text: 'FROM busybox\nRUN true\n', name: 'Dockerfile' });
    expect(fs.readdirSync(c.dir)).toEqual([]);
    expect(() => resolveSources(c, ['x'])).toThrow('not found');
    await expect(readDockerfile(c, '-')).rejects.toThrow("can't use stdin for both build context and dockerfile");
  });

  it('an empty archive is an empty context; empty stdin and bzip2 are errors', async () => {
    const c = await open({ path: '-', stdin: Buffer.alloc(10240) });
    expect(fs.readdirSync(c.dir)).toEqual([]);
    expect(c.dockerfileFromStdin).toBeUndefined();
    await expect(openContext({ path: '-', stdin: Readable.from([]), tempRoot })).rejects.toThrow(/stdin is empty/);
    await expect(open({ path: '-', stdin: Buffer.from('BZh91AY&SY....') })).rejects.toThrow(/bzip2/);
    expect(fs.readdirSync(tempRoot).length).toBe(1); // the empty archive's, until closed
  });
});

describe('readDockerfile', () => {
  it('finds Dockerfile, else dockerfile, and names what it looked for when neither is there', async () => {
    const c = await open();
    await expect(readDockerfile(c, undefined)).rejects.toThrow(/Cannot locate specified Dockerfile: Dockerfile/);
    tree({ dockerfile: 'FROM lower' });
    expect(await readDockerfile(c, undefined)).toEqual({ text: 'FROM lower', name: 'dockerfile' });
    tree({ Dockerfile: 'FROM upper' });
    expect(await readDockerfile(c, undefined)).toEqual({ text: 'FROM upper', name: 'Dockerfile' });
  });

  it('a Dockerfile symlink in the context does not lead outside it', async () => {
    fs.writeFileSync(path.join(top, 'outside', 'Dockerfile'), 'FROM host');
    tree({ Dockerfile: '-> ../outside/Dockerfile' });
    const c = await open();
    await expect(readDockerfile(c, undefined)).rejects.toThrow(/Cannot locate/);
  });

  it('-f may be outside the context, relative to the current directory; its .dockerignore wins', async () => {
    tree({ 'a.txt': '', 'b.txt': '' });
    fs.writeFileSync(path.join(ctxDir, '.dockerignore'), 'a.txt\n');
    const df = path.join(top, 'outside', 'app.Dockerfile');
    fs.writeFileSync(df, 'FROM app');
    const c = await open();
    expect(c.ignored('a.txt')).toBe(true);
    const given = path.relative(process.cwd(), df);
    expect(await readDockerfile(c, given)).toEqual({ text: 'FROM app', name: given });
    expect(c.ignored('a.txt')).toBe(true); // no app.Dockerfile.dockerignore yet
    fs.writeFileSync(`${df}.dockerignore`, 'b.txt\n');
    await readDockerfile(c, df);
    expect(c.ignored('a.txt')).toBe(false);
    expect(c.ignored('b.txt')).toBe(true);
    await expect(readDockerfile(c, path.join(top, 'nope'))).rejects.toThrow(path.join(top, 'nope'));
  });

  it('Dockerfile.dockerignore in the context replaces .dockerignore', async () => {
    tree({ Dockerfile: 'FROM x', 'Dockerfile.dockerignore': 'b.txt', '.dockerignore': 'a.txt', 'a.txt': '', 'b.txt': '' });
    const c = await open();
    expect(c.ignored('a.txt')).toBe(true);
    await readDockerfile(c, undefined);
    expect(c.ignored('a.txt')).toBe(false);
    expect(c.ignored('b.txt')).toBe(true);
    expect(rels(resolveSources(c, ['*.txt'])[0]!.matches)).toEqual(['a.txt']);
  });

  it('-f - reads stdin; empty and oversized Dockerfiles are refused', async () => {
    const c = await open();
    expect(await readDockerfile(c, '-', Readable.from([Buffer.from('FROM stdin')]))).toEqual({ text: 'FROM stdin', name: 'Dockerfile' });
    tree({ Dockerfile: '' });
    await expect(readDockerfile(c, undefined)).rejects.toThrow('cannot be empty');
    fs.writeFileSync(path.join(ctxDir, 'Dockerfile'), Buffer.alloc(5 * 1024 * 1024, 0x41));
    await expect(readDockerfile(c, undefined)).rejects.toThrow(/larger than 4 MiB/);
  });

  it('a missing context directory is an error naming it', async () => {
    await expect(openContext({ path: path.join(top, 'nope'), tempRoot })).rejects.toThrow(`path "${path.join(top, 'nope')}" not found`);
  });
});
