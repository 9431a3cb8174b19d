// ps, stats and info: every container with what docker's `ps` shows of it. Apart from inspect
// (inspect.ts), which needs much more (seccomp, networks): ps starts without loading those.
import { formatPsPort } from '../netns/publish.js';
import { ContainerPaths } from './paths.js';
import { listIds, readRecord, type ContainerRecord } from './record.js';
import { observe, type Observed } from './status.js';
import { healthSuffix, probeOf, readHealth, type Health } from './healthcheck.js';
import { compareStrings } from '../sys/order.js';
import { humanDuration } from '../sys/human-duration.js';

export { humanDuration };

export interface Summary {
  id: string;
  name: string;
  image: string;
  command: string;
  created: string;
  status: Observed['status'];
  /** docker's STATUS column: "Up 3 minutes", "Exited (0) 2 seconds ago", "Created". */
  statusText: string;
  ports: string;
  exitCode: number | null;
  labels: Record<string, string>;
  /** For `ps --filter health=`: the healthcheck's status, or none. */
  health: Health['Status'] | 'none';
}

function statusText(seen: Observed, now: number, health: Health | undefined): string {
  const since = (t: string | null | undefined) => (t ? humanDuration(now - new Date(t).getTime()) : '');
  switch (seen.status) {
    case 'created':
      return 'Created';
    case 'running':
      return `Up ${since(seen.monitor?.startedAt ?? seen.state.startedAt)}${healthSuffix(health)}`;
    case 'paused':
      return `Up ${since(seen.monitor?.startedAt ?? seen.state.startedAt)} (Paused)`;
    case 'restarting':
      return `Restarting (${seen.exitCode ?? 0}) ${since(seen.monitor?.finishedAt)} ago`;
    default:
      return `Exited (${seen.exitCode ?? 0}) ${since(seen.monitor?.finishedAt ?? seen.state.finishedAt)} ago`;
  }
}

export function summarize(record: ContainerRecord, seen: Observed, now = Date.now(), storeRoot?: string): Summary {
  const health = storeRoot === undefined ? undefined : healthOf(storeRoot, record, seen);
  const command = [record.path, ...record.args].join(' ');
  const ports = seen.status === 'running' || seen.status === 'paused'
    ? (seen.state.network?.ports ?? []).map(formatPsPort).join(', ')
    : '';
  return {
    id: record.id,
    name: record.name,
    image: record.image,
    command,
    created: record.created,
    status: seen.status,
    statusText: statusText(seen, now, health),
    ports,
    exitCode: seen.exitCode,
    labels: record.labels ?? {},
    health: health?.Status ?? 'none',
  };
}

/**
 * State.Health: what the monitor's health file says, for a container with a healthcheck that
 * has started; absent otherwise, as docker's. Before the monitor's first write: starting.
 */
export function healthOf(storeRoot: string, record: ContainerRecord, seen: Observed): Health | undefined {
  if (!probeOf(record.options.healthcheck) || seen.state.startedAt === null) return undefined;
  const health = readHealth(new ContainerPaths(storeRoot, record.id).dir) ?? { Status: 'starting', FailingStreak: 0, Log: [] };
  // Not running: unhealthy, as the monitor writes at the end of a run, even where it was killed
  // before it could (its last word would say healthy of a dead container).
  const live = seen.status === 'running' || seen.status === 'paused' || seen.status === 'restarting';
  return live ? health : { ...health, Status: 'unhealthy' };
}

/** Each container of the store, read and observed, one at a time (in no order). */
function* eachContainer(storeRoot: string): Generator<{ paths: ContainerPaths; record: ContainerRecord; seen: Observed }> {
  for (const id of listIds(storeRoot)) {
    const paths = new ContainerPaths(storeRoot, id);
    const record = readRecord(paths);
    if (record) yield { paths, record, seen: observe(paths) };
  }
}

/**
 * ps's listing: every container summarized as soon as it is read, newest first, so that only
 * the summaries stay in memory, not every record and state (which the young generation's
 * scavenges would copy over and over: ~10 ms with 200 containers). `orphaned` as observe's.
 */
export function listSummaries(storeRoot: string, now = Date.now()): Array<Summary & { orphaned: boolean }> {
  const out: Array<Summary & { orphaned: boolean }> = [];
  for (const { record, seen } of eachContainer(storeRoot)) out.push({ ...summarize(record, seen, now, storeRoot), orphaned: seen.orphaned });
  return out.sort((a, b) => compareStrings(b.created, a.created));
}

/** Every container, newest first. */
export function listContainers(storeRoot: string): Array<{ paths: ContainerPaths; record: ContainerRecord; seen: Observed }> {
  return [...eachContainer(storeRoot)].sort((a, b) => compareStrings(b.record.created, a.record.created));
}
