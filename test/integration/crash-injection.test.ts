// kill -9 at any moment (issue 19): every command that changes state is killed — at each named
// crash point it reaches (TSRUN_CRASH_AT, src/sys/crash.ts), and after a spread of delays — and
// then, every time:
//   1. the next command, whichever it is, works and tells the truth: `ps -a` lists every
//      container, `inspect` agrees with the kernel (processes, freezer, cgroups, veths,
//      namespaces, addresses), images, networks and volumes list;
//   2. `system check` may report what the crash left; `--repair` repairs it; a second check
//      says the store is consistent and no stopped container holds a cgroup or a network. What
//      the killed command left can be used (the container it made starts, its address and
//      names are free), and the command works again;
//   3. a user's cleanup (rm -f, prunes, rmi of what was made) leaves the host and the store
//      exactly as they were before the round;
//   4. a command that could not run again on what the crash left (a pull, a build) runs again
//      from there, and its cleanup too leaves nothing.
// CI runs each named point once and one kill by time per command; TSRUN_CRASH_ROUNDS=<n> runs
// n kills by time per command and every (command, point) pair.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CRASH_POINTS, type CrashPoint } from '../../src/sys/crash.js';
import { RELEASE_GRACE_MS } from '../../src/netns/released.js';
import { cli, disagreements, heldWhileStopped, hostObjects, idsInStore, leaksOf, releasedSettled, storeDebris, storeTree, type Inspected, type Outcome, type RunOptions } from './helpers/crash.js';
import { describePrivileged, repoRoot, TestEnv } from './helpers/env.js';
import { pushLayout, startRegistry, type TestRegistry } from './helpers/registry.js';

const LONG = process.env.TSRUN_CRASH_ROUNDS !== undefined;
/** Kills by time per command. */
const TIMED_ROUNDS = Math.max(0, Number(process.env.TSRUN_CRASH_ROUNDS ?? 1));

const IMAGE = 'busybox';
const NET = 'crashnet';
const VOLUME = 'crashvol';

/** What a command's round is given: the CLI, its fixtures, and a stopwatch for its normal runs. */
interface Round {
  reg: TestRegistry;
  /** The crash point of a named round, while it is being killed there. */
  point?: CrashPoint;
  /** tsrun, which must succeed. */
  ok(args: string[], opts?: { crashAt?: string }): Promise<Outcome>;
  /** The command under test, uncrashed, which must succeed: timed, for the kills by time. */
  timed(args: string[]): Promise<Outcome>;
  /** `inspect` of one container; undefined when there is no such container. */
  inspect(name: string): Promise<Inspected | undefined>;
  /** There is a network or a volume of this name. */
  lists(what: 'network' | 'volume', name: string): Promise<boolean>;
  /** The container just started got the lowest address that no other running container holds. */
  expectLowestFreeAddress(name: string): Promise<void>;
}

/**
 * A command under test. It works again after the crash either `again`, on the repaired store
 * (what the killed command left is used: the container it made starts, the name it held is
 * free), or, without `again`, from the store as the cleanup left it: `setup`, the command, and
 * `verify` of what it made.
 */
interface Command {
  name: string;
  /** The named points this command is the one to test (each point has exactly one). */
  points: CrashPoint[];
  /** Points it reaches too, tested with TSRUN_CRASH_ROUNDS. */
  alsoReaches?: CrashPoint[];
  setup?(r: Round): Promise<void>;
  args(r: Round): string[];
  /** Right after the kill: what only this command can leave (commit: a container frozen). */
  afterCrash?(r: Round): Promise<void>;
  again?(r: Round): Promise<void>;
  verify?(r: Round): Promise<void>;
}

/**
 * The monitor's exit command (`tsrun container cleanup`) races a `stop` or `rm -f` for the
 * container's cleanup: armed at the same point, both die there, whichever comes first.
 */
const armedLikeTheCommand = (r: Round) => (r.point?.startsWith('cleanup:') ? { crashAt: r.point } : {});

const COMMANDS: Command[] = [
  {
    name: 'run -d',
    points: ['start:network-attached', 'start:helper-started'],
    alsoReaches: ['create:begin', 'create:dir-made', 'create:before-record', 'start:state-intent', 'start:cgroup-made'],
    args: () => ['run', '-d', '--name', 'crash-run', IMAGE, 'sleep', '1000'],
    async again(r) {
      const killed = await r.inspect('crash-run');
      if (killed && !killed.State.Running) {
        await r.ok(['start', 'crash-run']);
        await r.expectLowestFreeAddress('crash-run');
      }
      // The killed one's address is free again, unless it runs.
      await r.timed(['run', '-d', '--name', 'crash-run-again', IMAGE, 'sleep', '1000']);
      await r.expectLowestFreeAddress('crash-run-again');
    },
  },
  {
    name: 'create',
    points: ['create:begin', 'create:dir-made', 'create:before-record'],
    // A user namespace of its own: a block of host ids the crash must not leak.
    args: () => ['create', '--userns', 'private', '--name', 'crash-create', IMAGE, 'sleep', '1000'],
    async again(r) {
      // Listed: it is a container, and starts. Not listed: its name is free again.
      const listed = (await r.inspect('crash-create')) !== undefined;
      await r.timed(['create', '--userns', 'private', '--name', listed ? 'crash-create-again' : 'crash-create', IMAGE, 'sleep', '1000']);
      await r.ok(['start', 'crash-create']);
      await r.expectLowestFreeAddress('crash-create');
    },
  },
  {
    name: 'start',
    points: ['start:state-intent', 'start:cgroup-made'],
    alsoReaches: ['start:network-attached', 'start:helper-started'],
    setup: (r) => r.ok(['create', '--name', 'crash-start', IMAGE, 'sleep', '1000']).then(() => {}),
    args: () => ['start', 'crash-start'],
    async again(r) {
      if (!(await r.inspect('crash-start'))?.State.Running) await r.timed(['start', 'crash-start']);
      await r.expectLowestFreeAddress('crash-start');
    },
  },
  {
    name: 'stop',
    points: ['cleanup:cgroup-removed', 'cleanup:network-detached'],
    setup: (r) => r.ok(['run', '-d', '--init', '--name', 'crash-stop', IMAGE, 'sleep', '1000'], armedLikeTheCommand(r)).then(() => {}),
    args: () => ['stop', 'crash-stop'],
    async again(r) {
      if (!(await r.inspect('crash-stop'))?.State.Running) await r.ok(['start', 'crash-stop']);
      await r.timed(['stop', 'crash-stop']);
      expect((await r.inspect('crash-stop'))?.State.Status).toBe('exited');
    },
  },
  {
    name: 'rm -f',
    points: ['remove:renamed'],
    alsoReaches: ['cleanup:cgroup-removed', 'cleanup:network-detached'],
    setup: (r) => r.ok(['run', '-d', '--init', '--name', 'crash-rm', IMAGE, 'sleep', '1000'], armedLikeTheCommand(r)).then(() => {}),
    args: () => ['rm', '-f', 'crash-rm'],
    async again(r) {
      if (await r.inspect('crash-rm')) await r.timed(['rm', '-f', 'crash-rm']);
      await r.ok(['create', '--name', 'crash-rm', IMAGE, 'true']); // its name is free
    },
  },
  {
    name: 'rename',
    points: ['rename:reserved'],
    setup: (r) => r.ok(['create', '--name', 'crash-old', IMAGE, 'true']).then(() => {}),
    args: () => ['rename', 'crash-old', 'crash-new'],
    async again(r) {
      if (await r.inspect('crash-old')) await r.timed(['rename', 'crash-old', 'crash-new']);
      expect((await r.inspect('crash-new'))?.Name).toBe('/crash-new');
      await r.ok(['create', '--name', 'crash-old', IMAGE, 'true']); // the old name is free
    },
  },
  {
    name: 'commit',
    points: ['commit:paused', 'commit:layer-written'],
    setup: (r) => r.ok(['run', '-d', '--init', '--name', 'crash-commit', IMAGE, 'sh', '-c', 'echo committed > /f && exec sleep 1000']).then(() => {}),
    args: () => ['commit', 'crash-commit', 'crash/committed:1'],
    async afterCrash(r) {
      const c = await r.inspect('crash-commit');
      // Killed while it held the container frozen: the freeze outlives it, and inspect says so.
      if (r.point === 'commit:paused') expect(c?.State).toMatchObject({ Status: 'paused', Paused: true });
      if (c?.State.Paused) {
        await r.ok(['unpause', 'crash-commit']);
        expect((await r.inspect('crash-commit'))?.State).toMatchObject({ Status: 'running', Paused: false });
      }
    },
    async again(r) {
      // A change first: a commit that made the killed one's layer again would hide it if left.
      await r.ok(['exec', 'crash-commit', 'touch', '/again']);
      await r.timed(['commit', 'crash-commit', 'crash/committed:1']);
      expect((await r.ok(['run', '--rm', '--network', 'none', 'crash/committed:1', 'cat', '/f'])).stdout).toBe('committed\n');
    },
  },
  {
    name: 'pause',
    points: [],
    setup: (r) => r.ok(['run', '-d', '--init', '--name', 'crash-pause', IMAGE, 'sleep', '1000']).then(() => {}),
    args: () => ['pause', 'crash-pause'],
    // Left as the kill left it (paused or not): the cleanup's `rm -f` must remove a paused
    // container, as docker's does.
    async verify(r) {
      expect((await r.inspect('crash-pause'))?.State).toMatchObject({ Status: 'paused', Paused: true });
    },
  },
  {
    name: 'rmi',
    points: ['rmi:untagged'],
    setup: (r) => r.ok(['load', '-q', '-i', fixtures.archive]).then(() => {}),
    args: () => ['rmi', 'crash/loaded:1'],
    async verify(r) {
      expect((await r.ok(['images', 'crash/loaded'])).stdout).not.toContain('crash/loaded');
    },
  },
  {
    name: 'pull',
    points: ['pull:layers-stored', 'pull:before-record'],
    args: (r) => ['pull', '-q', `${r.reg.host}/crash/pulled:latest`],
    async verify(r) {
      await r.ok(['run', '--rm', '--network', 'none', `${r.reg.host}/crash/pulled:latest`, 'true']);
    },
  },
  {
    name: 'push',
    points: [],
    setup: (r) => r.ok(['tag', IMAGE, `${r.reg.host}/crash/pushed:latest`]).then(() => {}),
    args: (r) => ['push', '-q', `${r.reg.host}/crash/pushed:latest`],
  },
  {
    name: 'load',
    points: ['load:before-record'],
    args: () => ['load', '-q', '-i', fixtures.archive],
    async verify(r) {
      await r.ok(['run', '--rm', '--network', 'none', 'crash/loaded:1', 'true']);
    },
  },
  {
    name: 'network create',
    points: [],
    args: () => ['network', 'create', '-o', `bridge=${fixtures.bridge}`, '--subnet', fixtures.subnet, NET],
    async verify(r) {
      await r.ok(['run', '--rm', '--network', NET, IMAGE, 'true']);
    },
  },
  {
    name: 'network rm',
    points: ['network-rm:bridge-removed'],
    async setup(r) {
      await r.ok(['network', 'create', '-o', `bridge=${fixtures.bridge}`, '--subnet', fixtures.subnet, NET]);
      await r.ok(['run', '--rm', '--network', NET, IMAGE, 'true']); // its bridge and rules exist
    },
    args: () => ['network', 'rm', NET],
    async again(r) {
      if (await r.lists('network', NET)) await r.timed(['network', 'rm', NET]);
      // The name and the bridge can be had again.
      await r.ok(['network', 'create', '-o', `bridge=${fixtures.bridge}`, '--subnet', fixtures.subnet, NET]);
      await r.ok(['run', '--rm', '--network', NET, IMAGE, 'true']);
    },
  },
  {
    name: 'network connect',
    points: ['connect:endpoint-written', 'connect:veth-made'],
    async setup(r) {
      await r.ok(['network', 'create', '-o', `bridge=${fixtures.bridge}`, '--subnet', fixtures.subnet, NET]);
      await r.ok(['run', '-d', '--name', 'crash-connect', IMAGE, 'sleep', '1000']);
    },
    args: () => ['network', 'connect', NET, 'crash-connect'],
    async again(r) {
      // Connected or not, as the truth check found it: either way it can be connected now (to the
      // network made again if a `network prune` after the kill took it as unused).
      if (!(await r.lists('network', NET))) await r.ok(['network', 'create', '-o', `bridge=${fixtures.bridge}`, '--subnet', fixtures.subnet, NET]);
      if ((await r.inspect('crash-connect'))?.NetworkSettings.Networks[NET]) await r.ok(['network', 'disconnect', NET, 'crash-connect']);
      await r.timed(['network', 'connect', NET, 'crash-connect']);
      expect((await r.inspect('crash-connect'))?.NetworkSettings.Networks[NET]?.IPAddress).toMatch(/^10\.214\./);
    },
  },
  {
    name: 'volume create',
    points: ['volume-create:built'],
    args: () => ['volume', 'create', VOLUME],
    async verify(r) {
      await r.ok(['volume', 'inspect', VOLUME]);
    },
  },
  {
    name: 'volume rm',
    points: ['volume-rm:renamed'],
    async setup(r) {
      await r.ok(['volume', 'create', VOLUME]);
      await r.ok(['run', '--rm', '--network', 'none', '-v', `${VOLUME}:/data`, IMAGE, 'sh', '-c', 'echo old > /data/x']);
    },
    args: () => ['volume', 'rm', VOLUME],
    async again(r) {
      if (await r.lists('volume', VOLUME)) await r.timed(['volume', 'rm', VOLUME]);
      await r.ok(['volume', 'create', VOLUME]);
      // A new volume of the old name has none of the old one's data.
      expect((await r.ok(['run', '--rm', '--network', 'none', '-v', `${VOLUME}:/data`, IMAGE, 'ls', '-A', '/data'])).stdout).toBe('');
    },
  },
  {
    name: 'build',
    points: ['build:before-record'],
    alsoReaches: ['create:begin', 'create:dir-made', 'create:before-record', 'start:state-intent', 'start:cgroup-made', 'start:network-attached', 'start:helper-started', 'cleanup:cgroup-removed', 'cleanup:network-detached', 'remove:renamed'],
    args: () => ['build', '-q', '-t', 'crash/built:1', fixtures.context],
    async verify(r) {
      expect((await r.ok(['run', '--rm', '--network', 'none', 'crash/built:1', 'cat', '/built'])).stdout).toBe('built\n');
    },
  },
];

/**
 * The first command after a kill, in turn: the next command may be any one, and must work. A
 * `run -d` gets an address while the killed command's may still be recorded; a `network prune`
 * takes the bridge down under whatever the crash left.
 */
const NEXT = [
  ['ps', '-a'],
  ['run', '-d', '--name', 'crash-next', IMAGE, 'sleep', '1000'],
  ['images'],
  ['network', 'prune', '-f'],
  ['system', 'df'],
  ['volume', 'ls'],
];

/** Made in beforeAll; the table above reads them when its rounds run. */
const fixtures = { archive: '', context: '', bridge: '', subnet: '' };

type Plan = { command: Command; point: CrashPoint } | { command: Command; kill: number };
const plans: Plan[] = [
  ...COMMANDS.flatMap((command) => command.points.map((point) => ({ command, point }))),
  ...(LONG ? COMMANDS.flatMap((command) => (command.alsoReaches ?? []).map((point) => ({ command, point }))) : []),
  ...COMMANDS.flatMap((command) => Array.from({ length: TIMED_ROUNDS }, (_, kill) => ({ command, kill }))),
];

describePrivileged('crash injection: kill -9 at any moment, then the truth and a clean host', () => {
  let env: TestEnv;
  let reg: TestRegistry;
  let work: string;
  /** How long each command takes when nobody kills it: its quickest uncrashed run. */
  const durations = new Map<string, number>();
  /** Image names present before any round: what the cleanup keeps. */
  let baseImages: string[] = [];
  /** A round that failed half-way leaves its things: the next one starts with a cleanup. */
  let dirty = false;
  /** Kills by time: how many met the command still running (the rest came after it ended). */
  const landed = { hit: 0, late: 0 };

  const t = (args: string[], opts: RunOptions = {}) => cli(env, args, opts);
  const ok = async (args: string[], opts: { crashAt?: string } = {}) => {
    const r = await t(args, opts);
    if (r.status !== 0) throw new Error(`tsrun ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr}`);
    return r;
  };
  const containerIds = async () => (await ok(['ps', '-aq', '--no-trunc'])).stdout.split('\n').filter(Boolean);
  const imageNames = async () =>
    (await ok(['images', '--format', 'json'])).stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { Repository: string; Tag: string; ID: string })
      .map((i) => (i.Tag === '<none>' ? i.ID : `${i.Repository}:${i.Tag}`));
  const inspectAll = async (ids: string[]): Promise<Inspected[]> => (ids.length ? (JSON.parse((await ok(['inspect', ...ids])).stdout) as Inspected[]) : []);
  /** Directories with a container.json: the containers, as the store has them. */
  const containersOnDisk = () => {
    const dir = join(env.root, 'containers');
    return (existsSync(dir) ? readdirSync(dir) : []).filter((d) => /^[0-9a-f]{64}$/.test(d) && existsSync(join(dir, d, 'container.json'))).sort();
  };
  const bridges = () => [env.env.TSRUN_BRIDGE!, fixtures.bridge];

  /** The store's paths, and its images.json: what a round compares its cleanup with. */
  const snapshot = () => ({ tree: storeTree(env.root), images: readFileSync(join(env.root, 'images.json'), 'utf8') });
  let pristine = { tree: new Set<string>(), images: '' };

  /**
   * What a user does to get their host back: rm -f of every container, network prune, and —
   * where the store shows volumes or images made `since` then — volume prune, rmi of the
   * images, image and builder prune. Commands that do not depend on each other run at once (the
   * 2-core VM runs two). `thawFirst`: unpause what is paused first — not what a user should
   * need, but what a round that failed, or a command timed before its round, leaves behind.
   */
  const cleanUp = async (opts: { thawFirst?: boolean; since?: ReturnType<typeof snapshot> } = {}) => {
    const since = opts.since ?? pristine;
    const ids = containersOnDisk();
    if (opts.thawFirst) for (const c of await inspectAll(ids)) if (c.State.Paused) await ok(['unpause', c.Id]);
    const now = snapshot();
    const changed = (under: string) => [...now.tree].some((p) => p.startsWith(under) && !since.tree.has(p)) || [...since.tree].some((p) => p.startsWith(under) && !now.tree.has(p));
    const images = changed('layers/') || changed('blobs/') || now.images !== since.images;
    const made = images ? (await imageNames()).filter((n) => !baseImages.includes(n)) : [];
    await Promise.all([ids.length ? ok(['rm', '-f', ...ids]) : undefined, made.length ? ok(['rmi', '-f', ...made]) : undefined]);
    await Promise.all([
      ok(['network', 'prune', '-f']),
      changed('volumes/') ? ok(['volume', 'prune', '-a', '-f']) : undefined,
      ...(images ? [ok(['image', 'prune', '-f']), ok(['builder', 'prune', '-a', '-f'])] : []),
    ]);
  };

  beforeAll(async () => {
    env = new TestEnv('crash');
    work = mkdtempSync(join(tmpdir(), 'tsrun-crash-'));
    fixtures.bridge = `${env.env.TSRUN_BRIDGE}n`;
    fixtures.subnet = `10.214.${process.pid % 250}.0/24`;
    const make = (out: string, ...args: string[]) => execFileSync(process.execPath, [join(repoRoot, 'scripts', 'make-busybox-image.mjs'), '--out', out, ...args]);
    // From an OCI layout, so that the store keeps its layers' blobs: push needs them.
    make(join(work, 'busybox'), '--format', 'oci', '--name', 'docker.io/library/busybox:latest');
    // Layer 1 is busybox's own: a pull or load shares it, and must not take it away.
    make(join(work, 'pulled'), '--format', 'oci', '--layers', '3');
    fixtures.archive = join(work, 'loaded.tar');
    make(fixtures.archive, '--format', 'docker-archive', '--layers', '2', '--name', 'crash/loaded:1');
    fixtures.context = join(work, 'context');
    mkdirSync(fixtures.context);
    writeFileSync(join(fixtures.context, 'Dockerfile'), `FROM ${IMAGE}\nRUN echo built > /built\n`);
    reg = await startRegistry({ mode: 'http' });
    await pushLayout(reg, join(work, 'pulled'), 'crash/pulled:latest');
    await ok(['load', '-q', '-i', join(work, 'busybox')]);
    // The default network's record, and the store's directories, as any first use makes them.
    await ok(['run', '--rm', IMAGE, 'true']);
    await ok(['network', 'prune', '-f']);
    baseImages = await imageNames();
    pristine = snapshot();
  }, 120_000);

  afterAll(async () => {
    if (landed.hit + landed.late > 0) console.log(`kills by time: ${landed.hit} during the command, ${landed.late} after it had ended`);
    try {
      if (env) await cleanUp({ thawFirst: true }).finally(() => env.cleanup());
    } finally {
      await reg?.stop();
      rmSync(work, { recursive: true, force: true });
    }
  }, 120_000);

  it('every named crash point is tested by a command of the table', () => {
    const tested = new Set(COMMANDS.flatMap((c) => c.points));
    expect(CRASH_POINTS.filter((p) => !tested.has(p))).toEqual([]);
    // One command is the one to test a point; the others that reach it run with TSRUN_CRASH_ROUNDS.
    expect(COMMANDS.flatMap((c) => c.points).length).toBe(tested.size);
  });

  for (const [i, plan] of plans.entries()) {
    const { command } = plan;
    const next = NEXT[i % NEXT.length]!;
    const how = 'point' in plan ? `at ${plan.point}` : `by time (${plan.kill + 1})`;
    it(`${command.name} killed ${how}, then ${next.slice(0, 2).join(' ')}`, async () => {
      // Best effort: the round that failed has said what was wrong.
      if (dirty) await cleanUp({ thawFirst: true }).catch(() => {});
      dirty = true;
      /** Every container the round made, for the host's objects named after them. */
      const seen = new Set<string>();
      const see = () => idsInStore(env.root).forEach((id) => seen.add(id));
      const before = { store: snapshot(), host: hostObjects(env, bridges(), []), leaks: new Set(await leaksOf(env, bridges(), [], 0)) };
      /** The command, uncrashed, which must succeed: timed, for the kills by time. */
      const timed = async (args: string[]) => {
        const outcome = await ok(args);
        durations.set(command.name, Math.min(outcome.ms, durations.get(command.name) ?? Infinity));
        return outcome;
      };
      const round = (point?: CrashPoint): Round => ({
        reg,
        ...(point && { point }),
        ok,
        timed,
        async inspect(name) {
          const r = await t(['inspect', name]);
          return r.status === 0 ? (JSON.parse(r.stdout) as Inspected[])[0] : undefined;
        },
        async lists(what, name) {
          if (what === 'network') return (await t(['network', 'inspect', name])).status === 0;
          return (await ok(['volume', 'ls', '-q'])).stdout.split('\n').includes(name);
        },
        async expectLowestFreeAddress(name) {
          const all = await inspectAll(containersOnDisk());
          const me = all.find((c) => c.Name === `/${name}`)!;
          const taken = new Set(all.filter((c) => c !== me && c.State.Running && c.HostConfig.NetworkMode === me.HostConfig.NetworkMode).map((c) => c.NetworkSettings.IPAddress));
          const base = me.NetworkSettings.IPAddress.split('.').slice(0, 3).join('.');
          const lowest = Array.from({ length: 250 }, (_, i) => `${base}.${i + 2}`).find((ip) => !taken.has(ip));
          expect(me.NetworkSettings.IPAddress, `${name}'s address: the lowest free one is ${lowest}`).toBe(lowest);
        },
      });
      /** The user's cleanup, then the host and the store as they were before the round. */
      const cleanUpToBefore = async (what: string) => {
        see();
        await cleanUp({ since: before.store });
        const leaks = (await leaksOf(env, bridges(), seen, RELEASE_GRACE_MS)).filter((l) => !before.leaks.has(l));
        expect(leaks, `${what}: left in the host`).toEqual([]);
        expect(diff(before.host, hostObjects(env, bridges(), seen), before.host), `${what}: this test's objects in the host`).toEqual([]);
        expect(storeDebris(env.root), `${what}: left in the store`).toEqual([]);
        expect(diff(before.store.tree, storeTree(env.root), pristine.tree), `${what}: the store`).toEqual([]);
      };
      const r = round('point' in plan ? plan.point : undefined);

      if (!('point' in plan) && !durations.has(command.name)) {
        // Never timed yet: once uncrashed, to know when to kill it.
        await command.setup?.(r);
        await timed(command.args(r));
        await cleanUp({ thawFirst: true });
      }
      await command.setup?.(r);
      see();
      // A killed container's address must be free again: released ones are let go first.
      await releasedSettled(env.root, RELEASE_GRACE_MS);

      // The kill.
      if ('point' in plan) {
        const killed = await t(command.args(r), { crashAt: plan.point });
        expect(killed.signal, `${command.name} did not reach ${plan.point}: it exited ${killed.status}: ${killed.stderr}`).toBe('SIGKILL');
      } else {
        // A spread over the second half of the command's quickest run (the golden ratio's
        // multiples mod 1 never repeat): the first is mostly Node's start-up, with nothing of
        // tsrun's to interrupt.
        const delay = durations.get(command.name)! * (0.4 + 0.55 * (((plan.kill + 1) * 0.618034) % 1));
        const killed = await t(command.args(r), { killAfterMs: delay });
        expect(killed.signal === 'SIGKILL' || killed.status === 0, `${command.name} failed on its own: ${killed.stderr}`).toBe(true);
        landed[killed.signal === 'SIGKILL' ? 'hit' : 'late']++;
      }

      // 1. The next command works, whatever it is, and tells the truth.
      see();
      await ok(next);
      const ids = await containerIds();
      see();
      expect([...ids].sort(), 'ps -a lists every container the store has').toEqual(containersOnDisk());
      const [, , , containers] = await Promise.all([ok(['images']), ok(['network', 'ls']), ok(['volume', 'ls']), inspectAll(ids)]);
      expect(containers.flatMap((c) => disagreements(c, env.cgroupParent, env.root))).toEqual([]);
      expect(sharedAddresses(containers), 'one address, one running container').toEqual([]);
      await command.afterCrash?.(r);

      // 2. The store checker: what the crash left is reported, then repaired, then gone.
      const check = await t(['system', 'check', '--format', 'json']);
      expect([0, 1], `system check: ${check.stderr}`).toContain(check.status);
      const findings = JSON.parse(check.stdout) as Array<{ kind: string; subject: string; detail: string; repaired: boolean }>;
      const repair = await t(['system', 'check', '--repair', '--format', 'json']);
      expect(repair.status, `system check --repair: ${repair.stdout}${repair.stderr}`).toBe(0);
      expect((JSON.parse(repair.stdout) as typeof findings).filter((f) => !f.repaired)).toEqual([]);
      const after = await t(['system', 'check']);
      expect({ status: after.status, stdout: after.stdout }, `after the repair of ${JSON.stringify(findings)}`).toEqual({ status: 0, stdout: 'the store is consistent\n' });
      const repaired = await inspectAll(containersOnDisk());
      expect(repaired.flatMap((c) => [...disagreements(c, env.cgroupParent, env.root), ...heldWhileStopped(c, env.cgroupParent, env.root)])).toEqual([]);
      await releasedSettled(env.root, RELEASE_GRACE_MS);
      await command.again?.(round());

      // 3. A user's cleanup: the host and the store as before.
      await cleanUpToBefore('after the crash');

      // 4. From there, the command works again, and leaves nothing after its cleanup either.
      if (!command.again) {
        await command.setup?.(round());
        await timed(command.args(r));
        await command.verify?.(round());
        await cleanUpToBefore('after the command ran again');
      }
      dirty = false;
    }, 90_000);
  }
});

/** Running containers that share an address on one network: each one's IP is its own. */
function sharedAddresses(containers: Inspected[]): string[] {
  const holders = new Map<string, string[]>();
  for (const c of containers.filter((c) => c.State.Running)) {
    for (const [network, { IPAddress }] of Object.entries(c.NetworkSettings.Networks)) {
      if (IPAddress) holders.set(`${network} ${IPAddress}`, [...(holders.get(`${network} ${IPAddress}`) ?? []), c.Name]);
    }
  }
  return [...holders].filter(([, names]) => names.length > 1).map(([key, names]) => `${key}: ${names.join(', ')}`);
}

/**
 * What came and went between two snapshots. A top-level directory of the store with nothing in
 * it is not a change: the store makes those on first use (volumes/, userns/...). What went is a
 * change only if the store had it before the first round: a round that failed may leave what
 * a later one takes away.
 */
function diff(before: Set<string>, after: Set<string>, pristine: Set<string>): string[] {
  const emptyTopDir = (p: string) => !p.includes('/') && ![...after].some((q) => q.startsWith(`${p}/`));
  const came = [...after].filter((p) => !before.has(p) && !emptyTopDir(p)).map((p) => `+ ${p}`);
  const went = [...before].filter((p) => !after.has(p) && pristine.has(p)).map((p) => `- ${p}`);
  return [...came, ...went];
}
