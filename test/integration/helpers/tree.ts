// A real tree as the changeset model describes one (test/fixtures/changeset-model.ts), and
// layer directories merged by the kernel's overlayfs to get that tree: the oracle for what a
// stack of unpacked layers shows a container.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import path from 'node:path';
import { describe as describeNode, type ModelNode } from '../../fixtures/changeset-model.js';
import { lgetxattr, llistxattr } from '../../../src/sys/libc.js';

/** Every path under `dir` (never following a link), described as the model describes nodes. */
export function describeTree(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const visit = (rel: string) => {
    const p = rel ? path.join(dir, rel) : dir;
    const st = fs.lstatSync(p);
    const xattrs: Record<string, string> = {};
    if (!st.isSymbolicLink()) {
      for (const name of llistxattr(p)) if (name.startsWith('user.')) xattrs[name] = lgetxattr(p, name)?.toString('latin1') ?? '';
    }
    const common = { uid: st.uid, gid: st.gid, mtime: Math.floor(st.mtimeMs / 1000) };
    const mode = st.mode & 0o7777;
    let node: Omit<ModelNode, 'children'>;
    if (st.isDirectory()) node = { type: 'dir', mode, ...common, xattrs } as Omit<ModelNode, 'children'>;
    else if (st.isFile()) node = { type: 'file', mode, ...common, xattrs, content: fs.readFileSync(p).toString('latin1') };
    else if (st.isSymbolicLink()) node = { type: 'symlink', ...common, target: fs.readlinkSync(p) };
    else if (st.isCharacterDevice() || st.isBlockDevice()) node = { type: st.isCharacterDevice() ? 'char' : 'block', mode, ...common, rdev: st.rdev };
    else if (st.isFIFO()) node = { type: 'fifo', mode, ...common, rdev: 0 };
    else throw new Error(`${p}: a socket?`);
    out.set(rel || '/', describeNode(node, rel === ''));
    if (st.isDirectory()) for (const name of fs.readdirSync(p).sort()) visit(rel ? `${rel}/${name}` : name);
  };
  visit('');
  return out;
}

/**
 * The differences between a real tree and the model's, as readable lines (none: the same).
 * A directory the model says nothing about the time of (one a layer implied, with nothing
 * below it) may have any.
 */
export function treeDiff(real: Map<string, string>, model: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [p, want] of model) {
    let got = real.get(p);
    if (got !== undefined && want.startsWith('dir ') && !/ t\d+ \[/.test(want)) got = got.replace(/ t\d+ \[/, ' [');
    if (got === undefined) out.push(`missing ${p}: ${want}`);
    else if (got !== want) out.push(`${p}: got ${got}, want ${want}`);
  }
  for (const [p, got] of real) if (!model.has(p)) out.push(`extra ${p}: ${got}`);
  return out;
}

/**
 * Mounts `layers` (bottom first: what an image lists) as a read-only overlay in a private mount
 * namespace, calls `fn` with a path that looks through it, and unmounts (the namespace dies
 * with its holder process). An empty directory goes at the bottom: overlayfs wants two lowers.
 */
export async function withMergedLayers<T>(layers: string[], scratch: string, fn: (merged: string) => T): Promise<T> {
  const empty = fs.mkdtempSync(path.join(scratch, 'empty-'));
  const target = fs.mkdtempSync(path.join(scratch, 'merged-'));
  const lower = [...layers].reverse().concat(empty).join(':');
  const holder = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `mount -t overlay overlay -o ro,lowerdir=${lower} ${target} && echo ready && exec sleep 60`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    await new Promise<void>((resolve, reject) => {
      let err = '';
      holder.stderr.on('data', (d) => (err += d));
      holder.stdout.once('data', () => resolve());
      holder.once('exit', (code) => reject(new Error(`overlay mount failed (${code}): ${err}`)));
    });
    return fn(`/proc/${holder.pid}/root${target}`);
  } finally {
    holder.kill('SIGKILL');
    await new Promise((r) => holder.once('close', r));
    fs.rmdirSync(target);
    fs.rmdirSync(empty);
  }
}
