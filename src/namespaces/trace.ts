// What `tsrun run --trace` prints: the helper's syscalls (native/trace.c) and tsrun's own work
// on the host (cgroup directories and files, ip and iptables commands) on one time line, each
// line named by who made it and, for the container's process, by its step in the launch plan:
//
//    +41.2ms [host] write devices.deny "a" → /sys/fs/cgroup/devices/tsrun/4f1c…
//    +63.0ms [monitor] clone3({flags=CLONE_NEWNS|…, cgroup="/sys/fs/cgroup/unified/…"}) = 4242
//    +64.9ms [step 9 mount-in] mount("proc", "self/fd/5", "proc", MS_NOSUID|MS_NODEV|MS_NOEXEC, "") = 0
//
// Two modes. `syscalls` (plain --trace) prints every call as it happened. `steps` prints one
// line per step: the path walk that finds a target inside the root (openat2 with O_PATH) and
// the fchdir to /proc and back around a mount are folded into the step's main call, whose
// `self/fd/N` arguments become the paths those fds were opened on — the target as the
// container sees it. Pure: the caller gives each line its time and takes the text.
import type { TraceLine } from './helper.js';

export type TraceMode = 'syscalls' | 'steps';

/** --trace (true) or --trace=MODE; undefined for any other word. */
export function parseTraceMode(value: true | string): TraceMode | undefined {
  if (value === true || value === 'syscalls') return 'syscalls';
  return value === 'steps' ? 'steps' : undefined;
}

/** `+12.3ms`: milliseconds since the command started, padded so that the labels line up. */
export function stamp(ms: number): string {
  return `+${ms.toFixed(1)}ms`.padStart(9);
}

/** A cgroup file written: `write memory.limit_in_bytes "104857600" → /sys/fs/cgroup/memory/…`. */
export function hostWrite(path: string, value: string): string {
  const slash = path.lastIndexOf('/');
  return `write ${path.slice(slash + 1)} ${JSON.stringify(value)} → ${path.slice(0, slash)}`;
}

export function hostMkdir(dir: string): string {
  return `mkdir ${dir}`;
}

/**
 * A command tsrun ran, as commands a learner could type: `ip -batch -` is one `ip` command per
 * line of its input, and iptables-restore's input one `iptables -t <table>` command per rule
 * (`:CHAIN - [0:0]`, only written for a chain that does not exist yet, is `-N CHAIN`).
 */
export function hostCommands(argv: string[], input: string): string[] {
  const lines = input.split('\n').filter((l) => l.trim() !== '');
  if (lines.length === 0) return [shellJoin(argv)];
  const batch = argv.indexOf('-batch');
  if (argv[0] === 'ip' && batch > 0) {
    const ip = shellJoin([...argv.slice(0, batch), ...argv.slice(batch + 2)]);
    return lines.map((l) => `${ip} ${l}`);
  }
  if (argv[0] === 'iptables-restore') {
    const out: string[] = [];
    let table = 'filter';
    for (const l of lines) {
      const chain = /^:(\S+) (\S+)/.exec(l);
      if (l.startsWith('*')) table = l.slice(1);
      else if (chain) out.push(`iptables -t ${table} ${chain[2] === '-' ? `-N ${chain[1]}` : `-P ${chain[1]} ${chain[2]}`}`);
      else if (l.startsWith('-')) out.push(`iptables -t ${table} ${l}`);
    }
    return out;
  }
  return [`${shellJoin(argv)} <<< ${JSON.stringify(input)}`];
}

function shellJoin(argv: string[]): string {
  return argv.map((a) => (/^[\w./:=@%+,-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`)).join(' ');
}

/** The label of a helper line: `[monitor]`, `[child]` (its own start, before step 1), `[step 9 mount-in]`. */
export function label(line: Pick<TraceLine, 'who' | 'step' | 'op'>): string {
  if (line.who === 'monitor') return '[monitor]';
  if (line.step === 0) return '[child]';
  return line.op ? `[step ${line.step} ${line.op}]` : `[step ${line.step}]`;
}

interface Timed {
  at: number;
  text: string;
}

/** Renders a trace in one of the two modes; `write` gets each finished line (no newline). */
export class TraceRenderer {
  /** steps mode: the lines of the step still running (the next step's first line ends it). */
  private held: { label: string; step: number; lines: Timed[] } | undefined;
  /** What each fd of the child was opened on, as far as its trace says: steps mode's `self/fd/N`. */
  private readonly fds = new Map<number, string>();

  constructor(
    readonly mode: TraceMode,
    private readonly write: (line: string) => void,
  ) {}

  host(at: number, text: string): void {
    this.flush();
    this.write(`${stamp(at)} [host] ${text}`);
  }

  helper(line: TraceLine, at: number): void {
    const name = label(line);
    if (this.mode === 'syscalls' || line.who === 'monitor') {
      this.flush();
      this.write(`${stamp(at)} ${name} ${line.text}`);
      return;
    }
    if (this.held && (this.held.label !== name || this.held.step !== line.step)) this.flush();
    this.held ??= { label: name, step: line.step, lines: [] };
    this.held.lines.push({ at, text: line.text });
  }

  /** Print the step held back for folding: call at the end, and before printing anything else. */
  flush(): void {
    const held = this.held;
    if (!held) return;
    this.held = undefined;
    const calls = foldCalls(held.lines, this.fds);
    // The child's own start is not a step of the plan: each of its calls keeps its line.
    if (held.step === 0) for (const c of calls) this.write(`${stamp(c.at)} ${held.label} ${c.text}`);
    else this.write(`${stamp(held.lines[0]!.at)} ${held.label} ${calls.map((c) => c.text).join('; ')}`);
  }
}

/** One parsed line of native/trace.c: `name(args) = result[ ERRNO (message)][ /* comment *\/]`. */
interface Call extends Timed {
  name: string;
  args: string;
  /** The return value; undefined for execve (printed before the call) and comments. */
  result: number | undefined;
}

function parseCall(t: Timed): Call {
  const m = /^(\w+)\((.*?)\)(?: = (-?\d+)(?: \w+ \(.*\))?)?(?: \/\*.*\*\/)?$/.exec(t.text);
  if (!m) return { ...t, name: '', args: '', result: undefined };
  return { ...t, name: m[1]!, args: m[2]!, result: m[3] === undefined ? undefined : Number(m[3]) };
}

/** The calls whose argument at this index is a file descriptor (annotated as strace -y does: `5</dev>`). */
const FD_ARG: Record<string, number> = {
  write: 0, read: 0, fchdir: 0, setns: 0, mkdirat: 0, mknodat: 0, fchownat: 0, fchmodat: 0,
  unlinkat: 0, mount_setattr: 0, symlinkat: 1, ioctl: 0, open_tree: 0, move_mount: 0,
};

/**
 * mount(2)'s source and target as `self/fd/N` (relative to the /proc the child opened first)
 * or `/proc/self/fd/N`: a mount on an fd, not on a path (native/mounts.c).
 */
const MAGIC_LINK = /"(?:\/proc\/)?self\/fd\/(\d+)"/g;
const onFd = (c: Call) => c.name === 'mount' && /"(?:\/proc\/)?self\/fd\/\d+"/.test(c.args);

const QUOTED = /^"((?:[^"\\]|\\.)*)"/;

/** An open's path (its first quoted argument) and whether it only finds the file (O_PATH). */
function openOf(c: Call): { path: string; pathOnly: boolean } | undefined {
  if (c.name !== 'openat' && c.name !== 'openat2') return undefined;
  const comma = c.args.indexOf(', ');
  const path = QUOTED.exec(c.args.slice(comma + 2))?.[1];
  if (comma < 0 || path === undefined) return undefined;
  return { path, pathOnly: /\bO_PATH\b/.test(c.args) };
}

function fdArg(c: Call): number | undefined {
  const index = FD_ARG[c.name];
  if (index === undefined) return undefined;
  const arg = c.args.split(', ')[index];
  return arg !== undefined && /^\d+$/.test(arg) ? Number(arg) : undefined;
}

/**
 * A step's calls with the walk folded away. Dropped: opens with O_PATH (finding a path inside
 * the root, or a host file to bind), the fchdir to /proc and back around a mount on
 * `self/fd/N`, and an open whose fd a later call of the step uses (that call names the path).
 * What is left names fds by their paths. A step left with nothing (a mkdir of a directory that
 * is there, a mask of a path that is not) keeps its last call, which says so. `fds` carries
 * what is known of each fd from step to step.
 */
export function foldCalls(lines: Timed[], fds: Map<number, string>): Timed[] {
  const calls = lines.map(parseCall);
  const dance = calls.some(onFd);
  const kept: Timed[] = [];
  let last: Timed | undefined;
  calls.forEach((c, i) => {
    const open = openOf(c);
    const text = withPaths(c, fds);
    if (open && c.result !== undefined && c.result >= 0) fds.set(c.result, open.path);
    else if (c.result !== undefined && c.result >= 0) reusedFd(c, fds);
    last = { at: c.at, text };
    const usedLater = open && c.result !== undefined && c.result >= 0 && calls.slice(i + 1).some((d) => fdArg(d) === c.result);
    if ((open && (open.pathOnly || usedLater)) || (dance && c.name === 'fchdir')) return;
    kept.push(last);
  });
  return kept.length > 0 || !last ? kept : [last];
}

/** Calls besides opens that return a new fd: its number is no longer what an earlier open gave it. */
const NEW_FD = new Set(['socket', 'open_tree', 'fsmount', 'fsopen', 'pidfd_open', 'memfd_create', 'eventfd', 'signalfd']);

function reusedFd(c: Call, fds: Map<number, string>): void {
  if (NEW_FD.has(c.name)) fds.delete(c.result!);
  if (c.name === 'dup2' || c.name === 'dup3') {
    // dup2(old, new) = new: new is now old's file.
    const old = fds.get(Number(c.args.split(', ')[0]));
    if (old === undefined) fds.delete(c.result!);
    else fds.set(c.result!, old);
  }
}

/** `"self/fd/5"` → the path fd 5 was opened on; an fd argument N → `N</path>`. */
function withPaths(c: Call, fds: Map<number, string>): string {
  if (!c.name) return c.text;
  let args = !onFd(c) ? c.args : c.args.replace(MAGIC_LINK, (whole, n: string) => {
    const path = fds.get(Number(n));
    return path === undefined ? whole : `"${path}"`;
  });
  const fd = fdArg(c);
  const path = fd === undefined ? undefined : fds.get(fd);
  if (fd !== undefined && path !== undefined) {
    const parts = args.split(', ');
    parts[FD_ARG[c.name]!] = `${fd}<${path}>`;
    args = parts.join(', ');
  }
  return `${c.name}(${args})${c.text.slice(c.name.length + 1 + c.args.length + 1)}`;
}
