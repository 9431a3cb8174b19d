// The arrow between tsrun's two halves (docs/runtime.md): the runtime half — a bundle to a
// running container, src/runtime/ and tsrun-runtime's command line — never loads image,
// registry, network or engine code. Followed here through every import that is kept at run
// time (`import type` is erased), from the runtime's entry points.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const repo = join(__dirname, '..', '..');
// (src/overlay/mount-options.ts, the overlay's option string, is the plan's for the engine's root.)
const ENGINE_ONLY = ['src/image/', 'src/registry-client/', 'src/netns/', 'src/container/', 'src/build/'];

/** The relative modules a file loads at run time (static and dynamic imports, re-exports; not `import type`). */
function valueImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  const re = /(?:^|\n)\s*(import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g;
  for (let m; (m = re.exec(text)); ) {
    if (m[2]) continue; // import type / export type
    const spec = m[3] ?? m[4]!;
    const ts = resolve(dirname(file), spec).replace(/\.js$/, '.ts');
    if (existsSync(ts)) out.push(ts);
  }
  return out;
}

function closure(entries: string[]): Set<string> {
  const seen = new Set<string>();
  const todo = [...entries];
  while (todo.length > 0) {
    const f = todo.pop()!;
    if (seen.has(f)) continue;
    seen.add(f);
    todo.push(...valueImports(f));
  }
  return seen;
}

describe('layering', () => {
  it('the runtime half loads no image, registry, network or engine code', () => {
    const entries = ['cli/runtime.ts', 'src/runtime/bundle.ts', 'src/runtime/container.ts', 'src/runtime/exec.ts', 'src/runtime/launch.ts'].map((f) => join(repo, f));
    const loaded = [...closure(entries)].map((f) => relative(repo, f));
    expect(loaded).toContain('src/namespaces/plan.ts');
    expect(loaded.filter((f) => ENGINE_ONLY.some((dir) => f.startsWith(dir)))).toEqual([]);
  });

  it('the check sees an engine import when there is one', () => {
    // start.ts is the engine's, and loads the runtime half: the arrow points one way
    const loaded = [...closure([join(repo, 'src/container/start.ts')])].map((f) => relative(repo, f));
    expect(loaded).toContain('src/runtime/launch.ts');
    expect(loaded.some((f) => f.startsWith('src/netns/') || f.startsWith('src/container/'))).toBe(true);
  });
});
