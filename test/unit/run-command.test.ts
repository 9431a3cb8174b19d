// runCommand (src/netns/exec.ts): how tsrun runs ip and iptables-restore. Through the addon's
// posix_spawnp (native/node/sys.c) — no fork of Node — with the same results as child_process:
// stdin given whole, stdout and stderr kept, the exit status and the signal, and a clear error
// for a command that is not installed.
import { execFileSync } from 'node:child_process';
import { closeSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runCommand } from '../../src/netns/exec.js';
import { spawnPiped, waitExit } from '../../src/sys/libc.js';

describe('spawnPiped', () => {
  it('starts the command as a child of this process (posix_spawnp), and reaps it', () => {
    const p = spawnPiped(['sh', '-c', 'echo $PPID; exit 7'])!;
    expect(p).toBeDefined();
    closeSync(p.stdin);
    closeSync(p.stderr);
    const out = execFileSync('cat', { stdio: [p.stdout, 'pipe', 'ignore'] }).toString();
    closeSync(p.stdout);
    expect(Number(out.trim())).toBe(process.pid);
    expect(waitExit(p.pid)).toEqual({ code: 7, signal: null });
    // Reaped: no such child any more.
    expect(() => waitExit(p.pid)).toThrow(expect.objectContaining({ code: 'ECHILD' }));
  });

  it('throws ENOENT for a command that is not on PATH', () => {
    expect(() => spawnPiped(['tsrun-no-such-command'])).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });
});

describe('runCommand', () => {
  it('gives stdin whole, bigger than a pipe holds, and keeps stdout and stderr apart', async () => {
    const input = 'x'.repeat(300_000) + '\n';
    const r = await runCommand(['sh', '-c', 'wc -c; echo oops >&2'], input, 'count');
    expect(r).toEqual({ stdout: '300001\n', stderr: 'oops\n' });
  });

  it('fails with the command\'s stderr, or its exit status when it printed nothing', async () => {
    await expect(runCommand(['sh', '-c', 'echo "RTNETLINK answers: File exists" >&2; exit 2'], '', 'add a link')).rejects.toThrow('add a link: RTNETLINK answers: File exists');
    await expect(runCommand(['sh', '-c', 'exit 3'], '', 'do it')).rejects.toThrow('do it: sh -c exit 3 exited with 3');
    await expect(runCommand(['sh', '-c', 'echo "Unknown device type." >&2; exit 2'], '', 'make a veth')).rejects.toMatchObject({ code: 'EKERNEL' });
  });

  it('names the signal that killed the command, and the child starts with default signals', async () => {
    // Node ignores SIGPIPE; a command it starts must not inherit that, as with child_process.
    // (Signals 1-31: glibc's posix_spawn leaves its own two, 32 and 33, ignored; the command's
    // glibc sets them up itself.)
    const r = await runCommand(['sh', '-c', 'grep SigIgn /proc/self/status'], '', 'look');
    const ignored = BigInt(`0x${/^SigIgn:\s+([0-9a-f]+)$/m.exec(r.stdout)![1]}`);
    expect(ignored & 0x7fffffffn).toBe(0n);
    await expect(runCommand(['sh', '-c', 'kill -TERM $$'], '', 'be killed')).rejects.toThrow('be killed: sh -c kill -TERM $$ exited with SIGTERM');
  });

  it('does not hang on a command that exits without reading stdin', async () => {
    const r = await runCommand(['true'], 'y'.repeat(1 << 20), 'ignore stdin');
    expect(r).toEqual({ stdout: '', stderr: '' });
  });

  it('says what to install when the command is missing', async () => {
    await expect(runCommand(['tsrun-no-such-command', '-batch', '-'], '', 'create a bridge')).rejects.toThrow(
      'create a bridge: tsrun-no-such-command is not installed (Debian/Ubuntu: apt-get install iproute2 iptables)',
    );
  });
});
