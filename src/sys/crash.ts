// Named points where a test may have tsrun killed with SIGKILL, to prove that a crash at any
// moment leaves a store the next command reads truthfully and can clean up
// (test/integration/crash-injection.test.ts). TSRUN_CRASH_AT=<name> arms one point; the
// process then dies there as a `kill -9` from outside would kill it, with no handler run.
// TSRUN_STALL_AT=<name>:<ms> holds the process there instead, so that a test can run another
// command in exactly that window (a race made certain rather than likely).
const armed = process.env.TSRUN_CRASH_AT;
const stall = /^([a-z-]+:[a-z-]+):(\d+)$/.exec(process.env.TSRUN_STALL_AT ?? '');

/** Every point, by name; what each interrupts is said where it is called. */
export const CRASH_POINTS = [
  'create:begin',
  'create:dir-made',
  'create:before-record',
  'start:state-intent',
  'start:cgroup-made',
  'start:network-attached',
  'start:helper-started',
  'cleanup:cgroup-removed',
  'cleanup:network-detached',
  'remove:renamed',
  'rename:reserved',
  'commit:paused',
  'commit:layer-written',
  'rmi:untagged',
  'pull:layers-stored',
  'pull:before-record',
  'load:before-record',
  'build:before-record',
  'network-rm:bridge-removed',
  'volume-create:built',
  'volume-rm:renamed',
  'connect:endpoint-written',
  'connect:veth-made',
] as const;
export type CrashPoint = (typeof CRASH_POINTS)[number];

export function crashPoint(name: CrashPoint): void {
  if (armed === name) process.kill(process.pid, 'SIGKILL');
  if (stall?.[1] === name) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Number(stall[2]));
}
