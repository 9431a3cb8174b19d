// The healthcheck's plan for the monitor: apart from healthcheck.ts, so that ps and inspect,
// which read a container's health, do not load the process steps (and seccomp) it is made of.
import { processSteps, type HealthPlan } from '../namespaces/plan.js';
import type { OciSpec } from '../namespaces/spec.js';
import { probeOf, type HealthConfig } from './healthcheck.js';

/**
 * What the monitor needs to run the healthcheck: the schedule, and the probe's steps — those
 * that make the container's own process who it is (rlimits, no_new_privs, seccomp, user,
 * capabilities, working directory, environment), without a terminal, ending in the probe's exec.
 * The monitor joins the container's namespaces and cgroups before them (native/health.c).
 */
export function healthPlan(spec: OciSpec, healthcheck: HealthConfig | undefined, file: string): HealthPlan | undefined {
  const probe = probeOf(healthcheck);
  if (!probe) return undefined;
  const steps = processSteps({ ...spec.process, terminal: false, args: probe.argv }, spec.linux.seccomp);
  return { file, interval: probe.interval, timeout: probe.timeout, startPeriod: probe.startPeriod, retries: probe.retries, steps };
}
