// Endpoints released to the kernel: a detached container's veth that cleanup_net has yet to
// remove (see the top of endpoint.ts). Its released/<id>.json (<id>+<network>.json for one
// `network connect` added) keeps its address taken until the veth is seen gone, or until tsrun
// deletes the veth itself.
import { linkExists } from './bridge.js';
import { runCommand } from './exec.js';
import { readReleased, releasedPath, removeFile, type Released } from './store.js';

/** How long a released veth may take to go before tsrun deletes it itself. */
export const RELEASE_GRACE_MS = 2000;

/**
 * Forgets released endpoints whose veth is gone, and deletes the veth of those that `mustGo`
 * says or that outstayed RELEASE_GRACE_MS. Returns the rest: their addresses are still taken.
 * Call with the network lock held.
 */
export async function settleReleased(stateDir: string, mustGo: (r: Released) => boolean): Promise<Released[]> {
  const leaving: Released[] = [];
  for (const r of readReleased(stateDir)) {
    if (linkExists(r.hostVeth)) {
      const overdue = !(Date.now() - Date.parse(r.released) < RELEASE_GRACE_MS);
      if (!overdue && !mustGo(r)) {
        leaving.push(r);
        continue;
      }
      await runCommand(['ip', 'link', 'del', r.hostVeth], '', `remove veth ${r.hostVeth} of container ${r.id.slice(0, 12)}`).catch((err: unknown) => {
        if (linkExists(r.hostVeth)) throw err; // else the kernel was faster
      });
    }
    removeFile(releasedPath(stateDir, r));
  }
  return leaving;
}
