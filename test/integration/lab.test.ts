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
// The lesson text says plain `tsrun`; here a `tsrun` wrapper first on PATH runs this checkout's
// dist/tsrun.cjs, with the test's own store root, cgroup parent, bridge and subnet, no host
// registry config, and LAB_PORT (a free port; the lessons use 5050 without it).
//
//   sudo npx vitest run test/integration/lab.test.ts             every lesson
//   sudo LAB_LESSON=04 npx vitest run test/integration/lab.test.ts   one lesson
//   LAB_TSRUN_CLI=/path/to/tsrun.cjs                                 another build of the CLI
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliPath, describePrivileged, repoRoot, TestEnv } from './helpers/env.js';

const LAB = join(repoRoot, 'docs', 'lab');
/** Where the lessons keep their files (images, registry data, pid files). */
const LAB_TMP = '/tmp/tsrun-lab';

interface Block {
  kind: 'step' | 'check' | 'fails';
  code: string;
  expect: RegExp[];
  expectNot: RegExp[];
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
    const grab = (key: string) =>
      [...code.matchAll(new RegExp(`^\\s*# ${key}: (.+)$`, 'gm'))].map((e) => new RegExp(e[1]!.trim(), 'm'));
    blocks.push({
      kind: words.includes('check') ? 'check' : words.includes('fails') ? 'fails' : 'step',
      code,
      expect: grab('expect'),
      expectNot: grab('expect-not'),
      line: text.slice(0, m.index).split('\n').length,
    });
  }
  return { file, text, blocks };
}

/** The whole lesson as one bash script that marks where each block's output starts and ends. */
function script(lesson: Lesson): string {
  const out = [
    'exec 2>&1',
    `cd ${JSON.stringify(repoRoot)}`,
    'LAB_BLOCK=-1',
    // Every failing command (not part of a condition) is reported, and the lesson goes on.
    `trap 'echo "@@LAB-ERR $LAB_BLOCK: exit $? from: $BASH_COMMAND"' ERR`,
  ];
  lesson.blocks.forEach((b, i) => {
    out.push(`LAB_BLOCK=${i}`, `echo "@@LAB-BEGIN ${i}@@"`, b.code.trimEnd(), `echo "@@LAB-END ${i}@@"`);
  });
  return out.join('\n') + '\n';
}

function blockOutput(output: string, i: number): string {
  const begin = output.indexOf(`@@LAB-BEGIN ${i}@@\n`);
  const end = output.indexOf(`@@LAB-END ${i}@@`);
  if (begin < 0 || end < 0) return '';
  return output.slice(begin + `@@LAB-BEGIN ${i}@@\n`.length, end);
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

const lessons = readdirSync(LAB)
  .filter((f) => /^\d\d-[a-z0-9-]+\.md$/.test(f))
  .sort()
  .map((f) => parseLesson(f, readFileSync(join(LAB, f), 'utf8')));
const only = process.env.LAB_LESSON;

describe('the lab, as written', () => {
  it('has the eleven lessons, numbered from 01', () => {
    expect(lessons.map((l) => l.file.slice(0, 2))).toEqual(['01', '02', '03', '04', '05', '06', '07', '08', '09', '10', '11']);
  });

  for (const lesson of lessons) {
    it(`${lesson.file}: a goal, a check-your-work section with checks that expect something`, () => {
      expect(lesson.text).toMatch(/^# \d\d · .+$/m);
      expect(lesson.text).toMatch(/^## Goal$/m);
      const checkSection = lesson.text.split(/^## Check your work$/m)[1];
      expect(checkSection, 'a "## Check your work" section').toBeDefined();
      expect(parseLesson(lesson.file, checkSection!).blocks.filter((b) => b.kind === 'check').length).toBeGreaterThan(0);
      for (const b of lesson.blocks.filter((x) => x.kind === 'check')) {
        expect(b.expect.length, `check at ${lesson.file}:${b.line} expects nothing`).toBeGreaterThan(0);
      }
    });
  }
});

describePrivileged('the lab, run', () => {
  let env: TestEnv;
  let bin: string;
  let port: number;

  beforeAll(async () => {
    env = new TestEnv('lab');
    bin = mkdtempSync(join(tmpdir(), 'tsrun-lab-bin-'));
    // LAB_TSRUN_CLI: run the lab against another build of the CLI.
    const cli = process.env.LAB_TSRUN_CLI ?? cliPath;
    writeFileSync(join(bin, 'tsrun'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(cli)} "$@"\n`);
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

  afterAll(async () => {
    sweep();
    rmSync(bin, { recursive: true, force: true });
    await env.cleanup();
  });

  for (const lesson of lessons) {
    it.skipIf(only !== undefined && !lesson.file.startsWith(only))(lesson.file, () => {
      // Whatever was there before (another test's leftovers) is not this lesson's doing.
      const before = new Set(env.leaks());
      const home = mkdtempSync(join(tmpdir(), 'tsrun-lab-home-'));
      const { TSRUN_INSECURE_REGISTRIES: _, ...base } = process.env;
      const r = spawnSync('bash', ['-c', script(lesson)], {
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
        },
      });
      const output = r.stdout ?? '';
      // Before sweeping: the lesson's own clean-up section must leave nothing behind.
      const leaks = env.leaks().filter((l) => !before.has(l));
      sweep();
      rmSync(home, { recursive: true, force: true });

      const problems: string[] = [];
      if (r.error) problems.push(`bash: ${r.error.message}`);
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
  }
});
