// tsrun system df and check, tsrun image prune, tsrun image inspect: what the store holds, whether
// it is true, and what can go.
import type { Command } from 'commander';
import { action, flagError, globalOptions } from './common.js';
import { renderTemplate } from './format.js';
import { formatTable } from './table.js';
import { imageGroup } from './images.js';
import { writeOut, writeErr } from './out.js';

const load = () =>
  Promise.all([import('../src/image/store.js'), import('../src/image/prune.js'), import('../src/container/diff.js')]).then(
    ([store, prune, diff]) => ({ ...store, ...prune, ...diff }),
  );

export function register(program: Command): void {
  const system = program.commands.find((c) => c.name() === 'system') ?? program.command('system').description('Manage tsrun').usage('COMMAND');
  system
    .command('df')
    .description('Show tsrun disk usage')
    .option('--format <format>', 'output format: table (default) or json')
    .action(action(async (flags: { format?: string }, c: Command) => {
      const root = globalOptions(c).root;
      const m = await load();
      const store = await m.ImageStore.open(root);
      const [{ listVolumes, volumeData, volumeUsers }, { diskUsage: du }] = await Promise.all([
        import('../src/container/volumes.js'),
        import('../src/info/storage.js'),
      ]);
      const users = volumeUsers(root);
      const volumes = listVolumes(root).map((v) => ({ size: du(volumeData(root, v.name)), used: users.has(v.name) }));
      const rows = m.diskUsage(await store.list(), await m.containerRefs(root, { sizes: true }), volumes, await store.cacheUsage());
      if (flags.format === 'json') {
        for (const r of rows) {
          writeOut(JSON.stringify({ Active: String(r.active), Reclaimable: m.reclaimableCell(r), Size: m.humanSize(r.size), TotalCount: String(r.total), Type: r.type }) + '\n');
        }
        return;
      }
      const cells = rows.map((r) => [r.type, String(r.total), String(r.active), m.humanSize(r.size), m.reclaimableCell(r)]);
      writeOut(formatTable([['TYPE', 'TOTAL', 'ACTIVE', 'SIZE', 'RECLAIMABLE'], ...cells]));
    }));

  system
    .command('check')
    .description("Verify the store against the kernel (docs/store.md); --repair puts right what a crash left")
    .option('--repair', 'release and remove what killed commands left, and say what was done', false)
    .option('--format <format>', 'output format: lines (default) or json')
    .action(action(async (flags: { repair: boolean; format?: string }, c: Command) => {
      if (flags.format !== undefined && flags.format !== 'json') throw flagError('--format', flags.format, 'expected json');
      const { checkStore } = await import('../src/container/check.js');
      const findings = await checkStore(globalOptions(c).root, { repair: flags.repair });
      if (flags.format === 'json') {
        writeOut(JSON.stringify(findings) + '\n');
      } else if (findings.length === 0) {
        writeOut('the store is consistent\n');
      } else {
        for (const f of findings) writeOut(`${f.kind}: ${f.subject}: ${f.detail}${f.repaired ? ' (repaired)' : ''}\n`);
      }
      return findings.every((f) => f.repaired) ? 0 : 1;
    }));

  imageGroup(program)
    .command('prune')
    .description('Remove unused images: dangling ones (-a: every image no container uses), then layers and blobs no image needs')
    .option('-a, --all', 'remove all images not used by a container, not just dangling ones', false)
    .option('-f, --force', 'do not prompt for confirmation (tsrun never prompts)', false)
    .action(action(async (flags: { all: boolean }, c: Command) => {
      const root = globalOptions(c).root;
      const m = await load();
      const { familiarName } = await import('../src/image/listing.js');
      const store = await m.ImageStore.open(root);
      const refs = await m.containerRefs(root);
      const r = await m.pruneImages(store, refs, { all: flags.all, userOf: async (id) => m.imageUser(root, id) });
      // Layer copies made for user namespaces where the store cannot be idmapped: a cache.
      const { pruneShiftedLayers } = await import('../src/namespaces/userns-files.js');
      pruneShiftedLayers(root, new Set(refs.flatMap((r) => (r.usernsKey ? [r.usernsKey] : []))));
      if (r.untagged.length + r.deleted.length > 0) {
        const lines = [...r.untagged.map((n) => `untagged: ${familiarName(n)}`), ...r.deleted.map((d) => `deleted: ${d}`)];
        writeOut(`Deleted Images:\n${lines.join('\n')}\n\n`);
      }
      writeOut(`Total reclaimed space: ${m.humanSize(r.reclaimed)}\n`);
      if (r.writers.length > 0) {
        const pids = r.writers.map((w) => w.split('@')[0]).join(', ');
        writeErr(`tsrun: layers and blobs no image uses were kept: ${r.writers.length === 1 ? 'a pull, load, commit, push or build is' : `${r.writers.length} pulls, loads, commits, pushes or builds are`} writing (pid ${pids}); prune again once done\n`);
      }
    }));

  imageGroup(program)
    .command('inspect')
    .description('Display detailed information on one or more images')
    .usage('[OPTIONS] IMAGE [IMAGE...]')
    .argument('<images...>')
    .option('-f, --format <template>', 'a template such as "{{.Id}}" (a Go template, as docker\'s)')
    .action(action(async (images: string[], flags: { format?: string }, c: Command) => {
      const [{ inspectImage }, { ImageStore }] = await Promise.all([import('../src/image/save.js'), import('../src/image/store.js')]);
      const store = await ImageStore.open(globalOptions(c).root);
      const out: Array<Record<string, unknown>> = [];
      let failed = false;
      for (const name of images) {
        const image = await store.resolve(name);
        if (image) out.push(inspectImage(image));
        else {
          writeErr(`tsrun: No such image: ${name}\n`);
          failed = true;
        }
      }
      if (flags.format) for (const o of out) writeOut(renderTemplate(flags.format, o) + '\n');
      else writeOut(JSON.stringify(out, null, 4) + '\n');
      return failed ? 1 : 0;
    }));
}
