// Dockerfile text → stages of raw instructions (instructions.ts), following buildkit's parser
// (frontend/dockerfile/parser and instructions) so that tsrun accepts and rejects what docker
// does, and names the line of every error.
//
//   lines ──directives (`# escape=`)──▶ logical lines (continuations joined, comments dropped)
//         ──▶ keyword, flags, args, JSON form ──▶ heredoc bodies read from the following lines
//         ──▶ checks that need no variables (expand.ts: checkInstruction) ──▶ stages
//
// This reads the lines itself rather than through dockerfile-ast: that package (built for an
// editor, forgiving by design) differs from docker where it matters here. It accepts an
// unterminated heredoc, does not know `3<<EOF`, takes `RUN a \\` (an escaped escape) as a
// continuation, and keeps an invalid `# escape=x` or a second `# escape=` without an error.
import type { Dockerfile, Heredoc, RawInstruction, Stage } from './instructions.js';
import { checkInstruction, fromParts, heredocWord, lex, lineError } from './expand.js';

const INSTRUCTIONS = new Set([
  'ADD', 'ARG', 'CMD', 'COPY', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'FROM', 'HEALTHCHECK',
  'LABEL', 'MAINTAINER', 'ONBUILD', 'RUN', 'SHELL', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR',
]);

/** Instructions whose arguments may be a JSON array (HEALTHCHECK: after its CMD word). */
const JSON_FORMS = new Set(['RUN', 'CMD', 'ENTRYPOINT', 'SHELL', 'COPY', 'ADD', 'VOLUME']);

/** Instructions that may have heredocs (and ONBUILD with one of them as its trigger). */
const HEREDOC_FORMS = new Set(['RUN', 'COPY', 'ADD']);

/** The flags each instruction accepts. All take a value: `--name=value`. */
const FLAGS: Record<string, string[]> = {
  FROM: ['platform'],
  RUN: ['network'],
  COPY: ['from', 'chown', 'chmod'],
  ADD: ['chown', 'chmod'],
  HEALTHCHECK: ['interval', 'timeout', 'start-period', 'start-interval', 'retries'],
};

/** Docker's flags tsrun does not implement: an error naming them, never silently ignored. */
const UNSUPPORTED_FLAGS: Record<string, string[]> = {
  RUN: ['mount', 'security', 'device'],
  COPY: ['link', 'parents', 'exclude'],
  ADD: ['link', 'keep-git-dir', 'checksum', 'unpack', 'exclude'],
};

export function parseDockerfile(text: string, file: string): Dockerfile {
  const { escape, instructions } = readInstructions(text, file);
  if (instructions.length === 0) throw lineError(file, 1, 'the Dockerfile has no instructions');
  const globalArgs: RawInstruction[] = [];
  const stages: Stage[] = [];
  for (const raw of instructions) {
    const current = stages.at(-1);
    if (raw.keyword === 'FROM') {
      const { name } = fromParts(raw);
      if (name !== undefined && stages.some((s) => s.name === name)) {
        throw lineError(file, raw.source.line, `duplicate stage name ${JSON.stringify(name)}: stage names must be unique`);
      }
      stages.push({ index: stages.length, ...(name !== undefined && { name }), from: raw, instructions: [] });
    } else if (current) {
      current.instructions.push(raw);
    } else if (raw.keyword === 'ARG') {
      globalArgs.push(raw); // may be used in FROM lines
    } else {
      throw lineError(file, raw.source.line, `${raw.keyword} must come after FROM: only ARG may come before the first FROM`);
    }
  }
  if (stages.length === 0) throw lineError(file, globalArgs.at(-1)!.source.line, 'the Dockerfile has no FROM: nothing to build');
  return { file, escape, globalArgs, stages };
}

/**
 * One instruction, for an ONBUILD trigger the child build runs (the trigger text, with its
 * heredoc bodies if any). Errors and `source.line` name `line`, the child's FROM. The escape
 * character is `\`, as docker parses triggers.
 */
export function parseInstruction(text: string, file: string, line: number): RawInstruction {
  const { instructions } = readInstructions(text, file, line);
  if (instructions.length !== 1) throw lineError(file, line, `expected one instruction, found ${instructions.length}: ${JSON.stringify(text)}`);
  return instructions[0]!;
}

// ---- Lines ----------------------------------------------------------------------------------

/** The text's lines, each with its `\n`, read one at a time; `number` is the last one's (1-based). */
class Lines {
  private readonly lines: string[];
  number = 0;

  constructor(text: string) {
    this.lines = text.match(/[^\n]*\n|[^\n]+$/g) ?? [];
  }

  next(): string | undefined {
    const line = this.lines[this.number];
    if (line !== undefined) this.number++;
    return line;
  }
}

const trimNewline = (line: string): string => line.replace(/[\r\n]+$/, '');
const isComment = (line: string): boolean => /^\s*#/.test(line);

/**
 * The instructions of a text, in order. `at`: report every instruction at this line
 * (parseInstruction's trigger text has lines of its own that mean nothing to the user).
 */
function readInstructions(text: string, file: string, at?: number): { escape: string; instructions: RawInstruction[] } {
  const lines = new Lines(text.replace(/^\ufeff/, ''));
  const directives = new Directives();
  let escape = '\\';
  const instructions: RawInstruction[] = [];
  for (let line = lines.next(); line !== undefined; line = lines.next()) {
    const first = trimNewline(line).replace(/^\s+/, '');
    const directive = directives.read(first, (message) => lineError(file, at ?? lines.number, message));
    if (directive?.name === 'escape') escape = directive.value;
    const start = at ?? lines.number;
    const logical = joinContinuations(isComment(first) ? '' : first, lines, escape);
    if (logical === undefined) continue; // a blank or comment line
    const raw = splitInstruction(logical, file, start, escape);
    const error = (message: string): never => {
      throw lineError(file, start, message);
    };
    if (logical.includes('<<') && takesHeredocs(raw, escape, error)) raw.heredocs = readHeredocs(logical, lines, error);
    checkInstruction(raw, escape);
    instructions.push(raw);
  }
  return { escape, instructions };
}

/**
 * A line ending in the escape character continues on the next: the escape character and
 * the newline go, the next line's leading blanks stay. Comment lines and blank lines inside
 * are skipped (docker warns about the blank ones). undefined: nothing on this line.
 */
function joinContinuations(first: string, lines: Lines, escape: string): string | undefined {
  let [logical, more] = continuation(first, escape);
  if (!more && logical === '') return undefined;
  while (more) {
    const next = lines.next();
    if (next === undefined) break;
    const line = trimNewline(next);
    if (isComment(line) || line.trim() === '') continue;
    let part: string;
    [part, more] = continuation(line, escape);
    logical += part;
  }
  return logical;
}

/**
 * Docker's rule, a regular expression: the escape character, then only blanks, ends the line,
 * unless the character before it is the escape character too (`RUN echo a\\` ends there).
 */
function continuation(line: string, escape: string): [string, boolean] {
  const e = escape === '\\' ? '\\\\' : escape;
  const re = new RegExp(`([^${e}])${e}[ \\t]*$|^${e}[ \\t]*$`);
  if (!re.test(line)) return [line, false];
  return [line.replace(re, '$1'), true];
}

/**
 * Parser directives: `# name=value` lines at the very top. The first line that is not one
 * (even a blank line, or an unknown name) ends them; later ones are plain comments.
 */
class Directives {
  private done = false;
  private readonly seen = new Set<string>();

  read(line: string, error: (message: string) => Error): { name: string; value: string } | undefined {
    if (this.done) return undefined;
    const m = line.startsWith('#') ? /^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/.exec(line.slice(1).replace(/^\s+/, '')) : null;
    const name = m?.[1]!.toLowerCase();
    if (!m || !name || !['syntax', 'escape', 'check'].includes(name)) {
      this.done = true;
      return undefined;
    }
    if (this.seen.has(name)) throw error(`only one ${name} parser directive can be used`);
    this.seen.add(name);
    const value = m[2]!;
    if (name === 'escape' && value !== '\\' && value !== '`') throw error(`invalid escape token '${value}' does not match \` or \\`);
    return { name, value }; // `syntax` and `check` are buildkit's; tsrun ignores them
  }
}

// ---- One instruction ------------------------------------------------------------------------

function splitInstruction(logical: string, file: string, line: number, escape: string): RawInstruction {
  const fail = (message: string): never => {
    throw lineError(file, line, message);
  };
  const { keyword: written, flagWords, args } = splitLine(logical, escape);
  const keyword = written.toUpperCase();
  if (!INSTRUCTIONS.has(keyword)) fail(`unknown instruction: ${keyword}`);
  const raw: RawInstruction = {
    keyword,
    source: { file, line, text: logical.trim() },
    flags: parseFlags(keyword, flagWords, fail),
    args,
    heredocs: [],
  };
  const json = jsonForm(keyword, args, fail);
  if (json) raw.json = json;
  return raw;
}

/** Keyword, `--flag` words (quotes and escapes already applied, as docker does) and the rest. */
function splitLine(logical: string, escape: string): { keyword: string; flagWords: string[]; args: string } {
  const trimmed = logical.trim();
  const blank = /[\t\v\f\r ]+/.exec(trimmed);
  if (!blank) return { keyword: trimmed, flagWords: [], args: '' };
  const { flagWords, rest } = extractFlags(trimmed.slice(blank.index + blank[0].length), escape);
  return { keyword: trimmed.slice(0, blank.index), flagWords, args: rest.trim() };
}

/**
 * The leading words that start with `--` (`--` alone ends them), as buildkit's
 * extractBuilderFlags reads them: quotes group and are removed, the escape character escapes.
 */
function extractFlags(text: string, escape: string): { flagWords: string[]; rest: string } {
  const flagWords: string[] = [];
  let pos = 0;
  for (;;) {
    while (pos < text.length && /\s/.test(text[pos]!)) pos++;
    if (!text.startsWith('--', pos)) return { flagWords, rest: text.slice(pos) };
    let word = '';
    let quote: string | undefined;
    for (; pos < text.length && (quote !== undefined || !/\s/.test(text[pos]!)); pos++) {
      const ch = text[pos]!;
      if (ch === quote) quote = undefined;
      else if (quote === undefined && (ch === '"' || ch === "'")) quote = ch;
      else if (ch === escape) {
        if (pos + 1 < text.length) word += text[++pos]; // an escape at the very end is dropped
      } else word += ch;
    }
    if (word === '--') return { flagWords, rest: text.slice(pos) };
    flagWords.push(word);
  }
}

function parseFlags(keyword: string, words: string[], fail: (message: string) => never): Record<string, string> {
  const flags: Record<string, string> = {};
  const accepted = FLAGS[keyword] ?? [];
  for (const word of words) {
    const eq = word.indexOf('=');
    const name = (eq < 0 ? word : word.slice(0, eq)).slice(2);
    if (UNSUPPORTED_FLAGS[keyword]?.includes(name)) fail(`${keyword} --${name} is not supported by tsrun`);
    if (keyword === 'ADD' && name === 'from') fail('ADD does not accept --from (COPY --from does)');
    if (!accepted.includes(name)) {
      fail(`unknown flag: --${name} (${keyword} accepts ${accepted.length > 0 ? accepted.map((f) => `--${f}`).join(', ') : 'no flags'})`);
    }
    if (name in flags) fail(`duplicate flag specified: --${name}`);
    if (eq < 0) fail(`missing a value on flag: --${name} (write --${name}=value)`);
    flags[name] = word.slice(eq + 1);
  }
  if (flags.network !== undefined && !['default', 'none', 'host'].includes(flags.network)) {
    fail(`invalid network mode ${JSON.stringify(flags.network)} for RUN --network (default, none or host)`);
  }
  return flags;
}

/** The decoded JSON form, or undefined for the shell form. */
function jsonForm(keyword: string, args: string, fail: (message: string) => never): string[] | undefined {
  if (JSON_FORMS.has(keyword)) return jsonArray(args, fail);
  if (keyword === 'HEALTHCHECK') {
    const blank = /\s/.exec(args);
    return blank ? jsonArray(args.slice(blank.index), fail) : undefined;
  }
  return undefined;
}

/**
 * Docker's rule: text that starts with `[` and parses as a JSON array is the exec form; an
 * array with something other than strings is an error; anything else is the shell form
 * (`RUN [ -f x ] && y` is a shell command).
 */
function jsonArray(text: string, fail: (message: string) => never): string[] | undefined {
  const trimmed = text.replace(/^\s+/, '');
  if (!trimmed.startsWith('[')) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch {
    return undefined;
  }
  if (!Array.isArray(value)) return undefined;
  if (!value.every((v) => typeof v === 'string')) fail('when using JSON array syntax, arrays must be comprised of strings only');
  return value as string[];
}

// ---- Heredocs -------------------------------------------------------------------------------

/** RUN, COPY and ADD in shell form, also as an ONBUILD trigger. */
function takesHeredocs(raw: RawInstruction, escape: string, fail: (message: string) => never): boolean {
  if (raw.keyword !== 'ONBUILD') return HEREDOC_FORMS.has(raw.keyword) && raw.json === undefined;
  const trigger = splitLine(raw.args, escape);
  const keyword = trigger.keyword.toUpperCase();
  return HEREDOC_FORMS.has(keyword) && jsonForm(keyword, trigger.args, fail) === undefined;
}

/**
 * The bodies of the heredocs the line names (`<<EOF`, `<<-EOF`, `<<"EOF"`, several in
 * order), each read from the lines that follow up to its terminator line.
 */
function readHeredocs(logical: string, lines: Lines, fail: (message: string) => never): Heredoc[] {
  let words: string[];
  try {
    // Quotes and escapes kept, so `"<<EOF"` is a quoted word, not a heredoc; `\` as in docker.
    words = lex(logical, () => undefined, { escape: '\\', rawQuotes: true, rawEscapes: true, skipUnset: true }).words;
  } catch {
    return []; // docker ignores a line it cannot split here; the instruction's own checks report it
  }
  const heredocs: Heredoc[] = [];
  for (const word of words) {
    const h = heredocWord(word);
    if (!h) continue;
    let body = '';
    for (;;) {
      const line = lines.next();
      if (line === undefined) fail(`unterminated heredoc: no line ${JSON.stringify(h.name)} ends it`);
      const candidate = trimNewline(line);
      if ((h.chomp ? candidate.replace(/^\t+/, '') : candidate) === h.name) break;
      body += line;
    }
    // `<<-`: leading tabs go from every line, as in sh.
    heredocs.push({ name: h.name, body: h.chomp ? body.replace(/^\t+/gm, '') : body, quoted: h.quoted });
  }
  return heredocs;
}
