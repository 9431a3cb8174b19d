// The V8 flag tsrun sets, and when.
//
// --wasm-tiering-budget: undici parses HTTP with llhttp compiled to WebAssembly. After a few
// responses V8 starts recompiling its 33 KB parser function with its optimizing compiler, and
// the pull waits for that (a warm pull ~270 -> ~510 ms on a 2-core VM). Registry responses are a
// few headers around bodies llhttp skips in bulk: the baseline code is plenty. The flag only
// decides when V8 optimizes WebAssembly (llhttp is tsrun's only WebAssembly).
//
// A flag changed at run time is not free. V8 stamps compiled code it caches with a hash of the
// flags, and rejects the code when the flags differ: Node's own modules, compiled into Node
// with such a cache, compile from source once the flag has changed (an unpack worker then
// boots in ~90 ms instead of ~60), and so does tsrun's bundle at every start if its cache was
// made after the change. So the flag is set as late as it can be — when the first request to a
// registry is about to be sent, while the unpack workers a pull starts first have had the
// command's start to boot (on a busy machine, a worker may still be booting: slower, not wrong)
// — and the launcher takes its code cache just before (cli/launcher.ts: a partial one, which a
// later run that changes no flag completes).
import { createRequire } from 'node:module';
import { CODE_CACHE_NOW } from './code-cache.js';
import { setV8Flags } from './libc.js';

const V8_FLAGS = '--wasm-tiering-budget=1000000000';

let applied = false;

/** Sets V8_FLAGS, once, after the launcher has taken the code cache it would write. */
export function applyV8Flags(): void {
  if (applied) return;
  applied = true;
  try {
    ((globalThis as Record<symbol, unknown>)[CODE_CACHE_NOW] as (() => void) | undefined)?.();
  } catch {
    // no cache this time (out of memory, say): the request goes on
  }
  if (!setV8Flags(V8_FLAGS)) (createRequire(import.meta.url)('node:v8') as typeof import('node:v8')).setFlagsFromString(V8_FLAGS);
}
