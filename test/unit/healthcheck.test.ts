// Healthchecks as data: docker's --health-* flags, the merge over the image's HEALTHCHECK, the
// probe the monitor is given (schedule and steps), its plan lines, and ps's words.
import { describe, expect, it } from 'vitest';
import { healthSuffix, mergeHealthcheck, parseHealthFlags, probeOf } from '../../src/container/healthcheck.js';
import { healthPlan } from '../../src/container/health-plan.js';
import { goDuration as parseGoDuration } from '../../src/sys/go-duration.js';
import { buildPlan, serializePlan } from '../../src/namespaces/plan.js';
import { createSpec } from '../../src/namespaces/spec.js';
import type { ContainerOptions } from '../../src/namespaces/options.js';
import { specContext } from './spec-context.js';

describe('parseGoDuration', () => {
  it('reads Go durations in ns', () => {
    expect(parseGoDuration('300ms')).toBe(300e6);
    expect(parseGoDuration('1m30s')).toBe(90e9);
    expect(parseGoDuration('1.5s')).toBe(1.5e9);
    expect(parseGoDuration('2h')).toBe(7200e9);
    expect(parseGoDuration('10us')).toBe(10e3);
    expect(parseGoDuration('0')).toBe(0);
    expect(parseGoDuration('-1s')).toBe(-1e9);
  });
  it('refuses what Go refuses', () => {
    for (const bad of ['10', '', 's', '1x', '1.5', 'ms1']) expect(parseGoDuration(bad), bad).toBeUndefined();
  });
});

describe('parseHealthFlags', () => {
  it('gives nothing without a flag, or with flags at their zero values (as docker\'s CLI)', () => {
    expect(parseHealthFlags({})).toBeUndefined();
    expect(parseHealthFlags({ healthcheck: true })).toBeUndefined();
    expect(parseHealthFlags({ healthInterval: '0s', healthRetries: '0', healthCmd: '' })).toBeUndefined();
  });
  it('--health-cmd is CMD-SHELL; durations in ns; only what was set', () => {
    expect(parseHealthFlags({ healthCmd: 'curl -f localhost', healthInterval: '5s', healthRetries: '2' })).toEqual({
      Test: ['CMD-SHELL', 'curl -f localhost'], Interval: 5e9, Retries: 2,
    });
    expect(parseHealthFlags({ healthTimeout: '1s', healthStartPeriod: '1m' })).toEqual({ Test: [], Timeout: 1e9, StartPeriod: 60e9 });
  });
  it('--no-healthcheck is NONE, and conflicts with the others', () => {
    expect(parseHealthFlags({ healthcheck: false })).toEqual({ Test: ['NONE'] });
    expect(() => parseHealthFlags({ healthcheck: false, healthRetries: '2' })).toThrow(/--no-healthcheck and --health-\* options/);
  });
  it('validates as docker does: units, no negatives, nothing under 1ms but 0', () => {
    expect(() => parseHealthFlags({ healthInterval: '10' })).toThrow(/invalid argument "10" for "--health-interval" flag/);
    expect(() => parseHealthFlags({ healthTimeout: '-1s' })).toThrow(/"--health-timeout" flag: cannot be negative/);
    expect(() => parseHealthFlags({ healthStartPeriod: '999us' })).toThrow(/"--health-start-period" flag: cannot be less than 1ms/);
    expect(parseHealthFlags({ healthInterval: '1ms' })).toEqual({ Test: [], Interval: 1e6 });
    expect(() => parseHealthFlags({ healthRetries: '-1' })).toThrow(/"--health-retries" flag: cannot be negative/);
    expect(() => parseHealthFlags({ healthRetries: 'x' })).toThrow(/"--health-retries" flag/);
  });
});

describe('mergeHealthcheck', () => {
  const image = { Test: ['CMD', 'check'], Interval: 5e9, Timeout: 2e9, Retries: 4 };
  it('takes each field from the flags when set, else from the image', () => {
    expect(mergeHealthcheck(image, { Test: [], Retries: 1 })).toEqual({ ...image, Retries: 1 });
    expect(mergeHealthcheck(image, { Test: ['CMD-SHELL', 'x'], StartPeriod: 1e9 })).toEqual({ ...image, Test: ['CMD-SHELL', 'x'], StartPeriod: 1e9 });
    expect(mergeHealthcheck(image, { Test: ['NONE'] })).toEqual({ ...image, Test: ['NONE'] });
  });
  it('either alone is the result', () => {
    expect(mergeHealthcheck(image, undefined)).toEqual(image);
    expect(mergeHealthcheck(undefined, { Test: ['CMD', 'a'] })).toEqual({ Test: ['CMD', 'a'] });
    expect(mergeHealthcheck(undefined, undefined)).toBeUndefined();
  });
});

describe('probeOf', () => {
  it('fills in docker\'s defaults: 30s, 30s, 0, 3', () => {
    expect(probeOf({ Test: ['CMD-SHELL', 'exit 0'] })).toEqual({ argv: ['/bin/sh', '-c', 'exit 0'], interval: 30e9, timeout: 30e9, startPeriod: 0, retries: 3 });
    expect(probeOf({ Test: ['CMD', 'check', '-v'], Interval: 1e9, Retries: 1 })).toMatchObject({ argv: ['check', '-v'], interval: 1e9, retries: 1 });
  });
  it('runs nothing for NONE, an empty Test, or an unknown kind', () => {
    for (const Test of [['NONE'], [], ['CMD'], ['WHAT', 'x']]) expect(probeOf({ Test }), Test.join()).toBeUndefined();
    expect(probeOf(undefined)).toBeUndefined();
  });
});

describe('healthPlan', () => {
  const opts: ContainerOptions = {
    args: ['sleep', '60'], env: ['A=1'], volumes: [], tmpfs: [], readOnly: false, tty: true, interactive: false, init: true, ulimits: [],
    capAdd: [], capDrop: [], privileged: false, noNewPrivileges: true, network: 'none', pid: 'private', ipc: 'private', uts: 'private',
    trace: false, remove: false, resources: {}, cgroupParent: 'tsrun', workdir: '/srv',
  };
  const image = { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers' as const, diff_ids: [] } };
  const spec = createSpec(image, opts, specContext('c'.repeat(64), '/store/containers/c/rootfs'));

  it('is the container\'s process steps without its terminal or init, ending in the probe', () => {
    const plan = healthPlan(spec, { Test: ['CMD-SHELL', 'test -e /ok'], Interval: 2e9 }, '/store/containers/c/health.json')!;
    expect(plan).toMatchObject({ file: '/store/containers/c/health.json', interval: 2e9, timeout: 30e9, startPeriod: 0, retries: 3 });
    const ops = plan.steps.map((s) => s[0]);
    expect(ops).not.toContain('console');
    expect(ops).not.toContain('init');
    expect(ops).toEqual(expect.arrayContaining(['no-new-privs', 'user', 'caps', 'chdir', 'env']));
    expect(plan.steps.find((s) => s[0] === 'chdir')).toEqual(['chdir', '/srv']);
    expect(plan.steps.at(-1)).toEqual(['exec', '/bin/sh', '/bin/sh', '-c', 'test -e /ok']);
  });

  it('goes to the monitor as a health line and health-step lines, before clone', () => {
    const plan = healthPlan(spec, { Test: ['CMD', 'true'], Interval: 2e9, Timeout: 5e8, StartPeriod: 1e9, Retries: 2 }, '/h.json')!;
    const planCtx = { storeRoot: '/store', lowerDirs: ['l/A'], upperDir: 'u', workDir: 'w', name: 'c', trace: false, interactive: false, init: false, cgroupProcs: [] };
    const text = serializePlan(buildPlan(spec, { ...planCtx, monitor: { attachStdio: false, health: plan } }, () => false));
    const lines = text.split('\n');
    expect(lines).toContain('health /h.json 2000000000 500000000 1000000000 2');
    expect(lines.indexOf('health-step exec true true')).toBeLessThan(lines.findIndex((l) => l.startsWith('clone ')));
  });

  it('is none without a probe', () => {
    expect(healthPlan(spec, { Test: ['NONE'] }, '/h.json')).toBeUndefined();
    expect(healthPlan(spec, undefined, '/h.json')).toBeUndefined();
  });
});

describe('healthSuffix', () => {
  it('says what docker ps says after "Up 5 seconds"', () => {
    expect(healthSuffix({ Status: 'starting', FailingStreak: 0, Log: [] })).toBe(' (health: starting)');
    expect(healthSuffix({ Status: 'healthy', FailingStreak: 0, Log: [] })).toBe(' (healthy)');
    expect(healthSuffix({ Status: 'unhealthy', FailingStreak: 3, Log: [] })).toBe(' (unhealthy)');
    expect(healthSuffix(undefined)).toBe('');
  });
});

describe('an image healthcheck is hostile until checked', () => {
  it('one without Test runs nothing (docker omits an empty Test: a commit of a container given only --health-interval)', () => {
    const merged = mergeHealthcheck({ Interval: 5_000_000_000 }, undefined);
    expect(merged).toEqual({ Test: [], Interval: 5_000_000_000 });
    expect(probeOf(merged)).toBeUndefined();
    // The flags' Test over it runs, with the image's interval.
    expect(probeOf(mergeHealthcheck({ Interval: 5_000_000_000 }, parseHealthFlags({ healthCmd: 'true' })))).toMatchObject({ argv: ['/bin/sh', '-c', 'true'], interval: 5_000_000_000 });
  });

  it('a Test that is not an array of strings, and numbers out of the monitor\'s range, count as unset', () => {
    for (const raw of [null, 'x', 7, { Test: 'CMD true' }, { Test: ['CMD', 1] }]) expect(probeOf(mergeHealthcheck(raw, undefined)), JSON.stringify(raw)).toBeUndefined();
    const odd = mergeHealthcheck({ Test: ['CMD', 'true'], Interval: -1, Timeout: 1.5, StartPeriod: 2 ** 63, Retries: 2 ** 31 }, undefined);
    expect(odd).toEqual({ Test: ['CMD', 'true'] });
    expect(probeOf(odd)).toMatchObject({ interval: 30e9, timeout: 30e9, startPeriod: 0, retries: 3 });
  });

  it('flags the monitor could not take are refused at create, not at start', () => {
    expect(() => parseHealthFlags({ healthInterval: '9999999999h' })).toThrow(/--health-interval.*too long/);
    expect(() => parseHealthFlags({ healthRetries: String(2 ** 30 + 1) })).toThrow(/--health-retries.*at most 1073741824/);
    expect(parseHealthFlags({ healthRetries: String(2 ** 30) })).toMatchObject({ Retries: 2 ** 30 });
  });
});
