// tsrun network create|ls|inspect|rm|prune|connect|disconnect
import type { Command } from 'commander';
import { action, collect, globalOptions } from './common.js';
import { renderTemplate } from './format.js';
import { formatTable } from './table.js';
import { writeOut } from './out.js';

export function register(program: Command): void {
  const network = program.command('network').description('Manage networks');

  network
    .command('create')
    .description('Create a bridge network; containers on it reach each other by name')
    .argument('<name>')
    .option('--subnet <cidr>', 'IPv4 subnet (default: the first free 10.99.N.0/24)')
    .option('--gateway <ip>', 'the bridge\'s address (default: the subnet\'s first)')
    .option('-o, --opt <bridge=NAME|mtu=N>', 'driver options: com.docker.network.bridge.name / bridge, mtu')
    .action(action(async (name: string, flags: { subnet?: string; gateway?: string; opt?: string }, cmd: Command) => {
      const { createNetwork } = await import('../src/netns/index.js');
      const opt = parseOpt(flags.opt);
      const net = await createNetwork(globalOptions(cmd).root, {
        name,
        ...(flags.subnet && { subnet: flags.subnet }),
        ...(flags.gateway && { gateway: flags.gateway }),
        ...opt,
      });
      writeOut(`${net.id}\n`);
    }));

  network
    .command('ls')
    .alias('list')
    .description('List networks')
    .option('-q, --quiet', 'only IDs', false)
    .action(action(async (flags: { quiet: boolean }, cmd: Command) => {
      const { listNetworks } = await import('../src/netns/index.js');
      const nets = listNetworks(globalOptions(cmd).root);
      if (flags.quiet) {
        for (const n of nets) writeOut(`${n.id.slice(0, 12)}\n`);
        return;
      }
      const rows = [['NETWORK ID', 'NAME', 'DRIVER', 'SUBNET', 'BRIDGE']];
      for (const n of nets) rows.push([n.id.slice(0, 12), n.name, 'bridge', n.subnet, n.bridge]);
      // host and none are always there, as in docker; they have no ID of their own.
      rows.push(['-', 'host', 'host', '-', '-'], ['-', 'none', 'null', '-', '-']);
      writeOut(formatTable(rows));
    }));

  network
    .command('inspect')
    .description('Show networks as JSON, with the containers on them')
    .argument('<name...>')
    .option('-f, --format <template>', 'a template such as "{{range .Containers}}{{.Name}} {{end}}" (a Go template, as docker\'s)')
    .action(action(async (names: string[], flags: { format?: string }, cmd: Command) => {
      const { inspectNetwork, networkJson } = await import('../src/netns/index.js');
      const root = globalOptions(cmd).root;
      const out = names.map((n) => networkJson(inspectNetwork(root, n)));
      if (flags.format) for (const o of out) writeOut(renderTemplate(flags.format, o) + '\n');
      else writeOut(JSON.stringify(out, null, 4) + '\n');
    }));

  network
    .command('connect')
    .description('Connect a container to a network: running, it gets one more interface (eth1, eth2…) at once; stopped, at its next start')
    .argument('<name>', 'the network')
    .argument('<container>')
    .option('--alias <name>', 'another name the containers on the network know it by (repeatable)', collect, [])
    .option('--ip <address>', 'a fixed IPv4 address (user-defined networks only)')
    .action(action(async (name: string, container: string, flags: { alias: string[]; ip?: string }, cmd: Command) => {
      const root = globalOptions(cmd).root;
      const [{ findContainer }, { connectContainer }] = await Promise.all([import('../src/container/lookup.js'), import('../src/container/connect.js')]);
      await connectContainer(root, findContainer(root, container), name, { aliases: flags.alias, ...(flags.ip !== undefined && { ip: flags.ip }) });
    }));

  network
    .command('disconnect')
    .description('Disconnect a container from a network added with network connect')
    .argument('<name>', 'the network')
    .argument('<container>')
    .option('-f, --force', 'take a network that was removed since off the container too', false)
    .action(action(async (name: string, container: string, flags: { force: boolean }, cmd: Command) => {
      const root = globalOptions(cmd).root;
      const [{ findContainer }, { disconnectContainer }] = await Promise.all([import('../src/container/lookup.js'), import('../src/container/connect.js')]);
      await disconnectContainer(root, findContainer(root, container), name, { force: flags.force });
    }));

  network
    .command('rm')
    .alias('remove')
    .description('Remove networks (refused while containers use them)')
    .argument('<name...>')
    .action(action(async (names: string[], _flags: object, cmd: Command) => {
      const { removeNetwork } = await import('../src/netns/index.js');
      const root = globalOptions(cmd).root;
      for (const n of names) {
        await removeNetwork(root, n);
        writeOut(`${n}\n`);
      }
    }));

  network
    .command('prune')
    .description("Remove unused networks; the default one's bridge and firewall rules go too, until a container needs them")
    .option('-f, --force', 'do not prompt for confirmation (tsrun never prompts)', false)
    .action(action(async (_flags: object, cmd: Command) => {
      const root = globalOptions(cmd).root;
      const [{ pruneNetworks, releaseStray }, { reconcile }, { strayEndpoints }] = await Promise.all([
        import('../src/netns/index.js'),
        import('../src/container/cleanup.js'),
        import('../src/container/check.js'),
      ]);
      // What killed commands left keeps a network in use: released first (as system check --repair).
      await reconcile(root);
      for (const { ep } of strayEndpoints(root)) await releaseStray(root, ep);
      const removed = await pruneNetworks(root);
      if (removed.length > 0) writeOut(`Deleted Networks:\n${removed.join('\n')}\n`);
    }));
}

function parseOpt(opt: string | undefined): { bridge?: string; mtu?: number } {
  if (!opt) return {};
  const [key, value = ''] = opt.split('=', 2) as [string, string?];
  if (key === 'bridge' || key === 'com.docker.network.bridge.name') return { bridge: value };
  if (key === 'mtu' || key === 'com.docker.network.driver.mtu') return { mtu: Number(value) };
  return {};
}
