import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readImageFile, resolveUser } from '../../src/container/user.js';

let tmp: string;
let top: string;
let bottom: string;
let host: string;

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-user-'));
  [top, bottom, host] = ['top', 'bottom', 'host'].map((d) => path.join(tmp, d)) as [string, string, string];
  for (const d of [top, bottom, host]) fs.mkdirSync(d);
  fs.mkdirSync(path.join(bottom, 'etc'));
  fs.writeFileSync(path.join(bottom, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n');
  fs.writeFileSync(path.join(host, 'passwd'), 'hostonly:x:4242:4242::/hostonly:/bin/sh\n');
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('resolveUser reads the image, never the host (issue 13)', () => {
  it('finds a user in the top-most layer that has the file', () => {
    expect(resolveUser('app', [top, bottom])).toMatchObject({ uid: 1000, gid: 1000, home: '/home/app' });
  });

  it('does not follow a layer\'s etc made a symlink to a host directory', () => {
    fs.symlinkSync(host, path.join(top, 'etc'));
    expect(readImageFile([top, bottom], 'etc/passwd')).toBeUndefined();
    expect(() => resolveUser('hostonly', [top, bottom])).toThrow(/unable to find user hostonly/);
  });

  it('does not follow a passwd made a symlink, nor read a FIFO', () => {
    fs.mkdirSync(path.join(top, 'etc'));
    fs.symlinkSync(path.join(host, 'passwd'), path.join(top, 'etc/passwd'));
    expect(readImageFile([top, bottom], 'etc/passwd')).toBeUndefined();
    fs.rmSync(path.join(top, 'etc/passwd'));
    execFileSync('mkfifo', [path.join(top, 'etc/passwd')]);
    expect(readImageFile([top, bottom], 'etc/passwd')).toBeUndefined();
  });

  // Making a whiteout (a 0/0 character device) needs root.
  it.skipIf(process.getuid?.() !== 0)('takes a whiteout as the end of the search', async () => {
    const { mknod, S_IFCHR } = await import('../../src/sys/libc.js');
    fs.mkdirSync(path.join(top, 'etc'));
    mknod(path.join(top, 'etc/passwd'), S_IFCHR, 0, 0);
    expect(readImageFile([top, bottom], 'etc/passwd')).toBeUndefined();
    expect(readImageFile([bottom], 'etc/passwd')).toContain('app:x:1000');
  });
});
