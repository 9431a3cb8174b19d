// tsrun ps [-a] [-q] [-n N] [--filter k=v] [--format ...] [--no-trunc]
import type { Command } from 'commander';
import { action, collect, flagError, globalOptions, hostLimitLine } from './common.js';
import { hostLimitOf } from '../src/errors.js';
import { goQuote, printRows } from './format.js';
import { writeOut, writeErr } from './out.js';

interface PsFlags {
  all: boolean;
  quiet: boolean;
  last?: string;
  latest: boolean;
  filter: string[];
  format?: string;
  /** commander stores --no-trunc as trunc: false. */
  trunc?: boolean;
}

export function register(program: Command): void {
  const configure = (cmd: Command) =>
    cmd
      .description('List containers (running ones unless -a)')
      .option('-a, --all', 'show all containers, not only running ones', false)
      .option('-q, --quiet', 'only display container IDs', false)
      .option('-n, --last <int>', 'show the n last created containers (all states)')
      .option('-l, --latest', 'show the latest created container (all states)', false)
      .option('-f, --filter <key=value>', 'filter: status=, name= (a regular expression), ancestor=, id= (a prefix), label=key[=value], health=starting|healthy|unhealthy|none (repeatable)', collect, [])
      .option('--format <format>', 'table (default), json, or a template such as "{{.ID}}\\t{{.Names}}"')
      .option('--no-trunc', 'do not truncate IDs and commands')
      .action(action(async (flags: PsFlags, cmd: Command) => {
        const { root } = globalOptions(cmd);
        const { listSummaries, humanDuration } = await import('../src/container/list.js');
        // One line however many could not be released (a full disk says the same for each).
        const unreleased: Array<{ id: string; err: unknown }> = [];
        let listed = listSummaries(root);
        const orphaned = listed.filter((c) => c.orphaned).map((c) => c.id);
        if (orphaned.length > 0) {
          // Only then the cleanup's modules (cgroups, networks, volumes): most ps have none.
          const { reconcile } = await import('../src/container/cleanup.js');
          await reconcile(root, (id, err) => unreleased.push({ id, err }), orphaned);
          listed = listSummaries(root);
        }
        if (unreleased.length > 0) {
          const { id, err } = unreleased[0]!;
          const limit = hostLimitOf(err);
          const why = limit ? hostLimitLine(limit) : (err as Error).message;
          const more = unreleased.length > 1 ? ` (and ${unreleased.length - 1} more)` : '';
          writeErr(`tsrun: warning: could not release container ${id.slice(0, 12)}${more}: ${why}\n`);
        }
        // As docker's CLI reads them (filters.ParseFlag): an empty one is no filter; the key is
        // lower-cased, key and value trimmed.
        const filters = flags.filter.filter((f) => f !== '').map((f) => {
          const eq = f.indexOf('=');
          if (eq < 0) throw flagError('--filter', f, 'expected key=value');
          const key = f.slice(0, eq).trim().toLowerCase();
          if (!['status', 'name', 'ancestor', 'id', 'label', 'health'].includes(key)) throw flagError('--filter', f, `unknown filter "${key}" (status, name, ancestor, id, label, health)`);
          const value = f.slice(eq + 1).trim();
          if (key === 'health' && !['starting', 'healthy', 'unhealthy', 'none'].includes(value)) {
            throw flagError('--filter', f, 'health is one of starting, healthy, unhealthy, none');
          }
          if (key === 'status' && !STATUSES.includes(value)) throw flagError('--filter', f, `status is one of ${STATUSES.join(', ')}`);
          return [key, value] as const;
        });
        let last = flags.latest ? 1 : flags.last === undefined ? undefined : Number(flags.last);
        if (last !== undefined && (!Number.isInteger(last) || last < -1)) throw flagError('--last', String(flags.last), 'expected a number');
        if (last === -1) last = undefined;
        const all = flags.all || last !== undefined || filters.some(([k]) => k === 'status');
        // docker's ID filter (truncindex): a prefix names a container only if it is the one container
        // of the store, listed or not, whose ID begins so.
        const holders = new Map(filters.filter(([k]) => k === 'id').map(([, v]) => [v, listed.filter((c) => c.id.startsWith(v)).length]));
        let rows = listed
          .filter((s) => all || s.status === 'running' || s.status === 'paused' || s.status === 'restarting')
          .filter((s) => matches(filters, (k, v) =>
            k === 'status' ? s.status === v
            : k === 'name' ? nameMatches(v, s.name)
            : k === 'id' ? v !== '' && holders.get(v) === 1 && s.id.startsWith(v)
            : k === 'label' ? hasLabel(s.labels, v)
            : k === 'health' ? s.health === v
            : s.image === v || s.image.startsWith(`${v}:`),
          ));
        if (last !== undefined) rows = rows.slice(0, last);
        const trunc = (id: string) => ((flags.trunc === false) ? id : id.slice(0, 12));
        if (flags.quiet) {
          for (const r of rows) writeOut(`${trunc(r.id)}\n`);
          return;
        }
        const shown = rows.map((r) => ({
          ID: trunc(r.id),
          Image: r.image,
          // Quoted as docker quotes it: an image's CMD reaches the terminal escaped.
          Command: goQuote((flags.trunc === false) || r.command.length <= 20 ? r.command : `${r.command.slice(0, 19)}…`),
          CreatedAt: r.created,
          RunningFor: `${humanDuration(Date.now() - new Date(r.created).getTime())} ago`,
          Status: r.statusText,
          State: r.status,
          Ports: r.ports,
          Names: r.name,
          Labels: Object.entries(r.labels).map(([k, v]) => `${k}=${v}`).join(','),
          Label: (key: unknown) => r.labels[String(key)] ?? '',
        }));
        printRows(shown, [
          ['CONTAINER ID', 'ID'],
          ['IMAGE', 'Image'],
          ['COMMAND', 'Command'],
          ['CREATED', 'RunningFor'],
          ['STATUS', 'Status'],
          ['PORTS', 'Ports'],
          ['NAMES', 'Names'],
        ], flags.format);
      }));
  configure(program.command('ps'));
}

/** What docker's --filter status= takes. */
const STATUSES = ['created', 'restarting', 'running', 'removing', 'paused', 'exited', 'dead'];

/**
 * docker's rule for several filters: one of the values of a key must match (`-f status=exited
 * -f status=created` lists both), and every key must (`-f status=exited -f name=web`); labels
 * are the exception, each of them must match.
 */
function matches(filters: ReadonlyArray<readonly [string, string]>, test: (key: string, value: string) => boolean): boolean {
  const keys = new Set(filters.map(([k]) => k));
  return [...keys].every((key) => {
    const values = filters.filter(([k]) => k === key).map(([, v]) => v);
    return key === 'label' ? values.every((v) => test(key, v)) : values.some((v) => test(key, v));
  });
}

/**
 * docker's name filter: the value as it is, else as a regular expression, matched against the
 * name with and without docker's leading slash (`-f name=^web$`, `-f name=^/web$`). A value that
 * is no valid expression matches nothing, as in docker. docker's are Go's (RE2); JavaScript's
 * agree on what names need (anchors, classes, alternation, repetition), and Go's leading flags,
 * `(?i)web`, become JavaScript's.
 */
function nameMatches(value: string, name: string): boolean {
  if (value === name || value === `/${name}`) return true;
  const flags = /^\(\?([ims]+)\)/.exec(value);
  let pattern: RegExp;
  try {
    pattern = flags ? new RegExp(value.slice(flags[0].length), flags[1]) : new RegExp(value);
  } catch {
    return false;
  }
  return pattern.test(name) || pattern.test(`/${name}`);
}

/** docker's label filter: `key` (any value) or `key=value`. */
function hasLabel(labels: Record<string, string>, filter: string): boolean {
  const eq = filter.indexOf('=');
  if (eq < 0) return Object.hasOwn(labels, filter);
  return Object.hasOwn(labels, filter.slice(0, eq)) && labels[filter.slice(0, eq)] === filter.slice(eq + 1);
}
