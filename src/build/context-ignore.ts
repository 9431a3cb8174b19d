// .dockerignore, and the glob patterns COPY sources use.
//
// Matching is @balena/dockerignore's, a port of moby's fileutils (later patternmatcher): `*` and
// `?` stay within one path segment, `**` spans any number of them, `!` re-includes, the last
// matching line wins, and a pattern that matches a directory matches everything below it. What
// that package leaves to us: reading the file as moby's ReadAll does (BOM, `#` comments,
// cleaning), case-sensitive matching (it folds case unless told not to; Linux docker does not),
// and knowing when an excluded directory may still hold a re-included file, so that a walk
// descends into it (reincludesBelow).
import { createRequire } from 'node:module';
import { posix } from 'node:path';
import type { Ignore } from '@balena/dockerignore';
import { TsrunError } from '../errors.js';

const dockerignore = createRequire(import.meta.url)('@balena/dockerignore') as (options?: { ignorecase?: boolean }) => Ignore;

export class IgnoreRules {
  private readonly matcher: Ignore;
  /** The `!` patterns, split into segments: what may re-include a path below an excluded one. */
  private readonly exceptions: string[][];

  /** `text` is a .dockerignore's contents; `file` names it in errors. */
  constructor(text = '', file = '.dockerignore') {
    try {
      const patterns = parseDockerignore(text);
      this.exceptions = patterns.filter((p) => p.startsWith('!')).map((p) => p.slice(1).split('/'));
      // The package takes a line starting with `#` for a comment even after our trimming
      // (moby does not: ` #x` is the pattern `#x`); escaped, it is the same pattern.
      this.matcher = dockerignore({ ignorecase: false }).add(patterns.map((p) => p.replace(/^(!?)#/, '$1\\#')));
      // Each rule's regular expression is compiled on first use: test one path now, so that a
      // pattern JavaScript cannot compile (`a(`) fails here, naming the file, as docker does.
      this.matcher.ignores('.probe');
    } catch (err) {
      throw new TsrunError('EBUILD', `${file}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Whether `rel` (posix, relative to the context root) or a directory above it is excluded. */
  ignored(rel: string): boolean {
    if (rel === '' || rel === '.') return false; // the root itself is always sent
    return this.matcher.ignores(rel);
  }

  /**
   * Whether some `!` pattern could match a path below the directory `rel`: then an excluded
   * `rel` must still be walked. Conservative (a `**` anywhere says yes): walking too much costs
   * time, every entry found is still checked with ignored().
   */
  reincludesBelow(rel: string): boolean {
    const dir = rel === '' ? [] : rel.split('/');
    return this.exceptions.some((pattern) => couldMatchBelow(pattern, dir));
  }
}

/** The patterns of a .dockerignore, cleaned as moby's dockerignore.ReadAll does. */
export function parseDockerignore(text: string): string[] {
  const out: string[] = [];
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  for (const line of lines) {
    if (line.startsWith('#')) continue; // a comment only in the first column
    let pattern = line.trim();
    if (pattern === '') continue;
    const invert = pattern.startsWith('!');
    if (invert) pattern = pattern.slice(1).trim();
    if (invert && pattern === '') throw new TsrunError('EBUILD', 'illegal exclusion pattern: "!"');
    if (pattern !== '') {
      pattern = goClean(pattern);
      if (pattern.length > 1 && pattern.startsWith('/')) pattern = pattern.slice(1);
    }
    out.push(invert ? `!${pattern}` : pattern);
  }
  return out;
}

/** Go's path.Clean: `a/./b/` → `a/b`, `` → `.`. */
export function goClean(p: string): string {
  if (p === '') return '.';
  const n = posix.normalize(p);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

function couldMatchBelow(pattern: string[], dir: string[]): boolean {
  for (let i = 0; i < dir.length; i++) {
    const seg = pattern[i];
    // The pattern matched an ancestor of `dir` already: it matches all below it too.
    if (seg === undefined) return true;
    if (seg.includes('**')) return true;
    let re: RegExp;
    try {
      re = globSegment(seg);
    } catch {
      return true;
    }
    if (!re.test(dir[i]!)) return false;
  }
  return pattern.length > dir.length;
}

// ---- Go's filepath.Match, one path segment at a time ---------------------------------------

/** Whether a path has `*`, `?` or `[` not escaped by `\` (docker's containsWildcards). */
export function hasWildcards(p: string): boolean {
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === '\\') i++;
    else if (c === '*' || c === '?' || c === '[') return true;
  }
  return false;
}

/**
 * A path segment's Go filepath.Match pattern as a regular expression: `*` any run of
 * characters, `?` one, `[a-z]`/`[^a-z]` a class, `\x` the character x. A malformed pattern
 * (`[a`, a trailing `\`) is an error, as Go's ErrBadPattern is.
 */
export function globSegment(pattern: string): RegExp {
  const chars = [...pattern];
  let out = '';
  const bad = (): never => {
    throw new TsrunError('EBUILD', `syntax error in pattern "${pattern}"`);
  };
  const literal = (c: string): string => `\\u{${c.codePointAt(0)!.toString(16)}}`;
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    if (c === '*') out += '.*';
    else if (c === '?') out += '.';
    else if (c === '\\') {
      if (i + 1 >= chars.length) bad();
      out += literal(chars[++i]!);
    } else if (c === '[') {
      i++;
      let cls = '[';
      if (chars[i] === '^') {
        cls += '^';
        i++;
      }
      let ranges = 0;
      // One character of a class: `-` and `]` only escaped, as in Go's getEsc.
      const esc = (): string => {
        let ch = chars[i];
        if (ch === undefined || ch === '-' || ch === ']') return bad();
        if (ch === '\\') {
          i++;
          ch = chars[i];
          if (ch === undefined) return bad();
        }
        i++;
        return ch;
      };
      for (;;) {
        if (chars[i] === ']' && ranges > 0) break;
        const lo = esc();
        let hi = lo;
        if (chars[i] === '-') {
          i++;
          hi = esc();
          if (hi.codePointAt(0)! < lo.codePointAt(0)!) bad();
        }
        cls += hi === lo ? literal(lo) : `${literal(lo)}-${literal(hi)}`;
        ranges++;
      }
      out += `${cls}]`;
    } else out += literal(c);
  }
  return new RegExp(`^${out}$`, 'su');
}
