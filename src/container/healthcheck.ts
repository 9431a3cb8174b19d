// Healthchecks, daemonless. This file is the TypeScript half: docker's --health-* flags, merged
// over the image's HEALTHCHECK field by field into the container's Config.Healthcheck; what the
// monitor is told to run (health-plan.ts; native/health.c runs the probe inside the container on
// schedule and keeps the results); and the health file it writes, which `inspect` shows as
// State.Health and `ps` as "(healthy)".
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { flagError, TsrunError } from '../errors.js';
import type { ImageRunConfig } from '../oci/types.js';
import { goDuration } from '../sys/go-duration.js';

/** docker's HealthConfig: Test is ["CMD", ...], ["CMD-SHELL", "cmd"], ["NONE"], or [] (the image's); durations in ns, 0 or absent: the default. */
export type HealthConfig = NonNullable<ImageRunConfig['Healthcheck']>;

export interface HealthFlagValues {
  healthCmd?: string;
  healthInterval?: string;
  healthTimeout?: string;
  healthStartPeriod?: string;
  healthRetries?: string;
  /** commander's --no-healthcheck: false when given. */
  healthcheck?: boolean;
}

/** The defaults docker fills in when a field is 0 (daemon/health.go). */
export const HEALTH_DEFAULTS = { interval: 30e9, timeout: 30e9, startPeriod: 0, retries: 3 } as const;
/** docker refuses a non-zero duration under this (container.MinimumDuration). */
const MINIMUM_NS = 1e6;
/** What the monitor takes (native/plan.c): 2^62 ns is 146 years; a billion failures in a row. */
const MAXIMUM_NS = 2 ** 62;
const MAX_RETRIES = 2 ** 30;

function durationFlag(flag: string, value: string | undefined): number {
  if (value === undefined) return 0;
  const ns = goDuration(value);
  if (ns === undefined) throw flagError(flag, value, 'expected a duration such as 30s, 1m30s or 500ms');
  if (ns < 0) throw flagError(flag, value, 'cannot be negative');
  if (ns !== 0 && ns < MINIMUM_NS) throw flagError(flag, value, 'cannot be less than 1ms');
  if (ns > MAXIMUM_NS) throw flagError(flag, value, 'too long');
  return ns;
}

/**
 * The flags' healthcheck, as docker's CLI makes it (opts/parse.go): undefined when no --health-*
 * flag was given; --no-healthcheck is ["NONE"] and conflicts with the others; --health-cmd runs
 * with /bin/sh -c (CMD-SHELL). Fields left 0 or absent come from the image, then the defaults.
 */
export function parseHealthFlags(f: HealthFlagValues): HealthConfig | undefined {
  const interval = durationFlag('--health-interval', f.healthInterval);
  const timeout = durationFlag('--health-timeout', f.healthTimeout);
  const startPeriod = durationFlag('--health-start-period', f.healthStartPeriod);
  let retries = 0;
  if (f.healthRetries !== undefined) {
    if (!/^[+-]?\d+$/.test(f.healthRetries) || Math.abs(Number(f.healthRetries)) > 2 ** 31 - 1) throw flagError('--health-retries', f.healthRetries, 'not a whole number');
    retries = Number(f.healthRetries);
    if (retries < 0) throw flagError('--health-retries', f.healthRetries, 'cannot be negative');
    if (retries > MAX_RETRIES) throw flagError('--health-retries', f.healthRetries, `at most ${MAX_RETRIES}`);
  }
  // As docker's CLI: a flag left at its zero value is no setting at all.
  const cmd = f.healthCmd ?? '';
  const given = cmd !== '' || interval !== 0 || timeout !== 0 || startPeriod !== 0 || retries !== 0;
  if (f.healthcheck === false) {
    if (given) throw new TsrunError('EINVAL_FLAG', 'conflicting options: --no-healthcheck and --health-* options');
    return { Test: ['NONE'] };
  }
  if (!given) return undefined;
  return {
    Test: cmd !== '' ? ['CMD-SHELL', cmd] : [],
    ...(interval && { Interval: interval }),
    ...(timeout && { Timeout: timeout }),
    ...(startPeriod && { StartPeriod: startPeriod }),
    ...(retries && { Retries: retries }),
  };
}

/**
 * The container's Config.Healthcheck: the flags' fields over the image's, one by one, as
 * docker's daemon merges them (daemon/commit.go merge): an empty Test or a 0 takes the image's.
 */
export function mergeHealthcheck(untrusted: unknown, flags: HealthConfig | undefined): HealthConfig | undefined {
  const image = imageHealthcheck(untrusted);
  if (!flags) return image && { ...image };
  if (!image) return flags;
  const pick = (k: 'Interval' | 'Timeout' | 'StartPeriod' | 'StartInterval' | 'Retries') => (flags[k] ? flags[k] : image[k]);
  const merged: HealthConfig = { Test: flags.Test.length > 0 ? flags.Test : image.Test };
  for (const k of ['Interval', 'Timeout', 'StartPeriod', 'StartInterval', 'Retries'] as const) {
    const v = pick(k);
    if (v) merged[k] = v;
  }
  return merged;
}

/**
 * An image's Healthcheck as it may come (any JSON: an image is hostile until checked), as one
 * the monitor can run: Test an array of strings, else none (docker's is `omitempty`: a commit of
 * a container given only --health-interval has no Test); a duration or retries that is not a
 * whole number in the monitor's range counts as unset (docker's default).
 */
export function imageHealthcheck(raw: unknown): HealthConfig | undefined {
  if (raw === null || typeof raw !== 'object') return undefined;
  const h = raw as Record<string, unknown>;
  const test = Array.isArray(h.Test) && h.Test.every((t) => typeof t === 'string') ? (h.Test as string[]) : [];
  const out: HealthConfig = { Test: [...test] };
  const limits = { Interval: MAXIMUM_NS, Timeout: MAXIMUM_NS, StartPeriod: MAXIMUM_NS, StartInterval: MAXIMUM_NS, Retries: MAX_RETRIES } as const;
  for (const [k, max] of Object.entries(limits) as Array<[keyof typeof limits, number]>) {
    const v = h[k];
    if (typeof v === 'number' && Number.isSafeInteger(v) && v > 0 && v <= max) out[k] = v;
  }
  return out;
}

/** What the monitor runs: the probe's argv and its schedule with docker's defaults; undefined when none runs. */
export interface Probe {
  argv: string[];
  interval: number;
  timeout: number;
  startPeriod: number;
  retries: number;
}

export function probeOf(h: HealthConfig | undefined): Probe | undefined {
  if (!h || !Array.isArray(h.Test) || h.Test.length === 0 || h.Test[0] === 'NONE') return undefined;
  const [kind, ...rest] = h.Test;
  let argv: string[];
  // docker puts the image's SHELL in front; tsrun's record keeps none, so it is always /bin/sh -c.
  if (kind === 'CMD-SHELL' && rest.length > 0) argv = ['/bin/sh', '-c', ...rest];
  else if (kind === 'CMD' && rest.length > 0) argv = rest;
  else return undefined; // as docker: an unknown kind runs nothing
  return {
    argv,
    interval: h.Interval || HEALTH_DEFAULTS.interval,
    timeout: h.Timeout || HEALTH_DEFAULTS.timeout,
    startPeriod: h.StartPeriod || HEALTH_DEFAULTS.startPeriod,
    retries: h.Retries || HEALTH_DEFAULTS.retries,
  };
}

export type HealthStatus = 'starting' | 'healthy' | 'unhealthy';

/** State.Health, as docker's JSON names it. */
export interface Health {
  Status: HealthStatus;
  FailingStreak: number;
  Log: Array<{ Start: string; End: string; ExitCode: number; Output: string }>;
}

/** The file the monitor keeps the results in (native/health.c), in the container's directory. */
export function healthFile(containerDir: string): string {
  return join(containerDir, 'health.json');
}

/** The monitor's health file; undefined before the first start (it is replaced whole, by rename). */
export function readHealth(containerDir: string): Health | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(healthFile(containerDir), 'utf8'));
  } catch {
    return undefined;
  }
  // Only what the monitor writes is believed (a crash mid-disk-full, a hand edit: unknown).
  const h = raw as Partial<Health> | null;
  if (!h || !['starting', 'healthy', 'unhealthy'].includes(h.Status as string) || !Number.isSafeInteger(h.FailingStreak) || !Array.isArray(h.Log)) return undefined;
  const log = h.Log.filter(
    (e) => e !== null && typeof e === 'object' && typeof e.Start === 'string' && typeof e.End === 'string' && Number.isSafeInteger(e.ExitCode) && typeof e.Output === 'string',
  );
  return { Status: h.Status!, FailingStreak: h.FailingStreak!, Log: log };
}

/** ps's words after "Up 5 seconds": docker's Health.String(). */
export function healthSuffix(h: Health | undefined): string {
  if (!h) return '';
  return h.Status === 'starting' ? ' (health: starting)' : ` (${h.Status})`;
}
