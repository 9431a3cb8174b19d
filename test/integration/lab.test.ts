// The teaching lab checks itself: every lesson in docs/lab/NN-topic.md is run here, top to
// bottom, as a learner would paste it into one root shell, and the output of each
// "```sh check" block must match its "# expect: <regex>" lines. So the lab never drifts from
// what tsrun really does.
//
// Fences:   ```sh              a step: run; any failing command is an error
//           ```sh check        a check: run; its output must match every `# expect: RE`
//                              and no `# expect-not: RE` (multiline regexes)
//           ```sh fails        a step whose commands are meant to fail (their errors are shown)
//           ```sh interactive  shown only (a terminal session); not run
//           anything else      sample output; not run
//
// A check that would pass without what it teaches proves nothing, so every check also names,
// in `# broken-by: <how>` lines, setups where what it teaches is absent. For each one the
// lesson runs again from the top to that check with the breakage applied (then its clean-up),
// and the check must fail there: an `# expect` that does not match, or an `# expect-not` that
// does. <how> is one of
//   flag <flags...>       put into every `tsrun run`/`create`, just after the subcommand
//                         (the lesson's own flags come later and win)
//   drop <flag>           taken out of every `tsrun run`/`create`, with its value (and aliases)
//   omit-step <op>        the launch plan leaves out that op (TSRUN_TEST_OMIT_STEPS, see
//                         src/namespaces/plan.ts), or that namespace flag (newcgroup)
//   edit s|RE|REPLACEMENT|  the lesson's text before the check, rewritten (a JS regex, global;
//                         `$` in the replacement is written `$$`)
// Checks sharing one flag, drop or omit-step share one broken run, to the last of them. At the
// end the test prints `checks: N, caught by broken runs: M` and fails unless M = N.
//
// The lesson text says plain `tsrun`; here a `tsrun` wrapper first on PATH runs this checkout's
// dist/tsrun.cjs, with the test's own store root, cgroup parent, bridge and subnet, no host
// registry config, and LAB_PORT (a free port; the lessons use 5050 without it).
//
//   sudo npx vitest run test/integration/lab.test.ts             every lesson
//   sudo LAB_LESSON=04 npx vitest run test/integration/lab.test.ts   one lesson
//   LAB_BROKEN=0                                                     skip the broken runs
//   LAB_SHOW=1                                                       print what each lesson printed
//   LAB_TSRUN_CLI=/path/to/tsrun.cjs                                 another build of the CLI
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliPath, describePrivileged, repoRoot, TestEnv } from './helpers/env.js';

const LAB = join(repoRoot, 'docs', 'lab');
/** Where the lessons keep their files (images, registry data, pid files). */
const LAB_TMP = '/tmp/tsrun-lab';

type Breakage =
  | { kind: 'flag'; flags: string[] }
  | { kind: 'drop'; flag: string }
  | { kind: 'omit-step'; op: string }
  | { kind: 'edit'; re: RegExp; replacement: string };

interface Block {
  kind: 'step' | 'check' | 'fails';
  code: string;
  expect: RegExp[];
  expectNot: RegExp[];
  /** `# broken-by:` lines, as written. */
  brokenBy: string[];
  /** The `## ` section the block is in. */
  section: string;
  /** 1-based line of the fence in the lesson, for messages. */
  line: number;
}

interface Lesson {
  file: string;
  text: string;
  blocks: Block[];
}

function parseLesson(file: string, text: string): Lesson {
  const blocks: Block[] = [];
  const fence = /^```([^\n]*)\n([\s\S]*?)^```[ \t]*$/gm;
  for (const m of text.matchAll(fence)) {
    const [lang, ...words] = m[1]!.trim().split(/\s+/);
    if (lang !== 'sh' || words.includes('interactive')) continue;
    const code = m[2]!;
    const lines = (key: string) => [...code.matchAll(new RegExp(`^\\s*# ${key}: (.+)$`, 'gm'))].map((e) => e[1]!.trim());
    const before = text.slice(0, m.index);
    blocks.push({
      kind: words.includes('check') ? 'check' : words.includes('fails') ? 'fails' : 'step',
      code,
      expect: lines('expect').map((re) => new RegExp(re, 'm')),
      expectNot: lines('expect-not').map((re) => new RegExp(re, 'm')),
      brokenBy: lines('broken-by'),
      section: [...before.matchAll(/^## (.+)$/gm)].pop()?.[1]?.trim() ?? '',
      line: before.split('\n').length,
    });
  }
  return { file, text, blocks };
}

/** `# broken-by: <how>`, read; throws on anything else. */
function parseBreakage(how: string): Breakage {
  const [kind = '', ...rest] = how.split(/\s+/);
  const arg = how.slice(kind.length).trim();
  if (kind === 'flag' && rest.length > 0 && rest[0]!.startsWith('-')) return { kind, flags: rest };
  if (kind === 'drop' && rest.length === 1 && rest[0]!.startsWith('-')) return { kind, flag: rest[0]! };
  if (kind === 'omit-step' && /^[a-z0-9-]+$/.test(arg)) return { kind, op: arg };
  if (kind === 'edit') {
    // s|RE|REPLACEMENT| with any delimiter. One inside is escaped with a backslash: the regex
    // keeps the escape (`\|` is a literal `|` there too), the replacement loses it.
    const d = arg[1];
    if (arg[0] === 's' && d && arg.endsWith(d)) {
      const parts = arg.slice(2, -1).split(new RegExp(`(?<!\\\\)\\${d}`));
      if (parts.length === 2) return { kind, re: new RegExp(parts[0]!, 'g'), replacement: parts[1]!.split(`\\${d}`).join(d) };
    }
  }
  throw new Error(`not a breakage: "${how}" (flag <flags…> | drop <flag> | omit-step <op> | edit s|RE|REPLACEMENT|)`);
}

interface Run {
  /** Blocks to run, in order, by index in the lesson. */
  blocks: number[];
  /** Each block's code as run (an edit rewrites some). */
  code: (i: number) => string;
}

/** The lesson (or part of it) as one bash script that marks where each block's output starts and ends. */
function script(lesson: Lesson, run: Run): string {
  const out = [
    'exec 2>&1',
    `cd ${JSON.stringify(repoRoot)}`,
    'LAB_BLOCK=-1',
    // Every failing command (not part of a condition) is reported, and the lesson goes on.
    `trap 'echo "@@LAB-ERR $LAB_BLOCK: exit $? from: $BASH_COMMAND"' ERR`,
  ];
  for (const i of run.blocks) {
    out.push(`LAB_BLOCK=${i}`, `echo "@@LAB-BEGIN ${i}@@"`, run.code(i).trimEnd(), `echo "@@LAB-END ${i}@@"`);
  }
  return out.join('\n') + '\n';
}

function blockOutput(output: string, i: number): string {
  const begin = output.indexOf(`@@LAB-BEGIN ${i}@@\n`);
  const end = output.indexOf(`@@LAB-END ${i}@@`);
  if (begin < 0 || end < 0) return '';
  return output.slice(begin + `@@LAB-BEGIN ${i}@@\n`.length, end);
}

/** Why a check's output fails its expectations, or undefined when it meets them all. */
function failure(b: Block, out: string): string | undefined {
  const missed = b.expect.find((re) => !re.test(out));
  if (missed) return `no match for ${missed}`;
  const matched = b.expectNot.find((re) => re.test(out));
  return matched && `matches ${matched}`;
}

/** One broken run: a breakage, the checks it must make fail, and what to run. */
interface Variant {
  how: string;
  breakage: Breakage;
  checks: number[];
}

function variantsOf(lesson: Lesson): Variant[] {
  const variants: Variant[] = [];
  lesson.blocks.forEach((b, i) => {
    if (b.kind !== 'check') return;
    for (const how of b.brokenBy) {
      const breakage = parseBreakage(how);
      // An edit rewrites the text before its own check: it cannot be shared.
      const same = breakage.kind === 'edit' ? undefined : variants.find((v) => v.how === how);
      if (same) same.checks.push(i);
      else variants.push({ how, breakage, checks: [i] });
    }
  });
  return variants;
}

/** The blocks a variant runs: the lesson to its last check, then the clean-up section. */
function variantRun(lesson: Lesson, v: Variant): Run {
  const last = Math.max(...v.checks);
  const blocks = lesson.blocks.map((_, i) => i).filter((i) => i <= last || lesson.blocks[i]!.section === 'Clean up');
  const b = v.breakage;
  const code = (i: number) => {
    const text = lesson.blocks[i]!.code;
    return b.kind === 'edit' && i < last ? text.replace(b.re, b.replacement) : text;
  };
  return { blocks, code };
}

async function freePorts(count: number): Promise<number> {
  const free = (port: number) =>
    new Promise<boolean>((resolve) => {
      const s = net.createServer().once('error', () => resolve(false));
      s.listen(port, () => s.close(() => resolve(true)));
    });
  for (let base = 20000 + (process.pid % 20000); ; base += count) {
    let ok = true;
    for (let p = base; p < base + count && ok; p++) ok = await free(p);
    if (ok) return base;
  }
}

/**
 * The lab's `tsrun`: this checkout's CLI. LAB_BREAK_FLAG (flags put into every run/create just
 * after the subcommand) and LAB_BREAK_DROP (a flag and its aliases, taken out of them with its
 * value) make a broken run's. `valueOptions`: the options that take a value, globally and for
 * run/create, so that the wrapper knows a value from the image.
 */
function wrapper(cli: string, valueOptions: { global: string[]; run: string[] }): string {
  return `#!/bin/bash
cli=(${JSON.stringify(process.execPath)} ${JSON.stringify(cli)})
[ -z "$LAB_BREAK_FLAG$LAB_BREAK_DROP" ] && exec "\${cli[@]}" "$@"
global_values=" ${valueOptions.global.join(' ')} "
run_values=" ${valueOptions.run.join(' ')} "
args=()
while [ $# -gt 0 ] && [[ $1 == -* ]]; do
  n=1; [[ $1 != *=* && $global_values == *" $1 "* ]] && n=2; [ $n -gt $# ] && n=$#
  args+=("\${@:1:n}"); shift $n
done
if [ "$1" != run ] && [ "$1" != create ]; then exec "\${cli[@]}" "\${args[@]}" "$@"; fi
args+=("$1"); shift
read -ra flags <<< "$LAB_BREAK_FLAG"
args+=("\${flags[@]}")
while [ $# -gt 0 ] && [[ $1 == -* ]] && [ "$1" != -- ]; do
  name=\${1%%=*} n=1
  if [[ $1 != *=* && $run_values == *" $1 "* ]]; then n=2
  elif [[ $1 =~ ^-[^-]. && $run_values == *" \${1:0:2} "* ]]; then name=\${1:0:2}
  fi
  [ $n -gt $# ] && n=$#
  [[ " $LAB_BREAK_DROP " == *" $name "* ]] || args+=("\${@:1:n}")
  shift $n
done
exec "\${cli[@]}" "\${args[@]}" "$@"
`;
}

/** From a command's --help: the options that take a value, and each short option's long name. */
function helpOptions(help: string): { values: string[]; aliases: Map<string, string> } {
  const values: string[] = [];
  const aliases = new Map<string, string>();
  for (const m of help.matchAll(/^\s+(?:(-[A-Za-z]), )?(--[a-z][a-z0-9-]*)( [<[])?/gm)) {
    const [, short, long, value] = m;
    if (short) aliases.set(short, long!).set(long!, short);
    if (value) values.push(...(short ? [short, long!] : [long!]));
  }
  return { values, aliases };
}

/**
 * What a broken run could change on the host outside tsrun's store, when a step meant for a
 * container's namespace reaches the host's: its name, its System V message queues (by ID), its
 * POSIX message queues (by name; the host need not have an mqueue mounted, so one is mounted in
 * a mount namespace of its own).
 */
function hostState(): { name: string; queues: Set<string>; posixQueues: Set<string> } {
  const queues = readFileSync('/proc/sysvipc/msg', 'utf8').split('\n').slice(1);
  const posix = spawnSync('unshare', ['-m', 'sh', '-c', 'mount -t mqueue none /mnt && ls -A /mnt'], { encoding: 'utf8' }).stdout ?? '';
  return {
    name: hostname(),
    queues: new Set(queues.map((l) => l.trim().split(/\s+/)[1]!).filter(Boolean)),
    posixQueues: new Set(posix.split('\n').filter(Boolean)),
  };
}

/** Put back what a broken run changed on the host (hostState); says what it put back. */
function restoreHost(before: ReturnType<typeof hostState>): string[] {
  const now = hostState();
  const changed: string[] = [];
  if (now.name !== before.name) {
    spawnSync('hostname', [before.name]);
    changed.push(`the host's name became ${now.name}`);
  }
  // Queues are only removed: a lesson under --ipc host makes them in the host's namespace.
  for (const q of now.queues) if (!before.queues.has(q)) spawnSync('ipcrm', ['-q', q]);
  const posix = [...now.posixQueues].filter((q) => !before.posixQueues.has(q));
  if (posix.length > 0) spawnSync('unshare', ['-m', 'sh', '-c', 'mount -t mqueue none /mnt && cd /mnt && rm -f -- "$@"', 'sh', ...posix]);
  return changed;
}

const lessons = readdirSync(LAB)
  .filter((f) => /^\d\d-[a-z0-9-]+\.md$/.test(f))
  .sort()
  .map((f) => parseLesson(f, readFileSync(join(LAB, f), 'utf8')));
const only = process.env.LAB_LESSON;
const broken = process.env.LAB_BROKEN !== '0';

describe('the lab, as written', () => {
  it('has its lessons numbered from 01, with no gap', () => {
    const numbers = lessons.map((l) => Number(l.file.slice(0, 2)));
    expect(numbers.length).toBeGreaterThanOrEqual(11);
    expect(numbers).toEqual(numbers.map((_, i) => i + 1));
  });

  for (const lesson of lessons) {
    it(`${lesson.file}: a goal, a check-your-work section with checks that expect something and name how to break them`, () => {
      expect(lesson.text).toMatch(/^# \d\d · .+$/m);
      expect(lesson.text).toMatch(/^## Goal$/m);
      const checkSection = lesson.text.split(/^## Check your work$/m)[1];
      expect(checkSection, 'a "## Check your work" section').toBeDefined();
      expect(parseLesson(lesson.file, checkSection!).blocks.filter((b) => b.kind === 'check').length).toBeGreaterThan(0);
      lesson.blocks.forEach((b, i) => {
        const where = `${lesson.file}:${b.line}`;
        if (b.kind !== 'check') {
          expect(b.brokenBy, `${where}: # broken-by: belongs in a check`).toEqual([]);
          return;
        }
        expect(b.expect.length, `check at ${where} expects nothing`).toBeGreaterThan(0);
        expect(b.brokenBy.length, `check at ${where} names no # broken-by: setup`).toBeGreaterThan(0);
        for (const how of b.brokenBy) {
          const breakage = parseBreakage(how);
          if (breakage.kind === 'edit') {
            const before = lesson.blocks.slice(0, i).map((x) => x.code).join('\n');
            expect(breakage.re.test(before), `${where}: "${how}" changes nothing before the check`).toBe(true);
          }
        }
      });
    });
  }
});

describePrivileged('the lab, run', () => {
  let env: TestEnv;
  let bin: string;
  let port: number;
  let aliases: Map<string, string>;
  /** Per lesson run broken: its checks, and those every one of their broken runs made fail. */
  const tally = new Map<string, { checks: number; caught: number; seconds: number }>();
  const normalSeconds = new Map<string, number>();

  beforeAll(async () => {
    env = new TestEnv('lab');
    bin = mkdtempSync(join(tmpdir(), 'tsrun-lab-bin-'));
    // LAB_TSRUN_CLI: run the lab against another build of the CLI.
    const cli = process.env.LAB_TSRUN_CLI ?? cliPath;
    const help = (args: string[]) => spawnSync(process.execPath, [cli, ...args, '--help'], { encoding: 'utf8' }).stdout;
    const run = helpOptions(help(['run']) + help(['create']));
    aliases = run.aliases;
    writeFileSync(join(bin, 'tsrun'), wrapper(cli, { global: helpOptions(help([])).values, run: [...new Set(run.values)] }));
    chmodSync(join(bin, 'tsrun'), 0o755);
    port = await freePorts(3);
  });

  /** Whatever a failed lesson left: its containers, its background servers, its files. */
  function sweep(): void {
    const ids = env.run(['ps', '-aq']).stdout.split('\n').filter(Boolean);
    if (ids.length) env.run(['rm', '-f', ...ids], { timeout: 60_000 });
    if (existsSync(LAB_TMP)) {
      for (const f of readdirSync(LAB_TMP).filter((n) => n.endsWith('.pid'))) {
        const pid = Number(readFileSync(join(LAB_TMP, f), 'utf8'));
        if (pid > 1) {
          try {
            process.kill(pid, 'SIGTERM');
          } catch {
            // already gone
          }
        }
      }
      rmSync(LAB_TMP, { recursive: true, force: true });
    }
  }

  /**
   * What the lab left that is its own: its store's mounts, processes and cgroups, and of the
   * host-wide things (veths, network namespaces, firewall rules) those of its bridge. Other test
   * files may run meanwhile; their network is not the lab's to answer for.
   */
  function ownLeaks(before: Set<string> = new Set()): string[] {
    const leaks = env.leaks().filter((l) => !before.has(l));
    const bridge = env.env.TSRUN_BRIDGE!;
    const onBridge = spawnSync('ip', ['-o', 'link', 'show', 'master', bridge], { encoding: 'utf8' }).stdout ?? '';
    const veths = [...onBridge.matchAll(/^\d+: ([^@:]+)/gm)].map((m) => m[1]!);
    const netns = [...onBridge.matchAll(/link-netns (\S+)/g)].map((m) => m[1]!);
    return leaks.filter((l) => {
      if (l.startsWith('veth: ')) return veths.some((v) => l.includes(` ${v}@`));
      if (l.startsWith('netns: ')) return netns.some((n) => l.split(' ')[1] === n);
      if (l.startsWith('firewall rule: ')) return l.includes(`tsrun:${bridge}`);
      return true;
    });
  }

  afterAll(async () => {
    sweep();
    rmSync(bin, { recursive: true, force: true });
    await env.cleanup();
  });

  /** Run blocks of a lesson in one bash, as a learner would; `extra` for a broken run's settings. */
  function runLesson(lesson: Lesson, run: Run, extra: NodeJS.ProcessEnv = {}): { output: string; error?: Error } {
    const home = mkdtempSync(join(tmpdir(), 'tsrun-lab-home-'));
    const { TSRUN_INSECURE_REGISTRIES: _, ...base } = process.env;
    const r = spawnSync('bash', ['-c', script(lesson, run)], {
      encoding: 'utf8',
      timeout: 240_000,
      env: {
        ...base,
        ...env.env,
        PATH: `${bin}:${process.env.PATH}`,
        TSRUN_ROOT: env.root,
        TSRUN_CONFIG: join(home, 'no-config.json'),
        HOME: home,
        LAB_PORT: String(port),
        ...extra,
      },
    });
    rmSync(home, { recursive: true, force: true });
    return { output: r.stdout ?? '', error: r.error };
  }

  const runs = (lesson: string) => only === undefined || lesson.startsWith(only);

  for (const lesson of lessons) {
    it.skipIf(!runs(lesson.file))(lesson.file, () => {
      const started = Date.now();
      // Whatever was there before (another test's leftovers) is not this lesson's doing.
      const before = new Set(env.leaks());
      const { output, error } = runLesson(lesson, { blocks: lesson.blocks.map((_, i) => i), code: (i) => lesson.blocks[i]!.code });
      // Before sweeping: the lesson's own clean-up section must leave nothing behind.
      const leaks = ownLeaks(before);
      sweep();
      normalSeconds.set(lesson.file, (Date.now() - started) / 1000);
      if (process.env.LAB_SHOW === '1') console.log(`--- output of ${lesson.file} ---\n${output}`);

      const problems: string[] = [];
      if (error) problems.push(`bash: ${error.message}`);
      lesson.blocks.forEach((b, i) => {
        const out = blockOutput(output, i);
        const where = `${lesson.file}:${b.line}`;
        if (!output.includes(`@@LAB-END ${i}@@`)) problems.push(`${where}: did not finish`);
        if (b.kind !== 'fails') {
          for (const e of out.split('\n').filter((l) => l.startsWith('@@LAB-ERR'))) problems.push(`${where}: ${e.replace(/^@@LAB-ERR \d+: /, '')}`);
        }
        for (const re of b.expect) if (!re.test(out)) problems.push(`${where}: output does not match ${re}`);
        for (const re of b.expectNot) if (re.test(out)) problems.push(`${where}: output matches ${re}, which it must not`);
      });
      if (leaks.length) problems.push(`left behind after the lesson's clean-up:\n  ${leaks.join('\n  ')}`);
      expect(problems, `${problems.join('\n')}\n\n--- output of ${lesson.file} ---\n${output}`).toEqual([]);
    }, 300_000);

    it.skipIf(!broken || !runs(lesson.file))(`${lesson.file}, broken: every check fails without what it teaches`, () => {
      const started = Date.now();
      const problems: string[] = [];
      const escaped = new Set<number>();
      const outputs: string[] = [];
      for (const v of variantsOf(lesson)) {
        const b = v.breakage;
        const extra: NodeJS.ProcessEnv =
          b.kind === 'flag'
            ? { LAB_BREAK_FLAG: b.flags.join(' ') }
            : b.kind === 'drop'
              ? { LAB_BREAK_DROP: [b.flag, aliases.get(b.flag) ?? ''].join(' ').trim() }
              : b.kind === 'omit-step'
                ? { TSRUN_TEST_OMIT_STEPS: b.op }
                : {};
        const host = hostState();
        const { output, error } = runLesson(lesson, variantRun(lesson, v), extra);
        sweep();
        outputs.push(`--- ${lesson.file} broken by ${v.how} ---\n${output}`);
        if (error) problems.push(`broken by ${v.how}: bash: ${error.message}`);
        for (const i of v.checks) {
          const b = lesson.blocks[i]!;
          const where = `${lesson.file}:${b.line}`;
          if (!output.includes(`@@LAB-END ${i}@@`)) {
            // A check that never ran proves nothing about the breakage.
            problems.push(`${where}: did not finish when broken by ${v.how}`);
            escaped.add(i);
          } else {
            const why = failure(b, blockOutput(output, i));
            if (why) console.log(`${where} broken by ${v.how}: fails, ${why}`);
            else {
              problems.push(`${where}: still passes when broken by ${v.how}`);
              escaped.add(i);
            }
          }
        }
        // A broken run may do to the host what the lesson did to a container: undo it. A new
        // name is also a problem: other tests meanwhile saw the host renamed.
        for (const c of restoreHost(host)) problems.push(`broken by ${v.how}: ${c} (put back)`);
        // The clean-up section and the sweep, together, must still leave nothing behind.
        const leaks = ownLeaks();
        if (leaks.length) problems.push(`broken by ${v.how}, left behind:\n  ${leaks.join('\n  ')}`);
      }
      const checks = lesson.blocks.filter((b) => b.kind === 'check').length;
      const seconds = (Date.now() - started) / 1000;
      tally.set(lesson.file, { checks, caught: checks - escaped.size, seconds });
      expect(problems, `${problems.join('\n')}\n\n${outputs.join('\n')}`).toEqual([]);
    }, 900_000);
  }

  it.skipIf(!broken)('every check is caught by a broken run', () => {
    let checks = 0;
    let caught = 0;
    for (const lesson of lessons.filter((l) => runs(l.file))) {
      // A lesson whose broken runs never got as far as counting caught nothing.
      const t = tally.get(lesson.file) ?? { checks: lesson.blocks.filter((b) => b.kind === 'check').length, caught: 0, seconds: 0 };
      checks += t.checks;
      caught += t.caught;
      console.log(`${lesson.file}: checks: ${t.checks}, caught by broken runs: ${t.caught} (${normalSeconds.get(lesson.file)?.toFixed(0) ?? '-'} s as written, ${t.seconds.toFixed(0)} s broken)`);
    }
    console.log(`checks: ${checks}, caught by broken runs: ${caught}`);
    expect(caught).toBe(checks);
  });
});
