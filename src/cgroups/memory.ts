// The memory controller: hard limit, swap, soft limit ("reservation"), usage and OOM kills.
//   v1: memory.limit_in_bytes, memory.memsw.limit_in_bytes (memory + swap), memory.soft_limit_in_bytes
//   v2: memory.max, memory.swap.max (swap alone), memory.low
import { totalmem } from 'node:os';
import { readFiles, requireFile, type Controller } from './controller.js';
import { exists, parseLimit, readFlatKeyed, readOptional, readText, writeValue } from './fsio.js';
import type { Resources } from './types.js';

const SWAP_V1 = 'memory.memsw.limit_in_bytes';
const SWAP_WHY = 'swap accounting is off: boot with swapaccount=1, or leave out --memory-swap';

const v2Max = (n: number) => (n < 0 ? 'max' : String(n));

export const memory: Controller = {
  v1: 'memory',
  v2: 'memory',

  flags(r) {
    const m = r.memory ?? {};
    return [
      ...(m.limit !== undefined ? ['--memory'] : []),
      ...(m.swap !== undefined ? ['--memory-swap'] : []),
      ...(m.reservation !== undefined ? ['--memory-reservation'] : []),
    ];
  },

  applyV1(dir, r) {
    const m = r.memory;
    if (!m) return;
    if (m.swap !== undefined) requireFile('--memory-swap', dir, SWAP_V1, SWAP_WHY, 1);
    const writeLimit = () => writeValue(dir, 'memory.limit_in_bytes', m.limit ?? -1);
    const writeSwap = () => writeValue(dir, SWAP_V1, m.swap ?? -1);
    if (m.limit !== undefined && m.swap !== undefined) {
      // The kernel keeps limit ≤ memsw at every moment, so the order depends on the direction:
      // raising, swap first; lowering, memory first (as runc does).
      const current = parseLimit(readText(dir, 'memory.limit_in_bytes'));
      if (m.swap === -1 || current < m.swap) {
        writeSwap();
        writeLimit();
      } else {
        writeLimit();
        writeSwap();
      }
    } else if (m.limit !== undefined) {
      writeLimit();
    } else if (m.swap !== undefined) {
      writeSwap();
    }
    if (m.reservation !== undefined) writeValue(dir, 'memory.soft_limit_in_bytes', m.reservation);
  },

  applyV2(dir, r) {
    const m = r.memory;
    if (!m) return;
    if (m.limit !== undefined) writeValue(dir, 'memory.max', v2Max(m.limit));
    if (m.swap !== undefined) {
      requireFile('--memory-swap', dir, 'memory.swap.max', SWAP_WHY, 2);
      // v2 limits swap on its own; docker's --memory-swap counts memory plus swap.
      const limit = m.limit ?? parseLimit(readText(dir, 'memory.max'));
      const swapOnly = m.swap < 0 || !Number.isFinite(limit) ? -1 : Math.max(0, m.swap - limit);
      writeValue(dir, 'memory.swap.max', v2Max(swapOnly));
    }
    if (m.reservation !== undefined) writeValue(dir, 'memory.low', m.reservation);
  },

  limitsV1: (dir) => readFiles(dir, ['memory.limit_in_bytes', SWAP_V1, 'memory.soft_limit_in_bytes']),
  limitsV2: (dir) => readFiles(dir, ['memory.max', 'memory.swap.max', 'memory.low']),
};

/**
 * docker's default when --memory is given without --memory-swap: as much swap as memory
 * (memory + swap = 2 × memory), where the kernel accounts swap at all. Without this, v2's
 * memory.swap.max stays "max" and a limited container could swap without bound.
 */
export function withSwapDefault(dir: string, r: Resources, version: 1 | 2): Resources {
  const m = r.memory;
  if (!m || m.limit === undefined || m.limit < 0 || m.swap !== undefined) return r;
  if (!exists(dir, version === 1 ? SWAP_V1 : 'memory.swap.max')) return r;
  return { ...r, memory: { ...m, swap: m.limit * 2 } };
}

/** Usage as docker stats shows it: without the inactive page cache the kernel can drop at will. */
function usageWithoutCache(usage: number, inactiveFile: number | undefined): number {
  return inactiveFile !== undefined && inactiveFile < usage ? usage - inactiveFile : usage;
}

const orHost = (limit: number) => (Number.isFinite(limit) ? limit : totalmem());

export function memoryStatsV1(dir: string): { usage: number; limit: number } {
  const usage = Number(readOptional(dir, 'memory.usage_in_bytes') ?? 0);
  const stat = readFlatKeyed(dir, 'memory.stat') ?? {};
  const limit = parseLimit(readOptional(dir, 'memory.limit_in_bytes') ?? 'max');
  return { usage: usageWithoutCache(usage, stat.total_inactive_file), limit: orHost(limit) };
}

export function memoryStatsV2(dir: string): { usage: number; limit: number } {
  const usage = Number(readOptional(dir, 'memory.current') ?? 0);
  const stat = readFlatKeyed(dir, 'memory.stat') ?? {};
  const limit = parseLimit(readOptional(dir, 'memory.max') ?? 'max');
  return { usage: usageWithoutCache(usage, stat.inactive_file), limit: orHost(limit) };
}

/**
 * v1: memory.oom_control's oom_kill counter (Linux ≥ 4.13). Older kernels only count hits of
 * the limit (memory.failcnt): a hit is not always a kill, so that fallback can say yes wrongly.
 */
export function oomKilledV1(dir: string): boolean {
  const control = readFlatKeyed(dir, 'memory.oom_control');
  if (control?.oom_kill !== undefined) return control.oom_kill > 0;
  return Number(readOptional(dir, 'memory.failcnt') ?? 0) > 0;
}

export function oomKilledV2(dir: string): boolean {
  return (readFlatKeyed(dir, 'memory.events')?.oom_kill ?? 0) > 0;
}
