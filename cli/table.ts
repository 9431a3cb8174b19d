// docker's tables, apart from cli/format.ts: a command that prints only a table (images, top,
// volume ls) loads this and not the template engine.
/**
 * docker's table layout (Go's tabwriter, as docker sets it: a cell is its text and 3 spaces, at
 * least 10 wide; the last column unpadded, so a line whose last cell is empty ends in blanks, as
 * docker's does): ps, images, history, network ls, volume ls, stats, `--format 'table ...'`.
 * The first row is the header; the native front's ps prints the same (native/front/ps.c).
 * `top` sets the minimum to 20, as docker's top does.
 */
export function formatTable(rows: string[][], minWidth = 10): string {
  // Widths in characters (code points), as tabwriter counts runes; not in UTF-16 units.
  const width = (cell: string) => [...cell].length;
  // A template's value may hold a tab: a line with more cells than the header, padded alike.
  const columns = Math.max(...rows.map((r) => r.length));
  const widths = Array.from({ length: columns }, (_, i) => Math.max(minWidth, ...rows.map((r) => (i < r.length - 1 ? width(r[i]!) + 3 : 0))));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c + ' '.repeat(widths[i]! - width(c)))).join('')).join('\n') + '\n';
}
