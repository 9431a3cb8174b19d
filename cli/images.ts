// tsrun images | image ls, rmi | image rm, tag | image tag
import type { Command } from 'commander';
import { action, flagError, globalOptions } from './common.js';
import { formatTable } from './table.js';
import { writeOut } from './out.js';

interface ListFlags {
  quiet: boolean;
  trunc?: boolean;
  all: boolean;
  format?: string;
}

/** The `image` command group (`tsrun image ls`), shared with cli/load.ts. */
export function imageGroup(program: Command): Command {
  return (
    program.commands.find((c) => c.name() === 'image') ??
    program.command('image').description('Manage images').usage('COMMAND')
  );
}

export function register(program: Command): void {
  const group = imageGroup(program);
  addList(program.command('images'));
  addList(group.command('ls').alias('list'));
  addRemove(program.command('rmi'));
  addRemove(group.command('rm').alias('remove'));
  addTag(program.command('tag'));
  addTag(group.command('tag'));
}

function addList(cmd: Command): void {
  cmd
    .description('List images')
    .usage('[OPTIONS] [REPOSITORY[:TAG]]')
    .argument('[repository]', 'only images of this repository (and tag)')
    .option('-q, --quiet', 'only show image IDs', false)
    .option('--no-trunc', "don't truncate output")
    .option('-a, --all', 'show all images (there are no intermediate images: same as without)', false)
    .option('--format <format>', 'output format: table (default) or json')
    .action(
      action(async (repository: string | undefined, flags: ListFlags, c: Command) => {
        if (flags.format !== undefined && flags.format !== 'json' && flags.format !== 'table') {
          throw flagError('--format', flags.format, 'only "table" and "json" are supported');
        }
        const { ImageStore } = await import('../src/image/store.js');
        const listing = await import('../src/image/listing.js');
        const store = await ImageStore.open(globalOptions(c).root);
        const rows = listing.imageRows(await store.list(), repository);
        const id = (d: string): string => (flags.trunc === false ? d : listing.shortId(d));
        if (flags.quiet) {
          for (const i of new Set(rows.map((r) => id(r.id)))) writeOut(`${i}\n`);
          return;
        }
        const now = new Date();
        if (flags.format === 'json') {
          for (const r of rows) {
            const size = listing.humanSize(r.size);
            writeOut(
              JSON.stringify({
                Containers: 'N/A',
                CreatedAt: listing.goTimeString(r.created),
                CreatedSince: listing.createdSince(r.created, now),
                Digest: r.digest,
                ID: id(r.id),
                Repository: r.repository,
                SharedSize: 'N/A',
                Size: size,
                Tag: r.tag,
                UniqueSize: 'N/A',
                VirtualSize: size,
              }) + '\n',
            );
          }
          return;
        }
        const cells = rows.map((r) => [r.repository, r.tag, id(r.id), listing.createdSince(r.created, now), listing.humanSize(r.size)]);
        writeOut(formatTable([['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'], ...cells]));
      }),
    );
}

function addRemove(cmd: Command): void {
  cmd
    .description('Remove one or more images')
    .usage('[OPTIONS] IMAGE [IMAGE...]')
    .argument('<images...>', 'names or IDs')
    .option('-f, --force', 'remove an image ID that several names point to; also untag an image containers use (it stays, untagged, until none does)', false)
    .option('--no-prune', 'accepted for docker compatibility; untagged parents do not exist here')
    .action(
      action(async (images: string[], flags: { force: boolean }, c: Command) => {
        const { ImageStore } = await import('../src/image/store.js');
        const { familiarName } = await import('../src/image/listing.js');
        const { report } = await import('./common.js');
        const store = await ImageStore.open(globalOptions(c).root);
        const { removeImageChecked } = await import('../src/image/prune.js');
        const { containerRefs, imageUser } = await import('../src/container/diff.js');
        const root = globalOptions(c).root;
        const containers = await containerRefs(root);
        const userOf = async (id: string) => imageUser(root, id);
        const mountedLayers = async () => new Set((await containerRefs(root)).flatMap((c) => c.lowerDirs));
        let status = 0;
        // Like docker: go on with the rest after a failure, exit non-zero at the end.
        for (const image of images) {
          try {
            const r = await removeImageChecked(store, containers, image, { force: flags.force, userOf, mountedLayers });
            for (const n of r.untagged) writeOut(`Untagged: ${familiarName(n)}\n`);
            for (const d of r.deleted) writeOut(`Deleted: ${d}\n`);
          } catch (err) {
            status = report(err);
          }
        }
        return status === 0 ? 0 : 1;
      }),
    );
}

function addTag(cmd: Command): void {
  cmd
    .description('Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE')
    .usage('SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]')
    .argument('<source>', 'name or ID of an image in the store')
    .argument('<target>', 'new name')
    .action(
      action(async (source: string, target: string, _flags: object, c: Command) => {
        const { ImageStore } = await import('../src/image/store.js');
        const store = await ImageStore.open(globalOptions(c).root);
        await store.tag(source, target);
      }),
    );
}
