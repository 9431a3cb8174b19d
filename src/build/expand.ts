// Word expansion for Dockerfiles, and the step from a raw instruction to a typed one.
//
// The lexer follows buildkit's (frontend/dockerfile/shell/lex.go), which mimics a POSIX shell
// only as far as Dockerfiles need: quotes, the escape character, `$VAR`, `${VAR}` and the
// `${VAR<modifier>word}` forms. It never runs commands, globs or splits on anything but blanks.
//
//   expandWord   one word: quotes removed, variables replaced, blanks kept (ENV values, paths)
//   expandWords  the same, then split on unquoted blanks (EXPOSE `$PORTS` may give several)
//   evaluate     RawInstruction → Instruction, expanding the words docker expands
import { TsrunError } from '../errors.js';
import type { CommandForm, HealthConfig, Heredoc, Instruction, RawInstruction } from './instructions.js';
import { goDuration } from '../sys/go-duration.js';

/** A variable's value, or undefined when it is not set (set-but-empty is `''`). */
export type Vars = (name: string) => string | undefined;

/** How the lexer reads; only the escape character is needed for Dockerfile words. */
export interface LexOptions {
  /** `\` or `` ` `` (the `# escape=` directive): escapes the next character. */
  escape: string;
  /** Keep quote characters in the result (heredoc detection must see them). */
  rawQuotes?: boolean;
  /** Keep escape characters in the result. */
  rawEscapes?: boolean;
  /** Leave `$VAR` and `${VAR...}` as written when VAR is unset. */
  skipUnset?: boolean;
  /** Quotes are ordinary characters: COPY heredoc bodies, where only `$` is special. */
  keepQuotes?: boolean;
}

/** A lexing error; callers turn it into a TsrunError naming the word and line. */
class LexError extends Error {}

/** Go's unicode.IsSpace: the blanks that separate words. */
const SPACE = /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]$/;
const isSpace = (ch: string): boolean => SPACE.test(ch);
const isDigit = (ch: string): boolean => /^\p{Nd}$/u.test(ch);
const isLetter = (ch: string): boolean => /^\p{L}$/u.test(ch);
/** POSIX special parameters (`$@`, `$#`, ...): a one-character name, usually unset. */
const SPECIAL_PARAMS = '@*#?-$!0';

/** Collects the words of a text as the lexer produces it (buildkit's wordsStruct). */
class Words {
  private readonly list: string[] = [];
  private buf = '';
  private inWord = false;

  /** A character from the text or a variable's value: blanks end the current word. */
  addChar(ch: string): void {
    if (!isSpace(ch)) this.addRaw(ch);
    else if (this.inWord && this.buf !== '') {
      this.list.push(this.buf);
      this.buf = '';
      this.inWord = false;
    }
  }

  /** Quoted or escaped text: blanks in it stay in the word. */
  addRaw(s: string): void {
    this.buf += s;
    this.inWord = true;
  }

  addString(s: string): void {
    for (const ch of s) this.addChar(ch);
  }

  done(): string[] {
    if (this.buf !== '') this.list.push(this.buf);
    this.buf = '';
    return this.list;
  }
}

/** One pass over a text: its expanded value and its words. */
class Lexer {
  private readonly chars: string[];
  private pos = 0;
  private rawEscapes: boolean;

  constructor(
    text: string,
    private readonly vars: Vars,
    private readonly opts: LexOptions,
  ) {
    this.chars = Array.from(text);
    this.rawEscapes = opts.rawEscapes ?? false;
  }

  private peek(): string | undefined {
    return this.chars[this.pos];
  }

  private next(): string | undefined {
    return this.chars[this.pos++];
  }

  /** Reads up to `stop` (consumed) or the end; `${A:-x}` reads its word this way. */
  process(stop?: string, rawEscapes = this.rawEscapes): { result: string; words: string[] } {
    const saved = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    try {
      return this.readUntil(stop);
    } finally {
      this.rawEscapes = saved;
    }
  }

  private readUntil(stop: string | undefined): { result: string; words: string[] } {
    let result = '';
    const words = new Words();
    for (let ch = this.peek(); ch !== undefined; ch = this.peek()) {
      if (ch === stop) {
        this.next();
        return { result, words: words.done() };
      }
      const special = this.special(ch);
      if (special) {
        const part = special();
        result += part;
        // A variable's value splits into words; quoted text does not.
        if (ch === '$') words.addString(part);
        else words.addRaw(part);
        continue;
      }
      this.next();
      if (ch === this.opts.escape) {
        if (this.rawEscapes) {
          words.addRaw(ch);
          result += ch;
        }
        const escaped = this.next();
        if (escaped === undefined) break; // an escape at the very end is dropped
        words.addRaw(escaped);
        result += escaped;
      } else {
        words.addChar(ch);
        result += ch;
      }
    }
    if (stop !== undefined) throw new LexError(`unexpected end of statement while looking for matching ${stop}`);
    return { result, words: words.done() };
  }

  private special(ch: string): (() => string) | undefined {
    if (ch === '$') return () => this.dollar();
    if (ch === '<') return () => this.possibleHeredoc();
    if (this.opts.keepQuotes) return undefined;
    if (ch === "'") return () => this.singleQuote();
    if (ch === '"') return () => this.doubleQuote();
    return undefined;
  }

  /** Everything up to the next `'` is literal; nothing escapes inside. */
  private singleQuote(): string {
    let result = this.quoteChar(this.next()!);
    for (;;) {
      const ch = this.next();
      if (ch === undefined) throw new LexError('unexpected end of statement while looking for matching single-quote');
      if (ch === "'") return result + this.quoteChar(ch);
      result += ch;
    }
  }

  /** `$` expands inside; the escape character escapes only `"`, `$` and itself (as in sh). */
  private doubleQuote(): string {
    let result = this.quoteChar(this.next()!);
    for (;;) {
      const ch = this.peek();
      if (ch === undefined) throw new LexError('unexpected end of statement while looking for matching double-quote');
      if (ch === '"') return result + this.quoteChar(this.next()!);
      if (ch === '$') {
        result += this.dollar();
        continue;
      }
      let out = this.next()!;
      if (out === this.opts.escape) {
        if (this.rawEscapes) result += out;
        const after = this.peek();
        if (after === undefined) continue; // reported as the missing quote above
        if (after === '"' || after === '$' || after === this.opts.escape) out = this.next()!;
      }
      result += out;
    }
  }

  private quoteChar(ch: string): string {
    return this.opts.rawQuotes ? ch : '';
  }

  /** `<<` and the blanks after it stay one word, so `<< EOF` names a heredoc as `<<EOF` does. */
  private possibleHeredoc(): string {
    this.next();
    if (this.peek() !== '<') return '<';
    this.next();
    let space = '';
    for (let ch = this.peek(); ch === ' ' || ch === '\t' || ch === '\r'; ch = this.peek()) space += this.next();
    return `<<${space}`;
  }

  private dollar(): string {
    this.next(); // the `$`
    if (this.peek() !== '{') {
      const name = this.name();
      if (name === '') return '$'; // `$` before a non-name character is literal
      const value = this.vars(name);
      if (value === undefined && this.opts.skipUnset) return `$${name}`;
      return value ?? '';
    }
    this.next(); // the `{`
    const first = this.peek();
    if (first === undefined) throw new LexError("syntax error: missing '}'");
    if (first === '{' || first === '}' || first === ':') throw new LexError('syntax error: bad substitution');
    const name = this.name();
    const op = this.next();
    if (op === undefined) throw new LexError("syntax error: missing '}'");
    if (op === '}') {
      const value = this.vars(name);
      if (value === undefined && this.opts.skipUnset) return `\${${name}}`;
      return value ?? '';
    }
    if (op === '/') return this.substitute(name);
    return this.modifier(name, op);
  }

  /** `${A-x}` `${A:-x}` `${A+x}` `${A:+x}` `${A?msg}` `${A:?msg}` `${A#pat}` `${A##pat}` `${A%pat}` `${A%%pat}`. */
  private modifier(name: string, op: string): string {
    let kind = op;
    let modifier = op;
    // With `:`, an empty value counts as unset (`${A:-x}` vs `${A-x}`).
    const nullIsUnset = op === ':';
    if (nullIsUnset) {
      kind = this.next() ?? '';
      modifier += kind;
    }
    const patterns = kind === '#' || kind === '%';
    if (!'+-?#%'.includes(kind) || kind === '' || (nullIsUnset && patterns)) {
      throw new LexError(`unsupported modifier (${modifier}) in substitution`);
    }
    let word: string;
    try {
      word = this.process('}', patterns).result;
    } catch (err) {
      if (this.peek() === undefined) throw new LexError("syntax error: missing '}'");
      throw err;
    }
    const value = this.vars(name);
    if (value === undefined && this.opts.skipUnset) return `\${${name}${modifier}${word}}`;
    const unset = value === undefined || (nullIsUnset && value === '');
    switch (kind) {
      case '-':
        return unset ? word : value!;
      case '+':
        return unset ? '' : word;
      case '?':
        if (value === undefined) throw new LexError(`${name}: ${word || 'is not allowed to be unset'}`);
        if (unset) throw new LexError(`${name}: ${word || 'is not allowed to be empty'}`);
        return value;
      default: {
        // `#`/`%` remove the shortest matching prefix/suffix, `##`/`%%` the longest.
        const greedy = word.startsWith(kind);
        const pattern = greedy ? word.slice(1) : word;
        return kind === '#' ? trimPrefix(pattern, value ?? '', greedy) : trimSuffix(pattern, value ?? '', greedy);
      }
    }
  }

  /** `${A/pattern/replacement}` replaces the first match, `${A//pattern/replacement}` every one. */
  private substitute(name: string): string {
    const all = this.peek() === '/';
    if (all) this.next();
    const pattern = this.readPart('/', "syntax error: missing '/' in ${}");
    const replacement = this.readPart('}', "syntax error: missing '}'");
    const value = this.vars(name);
    if (value === undefined && this.opts.skipUnset) return `\${${name}/${pattern}/${replacement}}`;
    const re = shellPattern(pattern, true, false, all ? 'g' : '');
    return (value ?? '').replace(re, () => replacement);
  }

  private readPart(stop: string, missing: string): string {
    try {
      return this.process(stop, true).result;
    } catch (err) {
      if (this.peek() === undefined) throw new LexError(missing);
      throw err;
    }
  }

  /** A variable name: letters, digits and `_`; or all digits (`$1`); or one special parameter. */
  private name(): string {
    let name = '';
    for (let ch = this.peek(); ch !== undefined; ch = this.peek()) {
      if (name === '' && isDigit(ch)) {
        for (let d = this.peek(); d !== undefined && isDigit(d); d = this.peek()) name += this.next();
        return name;
      }
      if (name === '' && SPECIAL_PARAMS.includes(ch)) return this.next()!;
      if (!isLetter(ch) && !isDigit(ch) && ch !== '_') break;
      name += this.next();
    }
    return name;
  }
}

/** A shell pattern (`*`, `?`, `\` escapes; no brackets) as a regular expression. */
function shellPattern(pattern: string, greedy: boolean, anchored: boolean, flags = ''): RegExp {
  const chars = Array.from(pattern);
  let out = anchored ? '^' : '';
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i]!;
    if (ch === '*') out += greedy ? '.*' : '.*?';
    else if (ch === '?') out += '.';
    else if (ch === '\\') {
      // `\}` and `\/` were escaped for the `${}` syntax, not for the pattern.
      if (chars[i + 1] === '}' || chars[i + 1] === '/') continue;
      const escaped = chars[++i];
      if (escaped !== '*' && escaped !== '?' && escaped !== '\\') {
        throw new LexError(`invalid pattern (${pattern}) in substitution: invalid escape '\\${escaped ?? ''}'`);
      }
      out += `\\${escaped}`;
    } else if ('[]{}.+()|^$'.includes(ch)) out += `\\${ch}`;
    else out += ch;
  }
  return new RegExp(out, `u${flags}`);
}

function trimPrefix(pattern: string, value: string, greedy: boolean): string {
  const m = shellPattern(pattern, greedy, true).exec(value);
  return m ? value.slice(m.index + m[0].length) : value;
}

/** A regular expression cannot find the shortest match at the end, so both are reversed. */
function trimSuffix(pattern: string, value: string, greedy: boolean): string {
  return reverse(trimPrefix(reversePattern(pattern), reverse(value), greedy));
}

function reverse(s: string): string {
  return Array.from(s).reverse().join('');
}

/** Reverses a pattern keeping escapes before what they escape: `a\*c` → `c\*a`. */
function reversePattern(pattern: string): string {
  const tokens: string[] = [];
  const chars = Array.from(pattern);
  for (let i = 0; i < chars.length; i++) {
    if (chars[i] === '\\' && i + 1 < chars.length) tokens.push(chars[i]! + chars[++i]!);
    else tokens.push(chars[i]!);
  }
  return tokens.reverse().join('');
}

/** Runs the lexer; errors say which text failed, as buildkit's do. */
export function lex(text: string, vars: Vars, opts: LexOptions): { result: string; words: string[] } {
  try {
    return new Lexer(text, vars, opts).process();
  } catch (err) {
    if (err instanceof LexError) throw new TsrunError('EBUILD', `failed to process ${JSON.stringify(text)}: ${err.message}`);
    throw err;
  }
}

/** One word's value: quotes removed, escapes applied, variables replaced (unset ones by nothing). */
export function expandWord(word: string, vars: Vars, escape: string): string {
  return lex(word, vars, { escape }).result;
}

/** Expands, then splits on blanks that were not quoted or escaped (buildkit's ProcessWords). */
export function expandWords(args: string, vars: Vars, escape: string): string[] {
  return lex(args, vars, { escape }).words;
}

// ---- RawInstruction → Instruction ----------------------------------------------------------

/** `Dockerfile:12: message`: every build error names its line. */
export function lineError(file: string, line: number, message: string): TsrunError {
  return new TsrunError('EBUILD', `${file}:${line}: ${message}`);
}

function fail(raw: RawInstruction, message: string): never {
  throw lineError(raw.source.file, raw.source.line, message);
}

/** Blanks as buildkit's parser splits arguments (no newline: a logical line has none). */
const BLANKS = /[\t\v\f\r ]+/;

const noVars: Vars = () => undefined;

/**
 * The typed instruction, with words expanded where docker expands them: ADD, COPY, ENV,
 * EXPOSE, FROM, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR, ARG defaults and the flags of
 * COPY/ADD and FROM. RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK and ONBUILD are kept as
 * written: their shell expands them when they run.
 */
export function evaluate(raw: RawInstruction, vars: Vars, escape: string): Instruction {
  const word = (w: string): string => expandIn(raw, () => expandWord(w, vars, escape));
  switch (raw.keyword) {
    case 'FROM':
      return fromInstruction(raw, vars, escape);
    case 'RUN':
      return runInstruction(raw);
    case 'CMD':
    case 'ENTRYPOINT':
      return { kind: raw.keyword, command: commandForm(raw) };
    case 'COPY':
    case 'ADD':
      return copyInstruction(raw, vars, escape);
    case 'ENV':
    case 'LABEL':
      return { kind: raw.keyword, pairs: nameValues(raw, escape).map(([k, v]) => [word(k), word(v)] as [string, string]) };
    case 'ARG':
      // Docker expands a default only when no --build-arg gives the value: the builder should
      // use a given value as is (an unusable default, like `${X:?}`, then never fails).
      return { kind: 'ARG', args: argDefinitions(raw, escape).map((a) => (a.value === undefined ? a : { name: a.name, value: word(a.value) })) };
    case 'WORKDIR': {
      const path = word(oneArgument(raw));
      if (path === '') fail(raw, 'WORKDIR path is empty after expansion');
      return { kind: 'WORKDIR', path };
    }
    case 'USER':
      return { kind: 'USER', user: word(oneArgument(raw)) };
    case 'STOPSIGNAL':
      return { kind: 'STOPSIGNAL', signal: stopSignal(raw, word(oneArgument(raw))) };
    case 'EXPOSE':
      return { kind: 'EXPOSE', ports: exposedPorts(raw, vars, escape) };
    case 'VOLUME':
      return { kind: 'VOLUME', paths: volumePaths(raw, word) };
    case 'HEALTHCHECK':
      return { kind: 'HEALTHCHECK', health: healthcheck(raw) };
    case 'SHELL':
      return { kind: 'SHELL', shell: shellInstruction(raw) };
    case 'ONBUILD':
      return { kind: 'ONBUILD', trigger: onbuildTrigger(raw) };
    case 'MAINTAINER':
      return { kind: 'MAINTAINER', name: oneArgument(raw) };
    default:
      return fail(raw, `unknown instruction: ${raw.keyword}`);
  }
}

/**
 * The checks docker makes before building anything: argument counts and forms, stage names,
 * flag values that are not expanded. What depends on variables (ports, --chmod) waits for
 * evaluate(). parse.ts calls this for every instruction.
 */
export function checkInstruction(raw: RawInstruction, escape: string): void {
  switch (raw.keyword) {
    case 'FROM':
      fromParts(raw);
      return;
    case 'COPY':
    case 'ADD':
      sourcesAndDest(raw);
      return;
    case 'ENV':
    case 'LABEL':
      nameValues(raw, escape);
      return;
    case 'ARG':
      argDefinitions(raw, escape);
      return;
    case 'WORKDIR':
    case 'USER':
    case 'STOPSIGNAL':
      oneArgument(raw);
      return;
    case 'EXPOSE':
    case 'VOLUME':
      listWords(raw);
      return;
    default:
      // The rest expand nothing: evaluating them is the check.
      evaluate(raw, noVars, escape);
  }
}

/** Runs an expansion, giving its error the instruction's line. */
function expandIn<T>(raw: RawInstruction, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof TsrunError) fail(raw, err.message);
    throw err;
  }
}

// ---- FROM ----

const STAGE_NAME = /^[a-z][a-z0-9-_.]*$/;

/** `image` or `image AS name`; the name lower-cased and checked as docker does. */
export function fromParts(raw: RawInstruction): { image: string; name?: string } {
  const args = raw.args === '' ? [] : raw.args.split(BLANKS);
  if (args.length === 1) return { image: args[0]! };
  if (args.length !== 3 || args[1]!.toLowerCase() !== 'as') fail(raw, 'FROM requires either one or three arguments (FROM image [AS name])');
  const name = args[2]!.toLowerCase();
  if (!STAGE_NAME.test(name)) {
    fail(raw, `invalid name for build stage: ${JSON.stringify(args[2])}, name can't start with a number or contain symbols`);
  }
  return { image: args[0]!, name };
}

/** The image word is expanded with the variables the builder gives: docker's global ARGs only. */
function fromInstruction(raw: RawInstruction, vars: Vars, escape: string): Instruction {
  const { image: word, name } = fromParts(raw);
  const image = expandIn(raw, () => expandWord(word, vars, escape));
  if (image === '') fail(raw, `base name (${word}) should not be blank`);
  const out: Instruction = { kind: 'FROM', image };
  if (name !== undefined) out.name = name;
  if (raw.flags.platform !== undefined) out.platform = expandIn(raw, () => expandWord(raw.flags.platform!, vars, escape));
  return out;
}

// ---- RUN, CMD, ENTRYPOINT, SHELL ----

/** Exec form from the decoded JSON, else the shell form's text as written. */
function commandForm(raw: RawInstruction): CommandForm {
  if (raw.json) return { exec: raw.json };
  // `CMD` with nothing after it: docker stores no command; an empty exec form says the same.
  if (raw.args === '') return { exec: [] };
  return { shell: raw.args };
}

/**
 * RUN keeps heredoc bodies unexpanded: the shell expands them (or not, for `<<'EOF'`).
 * What the builder does with them, as buildkit does:
 *   - `RUN <<EOF` (the args are only the heredoc word): the body is the script. If it starts
 *     with `#!` it is written to a file and executed; otherwise it is run by the shell
 *     (SHELL, default `/bin/sh -c <body>`).
 *   - anything else (`RUN python3 <<EOF`, `RUN cat <<A <<B`): the args, then for each heredoc
 *     `\n` + body + name, are given to the shell as one script, which feeds the bodies to
 *     the commands itself.
 */
function runInstruction(raw: RawInstruction): Instruction {
  if (raw.args === '') fail(raw, 'RUN requires at least one argument');
  const out: Instruction = { kind: 'RUN', command: commandForm(raw), heredocs: raw.heredocs };
  const network = raw.flags.network;
  if (network !== undefined) {
    if (network !== 'default' && network !== 'none' && network !== 'host') fail(raw, `invalid network mode ${JSON.stringify(network)}`);
    out.network = network;
  }
  return out;
}

function shellInstruction(raw: RawInstruction): string[] {
  if (raw.args === '') fail(raw, 'SHELL requires at least one argument');
  if (!raw.json) fail(raw, 'SHELL requires the arguments to be in JSON form');
  if (raw.json.length === 0) fail(raw, 'SHELL requires at least one argument');
  return raw.json;
}

// ---- COPY, ADD ----

/** The raw words: sources then destination, from the JSON form or split on blanks. */
export function sourcesAndDest(raw: RawInstruction): { sources: string[]; dest: string } {
  const words = raw.json ?? (raw.args === '' ? [] : raw.args.split(BLANKS));
  if (words.length < 2) {
    fail(raw, `${raw.keyword} requires at least two arguments, but only ${words.length === 1 ? 'one was' : 'none were'} provided. Destination could not be determined`);
  }
  const dest = words.at(-1)!;
  if (heredocWord(dest)) fail(raw, `${raw.keyword} cannot accept a heredoc as a destination`);
  return { sources: words.slice(0, -1), dest };
}

/**
 * A `<<EOF`-style word: the heredoc's name, whether it was quoted, whether tabs are stripped.
 * Quoted means any quote in the delimiter (`<<"EOF"`, `<<'EOF'`, `<<E"O"F`): no expansion.
 */
export function heredocWord(word: string): { name: string; quoted: boolean; chomp: boolean } | undefined {
  const m = /^(\d*)<<(-?)\s*([^<]*)$/.exec(word);
  if (!m || m[3] === '') return undefined;
  try {
    const plain = lex(m[3]!, noVars, { escape: '\\', skipUnset: true }).words;
    if (plain.length !== 1) return undefined;
    const withQuotes = lex(m[3]!, noVars, { escape: '\\', skipUnset: true, rawQuotes: true }).words;
    const quotes = (s: string): number => s.replace(/[^'"]/g, '').length;
    return { name: plain[0]!, quoted: quotes(plain[0]!) !== quotes(withQuotes[0] ?? ''), chomp: m[2] === '-' };
  } catch {
    return undefined; // an unbalanced quote is not a heredoc
  }
}

function copyInstruction(raw: RawInstruction, vars: Vars, escape: string): Instruction {
  const { sources: words, dest } = sourcesAndDest(raw);
  const word = (w: string): string => expandIn(raw, () => expandWord(w, vars, escape));
  const sources = words.map((w) => {
    // A heredoc source is named `<<NAME` whatever its quoting, so the builder finds its body.
    const heredoc = heredocWord(w);
    return heredoc ? `<<${heredoc.name}` : word(w);
  });
  const out: Instruction = { kind: raw.keyword as 'COPY' | 'ADD', sources, dest: word(dest), heredocs: raw.heredocs.map((h) => heredocBody(raw, h, vars)) };
  if (raw.flags.from !== undefined) out.from = word(raw.flags.from);
  if (raw.flags.chown !== undefined) out.chown = word(raw.flags.chown);
  if (raw.flags.chmod !== undefined) out.chmod = chmod(raw, word(raw.flags.chmod));
  return out;
}

/**
 * COPY expands a heredoc's `$VAR`s unless its delimiter is quoted; quotes in the body are
 * text, and the escape character is always `\` (buildkit's rule, whatever `# escape=` says).
 */
function heredocBody(raw: RawInstruction, h: Heredoc, vars: Vars): Heredoc {
  if (h.quoted) return h;
  return { ...h, body: expandIn(raw, () => lex(h.body, vars, { escape: '\\', keepQuotes: true }).result) };
}

function chmod(raw: RawInstruction, value: string): string {
  if (!/^[0-7]+$/.test(value) || parseInt(value, 8) > 0o7777) {
    fail(raw, `invalid chmod parameter: ${JSON.stringify(value)}: it should be an octal number between 0 and 7777`);
  }
  return value;
}

// ---- ENV, LABEL, ARG ----

/**
 * `K=V K2="v 2"` pairs, or the legacy `K value with spaces` (one pair; ENV and LABEL alike,
 * as docker). Keys and values are returned as written; evaluate() expands both.
 */
export function nameValues(raw: RawInstruction, escape: string): Array<[string, string]> {
  const words = quotedWords(raw.args, escape);
  if (words.length === 0) fail(raw, `${raw.keyword} requires at least one argument`);
  if (!words[0]!.includes('=')) {
    const [key, value] = splitOnce(raw.args);
    if (value === undefined) fail(raw, `${raw.keyword} must have two arguments (${raw.keyword} name=value, or the legacy ${raw.keyword} name value)`);
    return [[key, value]];
  }
  return words.map((w) => {
    const eq = w.indexOf('=');
    if (eq < 0) fail(raw, `Syntax error - can't find = in ${JSON.stringify(w)}. Must be of the form: name=value`);
    if (eq === 0) fail(raw, `${raw.keyword} names can not be blank`);
    return [w.slice(0, eq), w.slice(eq + 1)];
  });
}

/** `ARG a b=1 c="x y"`: names, and defaults as written. */
export function argDefinitions(raw: RawInstruction, escape: string): Array<{ name: string; value?: string }> {
  const words = quotedWords(raw.args, escape);
  if (words.length === 0) fail(raw, 'ARG requires at least one argument');
  return words.map((w) => {
    const eq = w.indexOf('=');
    if (eq < 0) return { name: w };
    if (eq === 0) fail(raw, 'ARG names can not be blank');
    return { name: w.slice(0, eq), value: w.slice(eq + 1) };
  });
}

/** Splits at the first run of blanks: `K value with spaces` → [`K`, `value with spaces`]. */
function splitOnce(s: string): [string, string | undefined] {
  const m = BLANKS.exec(s);
  return m ? [s.slice(0, m.index), s.slice(m.index + m[0].length)] : [s, undefined];
}

/**
 * Words split on unquoted blanks, quotes and escapes kept for the later expansion (buildkit's
 * parseWords): `a="x y" b` → [`a="x y"`, `b`]. A trailing escape character is dropped.
 */
export function quotedWords(s: string, escape: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: string | undefined;
  const chars = Array.from(s);
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i]!;
    if (quote === undefined && isSpace(ch)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      continue;
    }
    inWord = true;
    if (quote === undefined && (ch === '"' || ch === "'")) quote = ch;
    else if (ch === quote) quote = undefined;
    // The escape character keeps the next one in the word (even a blank or a quote), except in ''.
    if (ch === escape && quote !== "'") {
      if (i + 1 === chars.length) break;
      word += ch + chars[++i]!;
      continue;
    }
    word += ch;
  }
  if (inWord) words.push(word);
  return words;
}

// ---- WORKDIR, USER, STOPSIGNAL, MAINTAINER, VOLUME, EXPOSE ----

/** The whole argument text as one argument (docker's parseString: `WORKDIR /a b` is `/a b`). */
function oneArgument(raw: RawInstruction): string {
  if (raw.args === '') fail(raw, `${raw.keyword} requires exactly one argument`);
  return raw.args;
}

function listWords(raw: RawInstruction): string[] {
  const words = raw.json ?? (raw.args === '' ? [] : raw.args.split(BLANKS));
  if (words.length === 0) fail(raw, `${raw.keyword} requires at least one argument`);
  return words;
}

/** A signal name (`SIGTERM`, `term`, `SIGRTMIN+3`) or number, as docker's signal.ParseSignal takes. */
function stopSignal(raw: RawInstruction, signal: string): string {
  if (!/^(\d+|[A-Za-z][A-Za-z0-9+-]*)$/.test(signal)) fail(raw, `invalid signal: ${signal}`);
  return signal;
}

function volumePaths(raw: RawInstruction, word: (w: string) => string): string[] {
  return listWords(raw).map((w) => {
    const path = word(w).trim();
    if (path === '') fail(raw, 'VOLUME specified can not be an empty string');
    return path;
  });
}

/**
 * `80`, `80/tcp`, `53/UDP`, `8000-8010` → `80/tcp`, `53/udp`, `8000/tcp` ... `8010/tcp`. Each
 * word may expand to several (`EXPOSE $PORTS`). Like buildkit, `[ip:][host:]port` exposes the
 * container port and ignores the rest (docker lints it).
 */
function exposedPorts(raw: RawInstruction, vars: Vars, escape: string): string[] {
  const words = listWords(raw).flatMap((w) => expandIn(raw, () => expandWords(w, vars, escape)));
  return words.flatMap((spec) => portsOf(raw, spec));
}

function portsOf(raw: RawInstruction, spec: string): string[] {
  const parts = spec.split(':');
  const last = parts.at(-1)!;
  const slash = last.indexOf('/');
  const port = slash < 0 ? last : last.slice(0, slash);
  const proto = slash < 0 ? 'tcp' : last.slice(slash + 1);
  const protocol = (proto || 'tcp').toLowerCase(); // `80/` is tcp too, as in docker
  if (!['tcp', 'udp', 'sctp'].includes(protocol)) fail(raw, `invalid port ${JSON.stringify(spec)}: invalid proto: ${proto}`);
  if (parts.length > 1) portRange(raw, spec, parts.at(-2)!);
  const [start, end] = portRange(raw, spec, port);
  const ports: string[] = [];
  for (let p = start; p <= end; p++) ports.push(`${p}/${protocol}`);
  return ports;
}

function portRange(raw: RawInstruction, spec: string, range: string): [number, number] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(range);
  const start = Number(m?.[1]);
  const end = m?.[2] === undefined ? start : Number(m[2]);
  if (!m || start > 65535 || end > 65535 || end < start) fail(raw, `invalid port ${JSON.stringify(spec)}: a port is a number 0-65535, or a range like 8000-8010`);
  return [start, end];
}

// ---- HEALTHCHECK ----

function healthcheck(raw: RawInstruction): HealthConfig {
  const [type = '', rest = ''] = splitOnce(raw.args);
  if (type === '') fail(raw, 'HEALTHCHECK requires at least one argument');
  if (type.toUpperCase() === 'NONE') {
    if (rest !== '') fail(raw, 'HEALTHCHECK NONE takes no arguments');
    return { Test: ['NONE'] };
  }
  if (type.toUpperCase() !== 'CMD') fail(raw, `Unknown type ${JSON.stringify(type.toUpperCase())} in HEALTHCHECK (try CMD)`);
  // parse.ts decodes the JSON form of what follows CMD into raw.json.
  const test = raw.json ? ['CMD', ...raw.json] : ['CMD-SHELL', rest];
  if (test.length < 2 || test[1] === '') fail(raw, 'Missing command after HEALTHCHECK CMD');
  const health: HealthConfig = { Test: test };
  const durations = [
    ['interval', 'Interval'],
    ['timeout', 'Timeout'],
    ['start-period', 'StartPeriod'],
    ['start-interval', 'StartInterval'],
  ] as const;
  for (const [flag, field] of durations) {
    const value = raw.flags[flag];
    if (value === undefined || value === '') continue;
    const ns = goDuration(value);
    if (ns === undefined) fail(raw, `invalid duration ${JSON.stringify(value)} for --${flag} (examples: 30s, 1m30s, 500ms)`);
    if (ns === 0) continue; // docker stores 0 as "not set": the default applies
    if (ns < 1_000_000) fail(raw, `Interval ${JSON.stringify(flag)} cannot be less than 1ms`);
    health[field] = ns;
  }
  const retries = raw.flags.retries;
  if (retries !== undefined && retries !== '') {
    if (!/^[+-]?\d+$/.test(retries) || Math.abs(Number(retries)) > 2 ** 31 - 1) fail(raw, `invalid --retries ${JSON.stringify(retries)}: not an integer`);
    const n = Number(retries);
    if (n < 0) fail(raw, `--retries cannot be negative (${n})`);
    if (n > 0) health.Retries = n;
  }
  return health;
}

// ---- ONBUILD ----

/**
 * The trigger as the child build will parse it: the text after ONBUILD, then each heredoc's
 * body and terminator (buildkit stores it so). The child re-parses it with parseInstruction().
 */
function onbuildTrigger(raw: RawInstruction): string {
  const [keyword] = splitOnce(raw.args);
  if (keyword === '') fail(raw, 'ONBUILD requires at least one argument');
  const trigger = keyword.toUpperCase();
  if (trigger === 'ONBUILD') fail(raw, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
  if (trigger === 'FROM' || trigger === 'MAINTAINER') fail(raw, `${trigger} isn't allowed as an ONBUILD trigger`);
  let text = raw.source.text.replace(/^\s*ONBUILD\s*/i, '');
  for (const h of raw.heredocs) text += `\n${h.body}${h.name}`;
  return text;
}
