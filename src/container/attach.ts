// tsrun on a container's terminal, as `docker attach` is: the client of the attach socket a
// detached container's monitor serves (native/attach.c, native/README.md "Attach socket").
//
//   tsrun attach ──connect──▶ monitor ◀── PTY master ── the container's shell
//        ◀── r "1" ──────────            (every frame: type, u16 big-endian length, payload)
//        ── w rows cols ────▶  TIOCSWINSZ
//        ── i keys ─────────▶  write(master)
//        ◀── o output ────────  read(master), also to the log
//        ◀── x "code signal" ─  the container exited; then EOF
//
// The local terminal is raw while attached (every key, ^C too, goes to the container) and given
// back its mode on every way out. The detach keys (docker's ctrl-p,ctrl-q) are watched here: on
// them tsrun just closes the connection and the container runs on.
import { closeSync, existsSync, openSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createConnection, type Socket } from 'node:net';
import { basename, dirname } from 'node:path';
import { TsrunError, errnoOf } from '../errors.js';
import { cleanupContainer } from './cleanup.js';
import type { Found } from './lookup.js';
import { waitContainer, waitNotRunning } from './signals.js';

export const DEFAULT_DETACH_KEYS = 'ctrl-p,ctrl-q';

/** ctrl-@ is 0, ctrl-a 1 ... ctrl-z 26, then ctrl-[ ctrl-\ ctrl-] ctrl-^ ctrl-_ (docker's list). */
const CTRL = '@abcdefghijklmnopqrstuvwxyz[\\]^_';

/**
 * docker's --detach-keys: comma-separated keys, each `ctrl-<one of @a-z[\]^_>`, `DEL` or one
 * ASCII character ("ctrl-p,ctrl-q", "ctrl-a,x"). Undefined: docker's default. The empty string
 * turns detaching off (podman's reading; docker has none for it).
 */
export function parseDetachKeys(spec: string | undefined): Buffer {
  if (spec === undefined) return parseDetachKeys(DEFAULT_DETACH_KEYS);
  if (spec === '') return Buffer.alloc(0);
  return Buffer.from(
    spec.split(',').map((key) => {
      if (key.length === 1 && key.charCodeAt(0) < 0x80) return key.charCodeAt(0);
      if (key === 'DEL') return 0x7f;
      const m = /^ctrl-(.)$/.exec(key);
      if (m && CTRL.includes(m[1]!)) return CTRL.indexOf(m[1]!);
      throw new TsrunError('EINVAL_FLAG', `invalid argument "${spec}" for "--detach-keys" flag: unknown key "${key}" (expected ctrl-<a-z, @, [, \\, ], ^ or _>, DEL or one character, comma-separated)`);
    }),
  );
}

/**
 * Watches typed bytes for the detach sequence. Bytes that could be its start are held back until
 * the next byte shows whether they were (then nothing of it reaches the container) or not (then
 * they go on, late); it matches however the bytes are split into reads.
 */
export class DetachKeys {
  private held = 0;

  constructor(readonly keys: Buffer) {}

  /** What to pass on to the container, and whether the sequence is complete (what follows it is dropped). */
  feed(chunk: Buffer): { forward: Buffer; detach: boolean } {
    const out: number[] = [];
    for (const b of chunk) {
      if (this.held > 0 && b !== this.keys[this.held]) {
        out.push(...this.keys.subarray(0, this.held));
        this.held = 0;
      }
      if (this.keys.length > 0 && b === this.keys[this.held]) {
        if (++this.held === this.keys.length) {
          this.held = 0;
          return { forward: Buffer.from(out), detach: true };
        }
      } else {
        out.push(b);
      }
    }
    return { forward: Buffer.from(out), detach: false };
  }

  /** The input ended: what was held back goes on after all. */
  flush(): Buffer {
    const rest = this.keys.subarray(0, this.held);
    this.held = 0;
    return Buffer.from(rest);
  }
}

// ------------------------------------------------------------------------------- framing

export interface Frame {
  type: string;
  payload: Buffer;
}

/** A client's input frames carry at most this much (the monitor's limit). */
export const MAX_INPUT = 4096;

export function encodeFrame(type: string, payload: Buffer = Buffer.alloc(0)): Buffer {
  if (payload.length > 0xffff) throw new TsrunError('EINTERNAL', `attach frame of ${payload.length} bytes`);
  return Buffer.concat([Buffer.from([type.charCodeAt(0), payload.length >> 8, payload.length & 0xff]), payload]);
}

export function windowFrame(rows: number, cols: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt16BE(Math.min(rows, 0xffff), 0);
  b.writeUInt16BE(Math.min(cols, 0xffff), 2);
  return encodeFrame('w', b);
}

/** Cuts a byte stream into frames. */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Frame[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const frames: Frame[] = [];
    while (this.buf.length >= 3) {
      const len = this.buf.readUInt16BE(1);
      if (this.buf.length < 3 + len) break;
      frames.push({ type: String.fromCharCode(this.buf[0]!), payload: this.buf.subarray(3, 3 + len) });
      this.buf = this.buf.subarray(3 + len);
    }
    return frames;
  }
}

// ---------------------------------------------------------------------------- connection

export interface WindowSize {
  rows: number;
  cols: number;
}

export type TerminalEnd =
  | { kind: 'exit'; code: number; signal: number }
  | { kind: 'detached' }
  /** The monitor went away without saying how the container ended (killed). */
  | { kind: 'closed' };

export interface RelayIO {
  /** What is typed; absent: output only (a container without -i, `attach --no-stdin`). */
  stdin?: NodeJS.ReadStream & { fd: number };
  stdout: NodeJS.WriteStream;
  detachKeys: Buffer;
}

/**
 * A unix socket's address holds 107 bytes; a container's directory under a deep store root is
 * longer. Connect through a descriptor of the directory instead (the monitor binds from inside it).
 */
function connectShort(path: string): { socket: Socket; done: () => void } {
  if (Buffer.byteLength(path) < 108) return { socket: createConnection({ path }), done: () => {} };
  const dir = openSync(dirname(path), 'r');
  const socket = createConnection({ path: `/proc/self/fd/${dir}/${basename(path)}` });
  let open = true;
  return {
    socket,
    done: () => {
      if (open) closeSync(dir);
      open = false;
    },
  };
}

/** One client of a container's attach socket. */
export class TerminalConnection {
  private readonly reader = new FrameReader();
  private queued: Frame[] = [];
  private onFrame: ((f: Frame) => void) | undefined;
  private ended = false;
  private onEnd: (() => void) | undefined;
  private stop: (() => void) | undefined;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const f of this.reader.push(chunk)) {
        if (this.onFrame) this.onFrame(f);
        else this.queued.push(f);
      }
    });
    socket.on('error', () => {}); // 'close' follows
    socket.on('close', () => {
      this.ended = true;
      this.onEnd?.();
    });
  }

  /**
   * Connects and waits for the monitor's go-ahead, so that once this returns no output is missed.
   * `size`: the terminal's, given to the PTY before anything else.
   */
  static async connect(path: string, name: string, size?: WindowSize): Promise<TerminalConnection> {
    const { socket, done } = connectShort(path);
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('error', reject);
      });
    } catch (err) {
      socket.destroy();
      const code = errnoOf(err);
      if (code === 'ENOENT' || code === 'ECONNREFUSED') {
        throw new TsrunError('ESTATE', `container ${name} has no terminal to attach to (no monitor serves ${path})`, { cause: err });
      }
      throw new TsrunError('ESTATE', `attach to ${name}: connect to ${path}: ${(err as Error).message}`, { cause: err });
    } finally {
      done();
    }
    const conn = new TerminalConnection(socket);
    const first = await conn.nextFrame();
    if (first?.type !== 'r') {
      socket.destroy();
      const why = first?.type === 'e' ? first.payload.toString() : 'the monitor closed the connection';
      throw new TsrunError('ESTATE', `attach to ${name}: ${why}`);
    }
    if (size) conn.resize(size);
    return conn;
  }

  private nextFrame(): Promise<Frame | undefined> {
    const f = this.queued.shift();
    if (f || this.ended) return Promise.resolve(f);
    return new Promise((resolve) => {
      this.onFrame = (frame) => {
        this.onFrame = undefined;
        this.onEnd = undefined;
        resolve(frame);
      };
      this.onEnd = () => {
        this.onFrame = undefined;
        resolve(undefined);
      };
    });
  }

  resize(size: WindowSize): void {
    if (size.rows > 0 && size.cols > 0) this.socket.write(windowFrame(size.rows, size.cols));
  }

  input(data: Buffer): void {
    for (let i = 0; i < data.length; i += MAX_INPUT) this.socket.write(encodeFrame('i', data.subarray(i, i + MAX_INPUT)));
  }

  close(): void {
    this.socket.destroy();
  }

  /** Detach as the detach keys do (a signal to tsrun): the relay ends, the container runs on. */
  detach(): void {
    if (this.stop) this.stop();
    else this.close();
  }

  /**
   * Relays until the container exits, the detach keys are typed or the monitor goes away. The
   * local terminal is raw meanwhile, and restored before this resolves (and at exit, should
   * tsrun end another way).
   */
  relay(io: RelayIO): Promise<TerminalEnd> {
    const { stdin, stdout } = io;
    const keys = new DetachKeys(io.detachKeys);
    const raw = stdin?.isTTY === true && !stdin.isRaw;
    const restore = () => {
      if (raw) stdin.setRawMode(false);
    };
    return new Promise<TerminalEnd>((resolve) => {
      let exit: TerminalEnd | undefined;
      let done = false;
      const finish = (end: TerminalEnd) => {
        if (done) return;
        done = true;
        if (exit && end.kind !== 'exit') end = exit;
        this.onFrame = undefined;
        this.onEnd = undefined;
        this.stop = undefined;
        stdin?.off('data', onInput).off('end', onInputEnd).pause();
        stdout.off('resize', onResize);
        process.off('exit', restore);
        restore();
        this.socket.destroy();
        resolve(end);
      };
      const onFrame = (f: Frame) => {
        if (f.type === 'o') {
          // A terminal slower than the container: stop reading the socket (the monitor buffers,
          // then drops) rather than buffer without bound here.
          if (!stdout.write(f.payload)) {
            this.socket.pause();
            stdout.once('drain', () => this.socket.resume());
          }
        } else if (f.type === 'x') {
          const [code, signal] = f.payload.toString().split(' ').map(Number);
          exit = { kind: 'exit', code: code ?? 0, signal: signal ?? 0 };
        }
      };
      const onInput = (chunk: Buffer) => {
        const { forward, detach } = keys.feed(chunk);
        if (forward.length) this.input(forward);
        if (detach) finish({ kind: 'detached' });
      };
      const onInputEnd = () => {
        const rest = keys.flush();
        if (rest.length) this.input(rest);
      };
      const onResize = () => this.resize({ rows: stdout.rows, cols: stdout.columns });

      if (raw) {
        stdin.setRawMode(true);
        // libuv's raw mode keeps output processing (ONLCR: "\n" written as "\r\n"); the
        // container's PTY did that already, and a full-screen program that turned it off there
        // means a bare "\n". Off here too, as docker's client does; setRawMode(false) puts
        // back the terminal's mode as it was, OPOST included.
        spawnSync('stty', ['-opost'], { stdio: [stdin.fd, 'ignore', 'ignore'] });
        process.on('exit', restore);
      }
      stdin?.on('data', onInput).on('end', onInputEnd).resume();
      if (stdout.isTTY) {
        stdout.on('resize', onResize);
        onResize();
      }
      this.onFrame = onFrame;
      this.onEnd = () => finish(exit ?? { kind: 'closed' });
      this.stop = () => finish({ kind: 'detached' });
      for (const f of this.queued.splice(0)) onFrame(f);
      if (this.ended) finish(exit ?? { kind: 'closed' });
    });
  }
}

// ---------------------------------------------------------------------------- the commands

export interface AttachOutcome {
  /** The detach keys ended it: the container runs on. */
  detached: boolean;
  /** The container's exit code (0 when detached). */
  code: number;
}

/** Whether a monitor serves this container's PTY (a detached container with a TTY). */
export function servesTerminal(found: Found): boolean {
  return found.record.options.tty && existsSync(found.paths.attachSocket);
}

/** `tsrun attach` to a container with a TTY: its terminal, until it exits or the user detaches. */
export async function attachTerminal(found: Found, terminal: TerminalConnection, io: RelayIO): Promise<AttachOutcome> {
  const end = await terminal.relay(io);
  if (end.kind === 'detached') return { detached: true, code: 0 };
  if (end.kind === 'exit') return { detached: false, code: end.code };
  // The monitor went away without a word (killed): its status file has the last word.
  return { detached: false, code: await waitContainer(found) };
}

/**
 * `run -it`, `start -ai`: as attachTerminal, and once the container has exited, release what it
 * held (and remove a --rm container) before returning, as a foreground run does. The monitor's
 * exit command does the same; whichever comes second finds nothing left to do.
 */
export async function attachStarted(storeRoot: string, found: Found, terminal: TerminalConnection, io: RelayIO): Promise<AttachOutcome> {
  const outcome = await attachTerminal(found, terminal, io);
  if (outcome.detached || found.record.restartPolicy.name !== 'no') return outcome;
  await waitNotRunning(found, 5000);
  await cleanupContainer(storeRoot, found.record.id);
  return outcome;
}
