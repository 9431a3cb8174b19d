// What each metadata instruction does to the image config: pure functions of the config and the
// instruction, so that a cached rebuild assembles the very same config (and image ID).
import { posix } from 'node:path';
import type { ImageRunConfig } from '../image/types.js';
import type { CommandForm, Instruction } from './instructions.js';

export const DEFAULT_SHELL = ['/bin/sh', '-c'];

/** The argv a command form runs: exec form as is; shell form through SHELL (default `/bin/sh -c`). */
export function argvOf(command: CommandForm, config: ImageRunConfig): string[] {
  return 'exec' in command ? command.exec : [...(config.Shell ?? DEFAULT_SHELL), command.shell];
}

/** `WORKDIR rel` is relative to the current one; the result is clean and absolute. */
export function workdirOf(config: ImageRunConfig, path: string): string {
  return posix.resolve(config.WorkingDir || '/', path);
}

/** A `KEY=value` list with `pairs` set (an existing key keeps its place, as docker does). */
export function setEnv(env: string[] | undefined, pairs: Array<[string, string]>): string[] {
  const out = [...(env ?? [])];
  for (const [k, v] of pairs) {
    const i = out.findIndex((e) => e.slice(0, e.indexOf('=')) === k);
    if (i >= 0) out[i] = `${k}=${v}`;
    else out.push(`${k}=${v}`);
  }
  return out;
}

/** The value of `name` in a `KEY=value` list. */
export function envValue(env: string[] | undefined, name: string): string | undefined {
  const e = (env ?? []).find((x) => x.slice(0, x.indexOf('=')) === name);
  return e === undefined ? undefined : e.slice(e.indexOf('=') + 1);
}

/**
 * The config after a metadata instruction (ENV, CMD, LABEL...). RUN, COPY, ADD, FROM, ARG and
 * ONBUILD-triggering are the builder's; they leave the config to it.
 */
export function applyMetadata(c: ImageRunConfig, inst: Instruction): ImageRunConfig {
  switch (inst.kind) {
    case 'ENV':
      return { ...c, Env: setEnv(c.Env, inst.pairs) };
    case 'LABEL':
      return { ...c, Labels: { ...(c.Labels ?? {}), ...Object.fromEntries(inst.pairs) } };
    case 'WORKDIR':
      return { ...c, WorkingDir: workdirOf(c, inst.path) };
    case 'USER':
      return { ...c, User: inst.user };
    case 'CMD':
      return { ...c, Cmd: argvOf(inst.command, c) };
    case 'ENTRYPOINT': {
      // docker: ENTRYPOINT resets a CMD inherited from the base image (not one set in this stage).
      return { ...c, Entrypoint: argvOf(inst.command, c), Cmd: null };
    }
    case 'EXPOSE': {
      const ports = { ...(c.ExposedPorts ?? {}) };
      for (const p of inst.ports) ports[p] = {};
      return { ...c, ExposedPorts: ports };
    }
    case 'VOLUME': {
      const volumes = { ...(c.Volumes ?? {}) };
      for (const v of inst.paths) volumes[v] = {};
      return { ...c, Volumes: volumes };
    }
    case 'STOPSIGNAL':
      return { ...c, StopSignal: inst.signal };
    case 'HEALTHCHECK':
      return { ...c, Healthcheck: inst.health };
    case 'SHELL':
      return { ...c, Shell: inst.shell };
    case 'ONBUILD':
      return { ...c, OnBuild: [...(c.OnBuild ?? []), inst.trigger] };
    default:
      return c;
  }
}

/**
 * The history line docker's classic builder writes: `/bin/sh -c #(nop)  ENV A=b` for metadata,
 * `/bin/sh -c make` for RUN (`|2 A=1 B=2 /bin/sh -c make` when build args were in scope).
 */
export function createdBy(text: string, inst: Instruction, config: ImageRunConfig, argsInScope: string[]): string {
  if (inst.kind === 'RUN') {
    const argv = argvOf(inst.command, config);
    const prefix = argsInScope.length > 0 ? `|${argsInScope.length} ${argsInScope.join(' ')} ` : '';
    return `${prefix}${argv.join(' ')}`;
  }
  const shell = (config.Shell ?? DEFAULT_SHELL).join(' ');
  return `${shell} #(nop) ${text.replace(/^(\S+)\s*/, (_m, k: string) => `${k.toUpperCase()} `)}`;
}
