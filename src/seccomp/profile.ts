// Reading a docker seccomp profile (`--security-opt seccomp=/path/profile.json`): every field is
// checked, and an error names the file and the field (`syscalls[3].args[0].op`), so a typo never
// turns into a filter that silently allows or refuses everything.
import { TsrunError } from '../errors.js';
import type { ProfileFilter, ProfileSyscallRule, SeccompProfile } from './types.js';

/** Actions tsrun compiles (SCMP_ACT_NOTIFY needs a user-space agent: not supported). */
export const ACTIONS = [
  'SCMP_ACT_ALLOW',
  'SCMP_ACT_ERRNO',
  'SCMP_ACT_KILL',
  'SCMP_ACT_KILL_THREAD',
  'SCMP_ACT_KILL_PROCESS',
  'SCMP_ACT_TRAP',
  'SCMP_ACT_TRACE',
  'SCMP_ACT_LOG',
] as const;

export const OPERATORS = ['SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ'] as const;

type Json = unknown;

class Checker {
  constructor(private readonly source: string) {}

  fail(path: string, why: string): never {
    throw new TsrunError('EINVAL_FLAG', `seccomp profile ${this.source}: ${path ? `${path}: ` : ''}${why}`);
  }

  object(v: Json, path: string, known: string[]): Record<string, Json> {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(path, 'expected an object');
    const o = v as Record<string, Json>;
    for (const k of Object.keys(o)) {
      if (!known.includes(k)) this.fail(path ? `${path}.${k}` : k, `unknown field (expected one of ${known.join(', ')})`);
    }
    return o;
  }

  strings(v: Json, path: string, pattern?: RegExp): string[] {
    if (!Array.isArray(v)) this.fail(path, 'expected an array of strings');
    return v.map((s, i) => {
      if (typeof s !== 'string' || s === '') this.fail(`${path}[${i}]`, 'expected a non-empty string');
      if (pattern && !pattern.test(s)) this.fail(`${path}[${i}]`, `"${s}" is not valid here`);
      return s;
    });
  }

  /** A non-negative integer JavaScript holds exactly (values above 2^53 would be rounded). */
  uint(v: Json, path: string, max = Number.MAX_SAFE_INTEGER): number {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) this.fail(path, `expected a non-negative integer, got ${JSON.stringify(v)}`);
    if (v > max) this.fail(path, `${v} is too large (at most ${max}${max === Number.MAX_SAFE_INTEGER ? ': tsrun reads numbers as JSON doubles' : ''})`);
    return v;
  }

  oneOf<T extends string>(v: Json, path: string, allowed: readonly T[]): T {
    if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
      const extra = v === 'SCMP_ACT_NOTIFY' ? ' (SCMP_ACT_NOTIFY needs a seccomp agent, which tsrun does not have)' : '';
      this.fail(path, `unknown value ${JSON.stringify(v)}${extra}; expected one of ${allowed.join(', ')}`);
    }
    return v as T;
  }
}

/** Parse and check a profile file's text. `source` (the path) is named in every error. */
export function parseProfile(text: string, source: string): SeccompProfile {
  let json: Json;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new TsrunError('EINVAL_FLAG', `seccomp profile ${source}: not valid JSON (${(err as Error).message})`, { cause: err });
  }
  return checkProfile(json, source);
}

export function checkProfile(json: Json, source: string): SeccompProfile {
  const c: Checker = new Checker(source); // typed: its fail() then narrows like a throw
  const top = c.object(json, '', ['defaultAction', 'defaultErrnoRet', 'architectures', 'archMap', 'syscalls', 'flags', 'listenerPath', 'listenerMetadata']);
  if (top.defaultAction === undefined) c.fail('defaultAction', 'missing (e.g. "SCMP_ACT_ERRNO")');
  const profile: SeccompProfile = { defaultAction: c.oneOf(top.defaultAction, 'defaultAction', ACTIONS), syscalls: [] };
  if (top.defaultErrnoRet !== undefined) profile.defaultErrnoRet = c.uint(top.defaultErrnoRet, 'defaultErrnoRet', 4095);
  if (top.flags !== undefined && c.strings(top.flags, 'flags').length > 0) {
    c.fail('flags', 'seccomp filter flags are not supported by tsrun (the helper loads the filter with prctl)');
  }
  for (const k of ['listenerPath', 'listenerMetadata'] as const) {
    if (top[k] !== undefined && top[k] !== '') c.fail(k, 'seccomp notification agents are not supported by tsrun');
  }
  if (top.architectures !== undefined && top.archMap !== undefined) {
    c.fail('archMap', "both 'architectures' and 'archMap' are set; use one of them");
  }
  if (top.architectures !== undefined) profile.architectures = c.strings(top.architectures, 'architectures', /^SCMP_ARCH_[A-Z0-9_]+$/);
  if (top.archMap !== undefined) {
    if (!Array.isArray(top.archMap)) c.fail('archMap', 'expected an array');
    profile.archMap = top.archMap.map((a, i) => {
      const path = `archMap[${i}]`;
      const o = c.object(a, path, ['architecture', 'subArchitectures']);
      if (typeof o.architecture !== 'string' || !/^SCMP_ARCH_[A-Z0-9_]+$/.test(o.architecture)) {
        c.fail(`${path}.architecture`, 'expected SCMP_ARCH_<name>');
      }
      const subs = o.subArchitectures === undefined || o.subArchitectures === null ? null
        : c.strings(o.subArchitectures, `${path}.subArchitectures`, /^SCMP_ARCH_[A-Z0-9_]+$/);
      return { architecture: o.architecture, subArchitectures: subs };
    });
  }
  if (top.syscalls !== undefined) {
    if (!Array.isArray(top.syscalls)) c.fail('syscalls', 'expected an array');
    profile.syscalls = top.syscalls.map((r, i) => checkRule(c, r, `syscalls[${i}]`));
  }
  return profile;
}

function checkRule(c: Checker, v: Json, path: string): ProfileSyscallRule {
  const o = c.object(v, path, ['name', 'names', 'action', 'errnoRet', 'args', 'comment', 'includes', 'excludes']);
  if (o.name !== undefined && o.names !== undefined) c.fail(path, "both 'name' and 'names' are set; use one of them");
  if (o.name === undefined && o.names === undefined) c.fail(`${path}.names`, 'missing');
  const names = o.names !== undefined ? c.strings(o.names, `${path}.names`, /^[a-z_][a-z0-9_]*$/) : c.strings([o.name], `${path}.name`, /^[a-z_][a-z0-9_]*$/);
  if (o.action === undefined) c.fail(`${path}.action`, 'missing');
  const rule: ProfileSyscallRule = { names, action: c.oneOf(o.action, `${path}.action`, ACTIONS) };
  if (o.errnoRet !== undefined) {
    if (rule.action !== 'SCMP_ACT_ERRNO' && rule.action !== 'SCMP_ACT_TRACE') {
      c.fail(`${path}.errnoRet`, 'only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an errnoRet');
    }
    rule.errnoRet = c.uint(o.errnoRet, `${path}.errnoRet`, rule.action === 'SCMP_ACT_TRACE' ? 0xffff : 4095);
  }
  if (o.comment !== undefined) {
    if (typeof o.comment !== 'string') c.fail(`${path}.comment`, 'expected a string');
    rule.comment = o.comment;
  }
  if (o.args !== undefined && o.args !== null) {
    if (!Array.isArray(o.args)) c.fail(`${path}.args`, 'expected an array');
    rule.args = o.args.map((a, j) => {
      const ap = `${path}.args[${j}]`;
      const x = c.object(a, ap, ['index', 'value', 'valueTwo', 'op']);
      if (x.index === undefined) c.fail(`${ap}.index`, 'missing');
      if (x.op === undefined) c.fail(`${ap}.op`, 'missing');
      const arg = {
        index: c.uint(x.index, `${ap}.index`, 5),
        value: c.uint(x.value ?? 0, `${ap}.value`),
        op: c.oneOf(x.op, `${ap}.op`, OPERATORS),
      };
      return x.valueTwo === undefined ? arg : { ...arg, valueTwo: c.uint(x.valueTwo, `${ap}.valueTwo`) };
    });
  }
  for (const k of ['includes', 'excludes'] as const) {
    if (o[k] === undefined || o[k] === null) continue;
    const f = c.object(o[k], `${path}.${k}`, ['arches', 'caps', 'minKernel']);
    const filter: ProfileFilter = {};
    if (f.arches !== undefined && f.arches !== null) filter.arches = c.strings(f.arches, `${path}.${k}.arches`);
    if (f.caps !== undefined && f.caps !== null) filter.caps = c.strings(f.caps, `${path}.${k}.caps`, /^CAP_[A-Z_]+$/);
    if (f.minKernel !== undefined && f.minKernel !== null) {
      if (typeof f.minKernel !== 'string' || !/^\d+\.\d+(\.\d+)?$/.test(f.minKernel)) c.fail(`${path}.${k}.minKernel`, 'expected a version like "4.8"');
      filter.minKernel = f.minKernel;
    }
    rule[k] = filter;
  }
  return rule;
}
