// tsrun build [OPTIONS] PATH | -      (also: tsrun image build, tsrun builder build)
// tsrun history IMAGE                  (also: tsrun image history)
// tsrun builder prune                  the layer cache nobody uses
import { writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { BuildEvent } from '../src/build/builder.js';
import type { ResourceFlags } from '../src/cgroups/index.js';
import { TsrunError, flagError } from '../src/errors.js';
import { action, addResourceOptions, collect, globalOptions, report, tsrunCommand } from './common.js';
import { formatTable } from './table.js';
import { imageGroup } from './images.js';
import { writeOut, writeErr, stderrStream } from './out.js';

interface BuildFlags {
  file?: string;
  tag: string[];
  buildArg: string[];
  target?: string;
  cache: boolean;
  pull?: boolean;
  label: string[];
  quiet?: boolean;
  iidfile?: string;
  network: string;
  allow: string[];
  output?: string;
  progress: string;
  platform?: string;
  cgroupParent: string;
  memory?: string;
  cpus?: string;
}

function builderGroup(program: Command): Command {
  return program.commands.find((c) => c.name() === 'builder') ?? program.command('builder').description('Manage builds').usage('COMMAND');
}

export function register(program: Command): void {
  for (const cmd of [program.command('build'), imageGroup(program).command('build'), builderGroup(program).command('build')]) addBuild(cmd);
  for (const cmd of [program.command('history'), imageGroup(program).command('history')]) addHistory(cmd);
  builderGroup(program)
    .command('prune')
    .description('Remove the build cache')
    .option('-a, --all', 'remove all of it (the default: tsrun keeps no cache mounts, so all and unused are the same)')
    .option('-f, --force', 'do not prompt for confirmation (tsrun never prompts)')
    .option('--filter <filter>', 'only entries unused for a while: until=DURATION (24h, 90m) or until=TIMESTAMP')
    .action(action(async (flags: { filter?: string }, cmd: Command) => {
      const { root } = globalOptions(cmd);
      const before = flags.filter === undefined ? undefined : untilFilter(flags.filter);
      const [{ ImageStore }, { humanSize }] = await Promise.all([import('../src/image/store.js'), import('../src/image/listing.js')]);
      const store = await ImageStore.open(root);
      const r = await store.pruneCache(before ? { before } : {});
      // The contexts' remembered file hashes (src/build/file-hashes.ts) go with the cache.
      if (!before) await rm(join(root, 'build-hashes'), { recursive: true, force: true });
      writeOut(`Deleted build cache objects: ${r.entries}\nTotal reclaimed space: ${humanSize(r.reclaimed)}\n`);
    }));
}

function addBuild(cmd: Command): void {
  cmd
    .description('Build an image from a Dockerfile')
    .usage('[OPTIONS] PATH | -')
    .argument('<context>', 'the build context: a directory, or - for a tar (or a lone Dockerfile) on stdin')
    .option('-f, --file <path>', 'the Dockerfile (default: PATH/Dockerfile); - reads it from stdin')
    .option('-t, --tag <name>', 'name and optionally a tag, name:tag (repeatable)', collect, [])
    .option('--build-arg <key=value>', 'set a build-time variable; KEY alone takes it from the environment (repeatable)', collect, [])
    .option('--target <stage>', 'build this stage (and what it needs), not the last one')
    .option('--no-cache', 'do not use the layer cache')
    .option('--pull', 'pull base images even when the store has them')
    .option('--label <key=value>', 'set metadata on the image (repeatable)', collect, [])
    .option('-q, --quiet', 'print only the image ID (a failing step\'s output still shows)')
    .option('--iidfile <file>', 'write the image ID to this file')
    .option('--network <mode>', 'network of RUN steps: default (the bridge), none or host', 'default')
    .option('--allow <entitlement>', 'network.host: let RUN --network=host have the host\'s network (repeatable)', collect, [])
    .option('-o, --output <type=oci|docker,dest=FILE>', 'also write the image to an archive (oci-archive or docker-archive; tsrun\'s is both)')
    .option('--progress <type>', 'auto, plain or tty', 'auto')
    .option('--cgroup-parent <path>', 'parent cgroup of RUN steps\' containers (env TSRUN_CGROUP_PARENT)', process.env.TSRUN_CGROUP_PARENT ?? 'tsrun')
    .option('--platform <os/arch>', 'the platform to build for (tsrun builds for this machine only)')
    .addHelpText('after', '\nRUN steps run as ordinary tsrun containers, with tsrun\'s security defaults (no-new-privileges among them).');
  addResourceOptions(cmd);
  cmd.action(action(async (contextPath: string, flags: BuildFlags, command: Command) => {
    const g = globalOptions(command);
    const { normalizeName, parseReference } = await import('../src/registry-client/reference.js');
    const tags = flags.tag.map((t) => {
      try {
        if (parseReference(t).digest !== undefined) throw new Error('a digest is not a tag');
        return normalizeName(t);
      } catch (err) {
        throw flagError('--tag', t, `invalid reference format: ${(err as Error).message}`);
      }
    });
    const buildArgs = Object.fromEntries(flags.buildArg.flatMap((a) => {
      const eq = a.indexOf('=');
      if (eq === 0) throw flagError('--build-arg', a, 'expected KEY=value or KEY');
      if (eq > 0) return [[a.slice(0, eq), a.slice(eq + 1)]];
      const v = process.env[a];
      return v === undefined ? [] : [[a, v]];
    }));
    const labels = Object.fromEntries(flags.label.map((l) => {
      const eq = l.indexOf('=');
      if (eq <= 0) throw flagError('--label', l, 'expected key=value');
      return [l.slice(0, eq), l.slice(eq + 1)];
    }));
    const network = flags.network === 'bridge' ? 'default' : flags.network;
    if (network !== 'default' && network !== 'none' && network !== 'host') throw flagError('--network', flags.network, 'RUN steps take default, none or host');
    for (const a of flags.allow) if (a !== 'network.host') throw flagError('--allow', a, 'tsrun knows network.host');
    const output = flags.output === undefined ? undefined : parseOutput(flags.output);
    if (!['auto', 'plain', 'tty'].includes(flags.progress)) throw flagError('--progress', flags.progress, 'expected auto, plain or tty');
    if (flags.file === '-' && contextPath === '-') throw new TsrunError('EINVAL_FLAG', 'the context and the Dockerfile cannot both come from stdin');

    const [{ openContext, readDockerfile }, { parseDockerfile }, { build, StepOutput }, { ImageStore }] = await Promise.all([
      import('../src/build/context.js'),
      import('../src/build/parse.js'),
      import('../src/build/builder.js'),
      import('../src/image/store.js'),
    ]);
    const store = await ImageStore.open(g.root, { writer: true });
    // Only a context on stdin is unpacked: into a private dir of the store's tmp (a killed
    // build's is removed when the store is next opened).
    const tmp = contextPath === '-' ? await store.makeTempDir('context') : undefined;
    const ctx = await openContext({ path: contextPath, stdin: process.stdin, tempRoot: tmp ?? store.root });
    const view = flags.quiet ? new QuietView() : flags.progress === 'tty' || (flags.progress === 'auto' && stderrStream().isTTY) ? new TtyView() : new PlainView();
    try {
      const df = ctx.dockerfileFromStdin !== undefined ? { text: ctx.dockerfileFromStdin, name: 'Dockerfile' } : await readDockerfile(ctx, flags.file, process.stdin);
      const dockerfile = parseDockerfile(df.text, df.name);
      const result = await build(store, {
        root: g.root,
        insecureRegistry: g.insecureRegistry,
        context: ctx,
        dockerfile,
        tags,
        buildArgs,
        ...(flags.target !== undefined && { target: flags.target }),
        noCache: !flags.cache,
        pull: flags.pull ?? false,
        labels,
        network,
        allowHostNetwork: flags.allow.includes('network.host'),
        resources: resourceFlags(flags),
        cgroupParent: flags.cgroupParent,
        ...(flags.platform !== undefined && { platform: flags.platform }),
        tsrunCommand: tsrunCommand(g.root),
        onEvent: (e) => view.event(e),
      });
      view.finish();
      if (output) {
        const [{ resolveForSave, saveImages }, { writeFileAtomically }] = await Promise.all([import('../src/image/save.js'), import('./export.js')]);
        const items = await resolveForSave(store, [result.id, ...result.names]);
        await writeFileAtomically(output.dest, (out) => saveImages(store, items, out));
      }
      if (flags.iidfile !== undefined) writeFileSync(flags.iidfile, result.id);
      if (flags.quiet) writeOut(`${result.id}\n`);
      else {
        writeErr(`Successfully built ${result.id.slice(7, 19)}\n`);
        for (const n of result.names) writeErr(`Successfully tagged ${n}\n`);
        if (output) writeErr(`Wrote ${output.type} archive ${output.dest}\n`);
      }
      return 0;
    } catch (err) {
      view.finish();
      const out = err instanceof Error && err.cause instanceof StepOutput ? err.cause.output : undefined;
      if (out !== undefined && view.hidesOutput) writeErr(out.endsWith('\n') || out === '' ? out : `${out}\n`);
      return report(err);
    } finally {
      await ctx.close();
      if (tmp) await rm(tmp, { recursive: true, force: true });
    }
  }));
}

const RESOURCE_FLAGS = ['memory', 'memorySwap', 'memoryReservation', 'cpus', 'cpuShares', 'cpuPeriod', 'cpuQuota', 'cpusetCpus', 'cpusetMems', 'pidsLimit', 'blkioWeight', 'deviceReadBps', 'deviceWriteBps', 'deviceReadIops', 'deviceWriteIops'] as const;

/** The cgroup limits of RUN steps: only the resource flags, not the build's own. */
function resourceFlags(flags: object): ResourceFlags {
  const all = flags as Record<string, unknown>;
  return Object.fromEntries(RESOURCE_FLAGS.filter((k) => all[k] !== undefined).map((k) => [k, all[k]])) as ResourceFlags;
}

function parseOutput(spec: string): { type: 'oci' | 'docker'; dest: string } {
  const fields = Object.fromEntries(spec.split(',').map((kv) => {
    const eq = kv.indexOf('=');
    return eq < 0 ? ['dest', kv] : [kv.slice(0, eq), kv.slice(eq + 1)];
  }));
  const type = fields.type ?? 'docker';
  if (type !== 'oci' && type !== 'docker') throw flagError('--output', spec, `type=${type} is not supported: tsrun writes type=oci or type=docker archives`);
  if (!fields.dest) throw flagError('--output', spec, 'dest=FILE is missing');
  if (fields.dest === '-') throw flagError('--output', spec, 'tsrun writes the archive to a file: give dest=FILE');
  return { type, dest: fields.dest };
}

function untilFilter(filter: string): Date {
  const m = /^until=(.+)$/.exec(filter);
  if (!m) throw flagError('--filter', filter, 'tsrun knows until=DURATION or until=TIMESTAMP');
  const d = /^(\d+)(s|m|h)$/.exec(m[1]!);
  if (d) return new Date(Date.now() - Number(d[1]) * { s: 1e3, m: 60e3, h: 3600e3 }[d[2] as 's' | 'm' | 'h']);
  const t = new Date(m[1]!);
  if (Number.isNaN(t.getTime())) throw flagError('--filter', filter, 'until= takes a duration (24h, 90m) or a timestamp');
  return t;
}

// ---- progress --------------------------------------------------------------------------------

interface View {
  /** Output of RUN steps is not on screen (so a failing step's is printed with the error). */
  readonly hidesOutput: boolean;
  event(e: BuildEvent): void;
  finish(): void;
}

const secs = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

function label(e: Extract<BuildEvent, { type: 'step' }>): string {
  return `[${e.stage !== undefined ? `${e.stage} ` : ''}${e.step}/${e.total}] ${e.text}`;
}

/** BuildKit's plain output: `#N [i/n] INSTRUCTION`, then output lines, then `#N DONE 1.2s`. */
class PlainView implements View {
  readonly hidesOutput = false;
  private readonly started = new Map<number, number>();
  private readonly partial = new Map<number, string>();
  private readonly cached = new Set<number>();

  event(e: BuildEvent): void {
    const w = (s: string) => writeErr(`${s}\n`);
    switch (e.type) {
      case 'step':
        this.started.set(e.step, Date.now());
        w(`#${e.step} ${label(e)}`);
        break;
      case 'output': {
        const text = (this.partial.get(e.step) ?? '') + e.data.toString('utf8');
        const lines = text.split('\n');
        this.partial.set(e.step, lines.pop()!);
        const at = secs(Date.now() - (this.started.get(e.step) ?? Date.now())).slice(0, -1);
        for (const l of lines) w(`#${e.step} ${at} ${l}`);
        break;
      }
      case 'cached':
        w(`#${e.step} CACHED`);
        this.cached.add(e.step);
        break;
      case 'done': {
        if (this.cached.has(e.step)) break;
        const rest = this.partial.get(e.step);
        if (rest) w(`#${e.step} ${rest}`);
        this.partial.delete(e.step);
        w(`#${e.step} DONE ${secs(e.ms)}`);
        break;
      }
      case 'pull':
        w(e.message);
        break;
      case 'warning':
        w(`WARNING: ${e.message}`);
        break;
    }
  }

  finish(): void {}
}

/** A terminal: one line per finished step, a live line for the running one. */
class TtyView implements View {
  readonly hidesOutput = true;
  private current?: { text: string; start: number };
  private readonly timer: NodeJS.Timeout;
  private readonly start = Date.now();

  constructor() {
    this.timer = setInterval(() => this.draw(), 100);
    this.timer.unref();
  }

  event(e: BuildEvent): void {
    switch (e.type) {
      case 'step':
        this.current = { text: label(e), start: Date.now() };
        this.draw();
        break;
      case 'cached':
        if (this.current) this.current.text += ' (CACHED)';
        break;
      case 'done':
        this.clear();
        if (this.current) writeErr(` => ${this.current.text.padEnd(60)} ${secs(e.ms)}\n`);
        this.current = undefined;
        break;
      case 'pull':
      case 'warning':
        this.clear();
        writeErr(`${e.type === 'warning' ? 'WARNING: ' : ''}${e.message}\n`);
        break;
      case 'output':
        break;
    }
  }

  private clear(): void {
    writeErr('\r\x1b[2K');
  }

  private draw(): void {
    if (!this.current) return;
    const cols = stderrStream().columns ?? 80;
    const line = `[+] Building ${secs(Date.now() - this.start)}  => ${this.current.text}  ${secs(Date.now() - this.current.start)}`;
    this.clear();
    writeErr(line.slice(0, cols - 1));
  }

  finish(): void {
    clearInterval(this.timer);
    this.clear();
  }
}

class QuietView implements View {
  readonly hidesOutput = true;
  event(e: BuildEvent): void {
    if (e.type === 'warning') writeErr(`WARNING: ${e.message}\n`);
  }
  finish(): void {}
}

// ---- history ---------------------------------------------------------------------------------

function addHistory(cmd: Command): void {
  cmd
    .description('Show the history of an image')
    .usage('[OPTIONS] IMAGE')
    .argument('<image>')
    .option('-H, --human [bool]', 'print sizes and dates in human readable format', true)
    .option('--no-trunc', 'do not truncate output')
    .option('-q, --quiet', 'only show image IDs')
    .action(action(async (name: string, flags: { trunc: boolean; quiet?: boolean; human: boolean | string }, command: Command) => {
      const { root } = globalOptions(command);
      const [{ findImage }, { humanSize }] = await Promise.all([import('../src/container/image-find.js'), import('../src/image/listing.js')]);
      const image = await findImage(root, name);
      if (!image) throw new TsrunError('ENOIMAGE', `No such image: ${name}`);
      const history = [...(image.config.history ?? [])];
      const human = flags.human !== false && flags.human !== 'false';
      // Layers in history order: an entry without empty_layer owns the next layer.
      let layer = 0;
      const rows = history.map((h) => {
        const empty = h.empty_layer === true;
        const size = empty ? 0 : (image.layers[layer++]?.size ?? 0);
        return { created: String(h.created ?? ''), by: String(h.created_by ?? ''), size, comment: String(h.comment ?? '') };
      });
      rows.reverse();
      const id = (i: number) => (i === 0 ? (flags.trunc ? image.id.slice(7, 19) : image.id) : '<missing>');
      if (flags.quiet) {
        writeOut(`${id(0)}\n`);
        return 0;
      }
      const table = [['IMAGE', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT']];
      rows.forEach((r, i) => {
        const by = flags.trunc && r.by.length > 45 ? `${r.by.slice(0, 44)}…` : r.by;
        table.push([id(i), human ? ago(r.created) : r.created, by, human ? humanSize(r.size) : String(r.size), r.comment]);
      });
      writeOut(formatTable(table));
      return 0;
    }));
}

function ago(iso: string): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return 'N/A';
  const s = Math.max(0, (Date.now() - t) / 1000);
  if (s < 60) return 'Less than a minute ago';
  const units: Array<[number, string]> = [[60, 'minute'], [3600, 'hour'], [86400, 'day'], [604800, 'week'], [2592000, 'month'], [31536000, 'year']];
  let best: [number, string] = units[0]!;
  for (const u of units) if (s >= u[0]) best = u;
  const n = Math.floor(s / best[0]);
  return `${n} ${best[1]}${n === 1 ? '' : 's'} ago`;
}

