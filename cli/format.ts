// Output shapes docker users know: aligned tables, `--format json`, and Go templates
// `--format '{{.ID}}\t{{.Names}}'` (a `table` prefix keeps the header).
import { expandTextEscapes, renderGoTemplate } from './template.js';
import { writeOut } from './out.js';
import { formatTable } from './table.js';

const GO_SHORT_ESCAPES: Record<string, string> = { '\x07': 'a', '\b': 'b', '\f': 'f', '\n': 'n', '\r': 'r', '\t': 't', '\v': 'v' };
/** Go's unicode.IsPrint beyond ASCII: letters, marks, numbers, punctuation, symbols. */
const GO_PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u;

/**
 * Go's strconv.Quote, as docker's ps shows a container's command: in double quotes, with `"`
 * and `\` escaped and anything unprintable (an image's CMD may hold terminal escapes) written
 * as \n, \x1b, \u200b, \U000e0001; a lone surrogate as Go writes an invalid rune, \ufffd.
 */
export function goQuote(text: string): string {
  let out = '"';
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if ((cp >= 0x20 && cp < 0x7f) || (cp >= 0x80 && GO_PRINTABLE.test(ch))) out += ch;
    else if (GO_SHORT_ESCAPES[ch] !== undefined) out += `\\${GO_SHORT_ESCAPES[ch]}`;
    else if (cp < 0x20 || cp === 0x7f) out += `\\x${cp.toString(16).padStart(2, '0')}`;
    else if (cp >= 0xd800 && cp <= 0xdfff) out += '\\ufffd';
    else if (cp < 0x10000) out += `\\u${cp.toString(16).padStart(4, '0')}`;
    else out += `\\U${cp.toString(16).padStart(8, '0')}`;
  }
  return `${out}"`;
}

/** Renders a Go template (cli/template.ts) for one row; \t and \n escapes as docker's. */
export function renderTemplate(template: string, row: unknown): string {
  return renderGoTemplate(expandTextEscapes(template), row);
}

/** Print rows as a table (header = keys), JSON lines, or a template. */
export function printRows(rows: Array<Record<string, unknown>>, columns: Array<[header: string, field: string]>, format?: string): void {
  if (format === 'json') {
    for (const r of rows) writeOut(JSON.stringify(r) + '\n');
    return;
  }
  if (format && format !== 'table') {
    const tableMode = format.startsWith('table ');
    const template = tableMode ? format.slice(6) : format;
    if (tableMode) {
      const header = template.replace(/\{\{\s*\.(\w+)\s*\}\}/g, (_, f: string) => columns.find(([, field]) => field === f)?.[0] ?? f.toUpperCase());
      const lines = [header.replace(/\\t/g, '\t'), ...rows.map((r) => renderTemplate(template, r))];
      writeOut(formatTable(lines.map((l) => l.split('\t'))));
      return;
    }
    for (const r of rows) writeOut(renderTemplate(template, r) + '\n');
    return;
  }
  const table = [columns.map(([h]) => h), ...rows.map((r) => columns.map(([, f]) => String(r[f] ?? '')))];
  writeOut(formatTable(table));
}
