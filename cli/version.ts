// tsrun version [--format json|TEMPLATE]: tsrun, Node.js, the helper, OS/arch.
import type { Command } from 'commander';
import type { VersionInfo } from '../src/info/version.js';
import { action } from './common.js';
import { renderTemplate } from './format.js';
import { writeOut } from './out.js';

export function register(program: Command): void {
  program
    .command('version')
    .description('Show the tsrun, Node.js and helper versions')
    .option('-f, --format <format>', 'json, or a template such as "{{.Client}}" (a Go template, as docker\'s)')
    .action(action(async (flags: { format?: string }) => {
      const { gatherVersion } = await import('../src/info/version.js');
      const v = gatherVersion();
      if (flags.format === 'json') writeOut(JSON.stringify(v) + '\n');
      else if (flags.format) writeOut(renderTemplate(flags.format, v as unknown as Record<string, unknown>) + '\n');
      else writeOut(renderVersion(v));
      // Like docker version when the server is unreachable: a broken helper is a failure.
      return v.Helper.Error === undefined ? 0 : 1;
    }));
}

export function renderVersion(v: VersionInfo): string {
  const rows: Array<[string, string]> = [
    ['Version', v.Client.Version],
    ['Node.js', v.Client.NodeVersion],
    ['OS/Arch', `${v.Client.Os}/${v.Client.Arch}`],
    ['Kernel', v.Client.KernelVersion],
  ];
  const helper: Array<[string, string]> = v.Helper.Error
    ? [['Error', v.Helper.Error]]
    : [['Version', v.Helper.Version], ['Path', v.Helper.Path]];
  const width = Math.max(...[...rows, ...helper].map(([k]) => k.length)) + 2;
  const block = (title: string, r: Array<[string, string]>) => [title, ...r.map(([k, val]) => ` ${`${k}:`.padEnd(width)}${val}`)].join('\n');
  // "Engine" as docker calls its server; here it is the helper this process starts.
  return `${block('Client: tsrun', rows)}\n\n${block('Engine: tsrun-helper (no daemon)', helper)}\n`;
}
