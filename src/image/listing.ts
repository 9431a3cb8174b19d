// What `tsrun images` shows, computed as data (the CLI only prints it): docker's rows,
// familiar names, 12-digit IDs, "2 hours ago", and sizes in decimal units ("4.26MB").
import { familiarRepository, parseReference } from '../registry-client/reference.js';
import { humanDuration } from '../sys/human-duration.js';
import type { StoredImage } from './store.js';
import type { Digest } from './types.js';

export { humanDuration };

export interface ImageRow {
  repository: string;
  tag: string;
  /** sha256:<64 hex> */
  id: Digest;
  /** The manifest digest when the row's repository has one recorded, else "<none>". */
  digest: string;
  created: Date | undefined;
  size: number;
}

/**
 * docker's rows: one per name; an image with no name is one `<none>` `<none>` row (or
 * `repo` `<none>` when it was pulled by digest). Rows are per image ID, as docker lists them:
 * several manifests of one ID (the same image pulled and loaded) make no duplicate rows.
 * `images` comes newest first (ImageStore.list) and keeps that order.
 */
export function imageRows(images: StoredImage[], filter?: string): ImageRow[] {
  const want = filter === undefined ? undefined : parseFilter(filter);
  const byId = new Map<Digest, StoredImage[]>();
  for (const img of images) byId.set(img.id, [...(byId.get(img.id) ?? []), img]);

  const rows: ImageRow[] = [];
  for (const [id, group] of byId) {
    const created = group[0]!.config.created ? new Date(group[0]!.config.created) : undefined;
    const base = { id, created: created && !Number.isNaN(created.getTime()) ? created : undefined, size: group[0]!.size };
    const repoDigests = [...new Set(group.flatMap((i) => i.repoDigests))];
    const digestFor = (repo: string): string => repoDigests.find((rd) => rd.startsWith(`${repo}@`))?.slice(repo.length + 1) ?? '<none>';
    const candidates: Array<{ repo: string; familiar: string; tag: string }> = [];
    for (const name of new Set(group.flatMap((i) => i.names))) {
      const ref = parseReference(name);
      candidates.push({ repo: `${ref.registry}/${ref.repository}`, familiar: familiarRepository(ref), tag: ref.tag ?? '<none>' });
    }
    if (candidates.length === 0) {
      for (const rd of repoDigests) {
        const ref = parseReference(rd);
        const repo = `${ref.registry}/${ref.repository}`;
        if (!candidates.some((c) => c.repo === repo)) candidates.push({ repo, familiar: familiarRepository(ref), tag: '<none>' });
      }
    }
    if (candidates.length === 0 && !want) rows.push({ ...base, repository: '<none>', tag: '<none>', digest: '<none>' });
    for (const c of candidates) {
      if (want && (c.repo !== want.repository || (want.tag !== undefined && c.tag !== want.tag))) continue;
      rows.push({ ...base, repository: c.familiar, tag: c.tag, digest: digestFor(c.repo) });
    }
  }
  return rows;
}

function parseFilter(filter: string): { repository: string; tag?: string } {
  const ref = parseReference(filter);
  // `tsrun images busybox` lists every tag; `busybox:1.36` only that one.
  const explicitTag = /:[\w][\w.-]*$/.test(filter.split('/').pop() ?? '');
  return { repository: `${ref.registry}/${ref.repository}`, ...(explicitTag && ref.tag !== undefined && { tag: ref.tag }) };
}

/** docker.io/library/busybox:latest → busybox:latest (what docker prints). */
export function familiarName(name: string): string {
  const ref = parseReference(name);
  let s = familiarRepository(ref);
  if (ref.tag !== undefined) s += `:${ref.tag}`;
  if (ref.digest !== undefined) s += `@${ref.digest}`;
  return s;
}

export function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}

/**
 * go-units HumanSizeWithPrecision(size, digits): decimal units; docker prints 3 significant
 * digits in `images` and progress bars, 4 (go-units HumanSize) in `system df` and `cp`.
 */
export function humanSize(bytes: number, digits = 3): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];
  let size = bytes;
  let i = 0;
  while (size >= 1000 && i < units.length - 1) {
    size /= 1000;
    i++;
  }
  return `${goG(size, digits)}${units[i]}`;
}

/** Go's %.{p}g: shortest of fixed and exponent form, trailing zeros dropped. */
function goG(x: number, p: number): string {
  if (x === 0) return '0';
  const [mantissa, expText] = x.toExponential(p - 1).split('e') as [string, string];
  const exp = Number(expText);
  const trim = (s: string): string => (s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s);
  if (exp < -4 || exp >= p) return `${trim(mantissa)}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  return trim(x.toFixed(Math.max(0, p - 1 - exp)));
}

export function createdSince(created: Date | undefined, now: Date): string {
  return created ? `${humanDuration(now.getTime() - created.getTime())} ago` : 'N/A';
}

/** Go's time.Time.String() for UTC, which docker's JSON output uses: 2024-01-01 00:00:00 +0000 UTC. */
export function goTimeString(d: Date | undefined): string {
  if (!d) return 'N/A';
  return `${d.toISOString().slice(0, 19).replace('T', ' ')} +0000 UTC`;
}
