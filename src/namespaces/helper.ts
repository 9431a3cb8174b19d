// The TypeScript side of the native helper's protocol (drawn in native/README.md):
//
//   tsrun ── plan ──────────▶ helper ── clone(CLONE_NEW*) ──▶ child (waits)
//   tsrun ◀── pid <n> ─────── helper
//   tsrun ── go ────────────▶ helper ── release ────────────▶ child runs the steps, execve
//   tsrun ◀── started | error <step> <op> <errno> <msg>
//   tsrun ◀── exit <code> <signal>
//
// With `trace 1`, `trace <who> <step> <time> <text>` lines come in between, one per syscall.
//
// Each message gets a typed wait (`waitPid`, `waitStarted`, `waitExit`) instead of raw lines.
import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';
import { TsrunError } from '../errors.js';
import { reapIfGone, shutdownChannel, spawnHelper, watchText, writeAll } from '../sys/libc.js';
import { helperPath } from '../sys/native-build.js';
import { decodeField, serializePlan, type Plan } from './plan.js';

/** One line of the helper's trace: a syscall, strace-style (native/trace.c). */
export interface TraceLine {
  who: 'monitor' | 'child';
  /** The plan step that made it, from 1; 0 for the monitor and the child's own start. */
  step: number;
  /** That step's name in the plan (`mount-in`, `pivot-root`, ...), for steps from 1. */
  op?: string;
  /** When the call began, in ms on performance.now()'s clock (the helper's CLOCK_MONOTONIC). */
  at?: number;
  text: string;
}

export interface ExitStatus {
  /** docker's: the exit status, or 128+n when killed by signal n. */
  code: number;
  signal: number;
  /** Set by the caller from the cgroup: the kernel's OOM killer ended the container. */
  oomKilled?: boolean;
}

type Message =
  | { kind: 'pid'; pid: number }
  | { kind: 'started' }
  | { kind: 'ready' }
  | { kind: 'hooks' }
  | { kind: 'error'; step: number; op: string; errno: string; message: string }
  | { kind: 'exit'; status: ExitStatus };

export interface LaunchIO {
  /** The container's stdio: the caller's own fds, inherited by the helper. */
  stdio: [number | 'ignore', number | 'ignore', number | 'ignore'];
  /** tsrun-runtime's --preserve-fds N: our fds 3..3+N-1 become the program's 3..3+N-1. */
  preserveFds?: number;
  onTrace?: (line: TraceLine) => void;
}

/** What HelperProcess needs of the helper's process, however it was started. */
interface HelperChild {
  readonly pid?: number | undefined;
  kill(signal: NodeJS.Signals): void;
  /** Let it outlive us: our event loop does not wait for it. */
  unref(): void;
}

/** The helper's control channel, as HelperProcess uses it. */
interface Channel {
  /** Text as it comes, then onEnd: at the end of file, on an error, or after destroy(). */
  listen(onText: (text: string) => void, onEnd: () => void): void;
  write(text: string): void;
  destroy(): void;
}

/**
 * Our end of the helper's socketpair, read by a thread of the addon (sys/libc.ts watchChannel)
 * rather than by a net.Socket: node:net, and Node's streams with it, would cost each `run` ~4 ms
 * to load. Writes block: they are a few lines, and the plan, which the helper reads at once.
 */
class WatchedChannel implements Channel {
  private onText: (text: string) => void = () => {};
  private readonly ends: Array<() => void> = [];
  private state: 'open' | 'shut' | 'ended' = 'open';

  private constructor(private readonly fd: number) {}

  /** Undefined without an addon that can watch, or if its thread could not start (the caller
   * then uses node:net: the fd is still its own). */
  static open(fd: number): WatchedChannel | undefined {
    const channel = new WatchedChannel(fd);
    return watchText(fd, (text) => channel.onText(text), () => channel.ended()) ? channel : undefined;
  }

  listen(onText: (text: string) => void, onEnd: () => void): void {
    this.onText = onText;
    this.onEnd(onEnd);
  }

  onEnd(fn: () => void): void {
    this.ends.push(fn);
  }

  write(text: string): void {
    // EPIPE: the helper is gone. Its end of file, or this shutdown, ends the channel.
    if (this.state === 'open' && !writeAll(this.fd, text)) this.destroy();
  }

  destroy(): void {
    if (this.state !== 'open') return;
    this.state = 'shut';
    shutdownChannel(this.fd);
  }

  /** The thread has stopped reading and the fd is closed: nothing follows. */
  private ended(): void {
    this.state = 'ended';
    for (const fn of this.ends) fn();
  }
}

/** A stream as a Channel: child_process's pipe, or a net.Socket where the addon cannot watch. */
function streamChannel(stream: Duplex): Channel {
  stream.setEncoding('utf8');
  return {
    listen(onText, onEnd) {
      stream.on('data', onText);
      stream.on('close', onEnd);
      stream.on('error', onEnd);
    },
    write: (text) => void stream.write(text),
    destroy: () => void stream.destroy(),
  };
}

/**
 * The helper started by posix_spawnp (sys/libc.ts): no fork of Node, which takes 7-8 ms of the
 * event loop on a VM. Reaped when its channel closes if it has ended by then; one that goes on
 * (a detached container's monitor, a restart) is left to outlive us, as with child_process.
 */
function spawnedHelper(io: LaunchIO, args: string[]): { child: HelperChild; channel: Channel } | undefined {
  const spawned = spawnHelper(helperPath(), args, io.stdio, io.preserveFds ?? 0);
  if (!spawned) return undefined;
  const { pid } = spawned;
  // Once reaped, its pid may be another process's: no signal goes there any more.
  let reaped = false;
  const reap = () => (reaped ||= reapIfGone(pid));
  const closed = () => {
    // Its end of the channel closes as it exits: reap it now, or soon after (not a restarting
    // monitor, which closes it and goes on, nor a released one: they outlive us).
    if (reap()) return;
    const retry = setInterval(() => reap() && clearInterval(retry), 50).unref();
    setTimeout(() => clearInterval(retry), 2000).unref();
  };
  let channel: Channel;
  const watched = WatchedChannel.open(spawned.channel);
  if (watched) {
    watched.onEnd(closed);
    channel = watched;
  } else {
    const { Socket } = createRequire(import.meta.url)('node:net') as typeof import('node:net');
    const socket = new Socket({ fd: spawned.channel, readable: true, writable: true });
    socket.on('close', closed);
    channel = streamChannel(socket);
  }
  return {
    channel,
    child: {
      pid,
      kill: (signal) => {
        if (!reaped) process.kill(pid, signal);
      },
      unref: () => {},
    },
  };
}

/** A running helper: the monitor of one container. */
export class HelperProcess {
  private readonly queue: Message[] = [];
  private waiter: ((m: Message | undefined) => void) | undefined;
  private closed = false;
  private buffered = '';

  private constructor(
    readonly child: HelperChild,
    private readonly channel: Channel,
    private readonly onTrace: ((line: TraceLine) => void) | undefined,
    /** The plan's step names: steps[n - 1] is step n, as the helper numbers them. */
    private readonly ops: readonly string[],
  ) {
    channel.listen((text) => this.receive(text), () => this.deliver(undefined));
  }

  /** Start the helper and hand it the plan. */
  static launch(plan: Plan, io: LaunchIO): HelperProcess {
    const extra = Array.from({ length: io.preserveFds ?? 0 }, (_, i) => 3 + i);
    const args = extra.length > 0 ? ['--preserve-fds', String(extra.length)] : [];
    const ops = plan.steps.map(([op]) => op);
    let spawned;
    try {
      spawned = spawnedHelper(io, args);
    } catch (err) {
      // As child_process's 'error': the first wait says the helper could not be started.
      const none: Channel = { listen: () => {}, write: () => {}, destroy: () => {} };
      const helper = new HelperProcess({ pid: undefined, kill: () => {}, unref: () => {} }, none, io.onTrace, ops);
      helper.fail(err as Error);
      return helper;
    }
    if (spawned) {
      const helper = new HelperProcess(spawned.child, spawned.channel, io.onTrace, ops);
      spawned.channel.write(serializePlan(plan));
      return helper;
    }
    // Without the addon: node:child_process, loaded only here (it loads net, dgram and more).
    const { spawn } = createRequire(import.meta.url)('node:child_process') as typeof import('node:child_process');
    const child = spawn(helperPath(), args, {
      // fd 3 is the plan's socket: the preserved ones follow it, at 4.. in the helper
      stdio: [...io.stdio, 'pipe', ...extra],
      // Its own session: the terminal's Ctrl-C reaches tsrun, which forwards it once.
      detached: true,
    });
    const pipe = child.stdio[3] as Duplex | null;
    if (!pipe) throw new TsrunError('EHELPER', 'the native helper has no control channel');
    const channel = streamChannel(pipe);
    const helper = new HelperProcess(child, channel, io.onTrace, ops);
    child.on('error', (err) => helper.fail(err));
    channel.write(serializePlan(plan));
    return helper;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  async waitPid(): Promise<number> {
    const m = await this.next('pid');
    if (m.kind !== 'pid') throw this.unexpected(m, 'pid');
    return m.pid;
  }

  go(): void {
    this.channel.write('go\n');
  }

  /** Resolves once the container's process has called execve. */
  async waitStarted(): Promise<void> {
    const m = await this.next('started');
    if (m.kind !== 'started') throw this.unexpected(m, 'started');
  }

  /** Runtime mode: the child waits at its `hooks` step (mounts made, before pivot_root). */
  async waitHooks(): Promise<void> {
    const m = await this.next('hooks');
    if (m.kind !== 'hooks') throw this.unexpected(m, 'hooks');
  }

  /** The hooks ran: let the child go on. */
  hooksDone(): void {
    this.channel.write('hooks-done\n');
  }

  /** Runtime mode (`create`): the container is made and waits for `start`; the helper has left. */
  async waitReady(): Promise<void> {
    const m = await this.next('ready');
    if (m.kind !== 'ready') throw this.unexpected(m, 'ready');
  }

  async waitExit(): Promise<ExitStatus> {
    const m = await this.next('exit');
    if (m.kind !== 'exit') throw this.unexpected(m, 'exit');
    return m.status;
  }

  /** Forward a signal to the monitor, which passes it on to the container. */
  signal(sig: NodeJS.Signals): void {
    try {
      this.child.kill(sig);
    } catch {
      // already gone
    }
  }

  /** Let the helper outlive us (detached containers). */
  release(): void {
    this.channel.destroy();
    this.child.unref();
  }

  private fail(err: Error): void {
    this.closed = true;
    this.failure = err;
    this.deliver(undefined);
  }

  private failure: Error | undefined;

  private receive(chunk: string): void {
    this.buffered += chunk;
    let nl: number;
    while ((nl = this.buffered.indexOf('\n')) >= 0) {
      const line = this.buffered.slice(0, nl);
      this.buffered = this.buffered.slice(nl + 1);
      this.parse(line);
    }
  }

  private parse(line: string): void {
    const [kind, ...raw] = line.split(' ');
    const f = raw.map(decodeField);
    switch (kind) {
      case 'trace':
        return this.trace(f);
      case 'pid':
        return this.deliver({ kind: 'pid', pid: Number(f[0]) });
      case 'started':
        return this.deliver({ kind: 'started' });
      case 'ready':
        return this.deliver({ kind: 'ready' });
      case 'hooks':
        return this.deliver({ kind: 'hooks' });
      case 'error':
        return this.deliver({ kind: 'error', step: Number(f[0]), op: f[1] ?? '?', errno: f[2] ?? '?', message: f.slice(3).join(' ') });
      case 'exit':
        return this.deliver({ kind: 'exit', status: { code: Number(f[0]), signal: Number(f[1] ?? 0) } });
      default:
        this.fail(new Error(`unexpected message from the helper: ${JSON.stringify(line)}`));
    }
  }

  /** `trace <who> <step> <time> <text>`: the time is the helper's CLOCK_MONOTONIC in ns. */
  private trace(f: string[]): void {
    if (!this.onTrace) return;
    const step = Number(f[1]);
    const op = step > 0 ? this.ops[step - 1] : undefined;
    this.onTrace({
      who: f[0] === 'monitor' ? 'monitor' : 'child',
      step,
      ...(op !== undefined && { op }),
      at: monotonicToPerformance(Number(f[2])),
      text: f.slice(3).join(' '),
    });
  }

  private deliver(m: Message | undefined): void {
    if (m === undefined) this.closed = true;
    else this.queue.push(m);
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      w(this.queue.shift());
    }
  }

  private next(expecting: string): Promise<Message> {
    const m = this.queue.shift();
    if (m) return m.kind === 'error' ? Promise.reject(stepError(m)) : Promise.resolve(m);
    if (this.closed) return Promise.reject(this.closedError(expecting));
    return new Promise((resolve, reject) => {
      this.waiter = (msg) => {
        if (!msg) reject(this.closedError(expecting));
        else if (msg.kind === 'error') reject(stepError(msg));
        else resolve(msg);
      };
    });
  }

  private closedError(expecting: string): TsrunError {
    const why = this.failure ? `: ${this.failure.message}` : '';
    return new TsrunError('EHELPER', `the native helper stopped before reporting "${expecting}"${why}`, { cause: this.failure });
  }

  private unexpected(m: Message, expecting: string): TsrunError {
    return new TsrunError('EHELPER', `the native helper sent "${m.kind}" while tsrun waited for "${expecting}"`);
  }
}

/**
 * CLOCK_MONOTONIC nanoseconds (the helper's clock) → ms on performance.now()'s clock. Node's
 * hrtime is CLOCK_MONOTONIC on Linux and performance.now() counts from a fixed hrtime, so the
 * offset between the two never changes.
 */
function monotonicToPerformance(ns: number): number {
  clockOffsetMs ??= Number(process.hrtime.bigint()) / 1e6 - performance.now();
  return ns / 1e6 - clockOffsetMs;
}
let clockOffsetMs: number | undefined;

/** A failed step becomes docker's exit codes: 127 command not found, 126 not executable. */
function stepError(m: Extract<Message, { kind: 'error' }>): TsrunError {
  // wait-start (tsrun-runtime create) fails as exec would: it checks the same program first.
  if (m.op === 'exec' || m.op === 'wait-start') {
    if (m.errno === 'ENOENT') return new TsrunError('ENOTFOUND_EXEC', `failed to start the container: ${m.message}`);
    if (['EACCES', 'ENOEXEC', 'EISDIR', 'EPERM'].includes(m.errno)) return new TsrunError('ENOEXEC', `failed to start the container: ${m.message}`);
  }
  return new StepError(m.op, m.errno, `failed to start the container: step ${m.step} (${m.op}): ${m.message} (${m.errno})`);
}

/** A launch step that failed: which one, and its errno name. */
export class StepError extends TsrunError {
  constructor(
    readonly op: string,
    readonly errno: string,
    message: string,
  ) {
    super('ESTEP', message);
  }
}
