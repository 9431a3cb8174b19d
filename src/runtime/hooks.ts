// OCI hooks: programs the bundle names, run by the runtime at points of the lifecycle with the
// container's state on stdin (runtime spec, config.md "POSIX-platform Hooks"). Run in the
// runtime's namespaces: createRuntime (and the deprecated prestart) once the namespaces exist
// and before the container's program could run; poststart after `start`; poststop at `delete`.
// A failing createRuntime hook fails `create`; the others are reported and the lifecycle goes on.
import { spawn } from 'node:child_process';
import { TsrunError } from '../errors.js';
import type { OciHook } from '../namespaces/spec.js';

export async function runHook(hook: OciHook, state: Record<string, unknown>, what: string): Promise<void> {
  const args = hook.args && hook.args.length > 0 ? hook.args : [hook.path];
  const child = spawn(hook.path, args.slice(1), {
    argv0: args[0]!,
    env: Object.fromEntries((hook.env ?? []).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]).filter(([k]) => k)),
    stdio: ['pipe', 'ignore', 'pipe'],
    cwd: '/',
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => {
    if (stderr.length < 4096) stderr += d;
  });
  // A hook that does not read its stdin must not make us fail with EPIPE.
  child.stdin!.on('error', () => {});
  child.stdin!.end(JSON.stringify(state));
  let timedOut = false;
  const timer = hook.timeout
    ? setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, hook.timeout * 1000)
    : undefined;
  const result = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
    child.on('error', (error) => resolve({ code: null, signal: null, error }));
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  if (timer) clearTimeout(timer);
  const detail = stderr.trim() ? `: ${stderr.trim().split('\n').slice(-3).join(' / ')}` : '';
  if (result.error) throw new TsrunError('ESTEP', `${what} hook ${hook.path}: ${result.error.message}`);
  if (timedOut) throw new TsrunError('ESTEP', `${what} hook ${hook.path} timed out after ${hook.timeout} s`);
  if (result.code !== 0) {
    throw new TsrunError('ESTEP', `${what} hook ${hook.path} failed (${result.signal ? `killed by ${result.signal}` : `exit status ${result.code}`})${detail}`);
  }
}

/** Each hook in order; the first failure stops the rest and is thrown. */
export async function runHooks(hooks: OciHook[] | undefined, state: Record<string, unknown>, what: string): Promise<void> {
  for (const hook of hooks ?? []) await runHook(hook, state, what);
}

/** Each hook in order; failures are reported to `warn` and the rest still run (poststart, poststop). */
export async function runHooksWarn(hooks: OciHook[] | undefined, state: Record<string, unknown>, what: string, warn: (msg: string) => void): Promise<void> {
  for (const hook of hooks ?? []) {
    try {
      await runHook(hook, state, what);
    } catch (err) {
      warn((err as Error).message);
    }
  }
}
