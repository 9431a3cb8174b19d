// tsrun pull [-q] [-a|--all-tags] [--platform os/arch[/variant]] NAME[:TAG|@DIGEST]
// Output as docker's: one line per layer (progress bars redrawn in place on a terminal, plain
// status lines otherwise), then Digest:, Status: and the full name. -q prints only the name.
import type { Command } from 'commander';
import { humanSize } from '../src/image/listing.js';
import { action, flagError, globalOptions } from './common.js';
import { writeOut, writeErr, stdoutStream } from './out.js';

/** docker's HumanSize: 3 significant digits, decimal units (2.22MB). */
export { humanSize };

interface Line {
  id: string;
  status: string;
  current?: number;
  total?: number;
  detail?: string;
}

function render(l: Line): string {
  let s = `${l.id}: ${l.detail && l.status !== 'Mounted' ? l.detail : l.status}`;
  if (l.status === 'Mounted' && l.detail) s = `${l.id}: Mounted from ${l.detail}`;
  if ((l.status === 'Downloading' || l.status === 'Pushing' || l.status === 'Extracting') && l.total && l.current !== undefined) {
    const width = 50;
    const filled = Math.min(width, Math.floor((l.current / l.total) * width));
    const bar = filled >= width ? '='.repeat(width) : '='.repeat(filled) + '>' + ' '.repeat(width - filled - 1);
    s += ` [${bar}]  ${humanSize(l.current)}/${humanSize(l.total)}`;
  }
  return s;
}

/**
 * docker-style per-layer progress. On a TTY every layer keeps its line and the block is redrawn
 * in place (cursor up, clear line); elsewhere each change of status is one plain line.
 */
export class ProgressView {
  private readonly lines: Line[] = [];
  private drawn = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly quiet: boolean,
    private readonly tty: boolean = Boolean(out.isTTY) && process.env.TERM !== 'dumb',
  ) {}

  update(e: Line): void {
    if (this.quiet) return;
    let line = this.lines.find((l) => l.id === e.id);
    const changed = !line || line.status !== e.status;
    if (!line) this.lines.push((line = { id: e.id, status: e.status }));
    Object.assign(line, e);
    if (!this.tty) {
      if (changed) this.out.write(`${render({ id: e.id, status: e.status, ...(e.detail && { detail: e.detail }) })}\n`);
      return;
    }
    // Redraw at most 10 times a second; a status change shows at once.
    if (changed) this.draw();
    else this.timer ??= setTimeout(() => this.draw(), 100);
  }

  private draw(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    let s = this.drawn > 0 ? `\x1b[${this.drawn}A` : '';
    for (const l of this.lines) s += `\x1b[2K\r${render(l)}\n`;
    this.drawn = this.lines.length;
    this.out.write(s);
  }

  /** Draws the final state and forgets the block (later output goes below it). */
  finish(): void {
    if (this.tty && this.lines.length) this.draw();
    clearTimeout(this.timer);
    this.lines.length = 0;
    this.drawn = 0;
  }

  say(text: string): void {
    if (!this.quiet) this.out.write(`${text}\n`);
  }
}

export function warnLine(message: string): void {
  writeErr(`tsrun: warning: ${message}\n`);
}

function positiveInt(flag: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw flagError(flag, v, 'must be a positive integer');
    return n;
  };
}

interface PullFlags {
  quiet: boolean;
  allTags: boolean;
  platform?: string;
  maxConcurrentDownloads: number;
}

export function register(program: Command): void {
  program
    .command('pull')
    .description('Download an image from a registry')
    .argument('<name>', 'NAME[:TAG|@DIGEST]')
    .option('-a, --all-tags', 'download all tagged images in the repository', false)
    .option('-q, --quiet', 'suppress verbose output', false)
    .option('--platform <os/arch[/variant]>', "set platform if server is multi-platform capable (default: this machine's)")
    .option('--max-concurrent-downloads <n>', 'layers downloaded at the same time', positiveInt('--max-concurrent-downloads'), 3)
    .action(
      action(async (name: string, flags: PullFlags, cmd: Command) => {
        const g = globalOptions(cmd);
        const [{ ImageStore }, { parseReference, familiarRepository }] = await Promise.all([
          import('../src/image/store.js'),
          import('../src/registry-client/reference.js'),
        ]);
        const store = await ImageStore.open(g.root, { writer: true });
        const ref = parseReference(name);
        // An image not here yet has layers to unpack: their workers boot while the registry
        // answers. Not for one that is here, most often up to date (its pull unpacks nothing).
        const workers = !flags.allTags && !(await store.resolve(name).catch(() => undefined)) ? await import('../src/image/unpack-worker.js') : undefined;
        workers?.startUnpackWorkers();
        const { pullImage, pullAllTags } = await import('../src/image/pull.js');
        const view = new ProgressView(stdoutStream(), flags.quiet);
        const options = {
          lastUnpack: !flags.allTags,
          insecureRegistries: g.insecureRegistry,
          maxConcurrentDownloads: flags.maxConcurrentDownloads,
          ...(flags.platform && { platform: flags.platform }),
          onWarning: warnLine,
        };
        const familiar = familiarRepository(ref);
        const show = (r: { name: string; manifestDigest: string; updated: boolean }, tag: string | undefined) => {
          view.finish();
          view.say(`Digest: ${r.manifestDigest}`);
          const shown = tag === undefined ? `${familiar}@${r.manifestDigest}` : `${familiar}:${tag}`;
          view.say(r.updated ? `Status: Downloaded newer image for ${shown}` : `Status: Image is up to date for ${shown}`);
        };
        if (flags.allTags) {
          view.say(`Pulling all tags of ${familiar}`);
          const results = await pullAllTags(store, name, options, (e) => view.update(e), (tag) => {
            view.finish();
            view.say(`${tag}: Pulling from ${ref.repository}`);
          });
          for (const r of results) show(r, r.name.slice(r.name.lastIndexOf(':') + 1));
          writeOut(`${ref.registry}/${ref.repository}\n`);
          return;
        }
        if (!ref.digest && !/:[^/]+$/.test(name)) view.say('Using default tag: latest');
        view.say(`${ref.digest ?? ref.tag}: Pulling from ${ref.repository}`);
        const r = await pullImage(store, name, options, (e) => view.update(e));
        workers?.stopIdleUnpackWorkers(); // started for layers that were all here
        show(r, ref.digest ? undefined : ref.tag);
        writeOut(`${r.name}\n`);
      }),
    );
}
