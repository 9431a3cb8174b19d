// The part of Go's text/template that `docker ... --format` users write:
//   {{.State.Status}}   {{json .Config}}   {{index .Config.Labels "app"}}   {{.Name | upper}}
//   {{range .Mounts}}{{.Source}} {{end}}   {{if .State.Running}}up{{else}}down{{end}}
//   {{- trims -}} whitespace, and docker's extra functions (json, join, split, lower, upper,
//   title, pad, truncate). Values print as Go's fmt does: [a b], map[k:v], <nil>, <no value>.
// No npm package implements it well enough (the maintained ones stop at fields and range), and
// the whole grammar used here fits on a page.
import { TsrunError } from '../src/errors.js';

type Arg =
  | { kind: 'field'; from: 'dot' | { variable: string } | Pipe; path: string[]; raw: string }
  | { kind: 'literal'; value: unknown }
  | { kind: 'ident'; name: string }
  | { kind: 'pipe'; pipe: Pipe };
type Pipe = Arg[][]; // commands joined by |
type Node =
  | { kind: 'text'; text: string }
  | { kind: 'print'; pipe: Pipe; declare?: string[] }
  | { kind: 'if' | 'with' | 'range'; pipe: Pipe; body: Node[]; otherwise: Node[]; declare?: string[] };

const NO_VALUE = Symbol('no value');

function fail(message: string): never {
  throw new TsrunError('EINVAL_FLAG', `invalid template: ${message}`);
}

/** Splits one action's text into tokens: strings, numbers, fields, |, ( and ). */
function tokenize(src: string): string[] {
  const re = /\s*("(?:[^"\\]|\\.)*"|`[^`]*`|:=|,|\||\(|\)(?:\.[\w.]+)?|\$?[\w.]*[\w$.]+|\$|\.)\s*/y;
  const out: string[] = [];
  for (re.lastIndex = 0; re.lastIndex < src.length;) {
    const start = re.lastIndex;
    const m = re.exec(src);
    if (!m) fail(`unexpected "${src.slice(start).trim()}" in {{${src}}}`);
    out.push(m[1]!);
  }
  return out;
}

function parseArg(tok: string, rest: string[]): Arg {
  if (tok === '(') {
    const inner: string[] = [];
    for (let depth = 1; ; ) {
      const t = rest.shift();
      if (t === undefined) fail('unclosed (');
      if (t === '(') depth++;
      if (t.startsWith(')') && --depth === 0) {
        // (index .Mounts 0).Source: a field of the parenthesized value
        const pipe = parsePipe(inner);
        if (t === ')') return { kind: 'pipe', pipe };
        return { kind: 'field', from: pipe, path: t.slice(2).split('.').filter(Boolean), raw: `(…)${t.slice(1)}` };
      }
      inner.push(t);
    }
  }
  if (tok.startsWith('"')) return { kind: 'literal', value: stringLiteral(tok) };
  if (tok.startsWith('`')) return { kind: 'literal', value: tok.slice(1, -1) };
  if (/^-?\d+(\.\d+)?$/.test(tok)) return { kind: 'literal', value: Number(tok) };
  if (tok === 'true' || tok === 'false') return { kind: 'literal', value: tok === 'true' };
  if (tok === 'nil') return { kind: 'literal', value: null };
  if (tok.startsWith('.')) return { kind: 'field', from: 'dot', path: tok.split('.').filter(Boolean), raw: tok };
  if (tok.startsWith('$')) {
    // $ is the data the template was given; $name a variable; either may be followed by .Fields.
    const [name, ...path] = tok.slice(1).split('.');
    return { kind: 'field', from: { variable: name ?? '' }, path: path.filter(Boolean), raw: tok };
  }
  if (/^\w+$/.test(tok)) return { kind: 'ident', name: tok };
  fail(`unexpected "${tok}"`);
}

/** A Go interpreted string literal: JSON's escapes, plus \xHH, \a, \v and octal \NNN. */
function stringLiteral(tok: string): string {
  const json = tok
    .replace(/\\\\|\\x([0-9a-fA-F]{2})|\\([0-7]{3})|\\a|\\v/g, (m, hex: string | undefined, oct: string | undefined) => {
      if (m === '\\\\') return m;
      const code = hex ? parseInt(hex, 16) : oct ? parseInt(oct, 8) : m === '\\a' ? 7 : 11;
      return `\\u${code.toString(16).padStart(4, '0')}`;
    });
  try {
    return JSON.parse(json) as string;
  } catch {
    fail(`bad string literal ${tok}`);
  }
}

/** `$v := pipe` or `$k, $v := pipe`: the variable names, and the tokens of the pipeline. */
function declarations(tokens: string[]): { declare?: string[]; rest: string[] } {
  const at = tokens.indexOf(':=');
  if (at < 0) return { rest: tokens };
  const names = tokens.slice(0, at).filter((t) => t !== ',');
  if (names.length === 0 || names.length > 2 || !names.every((n) => /^\$\w+$/.test(n))) fail(`bad declaration ${tokens.slice(0, at).join(' ')} :=`);
  return { declare: names.map((n) => n.slice(1)), rest: tokens.slice(at + 1) };
}

function parsePipe(tokens: string[]): Pipe {
  const pipe: Pipe = [[]];
  const rest = [...tokens];
  while (rest.length > 0) {
    const tok = rest.shift()!;
    if (tok === '|') {
      if (pipe.at(-1)!.length === 0) fail('missing command before |');
      pipe.push([]);
    } else {
      pipe.at(-1)!.push(parseArg(tok, rest));
    }
  }
  if (pipe.at(-1)!.length === 0) fail('empty command');
  return pipe;
}

/** Template text → a tree of text, prints and blocks. */
export function parseTemplate(template: string): Node[] {
  const root: Node[] = [];
  const stack: Array<{ node: Extract<Node, { body: Node[] }>; inElse: boolean }> = [];
  const target = () => {
    const top = stack.at(-1);
    return top ? (top.inElse ? top.node.otherwise : top.node.body) : root;
  };
  const re = /\{\{(-\s)?([\s\S]*?)(\s-)?\}\}/g;
  let last = 0;
  let trimNext = false;
  for (let m; (m = re.exec(template)); last = re.lastIndex) {
    let text = template.slice(last, m.index);
    if (trimNext) text = text.trimStart();
    if (m[1]) text = text.trimEnd();
    if (text) target().push({ kind: 'text', text });
    trimNext = Boolean(m[3]);
    const action = m[2]!.trim();
    if (action.startsWith('/*')) continue; // a comment
    const tokens = tokenize(action);
    const word = tokens[0];
    if (word === 'if' || word === 'with' || word === 'range') {
      const { declare, rest } = declarations(tokens.slice(1));
      const node = { kind: word, pipe: parsePipe(rest), body: [], otherwise: [], ...(declare && { declare }) } as Extract<Node, { body: Node[] }>;
      target().push(node);
      stack.push({ node, inElse: false });
    } else if (word === 'else') {
      const top = stack.at(-1);
      if (!top || top.inElse) fail('unexpected {{else}}');
      top.inElse = true;
      if (tokens[1] === 'if') {
        // {{else if x}} is {{else}}{{if x}} … with one shared {{end}}.
        const node = { kind: 'if', pipe: parsePipe(tokens.slice(2)), body: [], otherwise: [] } as Extract<Node, { body: Node[] }>;
        top.node.otherwise.push(node);
        stack.push({ node, inElse: false });
        (node as { chained?: boolean }).chained = true;
      }
    } else if (word === 'end') {
      if (!stack.length) fail('unexpected {{end}}');
      while ((stack.pop()!.node as { chained?: boolean }).chained);
    } else {
      const { declare, rest } = declarations(tokens);
      target().push({ kind: 'print', pipe: parsePipe(rest), ...(declare && { declare }) });
    }
  }
  if (stack.length) fail(`unclosed {{${stack.at(-1)!.node.kind}}}`);
  let tail = template.slice(last);
  if (trimNext) tail = tail.trimStart();
  if (tail) root.push({ kind: 'text', text: tail });
  return root;
}

/** Go's fmt %v for JSON-shaped values. */
export function goString(v: unknown): string {
  if (v === NO_VALUE || v === undefined) return '<no value>';
  if (v === null) return '<nil>';
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return `[${v.map(goString).join(' ')}]`;
  if (typeof v === 'object') {
    const entries = Object.entries(v as object).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `map[${entries.map(([k, x]) => `${k}:${goString(x)}`).join(' ')}]`;
  }
  return String(v);
}

function truthy(v: unknown): boolean {
  if (v === NO_VALUE || v === undefined || v === null || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v as object).length > 0;
  return true;
}

function printf(format: string, args: unknown[]): string {
  let i = 0;
  return format.replace(/%([-+ 0#]*)(\d*)(?:\.(\d+))?([svdqtf%])/g, (_, flags: string, width: string, prec: string | undefined, verb: string) => {
    if (verb === '%') return '%';
    const a = args[i++];
    let s =
      verb === 'q' ? JSON.stringify(goString(a))
      : verb === 'f' ? Number(a).toFixed(prec === undefined ? 6 : Number(prec))
      : verb === 'd' ? String(Math.trunc(Number(a)))
      : goString(a);
    if (verb === 's' && prec !== undefined) s = s.slice(0, Number(prec));
    const w = Number(width || 0);
    return flags.includes('-') ? s.padEnd(w) : s.padStart(w, flags.includes('0') && verb !== 's' ? '0' : ' ');
  });
}

const compare = (a: unknown, b: unknown) => (typeof a === 'number' && typeof b === 'number' ? a - b : String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0);

const FUNCS: Record<string, (...args: unknown[]) => unknown> = {
  // docker's own (cli/templates)
  json: (v) => JSON.stringify(v === NO_VALUE ? null : v),
  join: (list, sep) => (Array.isArray(list) ? list.map(goString).join(String(sep)) : goString(list)),
  split: (s, sep) => String(s).split(String(sep)),
  lower: (s) => goString(s).toLowerCase(),
  upper: (s) => goString(s).toUpperCase(),
  title: (s) => goString(s).replace(/\b\w/g, (c) => c.toUpperCase()),
  pad: (s, before, after) => ' '.repeat(Number(before)) + goString(s) + ' '.repeat(Number(after)),
  truncate: (s, n) => [...goString(s)].slice(0, Number(n)).join(''),
  // Go's built-ins
  index: (v, ...keys) => {
    let cur = v;
    // A missing key is the map's zero value in Go: docker's maps hold strings, so "".
    for (const k of keys) cur = cur !== null && typeof cur === 'object' && Object.hasOwn(cur, String(k)) ? (cur as Record<string, unknown>)[String(k)] : '';
    return cur;
  },
  len: (v) => (typeof v === 'string' || Array.isArray(v) ? v.length : v && typeof v === 'object' ? Object.keys(v).length : fail(`len of ${goString(v)}`)),
  print: (...a) => a.map(goString).join(''),
  println: (...a) => a.map(goString).join(' ') + '\n',
  printf: (f, ...a) => printf(String(f), a),
  not: (v) => !truthy(v),
  and: (...a) => a.find((x) => !truthy(x)) ?? a.at(-1),
  or: (...a) => a.find(truthy) ?? a.at(-1),
  eq: (a, ...b) => b.some((x) => a === x),
  ne: (a, b) => a !== b,
  lt: (a, b) => compare(a, b) < 0,
  le: (a, b) => compare(a, b) <= 0,
  gt: (a, b) => compare(a, b) > 0,
  ge: (a, b) => compare(a, b) >= 0,
};

interface Scope {
  dot: unknown;
  root: unknown;
  vars: Map<string, unknown>;
}

function field(scope: Scope, arg: Extract<Arg, { kind: 'field' }>): unknown {
  let cur: unknown;
  if (arg.from === 'dot') cur = scope.dot;
  else if (Array.isArray(arg.from)) cur = evalPipe(scope, arg.from);
  else if (arg.from.variable === '') cur = scope.root;
  else if (scope.vars.has(arg.from.variable)) cur = scope.vars.get(arg.from.variable);
  else fail(`undefined variable "$${arg.from.variable}"`);
  for (const [i, key] of arg.path.entries()) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) {
      fail(`can't evaluate field ${key} in ${goString(cur)} (at <${arg.raw}>)`);
    }
    if (!Object.hasOwn(cur, key)) {
      // A misspelt top-level field is an error that lists the right ones; a missing map key
      // deeper down is Go's <no value>.
      if (i === 0 && cur === scope.root) fail(`no field "${key}" (fields: ${Object.keys(cur).join(', ')})`);
      return NO_VALUE;
    }
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

function evalArg(scope: Scope, arg: Arg): unknown {
  switch (arg.kind) {
    case 'field':
      return field(scope, arg);
    case 'literal':
      return arg.value;
    case 'pipe':
      return evalPipe(scope, arg.pipe);
    case 'ident':
      fail(`function "${arg.name}" used as a value`);
  }
}

function evalPipe(scope: Scope, pipe: Pipe): unknown {
  let prev: unknown = NO_VALUE;
  for (const [n, cmd] of pipe.entries()) {
    const [head, ...rest] = cmd;
    if (head!.kind === 'ident') {
      const fn = FUNCS[head!.name] ?? fail(`function "${head!.name}" not defined`);
      const args = rest.map((a) => evalArg(scope, a));
      if (n > 0) args.push(prev); // a | f x  is  f x a
      prev = fn(...args);
    } else {
      const value = evalArg(scope, head!);
      if (typeof value === 'function') {
        // A method of the row, as docker's `{{.Label "com.example.team"}}` in ps.
        const args = rest.map((a) => evalArg(scope, a));
        if (n > 0) args.push(prev);
        prev = (value as (...a: unknown[]) => unknown)(...args);
      } else {
        if (rest.length > 0 || n > 0) fail(`can't give arguments to a value (${head!.kind === 'field' ? head!.raw : 'a literal'})`);
        prev = value;
      }
    }
  }
  return prev;
}

function execute(nodes: Node[], scope: Scope, out: string[]): void {
  // A block's variables end with it (Go's scoping): each block works on its own copy.
  const inner = (s: Scope, bind: Record<string, unknown> = {}): Scope => ({ ...s, vars: new Map([...s.vars, ...Object.entries(bind)]) });
  for (const node of nodes) {
    if (node.kind === 'text') out.push(node.text);
    else if (node.kind === 'print') {
      const v = evalPipe(scope, node.pipe);
      if (node.declare) scope.vars.set(node.declare[0]!, v); // {{$x := ...}} prints nothing
      else out.push(goString(v));
    } else {
      const v = evalPipe(scope, node.pipe);
      const bind = (value: unknown): Record<string, unknown> => (node.declare ? { [node.declare.at(-1)!]: value } : {});
      if (node.kind === 'if') execute(truthy(v) ? node.body : node.otherwise, inner(scope, bind(v)), out);
      else if (node.kind === 'with') execute(truthy(v) ? node.body : node.otherwise, truthy(v) ? { ...inner(scope, bind(v)), dot: v } : inner(scope), out);
      else {
        // Arrays by index, maps by sorted key; `$k, $v :=` binds both, `$v :=` the value.
        const entries: Array<[unknown, unknown]> = Array.isArray(v)
          ? v.map((x, i) => [i, x])
          : v && typeof v === 'object' ? Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]]) : [];
        if (entries.length === 0) execute(node.otherwise, inner(scope), out);
        for (const [k, item] of entries) {
          const vars = node.declare?.length === 2 ? { [node.declare[0]!]: k, [node.declare[1]!]: item } : bind(item);
          execute(node.body, { ...inner(scope, vars), dot: item }, out);
        }
      }
    }
  }
}

/** `\t` and `\n` typed in the text of a --format (shells do not expand them) become real ones,
 * as docker's table formatter does; inside actions they belong to string literals. */
export function expandTextEscapes(template: string): string {
  return template.replace(/(\{\{[\s\S]*?\}\})|\\t|\\n/g, (m, action: string | undefined) => action ?? (m === '\\t' ? '\t' : '\n'));
}

/** Renders `template` for `data`, as docker does for --format. */
export function renderGoTemplate(template: string, data: unknown): string {
  const out: string[] = [];
  execute(parseTemplate(template), { dot: data, root: data, vars: new Map() }, out);
  return out.join('');
}
