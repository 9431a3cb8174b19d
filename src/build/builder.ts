// `tsrun build`: a Dockerfile's stages, step by step, each on the previous step's result.
//
//   FROM      the base image (pulled if missing), an earlier stage, or scratch; its ONBUILD
//             triggers run first
//   RUN       an ordinary tsrun container on the layers so far (same helper, security defaults,
//             network, limits); its upper dir is committed as the step's layer (src/overlay)
//   COPY/ADD  the files extracted into a created (never started) container by `cp -`'s code,
//             then committed the same way (copy.ts)
//   others    change the image config only (image-config.ts)
//
// The layer cache, as docker's classic builder keys it: a step's key is the key of the state
// before it + the instruction as expanded + the build args a RUN sees + the content digest of
// what COPY/ADD read. The state's key after a step adds the step's result (its layer's diff ID),
// so a step that ran again (new files, new mtimes) makes every later step run again too. Each
// step's `created` time is kept in the cache: a fully cached rebuild is the same image, by ID.
//
// Nothing half-made is trusted: a failed step's container is removed with its mount and cgroup,
// layers and blobs the build made go back to the store's garbage collection (the store keeps
// what the cache or an image references), and the image is recorded last.
import * as fs from 'node:fs';
import path, { join, posix } from 'node:path';
import { TsrunError } from '../errors.js';
import { chainIds, sha256 } from '../image/digest.js';
import { layerBlob } from '../image/save.js';
import type { ImageStore } from '../image/store.js';
import type { CacheEntry } from '../image/images-db.js';
import type { Descriptor, Digest, ImageConfig, ImageManifest, ImageRecord, ImageRunConfig, LayerRecord } from '../image/types.js';
import { MediaType } from '../registry-client/manifest.js';
import { hostPlatform, parsePlatform, formatPlatform, platformMatches } from '../registry-client/platform.js';
import { parseReference } from '../registry-client/reference.js';
import { LowerLayers } from '../overlay/lower-layers.js';
import { createContainer } from '../container/create.js';
import { commitLayer, type NewLayer } from '../container/commit.js';
import { findOrPullImage, type PullHooks } from '../container/image-lookup.js';
import type { Found } from '../container/lookup.js';
import { ContainerPaths } from '../container/paths.js';
import { removeContainer } from '../container/remove.js';
import { parseRunOptions, type RunFlagValues } from '../container/run-options.js';
import { startContainer } from '../container/start.js';
import type { ResourceFlags } from '../cgroups/index.js';
import type { BuildContext } from './context.js';
import { copyAsLayer } from './copy-layer.js';
import { chownIds, contextSources, copyInto, destinationIsDir, isArchive, missingDirs, type CopySource, type CopyTarget } from './copy.js';
import { statInImage } from './image-paths.js';
import { sourcesDigest } from './context.js';
import { evaluate, expandWord } from './expand.js';
import { applyMetadata, createdBy, envValue, workdirOf } from './image-config.js';
import type { Dockerfile, Instruction, RawInstruction, Stage } from './instructions.js';
import { parseInstruction } from './parse.js';
import { builderId, removeAbandoned } from './abandoned.js';
import { StoredFileHashes } from './file-hashes.js';
import { HEREDOC_DIR, lastBytes, OUTPUT_SHOWN, runArgv, StepOutput, Tail } from './run-step.js';
export { runArgv, StepOutput } from './run-step.js';
import { fetchUrl } from './url.js';
import { crashPoint } from '../sys/crash.js';

export interface BuildOptions {
  root: string;
  insecureRegistry: string[];
  context: BuildContext;
  dockerfile: Dockerfile;
  /** -t: names for the image, normalized (docker.io/library/app:latest). */
  tags: string[];
  buildArgs: Record<string, string>;
  target?: string;
  noCache: boolean;
  /** --pull: always pull base images, even when the store has them. */
  pull: boolean;
  labels: Record<string, string>;
  /** RUN's network, unless a RUN says `--network=` (within what runNetwork allows). */
  network: 'default' | 'none' | 'host';
  /** `--allow network.host`: a Dockerfile's `RUN --network=host` may have the host's network. */
  allowHostNetwork?: boolean;
  resources: ResourceFlags;
  /** --cgroup-parent of RUN steps' containers. */
  cgroupParent?: string;
  platform?: string;
  /** How a container's monitor calls tsrun back (see StartOptions). */
  tsrunCommand: string[];
  onEvent: (e: BuildEvent) => void;
}

export type BuildEvent =
  | { type: 'step'; step: number; total: number; stage?: string; text: string }
  | { type: 'cached'; step: number }
  | { type: 'done'; step: number; ms: number }
  | { type: 'output'; step: number; data: Buffer }
  | { type: 'pull'; message: string }
  | { type: 'warning'; message: string };

export interface BuildResult {
  id: Digest;
  manifestDigest: Digest;
  names: string[];
}

/** How stale a cache entry's use time may get before a build that uses it records the use again. */
const USE_REFRESH_MS = 60 * 60 * 1000;

/** docker's predefined proxy ARGs: usable without an ARG line, kept out of history and cache. */
const PROXY_ARGS = new Set(['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy']);

/** A stage's state between steps: what an image made of it now would be. */
interface State {
  config: ImageConfig;
  /** Manifest layers (compressed blobs), one per diff_id. */
  layers: Descriptor[];
  /** The base's manifest family: docker's media types or OCI's. */
  docker: boolean;
  /** The cache key of this state (see the top of the file). */
  key: string;
  /** CMD was set in this stage (an ENTRYPOINT then keeps it). */
  cmdSet: boolean;
  /** ARGs declared in this stage, with their values (undefined: declared, no value). */
  args: Map<string, string | undefined>;
}

export async function build(store: ImageStore, opts: BuildOptions): Promise<BuildResult> {
  return new Builder(store, opts).run();
}

class Builder {
  private readonly df: Dockerfile;
  private readonly globalArgs = new Map<string, string | undefined>();
  private readonly usedArgs = new Set<string>();
  private readonly finished = new Map<number, State>();
  private readonly pending: Record<string, CacheEntry> = {};
  private readonly created = { layers: [] as Digest[], blobs: [] as Digest[] };
  private readonly platform = hostPlatform();
  private step = 0;
  /** The stage being built (`AS name`), for step labels. */
  private stageName: string | undefined;
  private currentStage = 0;
  private hashes: StoredFileHashes | undefined;
  /** The build cache as it was when the first step looked (what other builds add later is missed). */
  private cache: Record<string, CacheEntry> | undefined;
  private total = 0;

  constructor(
    private readonly store: ImageStore,
    private readonly opts: BuildOptions,
  ) {
    this.df = opts.dockerfile;
    if (opts.platform !== undefined) {
      const want = parsePlatform(opts.platform);
      if (!platformMatches(this.platform, want)) {
        throw new TsrunError('EBUILD', `--platform ${opts.platform}: tsrun builds for this machine only (${formatPlatform(this.platform)})`);
      }
    }
  }

  async run(): Promise<BuildResult> {
    await removeAbandoned(this.opts.root);
    for (const raw of this.df.globalArgs) {
      const inst = this.evaluate(raw, (n) => this.globalArgs.get(n) ?? undefined);
      if (inst.kind !== 'ARG') continue;
      for (const a of inst.args) this.globalArgs.set(a.name, this.argValue(a.name, a.value));
    }
    const target = this.targetStage();
    const stages = this.needed(target);
    this.total = stages.reduce((n, s) => n + 1 + s.instructions.length, 0);
    try {
      let last: State | undefined;
      for (const stage of stages) {
        last = await this.buildStage(stage);
        this.finished.set(stage.index, last);
      }
      this.warnUnusedArgs();
      return await this.record(last!);
    } catch (err) {
      // What the cache does not keep (a failed step's layer, the image's own blobs) goes.
      await this.flushCache().catch(() => {});
      await this.store.discard(this.created).catch(() => {});
      throw err;
    } finally {
      await this.flushCache().catch(() => {});
      await this.hashes?.save().catch(() => {});
    }
  }

  /** Hashes of the context's files from its last build (not for a context unpacked from stdin). */
  private async fileHashes(): Promise<StoredFileHashes | undefined> {
    const dir = this.opts.context.dir;
    if (dir.startsWith(path.join(this.opts.root, 'tmp') + path.sep)) return undefined;
    this.hashes ??= await StoredFileHashes.load(this.opts.root, dir);
    return this.hashes;
  }

  private async flushCache(): Promise<void> {
    const entries = { ...this.pending };
    for (const k of Object.keys(entries)) delete this.pending[k];
    await this.store.putCacheEntries(entries);
  }

  // ---- stages ------------------------------------------------------------------------------

  private targetStage(): Stage {
    const stages = this.df.stages;
    if (this.opts.target === undefined) return stages[stages.length - 1]!;
    const want = this.opts.target.toLowerCase();
    const found = stages.find((s) => s.name === want);
    if (!found) throw new TsrunError('EBUILD', `target stage "${this.opts.target}" could not be found`);
    return found;
  }

  /** The target and the stages it reads from (FROM stage, COPY --from=stage), in file order. */
  private needed(target: Stage): Stage[] {
    const want = new Set<number>();
    const visit = (s: Stage) => {
      if (want.has(s.index)) return;
      want.add(s.index);
      const from = this.evaluate(s.from, this.globalScope);
      const copies = s.instructions.filter((i) => i.keyword === 'COPY' && i.flags.from !== undefined);
      const refs = [from.kind === 'FROM' ? from.image : '', ...copies.map((i) => expandWord(i.flags.from!, this.globalScope, this.df.escape))];
      for (const r of refs) {
        const dep = this.stageNamed(r, s.index);
        if (dep) visit(dep);
      }
    };
    visit(target);
    return this.df.stages.filter((s) => want.has(s.index));
  }

  /** What FROM lines see: the ARGs before the first FROM, and BuildKit's platform ARGs. */
  private readonly globalScope = (name: string): string | undefined =>
    this.globalArgs.has(name) ? this.globalArgs.get(name) : automaticArg(name, this.platform);

  /**
   * A name that is a stage of this Dockerfile but not one built before `index` (a later stage,
   * or itself): an error, never an image of that name pulled from a registry.
   */
  private refuseStageOutOfOrder(ref: string, index: number, what: string): void {
    const r = ref.toLowerCase();
    const stage = this.df.stages.find((s) => s.name === r || (/^\d+$/.test(r) && String(s.index) === r));
    if (stage && (stage.index >= index || !this.finished.has(stage.index))) {
      throw new TsrunError('EBUILD', `${what}: stage "${ref}" is not built before this one (a stage can use only the stages above it)`);
    }
  }

  /** An earlier stage by name or number, as FROM and COPY --from name them. */
  private stageNamed(ref: string, before: number): Stage | undefined {
    const r = ref.toLowerCase();
    return this.df.stages.find((s) => s.index < before && (s.name === r || String(s.index) === r));
  }

  private async buildStage(stage: Stage): Promise<State> {
    const label = stage.name;
    this.stageName = label;
    this.currentStage = stage.index;
    let state = await this.from(stage);
    const triggers = state.config.config?.OnBuild ?? [];
    if (triggers.length > 0) {
      this.total += triggers.length;
      state = { ...state, config: { ...state.config, config: { ...state.config.config, OnBuild: null } } };
      for (const trigger of triggers) {
        const raw = parseInstruction(trigger, this.df.file, stage.from.source.line);
        state = await this.instruction(state, raw, label, `ONBUILD ${trigger}`);
      }
    }
    for (const raw of stage.instructions) state = await this.instruction(state, raw, label);
    return state;
  }

  private async from(stage: Stage): Promise<State> {
    const step = this.begin(this.fromText(stage), stage.name);
    const started = Date.now();
    try {
      const state = await this.base(stage);
      this.opts.onEvent({ type: 'done', step, ms: Date.now() - started });
      return state;
    } catch (err) {
      if (err instanceof TsrunError && err.message.startsWith(`${this.df.file}:`)) throw err;
      throw this.fail(stage.from, `${this.where(step, stage.name)} ${stage.from.source.text}: ${err instanceof Error ? err.message : String(err)}`, err);
    }
  }

  /** FROM as the progress shows it: with the image as expanded (`FROM $BASE` says which). */
  private fromText(stage: Stage): string {
    try {
      const inst = this.evaluate(stage.from, this.globalScope);
      if (inst.kind === 'FROM') return `FROM ${inst.image}${stage.name !== undefined ? ` AS ${stage.name}` : ''}`;
    } catch {
      // base() reports it, with the line
    }
    return stage.from.source.text;
  }

  private async base(stage: Stage): Promise<State> {
    const inst = this.evaluate(stage.from, this.globalScope);
    if (inst.kind !== 'FROM') throw this.fail(stage.from, 'expected FROM');
    if (inst.platform !== undefined && !platformMatches(this.platform, parsePlatform(inst.platform))) {
      throw this.fail(stage.from, `--platform=${inst.platform}: tsrun builds for this machine only (${formatPlatform(this.platform)})`);
    }
    const fresh = (config: ImageConfig, layers: Descriptor[], docker: boolean, key: string): State => ({
      config,
      layers,
      docker,
      key,
      cmdSet: false,
      args: new Map(),
    });
    let state: State;
    const earlier = this.stageNamed(inst.image, stage.index);
    if (!earlier) this.refuseStageOutOfOrder(inst.image, stage.index, `FROM ${inst.image}`);
    if (inst.image.toLowerCase() === 'scratch') {
      const { architecture, os, variant } = this.platform;
      state = fresh({ architecture, os, ...(variant && { variant }), config: {}, rootfs: { type: 'layers', diff_ids: [] }, history: [] }, [], false, sha256('scratch'));
    } else if (earlier && this.finished.has(earlier.index)) {
      const s = this.finished.get(earlier.index)!;
      state = fresh(s.config, s.layers, s.docker, s.key);
    } else {
      const image = await this.image(inst.image);
      const manifest = JSON.parse((await this.store.readBlob(image.manifestDigest)).toString('utf8')) as ImageManifest;
      const layers: Descriptor[] = [];
      for (const [i, d] of manifest.layers.entries()) layers.push((await layerBlob(this.store, d, image.config.rootfs.diff_ids[i]!)) ?? d);
      state = fresh(image.config, layers, manifest.mediaType === MediaType.dockerManifest, sha256(`image:${image.id}`));
    }
    return state;
  }

  private async image(name: string): Promise<ImageRecord> {
    try {
      parseReference(name);
    } catch (err) {
      throw new TsrunError('EBUILD', `invalid image reference "${name}": ${(err as Error).message}`);
    }
    const hooks: PullHooks = {
      onPull: (message) => this.opts.onEvent({ type: 'pull', message }),
      onWarning: (message) => this.opts.onEvent({ type: 'warning', message }),
    };
    return findOrPullImage({ root: this.opts.root, insecureRegistry: this.opts.insecureRegistry }, name, { pull: this.opts.pull ? 'always' : 'missing' }, hooks);
  }

  // ---- one instruction -----------------------------------------------------------------------

  private async instruction(state: State, raw: RawInstruction, stage: string | undefined, shown?: string): Promise<State> {
    const step = this.begin(shown ?? raw.source.text, stage);
    const started = Date.now();
    const inst = this.evaluate(raw, (n) => envValue(state.config.config?.Env, n) ?? this.argInScope(state, n));
    let next: State;
    let cached = false;
    try {
      if (inst.kind === 'ARG') {
        next = this.declareArgs(state, inst.args);
      } else {
        const r = await this.cachedStep(state, raw, inst, step);
        next = r.state;
        cached = r.cached;
      }
    } catch (err) {
      if (err instanceof TsrunError && err.code === 'EBUILD' && err.message.startsWith(`${this.df.file}:`)) throw err;
      throw this.fail(raw, `${this.where(step, stage)} ${raw.source.text}: ${err instanceof Error ? err.message : String(err)}`, err);
    }
    if (cached) this.opts.onEvent({ type: 'cached', step });
    this.opts.onEvent({ type: 'done', step, ms: Date.now() - started });
    return next;
  }

  private declareArgs(state: State, args: Array<{ name: string; value?: string }>): State {
    const declared = new Map(state.args);
    for (const a of args) {
      // A stage's ARG without a default takes the global one of the same name.
      const fallback = a.value ?? (this.globalArgs.has(a.name) ? this.globalArgs.get(a.name) : undefined);
      declared.set(a.name, this.argValue(a.name, fallback));
      this.usedArgs.add(a.name);
    }
    return { ...state, args: declared };
  }

  private argValue(name: string, fallback: string | undefined): string | undefined {
    if (Object.hasOwn(this.opts.buildArgs, name)) {
      this.usedArgs.add(name);
      return this.opts.buildArgs[name];
    }
    return fallback ?? automaticArg(name, this.platform);
  }

  private argInScope(state: State, name: string): string | undefined {
    if (state.args.has(name)) return state.args.get(name);
    if (PROXY_ARGS.has(name) && Object.hasOwn(this.opts.buildArgs, name)) return this.opts.buildArgs[name];
    return undefined;
  }

  /** `K=v` for each ARG a RUN sees (an ENV of the same name wins, so it is left out). */
  private argsEnv(state: State): { all: string[]; keyed: string[] } {
    const env = state.config.config?.Env;
    const all: string[] = [];
    const keyed: string[] = [];
    for (const [k, v] of state.args) {
      if (v === undefined || envValue(env, k) !== undefined) continue;
      all.push(`${k}=${v}`);
      keyed.push(`${k}=${v}`);
    }
    for (const k of PROXY_ARGS) {
      if (Object.hasOwn(this.opts.buildArgs, k) && !state.args.has(k)) {
        all.push(`${k}=${this.opts.buildArgs[k]}`);
        this.usedArgs.add(k);
      }
    }
    return { all, keyed: keyed.sort() };
  }

  /** Runs a step, or takes its result from the cache. */
  private async cachedStep(state: State, raw: RawInstruction, inst: Instruction, step: number): Promise<{ state: State; cached: boolean }> {
    const cleanup: Array<() => Promise<void>> = [];
    try {
      return await this.keyedStep(state, raw, inst, step, cleanup);
    } finally {
      for (const c of cleanup.reverse()) await c().catch(() => {});
    }
  }

  private async keyedStep(state: State, raw: RawInstruction, inst: Instruction, step: number, cleanup: Array<() => Promise<void>>): Promise<{ state: State; cached: boolean }> {
    const args = this.argsEnv(state);
    const copy = inst.kind === 'COPY' || inst.kind === 'ADD' ? await this.prepareCopy(state, inst, cleanup) : undefined;
    const key = sha256(
      JSON.stringify({
        parent: state.key,
        inst,
        ...(inst.kind === 'RUN' && { args: args.keyed, network: this.runNetwork(inst) }),
        ...(copy && { sources: copy.digest }),
      }),
    );
    this.cache ??= this.opts.noCache ? {} : await this.store.cacheEntries();
    const hit = this.opts.noCache ? undefined : await this.store.cacheEntry(key, this.cache);
    const now = new Date().toISOString();
    let entry: CacheEntry;
    if (hit) {
      // The use time is for `builder prune --filter until=`: refreshed once an hour, not on
      // every cached build (each refresh is a rewrite of images.json).
      entry = Date.parse(hit.used) > Date.now() - USE_REFRESH_MS ? hit : { ...hit, used: now };
    } else {
      let layer: NewLayer | undefined;
      if (inst.kind === 'RUN') layer = await this.runStep(state, inst, args.all, step, raw);
      else if (copy) layer = await this.copyStep(state, copy, cleanup);
      else if (inst.kind === 'WORKDIR') layer = await this.workdirStep(state, inst.path);
      // A step that changed nothing (RUN ls) keeps no layer, as docker's: the one stored goes.
      if (layer?.empty) await this.store.discard({ layers: [layer.chainId], blobs: [layer.digest] });
      entry = {
        created: now,
        used: now,
        ...(layer && !layer.empty && { layer: { diffId: layer.diffId, digest: layer.digest, size: layer.size, mediaType: layer.mediaType, chainId: layer.chainId } }),
      };
    }
    if (entry !== hit) this.pending[key] = entry;
    // A step that ran is recorded at once: a build killed later still reuses it.
    if (!hit && entry.layer) await this.flushCache();
    return { state: this.advance(state, raw, inst, entry, key, args.keyed), cached: hit !== undefined };
  }

  /** The state after a step: config changed, history line, the layer if one was made. */
  private advance(state: State, raw: RawInstruction, inst: Instruction, entry: CacheEntry, key: string, args: string[]): State {
    const runConfig = state.config.config ?? {};
    let config = applyMetadata(runConfig, inst);
    if (inst.kind === 'ENTRYPOINT' && state.cmdSet) config = { ...config, Cmd: runConfig.Cmd ?? null };
    const history = {
      created: entry.created,
      created_by: createdBy(raw.source.text, inst, runConfig, inst.kind === 'RUN' ? args : []),
      ...(raw.keyword === 'MAINTAINER' || !entry.layer ? { empty_layer: true } : {}),
    };
    const layers = entry.layer ? [...state.layers, { mediaType: this.layerMediaType(state.docker, entry.layer.mediaType), digest: entry.layer.digest, size: entry.layer.size }] : state.layers;
    const diffIds = entry.layer ? [...state.config.rootfs.diff_ids, entry.layer.diffId] : state.config.rootfs.diff_ids;
    const next: ImageConfig = {
      ...state.config,
      created: entry.created,
      ...(inst.kind === 'MAINTAINER' && { author: inst.name }),
      config,
      rootfs: { type: 'layers', diff_ids: diffIds },
      history: [...(state.config.history ?? []), history],
    };
    return {
      ...state,
      config: next,
      layers,
      key: sha256(`${key}\n${entry.layer?.diffId ?? 'none'}`),
      cmdSet: state.cmdSet || inst.kind === 'CMD',
    };
  }

  /** A build's layer media type in the manifest's family (docker's names or OCI's). */
  private layerMediaType(docker: boolean, mediaType: string): string {
    if (!docker) return mediaType;
    if (mediaType === 'application/vnd.oci.image.layer.v1.tar+gzip') return 'application/vnd.docker.image.rootfs.diff.tar.gzip';
    if (mediaType === 'application/vnd.oci.image.layer.v1.tar') return 'application/vnd.docker.image.rootfs.diff.tar';
    return mediaType;
  }

  // ---- steps that make layers ---------------------------------------------------------------

  private async runStep(state: State, inst: Extract<Instruction, { kind: 'RUN' }>, argsEnv: string[], step: number, raw: RawInstruction): Promise<NewLayer> {
    const { argv, script } = runArgv(inst, state.config.config ?? {});
    const network = this.runNetwork(inst);
    const scriptDir = script ? await this.store.makeTempDir('heredoc') : undefined;
    try {
      const volumes: string[] = [];
      if (script && !/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(script.name)) {
        throw new TsrunError('EBUILD', `a #! heredoc's name must be letters, digits, _ . - (not "${script.name}")`);
      }
      if (script && scriptDir) {
        fs.writeFileSync(join(scriptDir, 'script'), script.body, { mode: 0o755 });
        volumes.push(`${join(scriptDir, 'script')}:${HEREDOC_DIR}/${script.name}:ro`);
      }
      const run = { args: argv, env: argsEnv, volumes, network: network === 'default' ? undefined : network };
      return await this.withContainer(state, run, (found) => this.execute(found, state, argv, step, raw));
    } finally {
      if (scriptDir) fs.rmSync(scriptDir, { recursive: true, force: true });
    }
  }

  /**
   * A RUN's network. The build's `--network` bounds what a Dockerfile (or a base image's ONBUILD
   * trigger) may ask for: nothing under `none`, and the host's network only when the user gave
   * it (`--network host`, or `--allow network.host` as BuildKit's entitlement).
   */
  private runNetwork(inst: Extract<Instruction, { kind: 'RUN' }>): 'default' | 'none' | 'host' {
    const asked = inst.network ?? this.opts.network;
    if (this.opts.network === 'none' && asked !== 'none') {
      throw new TsrunError('EBUILD', `RUN --network=${asked}: this build runs with --network none`);
    }
    if (asked === 'host' && this.opts.network !== 'host' && !this.opts.allowHostNetwork) {
      throw new TsrunError('EBUILD', "RUN --network=host needs the build's --allow network.host (a Dockerfile does not get the host's network unasked)");
    }
    return asked;
  }

  /** Starts the step's container with its output into a file (shown as it grows), then commits it. */
  private async execute(found: Found, state: State, argv: string[], step: number, raw: RawInstruction): Promise<NewLayer> {
    const log = join(found.paths.dir, 'build-output');
    const fd = fs.openSync(log, 'w', 0o600);
    let status;
    const tail = new Tail(log, (data) => this.opts.onEvent({ type: 'output', step, data }));
    try {
      const started = await startContainer(this.opts.root, found, { attach: { stdio: ['ignore', fd, fd] }, tsrunCommand: this.opts.tsrunCommand, fresh: true });
      status = await started.wait();
    } finally {
      fs.closeSync(fd);
      await tail.stop();
    }
    if (status.code !== 0) {
      const oom = status.oomKilled ? ' (killed: out of memory)' : '';
      throw new TsrunError(
        'EBUILD',
        `${this.df.file}:${raw.source.line}: ${this.where(step, this.stageName)} ${raw.source.text}: process "${argv.join(' ')}" did not complete successfully: exit code: ${status.code}${oom}`,
        { exitCode: 1, cause: new StepOutput(lastBytes(log, OUTPUT_SHOWN)) },
      );
    }
    return commitLayer(this.store, found, state.config.rootfs.diff_ids, { pause: false, compress: false }, this.created);
  }

  private async prepareCopy(state: State, inst: Extract<Instruction, { kind: 'COPY' | 'ADD' }>, cleanup: Array<() => Promise<void>>): Promise<PreparedCopy> {
    const config = state.config.config ?? {};
    const destIsDir = inst.dest.endsWith('/') || inst.dest === '.' || inst.dest.endsWith('/.');
    const target: CopyTarget = { dest: workdirOf(config, inst.dest), destIsDir };
    const dirs = (await this.layerRecords(state)).map((l) => l.dir).reverse();
    const lowers = new LowerLayers(dirs);
    if (inst.chown !== undefined) target.owner = chownIds(inst.chown, dirs);
    if (inst.chmod !== undefined) target.mode = Number.parseInt(inst.chmod, 8);
    const sources: CopySource[] = [];
    const parts: string[] = [];
    let from: PreparedCopy['from'];
    let count = 0;
    let wildcard = false;
    const heredocs = new Map(inst.heredocs.map((h) => [h.name, h]));
    const plain: string[] = [];
    for (const s of inst.sources) {
      const here = /^<<-?["']?([^"']+)["']?$/.exec(s);
      if (here && heredocs.has(here[1]!)) {
        const h = heredocs.get(here[1]!)!;
        sources.push({ kind: 'heredoc', heredoc: h });
        parts.push(`heredoc:${sha256(h.body)}`);
        count++;
      } else if (inst.kind === 'ADD' && /^https?:\/\//i.test(s)) {
        if (inst.from !== undefined) throw new TsrunError('EBUILD', 'ADD --from is not supported');
        const got = await fetchUrl(s, await this.store.makeTempDir('add'));
        cleanup.push(got.remove);
        sources.push({ kind: 'url', url: got.path, file: got.name, mtime: got.mtime });
        parts.push(`url:${s}:${got.digest}`);
        count++;
      } else {
        plain.push(s);
      }
    }
    if (plain.length > 0 && inst.from !== undefined) {
      for (const p of plain) {
        if (/[*?[]/.test(p)) throw new TsrunError('EBUILD', `COPY --from: wildcards are not supported by tsrun yet (${p})`);
      }
      const source = await this.fromState(inst.from);
      from = { state: source, paths: plain.map((p) => posix.resolve('/', p)) };
      parts.push(`from:${source.key}:${JSON.stringify(plain)}`);
      count += plain.length;
    } else if (plain.length > 0) {
      const ctx = contextSources(this.opts.context, plain);
      wildcard = ctx.wildcard;
      for (const s of ctx.sources) {
        if (s.kind !== 'context') continue;
        if (inst.kind === 'ADD') {
          const archives: typeof s.matches = [];
          for (const m of s.matches) if (m.stat.isFile() && (await isArchive(m.path))) archives.push(m);
          for (const a of archives) sources.push({ kind: 'archive', entry: a });
          const rest = s.matches.filter((m) => !archives.includes(m));
          if (rest.length > 0) sources.push({ ...s, matches: rest });
        } else {
          sources.push(s);
        }
        count += s.matches.length;
        parts.push(`context:${await sourcesDigest(this.opts.context, s.matches, await this.fileHashes())}`);
      }
    }
    const onlyArchives = sources.length > 0 && sources.every((s) => s.kind === 'archive');
    const destDir = onlyArchives || destinationIsDir(lowers, target, count, wildcard) || sources.some((s) => s.kind === 'archive');
    target.destExists = statInImage(lowers, target.dest)?.isDirectory() ?? false;
    if (target.owner) target.makeDirs = missingDirs(lowers, destDir ? target.dest : posix.dirname(target.dest));
    return { sources, target, destDir, digest: sha256(parts.join('\n')), ...(from && { from }) };
  }

  private async copyStep(state: State, copy: PreparedCopy, cleanup: Array<() => Promise<void>>): Promise<NewLayer> {
    const parent = state.config.rootfs.diff_ids;
    // Files from the context, heredocs and downloads go straight into a layer (copy-layer.ts);
    // archives and --from are read and unpacked through a container, as `cp` does.
    if (!copy.from && copy.sources.every((s) => s.kind === 'context' || s.kind === 'heredoc' || s.kind === 'url' || s.kind === 'mkdir')) {
      return { ...(await copyAsLayer(this.store, await this.lowers(state), parent, copy, this.created)), empty: false };
    }
    const sources = [...copy.sources];
    if (copy.from) {
      const found = await this.createFor(copy.from.state, { args: ['/'], env: [], network: 'none' });
      cleanup.push(() => removeContainer(this.opts.root, found, true));
      for (const path of copy.from.paths) sources.push({ kind: 'container', found, path });
    }
    return this.withContainer(state, { args: ['/'], env: [], network: 'none' }, async (found) => {
      await copyInto(found, sources, copy.target, copy.destDir);
      return commitLayer(this.store, found, parent, { pause: false, compress: false }, this.created);
    });
  }

  /** WORKDIR makes its directory when the image has none there (docker does, owned by root). */
  private async workdirStep(state: State, path: string): Promise<NewLayer | undefined> {
    const dir = workdirOf(state.config.config ?? {}, path);
    const lowers = await this.lowers(state);
    const st = statInImage(lowers, dir);
    if (st?.isDirectory()) return undefined;
    if (st) throw new TsrunError('EBUILD', `WORKDIR ${dir}: it exists in the image and is not a directory`);
    const copy = { sources: [{ kind: 'mkdir' as const }], target: { dest: dir, destIsDir: true }, destDir: true };
    return { ...(await copyAsLayer(this.store, lowers, state.config.rootfs.diff_ids, copy, this.created)), empty: false };
  }

  /** The state's layers merged, for lookups without a mount. */
  private async lowers(state: State): Promise<LowerLayers> {
    return new LowerLayers((await this.layerRecords(state)).map((l) => l.dir).reverse());
  }

  /** COPY --from: an earlier stage's result, or an image (pulled if missing). */
  private async fromState(ref: string): Promise<State> {
    const stage = this.stageNamed(ref, this.currentStage);
    if (stage && this.finished.has(stage.index)) return this.finished.get(stage.index)!;
    this.refuseStageOutOfOrder(ref, this.currentStage, `COPY --from=${ref}`);
    const image = await this.image(ref);
    return { config: image.config, layers: [], docker: false, key: sha256(`image:${image.id}`), cmdSet: false, args: new Map() };
  }

  /** A created container on the state's layers, removed (mount, cgroup, files) whatever happens. */
  private async withContainer<T>(state: State, run: RunSpec, fn: (found: Found) => Promise<T>): Promise<T> {
    const found = await this.createFor(state, run);
    let failed = false;
    try {
      return await fn(found);
    } catch (err) {
      failed = true;
      throw err;
    } finally {
      // The step's own error is the one to report: a removal failing after it stays quiet.
      await removeContainer(this.opts.root, found, true).catch((err: unknown) => {
        if (!failed) throw err;
      });
    }
  }

  private async createFor(state: State, run: RunSpec): Promise<Found> {
    const image = await this.imageRecord(state);
    const record = await createContainer({ storeRoot: this.opts.root, image, imageName: 'tsrun-build', options: this.containerOptions(run), buildOwner: builderId() });
    return { paths: new ContainerPaths(this.opts.root, record.id), record };
  }

  private containerOptions(run: RunSpec) {
    const flags: RunFlagValues = { ...this.opts.resources, cgroupParent: this.opts.cgroupParent, pid: '', ipc: '', uts: '', entrypoint: '', env: run.env, volume: run.volumes ?? [], ...(run.network && { network: run.network }) };
    return parseRunOptions(flags, run.args, { readFile: (p) => fs.readFileSync(p, 'utf8'), env: {}, stdinIsTty: false });
  }

  /** The state as an image `createContainer` can take: its layers unpacked and finished. */
  private async imageRecord(state: State): Promise<ImageRecord> {
    const layers = await this.layerRecords(state);
    await this.store.finishLayers(layers.map((l) => l.chainId));
    return { id: sha256(`build-state:${state.key}`), manifestDigest: sha256(`build-state:${state.key}`), names: [], config: state.config, layers, size: layers.reduce((n, l) => n + l.size, 0) };
  }

  private async layerRecords(state: State): Promise<LayerRecord[]> {
    const out: LayerRecord[] = [];
    for (const chain of chainIds(state.config.rootfs.diff_ids)) {
      const l = await this.store.layer(chain);
      if (!l) throw new TsrunError('EBUILD', `layer ${chain} is no longer in the store (removed while building?)`);
      out.push(l);
    }
    return out;
  }

  // ---- the image -----------------------------------------------------------------------------

  private async record(state: State): Promise<BuildResult> {
    const runConfig: ImageRunConfig = { ...(state.config.config ?? {}) };
    if (Object.keys(this.opts.labels).length > 0) runConfig.Labels = { ...(runConfig.Labels ?? {}), ...this.opts.labels };
    const config: ImageConfig = { ...state.config, config: runConfig };
    const configBytes = Buffer.from(JSON.stringify(config));
    const configDigest = await this.putBlob(configBytes);
    const docker = state.docker;
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: docker ? MediaType.dockerManifest : MediaType.ociManifest,
      config: { mediaType: docker ? MediaType.dockerConfig : MediaType.ociConfig, digest: configDigest, size: configBytes.length },
      layers: state.layers.map((l) => ({ mediaType: this.layerMediaType(docker, l.mediaType), digest: l.digest, size: l.size })),
    };
    const manifestBytes = Buffer.from(JSON.stringify(manifest));
    const manifestDigest = await this.putBlob(manifestBytes);
    crashPoint('build:before-record');
    await this.store.putImage({ manifestDigest, manifest, configDigest, names: this.opts.tags });
    return { id: configDigest, manifestDigest, names: this.opts.tags };
  }

  private async putBlob(bytes: Buffer): Promise<Digest> {
    const d = sha256(bytes);
    if (!(await this.store.hasBlob(d))) this.created.blobs.push(d);
    return this.store.writeBlobBytes(bytes);
  }

  // ---- messages ------------------------------------------------------------------------------

  private begin(text: string, stage: string | undefined): number {
    const step = ++this.step;
    this.opts.onEvent({ type: 'step', step, total: this.total, ...(stage !== undefined && { stage }), text });
    return step;
  }

  private where(step: number, stage: string | undefined): string {
    return `[${stage !== undefined ? `${stage} ` : ''}${step}/${this.total}]`;
  }

  private evaluate(raw: RawInstruction, vars: (n: string) => string | undefined): Instruction {
    return evaluate(raw, vars, this.df.escape);
  }

  private fail(raw: RawInstruction, message: string, cause?: unknown): TsrunError {
    return new TsrunError('EBUILD', `${this.df.file}:${raw.source.line}: ${message}`, { exitCode: 1, ...(cause !== undefined && { cause }) });
  }

  private warnUnusedArgs(): void {
    const unused = Object.keys(this.opts.buildArgs).filter((k) => !this.usedArgs.has(k) && !PROXY_ARGS.has(k));
    if (unused.length > 0) this.opts.onEvent({ type: 'warning', message: `one or more build-args [${unused.join(' ')}] were not consumed` });
  }
}

/** What a step's container runs and with what. */
interface RunSpec {
  args: string[];
  env: string[];
  volumes?: string[];
  network: 'none' | 'host' | undefined;
}

/** A COPY/ADD step before it runs: what it reads (for the cache key) and where it writes. */
interface PreparedCopy {
  sources: CopySource[];
  target: CopyTarget;
  destDir: boolean;
  digest: string;
  /** --from: the stage's (or image's) state and the paths read out of it. */
  from?: { state: State; paths: string[] };
}

/** BuildKit's automatic platform ARGs (they still need an ARG line to be seen). */
function automaticArg(name: string, p: { os: string; architecture: string; variant?: string }): string | undefined {
  const platform = `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
  const values: Record<string, string> = {
    TARGETPLATFORM: platform,
    TARGETOS: p.os,
    TARGETARCH: p.architecture,
    TARGETVARIANT: p.variant ?? '',
    BUILDPLATFORM: platform,
    BUILDOS: p.os,
    BUILDARCH: p.architecture,
    BUILDVARIANT: p.variant ?? '',
  };
  return values[name];
}

