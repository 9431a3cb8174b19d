// Go's time.ParseDuration: docker's duration flags and the Dockerfile's HEALTHCHECK options are
// Go durations, and must accept and refuse exactly what docker does.

const UNIT_NS: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** `1h30m`, `1.5s`, `500ms`, `-1s`, `0`, in nanoseconds; undefined if invalid (`10`, `1x`, ``). */
export function goDuration(s: string): number | undefined {
  const m = /^([+-]?)(.*)$/.exec(s)!;
  const sign = m[1] === '-' ? -1 : 1;
  let rest = m[2]!;
  if (rest === '0') return 0;
  if (rest === '') return undefined;
  let total = 0;
  while (rest !== '') {
    const part = /^(\d*)(?:\.(\d*))?([^\d.]+)/.exec(rest);
    if (!part || (part[1] === '' && (part[2] ?? '') === '')) return undefined;
    const unit = UNIT_NS[part[3]!];
    if (unit === undefined) return undefined;
    total += Number(`${part[1] || '0'}.${part[2] || '0'}`) * unit;
    rest = rest.slice(part[0].length);
  }
  return sign * Math.round(total);
}
