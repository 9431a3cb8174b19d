// The content hashes of a context's files from its last build (context-sources.ts FileHashes):
// `<root>/build-hashes/<context>.json`, keyed by what each file's lstat says. Only what the
// build used is written back, so the file stays the size of the context.
import fs from 'node:fs/promises';
import path from 'node:path';
import { sha256 } from '../image/digest.js';
import { writeFileAtomic } from '../image/fsutil.js';
import type { FileHashes } from './context.js';

/** Entries in one file at most: a context bigger than this hashes the rest each time. */
const MAX_ENTRIES = 200_000;

export class StoredFileHashes implements FileHashes {
  private readonly used = new Map<string, string>();

  private constructor(
    private readonly file: string,
    private readonly before: Map<string, string>,
  ) {}

  static async load(storeRoot: string, contextDir: string): Promise<StoredFileHashes> {
    const file = path.join(storeRoot, 'build-hashes', `${sha256(contextDir).slice(7, 39)}.json`);
    const before = new Map<string, string>();
    const text = await fs.readFile(file, 'utf8').catch(() => undefined);
    if (text !== undefined) {
      try {
        const parsed = JSON.parse(text) as Record<string, unknown>;
        for (const [k, v] of Object.entries(parsed)) if (typeof v === 'string' && /^[0-9a-f]{64}$/.test(v)) before.set(k, v);
      } catch {
        // a damaged file is only a cold start
      }
    }
    return new StoredFileHashes(file, before);
  }

  get(stat: string): string | undefined {
    const hash = this.used.get(stat) ?? this.before.get(stat);
    if (hash !== undefined && this.used.size < MAX_ENTRIES) this.used.set(stat, hash);
    return hash;
  }

  set(stat: string, hash: string): void {
    if (this.used.size < MAX_ENTRIES) this.used.set(stat, hash);
  }

  async save(): Promise<void> {
    if (this.used.size === 0) return;
    // Unchanged (every hash was known, none dropped): nothing to write.
    if (this.used.size === this.before.size && [...this.used].every(([k, v]) => this.before.get(k) === v)) return;
    await fs.mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
    await writeFileAtomic(this.file, JSON.stringify(Object.fromEntries(this.used)), 0o600);
  }
}
