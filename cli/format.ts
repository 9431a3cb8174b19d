// Output shapes docker users know: aligned tables, `--format json`, and Go templates
// `--format '{{.ID}}\t{{.Names}}'` (a `table` prefix keeps the header).
import { expandTextEscapes, renderGoTemplate } from './template.js';
import { writeOut } from './out.js';

export function formatTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 3))).join('').trimEnd()).join('\n') + '\n';
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
