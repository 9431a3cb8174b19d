// tsrun cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-
// tsrun cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH
import type { Command } from 'commander';
import { TsrunError } from '../src/errors.js';
import { action, globalOptions } from './common.js';
import { writeErr, stdoutStream, stderrStream } from './out.js';

interface CpFlags {
  archive: boolean;
  followLink: boolean;
  quiet: boolean;
}

/** docker's rule: `name:path` names a container unless the argument is absolute or starts with `.`. */
export function splitCpArg(arg: string): { container?: string; path: string } {
  if (arg.startsWith('/')) return { path: arg };
  const colon = arg.indexOf(':');
  if (colon < 0 || arg.startsWith('.')) return { path: arg };
  return { container: arg.slice(0, colon), path: arg.slice(colon + 1) || '/' };
}

export function register(program: Command): void {
  program
    .command('cp')
    .description('Copy files/folders between a container and the local filesystem')
    .addHelpText('after', "\nPaths in the container resolve inside it: its symlinks (even absolute ones, or ../..) never lead to the host's files.")
    .usage('[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n       tsrun cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH')
    .argument('<src>', 'CONTAINER:PATH, a local path, or - (a tar on stdin, extracted into the directory DEST_PATH)')
    .argument('<dest>', 'CONTAINER:PATH, a local path, or - (a tar on stdout)')
    .option('-a, --archive', 'archive mode (copy all uid/gid information)', false)
    .option('-L, --follow-link', 'always follow symbol link in SRC_PATH', false)
    .option('-q, --quiet', 'suppress progress output during copy', false)
    .action(action(async (srcArg: string, dstArg: string, flags: CpFlags, cmd: Command) => {
      const { root } = globalOptions(cmd);
      const src = srcArg === '-' ? { path: '-' } : splitCpArg(srcArg);
      const dst = dstArg === '-' ? { path: '-' } : splitCpArg(dstArg);
      if (src.container !== undefined && dst.container !== undefined) throw new TsrunError('EINVAL_FLAG', 'copying between containers is not supported');
      if (src.container === undefined && dst.container === undefined) throw new TsrunError('EINVAL_FLAG', 'must specify at least one container source');
      const [{ findContainer }, { copy, copyFromStream, copyToStream }] = await Promise.all([
        import('../src/container/lookup.js'),
        import('../src/container/cp.js'),
      ]);
      if (srcArg === '-') {
        if (process.stdin.isTTY) throw new TsrunError('EINVAL_FLAG', 'cp -: the tar to extract comes on stdin, which is a terminal');
        await copyFromStream(findContainer(root, dst.container!), dst.path, process.stdin, { archive: flags.archive });
        return;
      }
      if (dstArg === '-') {
        await copyToStream(findContainer(root, src.container!), src.path, stdoutStream(), flags);
        return;
      }
      const result = await copy(
        src.container !== undefined ? { container: findContainer(root, src.container), path: src.path } : { host: src.path },
        dst.container !== undefined ? { container: findContainer(root, dst.container), path: dst.path } : { host: dst.path },
        { archive: flags.archive, followLink: flags.followLink },
      );
      // docker reports the size only to a terminal.
      if (!flags.quiet && stderrStream().isTTY) {
        const { humanSize } = await import('../src/image/prune.js');
        writeErr(`Successfully copied ${humanSize(result.bytes)} to ${dstArg}\n`);
      }
    }));
}
