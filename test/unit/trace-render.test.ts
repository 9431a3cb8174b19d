// The trace renderer (src/namespaces/trace.ts) fed lines as native/trace.c prints them (taken from
// a real `run --trace` of busybox): labels, the steps mode's folding, times, nothing cut short,
// and host commands as a learner could type them.
import { describe, expect, it } from 'vitest';
import type { TraceLine } from '../../src/namespaces/helper.js';
import { TraceRenderer, foldCalls, hostCommands, hostMkdir, hostWrite, label, parseTraceMode, stamp, type TraceMode } from '../../src/namespaces/trace.js';

const ROOTFS = '/var/lib/tsrun/containers/86c9/rootfs';
const IN_ROOT = 'resolve=RESOLVE_NO_MAGICLINKS|RESOLVE_IN_ROOT}, 24)';

/** The child's lines of a run: [step, op, text]. */
const CHILD: Array<[number, string | undefined, string]> = [
  [0, undefined, 'openat(AT_FDCWD, "/sys/fs/cgroup/pids/tsrun/86c9/tasks", O_WRONLY|O_CLOEXEC) = 3'],
  [0, undefined, 'write(3, "0", 1) = 1'],
  [0, undefined, 'unshare(CLONE_NEWCGROUP) = 0'],
  [0, undefined, 'openat(AT_FDCWD, "/proc", O_PATH|O_DIRECTORY|O_CLOEXEC) = 3'],
  [1, 'setsid', 'setsid() = 1'],
  [7, 'root', `openat(AT_FDCWD, "${ROOTFS}", O_PATH|O_DIRECTORY|O_CLOEXEC) = 4`],
  [8, 'mkdir', `openat2(4, "/proc", {flags=O_PATH|O_DIRECTORY|O_CLOEXEC, ${IN_ROOT} = 6`],
  [9, 'mount-in', `openat2(4, "/proc", {flags=O_PATH|O_DIRECTORY|O_NOFOLLOW|O_CLOEXEC, ${IN_ROOT} = 5`],
  [9, 'mount-in', 'fchdir(3) = 0'],
  [9, 'mount-in', 'mount("proc", "self/fd/5", "proc", MS_NOSUID|MS_NODEV|MS_NOEXEC, "") = 0'],
  [9, 'mount-in', 'fchdir(6) = 0'],
  [22, 'mkdir', `openat2(4, "/dev", {flags=O_PATH|O_DIRECTORY|O_CLOEXEC, ${IN_ROOT} = 6`],
  [22, 'mkdir', `openat2(4, "/dev/pts", {flags=O_PATH|O_DIRECTORY|O_CLOEXEC, ${IN_ROOT} = -1 ENOENT (No such file or directory)`],
  [22, 'mkdir', 'mkdirat(6, "pts", 0755) = 0'],
  [22, 'mkdir', `openat2(4, "/dev/pts", {flags=O_PATH|O_DIRECTORY|O_CLOEXEC, ${IN_ROOT} = 5`],
  [52, 'touch', `openat2(4, "/etc/hostname", {flags=O_PATH|O_CLOEXEC, ${IN_ROOT} = -1 ENOENT (No such file or directory)`],
  [52, 'touch', `openat2(4, "/etc/hostname", {flags=O_WRONLY|O_CREAT|O_NONBLOCK|O_CLOEXEC, ${IN_ROOT} = 5`],
  [53, 'mount-in', `openat2(4, "/etc/hostname", {flags=O_PATH|O_CLOEXEC, ${IN_ROOT} = 5`],
  [53, 'mount-in', 'openat(AT_FDCWD, "/var/lib/tsrun/containers/86c9/hostname", O_PATH|O_CLOEXEC) = 6'],
  [53, 'mount-in', 'fchdir(3) = 0'],
  [53, 'mount-in', 'mount("self/fd/6", "self/fd/5", NULL, MS_BIND|MS_REC, NULL) = 0'],
  [53, 'mount-in', 'fchdir(7) = 0'],
  [60, 'pivot-root', 'openat(AT_FDCWD, "/", O_PATH|O_DIRECTORY|O_CLOEXEC) = 5'],
  [60, 'pivot-root', 'fchdir(4) = 0'],
  [60, 'pivot-root', 'pivot_root(".", ".") = 0'],
  [60, 'pivot-root', 'fchdir(5) = 0'],
  [60, 'pivot-root', 'umount2(".", MNT_DETACH) = 0'],
  [60, 'pivot-root', 'chdir("/") = 0'],
  [60, 'pivot-root', 'openat(AT_FDCWD, "/", O_PATH|O_DIRECTORY|O_CLOEXEC) = 5'],
  [61, 'mask', `openat2(5, "/proc/asound", {flags=O_PATH|O_CLOEXEC, ${IN_ROOT} = -1 ENOENT (No such file or directory)`],
  [63, 'mask', `openat2(5, "/proc/interrupts", {flags=O_PATH|O_CLOEXEC, ${IN_ROOT} = 4`],
  [63, 'mask', `openat2(5, "/dev/null", {flags=O_PATH|O_CLOEXEC, ${IN_ROOT} = 6`],
  [63, 'mask', 'fchdir(3) = 0'],
  [63, 'mask', 'mount("self/fd/6", "self/fd/4", NULL, MS_BIND, NULL) = 0'],
  [63, 'mask', 'fchdir(7) = 0'],
  [63, 'mask', `openat2(5, "/proc/interrupts", {flags=O_PATH|O_CLOEXEC, ${IN_ROOT} = 4`],
  [73, 'readonly', `openat2(5, "/proc/bus", {flags=O_PATH|O_CLOEXEC, ${IN_ROOT} = 4`],
  [73, 'readonly', 'fchdir(3) = 0'],
  [73, 'readonly', 'mount("self/fd/4", "self/fd/4", NULL, MS_BIND|MS_REC, NULL) = 0'],
  [73, 'readonly', 'fchdir(6) = 0'],
  [73, 'readonly', `openat2(5, "/proc/bus", {flags=O_PATH|O_CLOEXEC, ${IN_ROOT} = 4`],
  [73, 'readonly', 'mount_setattr(4, "", AT_EMPTY_PATH|AT_RECURSIVE, {attr_set=MOUNT_ATTR_RDONLY}) = 0'],
  [83, 'chdir', `openat2(5, "/", {flags=O_PATH|O_DIRECTORY|O_CLOEXEC, ${IN_ROOT} = 4`],
  [83, 'chdir', 'fchdir(4) = 0'],
  [83, 'chdir', 'getcwd("/", 4096) = 2'],
  [84, 'env', '/* envp[0] = "PATH=/bin", for execve */'],
  [88, 'exec', 'execve("/bin/true", ["true"], [1 var])'],
];

/** Render CHILD (the i-th line at i ms), with host lines before it; returns the output lines. */
function render(mode: TraceMode, lines = CHILD): string[] {
  const out: string[] = [];
  const r = new TraceRenderer(mode, (l) => out.push(l));
  r.host(0.2, hostWrite('/sys/fs/cgroup/pids/tsrun/86c9/pids.max', '50'));
  r.helper({ who: 'monitor', step: 0, text: 'clone3({flags=CLONE_NEWPID}) = 42' }, 0.5);
  lines.forEach(([step, op, text], i) => r.helper({ who: 'child', step, ...(op && { op }), text }, 1 + i));
  r.flush();
  return out;
}

const body = (line: string) => line.slice(line.indexOf('] ') + 2);

describe('labels', () => {
  it('names each line by who made it and, for a step, its number and op', () => {
    expect(label({ who: 'monitor', step: 0 })).toBe('[monitor]');
    expect(label({ who: 'child', step: 0 })).toBe('[child]');
    expect(label({ who: 'child', step: 60, op: 'pivot-root' })).toBe('[step 60 pivot-root]');
    expect(label({ who: 'child', step: 60 })).toBe('[step 60]');
  });

  it('syscalls mode: every line as it came, stamped, labelled, untouched', () => {
    const out = render('syscalls');
    expect(out).toHaveLength(CHILD.length + 2);
    expect(out[0]).toBe('   +0.2ms [host] write pids.max "50" → /sys/fs/cgroup/pids/tsrun/86c9');
    expect(out[1]).toBe('   +0.5ms [monitor] clone3({flags=CLONE_NEWPID}) = 42');
    expect(out[2]).toBe('   +1.0ms [child] openat(AT_FDCWD, "/sys/fs/cgroup/pids/tsrun/86c9/tasks", O_WRONLY|O_CLOEXEC) = 3');
    expect(out).toContain('  +10.0ms [step 9 mount-in] mount("proc", "self/fd/5", "proc", MS_NOSUID|MS_NODEV|MS_NOEXEC, "") = 0');
    expect(out.at(-1)).toBe(`  +${CHILD.length}.0ms [step 88 exec] execve("/bin/true", ["true"], [1 var])`);
  });
});

describe('steps mode', () => {
  const out = render('steps');
  const step = (n: number) => {
    const lines = out.filter((l) => l.includes(`[step ${n} `));
    expect(lines).toHaveLength(1);
    return body(lines[0]!);
  };

  it('prints one line per step, in order, and the child\'s own start call by call', () => {
    const steps = out.map((l) => /\[step (\d+) /.exec(l)?.[1]).filter(Boolean).map(Number);
    expect(steps).toEqual([...new Set(CHILD.map(([s]) => s))].filter((s) => s > 0));
    expect(out.filter((l) => l.includes('[child]')).map(body)).toEqual([
      'write(3</sys/fs/cgroup/pids/tsrun/86c9/tasks>, "0", 1) = 1',
      'unshare(CLONE_NEWCGROUP) = 0',
    ]);
  });

  it('folds the walk and the fchdir dance into the mount, its target the path in the container', () => {
    expect(step(9)).toBe('mount("proc", "/proc", "proc", MS_NOSUID|MS_NODEV|MS_NOEXEC, "") = 0');
    expect(step(53)).toBe('mount("/var/lib/tsrun/containers/86c9/hostname", "/etc/hostname", NULL, MS_BIND|MS_REC, NULL) = 0');
    expect(step(63)).toBe('mount("/dev/null", "/proc/interrupts", NULL, MS_BIND, NULL) = 0');
  });

  it('joins the calls a step makes, naming fds by their paths as strace -y does', () => {
    expect(step(22)).toBe('mkdirat(6</dev>, "pts", 0755) = 0');
    expect(step(73)).toBe('mount("/proc/bus", "/proc/bus", NULL, MS_BIND|MS_REC, NULL) = 0; mount_setattr(4</proc/bus>, "", AT_EMPTY_PATH|AT_RECURSIVE, {attr_set=MOUNT_ATTR_RDONLY}) = 0');
    // No mount on an fd here: the fchdirs are the step itself (pivot_root(".", ".")).
    expect(step(60)).toBe(`fchdir(4<${ROOTFS}>) = 0; pivot_root(".", ".") = 0; fchdir(5</>) = 0; umount2(".", MNT_DETACH) = 0; chdir("/") = 0`);
    expect(step(83)).toBe('fchdir(4</>) = 0; getcwd("/", 4096) = 2');
    expect(step(52)).toMatch(/^openat2\(4, "\/etc\/hostname", \{flags=O_WRONLY\|O_CREAT\|/);
  });

  it('keeps the last call of a step that is all walk: what it found, or that it found nothing', () => {
    expect(step(7)).toBe(`openat(AT_FDCWD, "${ROOTFS}", O_PATH|O_DIRECTORY|O_CLOEXEC) = 4`);
    expect(step(8)).toMatch(/^openat2\(4, "\/proc", .* = 6$/);
    expect(step(61)).toMatch(/^openat2\(5, "\/proc\/asound", .* = -1 ENOENT \(No such file or directory\)$/);
    expect(step(84)).toBe('/* envp[0] = "PATH=/bin", for execve */');
  });

  it('stamps a step with the time its first call began', () => {
    const i = CHILD.findIndex(([s]) => s === 9);
    expect(out.find((l) => l.includes('[step 9 '))).toMatch(new RegExp(`^ +\\+${1 + i}\\.0ms \\[step 9 mount-in\\] `));
  });

  it('holds a step until the next line: a host line or flush() lets it out, in order', () => {
    const seen: string[] = [];
    const r = new TraceRenderer('steps', (l) => seen.push(l));
    const line = (text: string): TraceLine => ({ who: 'child', step: 3, op: 'sethostname', text });
    r.helper(line('sethostname("a") = 0'), 1);
    expect(seen).toEqual([]);
    r.host(2, 'ip link del veth1');
    expect(seen.map(body)).toEqual(['sethostname("a") = 0', 'ip link del veth1']);
    r.helper({ ...line('sethostname("b") = 0'), step: 4 }, 3);
    r.flush();
    r.flush();
    expect(seen).toHaveLength(3);
  });
});

describe('foldCalls', () => {
  it('remembers fds from step to step', () => {
    const fds = new Map<number, string>();
    foldCalls([{ at: 0, text: `openat2(4, "/dev", {flags=O_PATH|O_DIRECTORY|O_CLOEXEC, ${IN_ROOT} = 5` }], fds);
    expect(foldCalls([{ at: 1, text: 'mknodat(5, "null", S_IFCHR|0666, makedev(1, 3)) = 0' }], fds)).toEqual([{ at: 1, text: 'mknodat(5</dev>, "null", S_IFCHR|0666, makedev(1, 3)) = 0' }]);
  });

  it('forgets what an fd was opened on once a socket takes its number', () => {
    const fds = new Map<number, string>();
    foldCalls([{ at: 0, text: 'openat(AT_FDCWD, "/run/netns/tsrun-0123456789ab", O_RDONLY|O_CLOEXEC) = 4' }, { at: 0, text: 'setns(4, CLONE_NEWNET) = 0' }], fds);
    expect(fds.get(4)).toBe('/run/netns/tsrun-0123456789ab');
    const calls = foldCalls([
      { at: 1, text: 'socket(AF_INET, SOCK_DGRAM|SOCK_CLOEXEC, 0) = 4' },
      { at: 2, text: 'ioctl(4, SIOCSIFADDR, {ifr_name="eth0", addr=10.99.0.2}) = 0' },
    ], fds);
    expect(calls.map((c) => c.text)).toEqual(['socket(AF_INET, SOCK_DGRAM|SOCK_CLOEXEC, 0) = 4', 'ioctl(4, SIOCSIFADDR, {ifr_name="eth0", addr=10.99.0.2}) = 0']);
  });

  it('follows dup2: the new number names the old one\'s file', () => {
    const fds = new Map<number, string>([[4, '/dev/pts/0'], [5, '/somewhere']]);
    foldCalls([{ at: 0, text: 'dup2(4, 5) = 5' }], fds);
    expect(fds.get(5)).toBe('/dev/pts/0');
  });

  it('leaves /proc/self/fd/N alone where it is not a mount on an fd (a symlink target)', () => {
    const fds = new Map([[1, '/somewhere']]);
    expect(foldCalls([{ at: 0, text: 'symlinkat("/proc/self/fd/1", 5, "stdout") = 0' }], fds)[0]!.text).toBe('symlinkat("/proc/self/fd/1", 5, "stdout") = 0');
  });

  it('keeps a failed call with its errno', () => {
    const text = 'mount("proc", "self/fd/5", "proc", MS_NOSUID, "") = -1 EPERM (Operation not permitted)';
    const fds = new Map([[5, '/proc']]);
    expect(foldCalls([{ at: 0, text }], fds)[0]!.text).toBe('mount("proc", "/proc", "proc", MS_NOSUID, "") = -1 EPERM (Operation not permitted)');
  });
});

describe('times and text', () => {
  it('stamps milliseconds since the start, one decimal, padded', () => {
    expect(stamp(0)).toBe('   +0.0ms');
    expect(stamp(12.34)).toBe('  +12.3ms');
    expect(stamp(1234.56)).toBe('+1234.6ms');
    expect(stamp(123456.7)).toBe('+123456.7ms');
  });

  it('cuts nothing: a 6 KiB argument is printed whole, in both modes', () => {
    const lower = `lowerdir=${Array.from({ length: 200 }, (_, i) => `l/LAYER${String(i).padStart(22, '0')}`).join(':')}`;
    const text = `mount("overlay", "/x/rootfs", "overlay", MS_NOSUID, "${lower}") = 0`;
    for (const mode of ['syscalls', 'steps'] as const) {
      const out = render(mode, [[6, 'mount', text]]);
      expect(body(out.at(-1)!)).toBe(text);
    }
  });

  it('takes --trace and --trace=steps|syscalls, nothing else', () => {
    expect(parseTraceMode(true)).toBe('syscalls');
    expect(parseTraceMode('syscalls')).toBe('syscalls');
    expect(parseTraceMode('steps')).toBe('steps');
    expect(parseTraceMode('step')).toBeUndefined();
    expect(parseTraceMode('')).toBeUndefined();
  });
});

describe('host lines', () => {
  it('a cgroup file written, and a directory made', () => {
    expect(hostWrite('/sys/fs/cgroup/memory/tsrun/86c9/memory.limit_in_bytes', '104857600'))
      .toBe('write memory.limit_in_bytes "104857600" → /sys/fs/cgroup/memory/tsrun/86c9');
    expect(hostWrite('/sys/fs/cgroup/x/io.max', '8:0 rbps=1\n')).toBe('write io.max "8:0 rbps=1\\n" → /sys/fs/cgroup/x');
    expect(hostMkdir('/sys/fs/cgroup/memory/tsrun/86c9')).toBe('mkdir /sys/fs/cgroup/memory/tsrun/86c9');
  });

  it('one ip command per line of a batch, inside a namespace as `ip -n`', () => {
    expect(hostCommands(['ip', '-batch', '-'], 'netns add ns1\nlink add v1 type veth peer name eth0 netns ns1\n')).toEqual([
      'ip netns add ns1',
      'ip link add v1 type veth peer name eth0 netns ns1',
    ]);
    expect(hostCommands(['ip', '-n', 'ns1', '-batch', '-'], 'link set lo up\naddr add 10.0.0.2/24 brd + dev eth0\n')).toEqual([
      'ip -n ns1 link set lo up',
      'ip -n ns1 addr add 10.0.0.2/24 brd + dev eth0',
    ]);
  });

  it('iptables-restore input as the iptables commands it stands for', () => {
    const script = '*nat\n:TSRUN-DNAT - [0:0]\n-A TSRUN-DNAT -p tcp --dport 8080 -j DNAT --to-destination 10.0.0.2:80\nCOMMIT\n*filter\n:FORWARD DROP [0:0]\n-I FORWARD 1 -j TSRUN\nCOMMIT\n';
    expect(hostCommands(['iptables-restore', '--noflush', '-w'], script)).toEqual([
      'iptables -t nat -N TSRUN-DNAT',
      'iptables -t nat -A TSRUN-DNAT -p tcp --dport 8080 -j DNAT --to-destination 10.0.0.2:80',
      'iptables -t filter -P FORWARD DROP',
      'iptables -t filter -I FORWARD 1 -j TSRUN',
    ]);
  });

  it('a command without input as typed, quoted where a shell needs it', () => {
    expect(hostCommands(['iptables-save'], '')).toEqual(['iptables-save']);
    expect(hostCommands(['ip', 'link', 'del', 'veth 1'], '')).toEqual(["ip link del 'veth 1'"]);
    expect(hostCommands(['cat'], 'a b\n')).toEqual(['cat <<< "a b\\n"']);
  });
});
