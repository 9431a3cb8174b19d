// `tsrun completion bash`: generated from the real command definitions, then exercised in bash
// against a stand-in `tsrun` that prints fixed containers, images and networks.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bashCompletion } from '../../cli/completion.js';
import { register as registerContainer } from '../../cli/container.js';
import { register as registerImages } from '../../cli/images.js';
import { register as registerInspect } from '../../cli/inspect.js';
import { register as registerLifecycle } from '../../cli/lifecycle.js';
import { register as registerLoad } from '../../cli/load.js';
import { register as registerNetwork } from '../../cli/network.js';
import { register as registerPs } from '../../cli/ps.js';
import { register as registerRun } from '../../cli/run.js';
import { collect } from '../../cli/common.js';

const dir = mkdtempSync(join(tmpdir(), 'tsrun-completion-'));
let script = '';

beforeAll(() => {
  const program = new Command('tsrun')
    .option('--root <dir>', 'storage root')
    .option('--insecure-registry <host>', 'insecure', collect, [])
    .option('-D, --debug', 'debug')
    .enablePositionalOptions();
  for (const r of [registerRun, registerPs, registerLifecycle, registerInspect, registerContainer, registerImages, registerLoad, registerNetwork]) r(program);
  script = join(dir, 'tsrun.bash');
  writeFileSync(script, bashCompletion(program));
  // The stand-in: logs its arguments, answers ps / images / network ls.
  const fake = join(dir, 'tsrun');
  writeFileSync(
    fake,
    `#!/bin/sh
echo "$*" >> ${dir}/calls
case "$*" in
  *"ps -a"*) printf 'web\\ndb\\n' ;;
  *images*) echo '{"ID":"58739eb46b99","Repository":"busybox","Tag":"latest"}'
            echo '{"ID":"58739eb46b99","Repository":"127.0.0.1:5000/lab/busybox","Tag":"v1"}'
            echo '{"ID":"aaaaaaaaaaaa","Repository":"<none>","Tag":"<none>"}' ;;
  *"network ls"*) printf 'NETWORK ID  NAME  DRIVER\\n1234  labnet  bridge\\n-  host  host\\n-  none  null\\n' ;;
esac
`,
  );
  chmodSync(fake, 0o755);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** What bash offers for the line typed so far (the cursor at its end). */
function complete(line: string): string[] {
  const out = execFileSync(
    'bash',
    ['-c', `source "$1"; COMP_LINE="$2"; COMP_POINT=\${#COMP_LINE}; _tsrun; printf '%s\\n' "\${COMPREPLY[@]}"`, 'bash', script, line],
    { encoding: 'utf8', env: { ...process.env, PATH: `${dir}:${process.env.PATH}` } },
  );
  return out.split('\n').filter(Boolean);
}

describe('tsrun completion bash', () => {
  it('is valid bash and registers _tsrun', () => {
    execFileSync('bash', ['-n', script]);
    expect(readFileSync(script, 'utf8')).toMatch(/\ncomplete -F _tsrun tsrun\n$/);
  });

  it('completes commands, and subcommands of groups', () => {
    expect(complete('tsrun r')).toEqual(['run', 'restart', 'rm', 'rename', 'rmi']);
    expect(complete('tsrun image ')).toEqual(expect.arrayContaining(['ls', 'list', 'rm', 'tag', 'load']));
    expect(complete('tsrun network ')).toEqual(expect.arrayContaining(['create', 'ls', 'inspect', 'rm']));
  });

  it("completes each command's own flags, from commander's definitions", () => {
    expect(complete('tsrun ps --')).toEqual(['--all', '--quiet', '--last', '--latest', '--filter', '--format', '--no-trunc', '--help']);
    expect(complete('tsrun run --pids')).toEqual(['--pids-limit']);
  });

  it('completes container names where a container is expected', () => {
    expect(complete('tsrun rm ')).toEqual(['web', 'db']);
    expect(complete('tsrun stop -t 5 w')).toEqual(['web']);
  });

  it('completes image names (never <none>) where an image is expected, with colons handled', () => {
    expect(complete('tsrun run --rm ')).toEqual(['busybox:latest', '127.0.0.1:5000/lab/busybox:v1']);
    expect(complete('tsrun run -m 64m --name x bus')).toEqual(['busybox:latest']);
    // bash replaces only what follows the last ':' of the word.
    expect(complete('tsrun rmi 127.0.0.1:5000/lab/b')).toEqual(['5000/lab/busybox:v1']);
  });

  it('offers containers and images to inspect, networks to network rm and --network', () => {
    expect(complete('tsrun inspect ')).toEqual(['web', 'db', 'busybox:latest', '127.0.0.1:5000/lab/busybox:v1']);
    expect(complete('tsrun network rm ')).toEqual(['bridge', 'labnet']);
    expect(complete('tsrun run --network ')).toEqual(['bridge', 'none', 'host', 'labnet']);
  });

  it('knows values of some flags, and offers nothing for free-form ones', () => {
    expect(complete('tsrun run --pull ')).toEqual(['missing', 'always', 'never']);
    expect(complete('tsrun run --name ')).toEqual([]);
  });

  it("leaves the container's command alone after the image", () => {
    expect(complete('tsrun run busybox ')).toEqual([]);
    expect(complete('tsrun run busybox ls --')).toEqual([]);
  });

  it('passes --root on to the lookups', () => {
    rmSync(join(dir, 'calls'), { force: true });
    complete('tsrun --root /tmp/other rm ');
    expect(readFileSync(join(dir, 'calls'), 'utf8')).toContain('--root /tmp/other ps -a');
  });
});
