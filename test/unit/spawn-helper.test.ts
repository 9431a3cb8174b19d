// spawnHelper (src/sys/libc.ts, native/node/sys.c): the container's helper started by
// posix_spawnp instead of child_process, with what child_process gave it: fds 0-2 as asked
// ('ignore': /dev/null), the channel on fd 3, the caller's fds 3.. on 4.., a session of its own,
// every signal at its default; and reaped once it has ended. Then the channel's reading.
import { closeSync, constants, fstatSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { reapIfGone, shutdownChannel, spawnHelper, watchChannel } from '../../src/sys/libc.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tsrun-spawn-helper-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Everything the child writes on fd 3, until it closes it (exits). */
function readChannel(fd: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = new Socket({ fd, readable: true, writable: true });
    let text = '';
    s.setEncoding('utf8').on('data', (d: string) => (text += d));
    s.on('error', reject);
    s.on('close', () => resolve(text));
    s.end();
  });
}

async function reaped(pid: number): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if (reapIfGone(pid)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

describe('spawnHelper', () => {
  it('gives the child its fds 0-2 (ignore: /dev/null), the channel on 3, a session and default signals', async () => {
    const out = join(dir, 'out');
    const outFd = openSync(out, 'w');
    const script = [
      'echo to-stdout',
      'echo "stdin: $(readlink /proc/$$/fd/0)" >&3',
      'echo "stderr: $(readlink /proc/$$/fd/2)" >&3',
      // its own session: its session id (field 6 of stat) is its pid
      'echo "sid: $(cut -d" " -f6 /proc/$$/stat) pid: $$" >&3',
      'echo "args: $*" >&3',
    ].join('\n');
    try {
      const p = spawnHelper('sh', ['-c', script, 'sh', '--preserve-fds', '0'], ['ignore', outFd, 'ignore'], 0)!;
      expect(p).toBeDefined();
      const text = await readChannel(p.channel);
      expect(readFileSync(out, 'utf8')).toBe('to-stdout\n');
      expect(text).toMatch(/^stdin: \/dev\/null$/m);
      expect(text).toMatch(/^stderr: \/dev\/null$/m);
      expect(text).toMatch(/^args: --preserve-fds 0$/m);
      const sid = /^sid: (\d+) pid: (\d+)$/m.exec(text)!;
      expect(sid[1]).toBe(sid[2]);
      expect(sid[2]).toBe(String(p.pid));
      expect(await reaped(p.pid)).toBe(true);
    } finally {
      closeSync(outFd);
    }
  });

  it('starts it with every signal at its default and none blocked (Node ignores SIGPIPE)', async () => {
    // The program itself, no shell between: what it was given at exec.
    const out = join(dir, 'signals');
    const outFd = openSync(out, 'w');
    try {
      const p = spawnHelper('grep', ['-E', '^Sig(Ign|Blk)', '/proc/self/status'], ['ignore', outFd, 'ignore'], 0)!;
      await readChannel(p.channel);
      expect(await reaped(p.pid)).toBe(true);
      const text = readFileSync(out, 'utf8');
      // Signals 1-31 at their default (glibc's posix_spawn leaves its own 32 and 33 ignored).
      expect(BigInt(`0x${/^SigIgn:\s+([0-9a-f]+)$/m.exec(text)![1]}`) & 0x7fffffffn).toBe(0n);
      expect(/^SigBlk:\s+([0-9a-f]+)$/m.exec(text)![1]).toMatch(/^0+$/);
    } finally {
      closeSync(outFd);
    }
  });

  it('gives the child our fds 3.. as its 4.. (--preserve-fds), and swapped stdio as asked', async () => {
    // /proc/$$: the shell's own fds (a command substitution's stdout is its pipe).
    const script = 'echo "$(readlink /proc/$$/fd/0) $(readlink /proc/$$/fd/1) $(readlink /proc/$$/fd/4) $(readlink /proc/$$/fd/5)" >&3';
    // Our stdout as its stdin and our stdin as its stdout: no dup2 may overwrite the other's source.
    const p = spawnHelper('sh', ['-c', script], [1, 0, 'ignore'], 2)!;
    const text = await readChannel(p.channel);
    const ours = (n: number) => readlinkSync(`/proc/self/fd/${n}`);
    expect(text.trim()).toBe(`${ours(1)} ${ours(0)} ${ours(3)} ${ours(4)}`);
    expect(await reaped(p.pid)).toBe(true);
  });

  it('hands it its stdio blocking, as libuv does (a terminal Node made non-blocking would give EAGAIN)', async () => {
    const fd = openSync('/dev/null', constants.O_RDWR | constants.O_NONBLOCK);
    try {
      const p = spawnHelper('sh', ['-c', 'grep flags /proc/$$/fdinfo/0 >&3'], [fd, 'ignore', 'ignore'], 0)!;
      const text = await readChannel(p.channel);
      const flags = Number.parseInt(/^flags:\s+([0-7]+)$/m.exec(text)![1]!, 8);
      expect(flags & constants.O_NONBLOCK).toBe(0);
      expect(await reaped(p.pid)).toBe(true);
    } finally {
      closeSync(fd);
    }
  });

  it('throws ENOENT for a helper that is not there, and leaves no fd behind', () => {
    const before = readdirSync('/proc/self/fd').sort();
    expect(() => spawnHelper(join(dir, 'no-such-helper'), [], ['ignore', 'ignore', 'ignore'], 0)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(readdirSync('/proc/self/fd').sort()).toEqual(before);
  });
});

// watchChannel (native/node/sys.c): the helper's channel read on a thread of the addon's rather
// than by a net.Socket, so that `run` loads no node:net.
describe('watchChannel', () => {
  /** Everything that comes on the channel, and how it ended. */
  function watched(fd: number): Promise<{ text: string; ends: number[]; openAtEnd: boolean }> {
    return new Promise((resolve) => {
      let text = '';
      const ends: number[] = [];
      expect(watchChannel(fd, (chunk, errno) => {
        if (chunk) text += chunk.toString('utf8');
        else {
          ends.push(errno);
          // The fd is still ours at the end: the addon does not close it.
          let openAtEnd = true;
          try {
            fstatSync(fd);
          } catch {
            openAtEnd = false;
          }
          // A second end would come after this one: wait a moment for it.
          setTimeout(() => resolve({ text, ends, openAtEnd }), 50);
        }
      })).toBe(true);
    });
  }

  it('hands over what the helper writes, in order, then one end of file, and leaves the fd to us', async () => {
    const p = spawnHelper('sh', ['-c', 'i=0; while [ $i -lt 3000 ]; do echo "line $i" >&3; i=$((i+1)); done'], ['ignore', 'ignore', 'ignore'], 0)!;
    const { text, ends, openAtEnd } = await watched(p.channel);
    expect(text).toBe(Array.from({ length: 3000 }, (_, i) => `line ${i}\n`).join(''));
    expect(ends).toEqual([0]);
    expect(openAtEnd).toBe(true);
    closeSync(p.channel);
    expect(await reaped(p.pid)).toBe(true);
  });

  it('ends a read that waits when shut down, though the helper goes on', async () => {
    const p = spawnHelper('sleep', ['30'], ['ignore', 'ignore', 'ignore'], 0)!;
    try {
      const result = watched(p.channel);
      await new Promise((r) => setTimeout(r, 50));
      shutdownChannel(p.channel);
      const { text, ends } = await result;
      expect(text).toBe('');
      expect(ends).toEqual([0]);
    } finally {
      closeSync(p.channel);
      process.kill(p.pid, 'SIGKILL');
      await reaped(p.pid);
    }
  });
});
