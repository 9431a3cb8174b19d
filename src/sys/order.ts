// Sorting strings by their UTF-16 code units, as Go's sort.Strings orders docker's lists.
// Not localeCompare: its first call sets up ICU's collator, ~8 ms of a `ps` on a small VM.

/** For sort(): ISO timestamps, names, paths. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
