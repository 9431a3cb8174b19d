// docs/commands.md must not drift from the CLI: every command and subcommand that
// `tsrun --help` lists has its own heading there, with an example that runs it.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = join(repo, 'dist', 'tsrun.cjs');
const doc = readFileSync(join(repo, 'docs', 'commands.md'), 'utf8');

/** Command names from the "...Commands:" sections of a --help text (aliases dropped). */
function commandsIn(help: string): string[] {
  const names: string[] = [];
  let inCommands = false;
  for (const line of help.split('\n')) {
    if (/^\S.*Commands:$/.test(line)) inCommands = true;
    else if (/^\S/.test(line)) inCommands = false;
    else if (inCommands) {
      const m = /^ {2}([a-z][a-z0-9-]*)(\|\S+)?(\s|$)/.exec(line);
      if (m) names.push(m[1]!);
    }
  }
  return names;
}

const help = (args: string[]) => execFileSync(process.execPath, [cli, ...args, '--help'], { encoding: 'utf8' });

/** "run", "image ls", ... from the headings "### tsrun run", "#### tsrun image ls". */
const documented = new Set([...doc.matchAll(/^#{3,4} tsrun ([a-z][a-z -]*)$/gm)].map((m) => m[1]!.trim()));

describe.skipIf(!existsSync(cli))('docs/commands.md', () => {
  const top = commandsIn(help([]));

  it('documents every command tsrun --help lists', () => {
    expect(top.length).toBeGreaterThan(10);
    expect(top.filter((c) => !documented.has(c))).toEqual([]);
  });

  it('documents every subcommand of the management commands', () => {
    const missing: string[] = [];
    for (const group of top) {
      for (const sub of commandsIn(help([group])).filter((s) => s !== 'help')) {
        if (!documented.has(`${group} ${sub}`)) missing.push(`${group} ${sub}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('gives every command an example that runs it', () => {
    const sections = doc.split(/^(?=#{3,4} tsrun )/m).slice(1);
    for (const section of sections) {
      const name = /^#{3,4} tsrun ([a-z][a-z -]*)$/m.exec(section)![1]!.trim();
      const groupOnly = /^#{3} /.test(section) && sections.some((s) => s.startsWith(`#### tsrun ${name} `));
      if (groupOnly) continue;
      expect(section, `example for tsrun ${name}`).toMatch(new RegExp('```sh\\n[^`]*\\btsrun ' + name.split(' ')[0]));
    }
  });
});
