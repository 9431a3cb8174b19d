// tsrun port CONTAINER [PRIVATE_PORT[/PROTO]]: the published ports, as docker prints them.
import type { Command } from 'commander';
import { action, globalOptions } from './common.js';
import { writeOut } from './out.js';

export function register(program: Command): void {
  program
    .command('port')
    .description('List port mappings, or the host address of one container port')
    .argument('<container>')
    .argument('[port]', 'a container port, e.g. 80 or 53/udp')
    .action(action(async (name: string, port: string | undefined, _flags: object, cmd: Command) => {
      const { root } = globalOptions(cmd);
      const [{ findContainer }, { observe }, { TsrunError }] = await Promise.all([
        import('../src/container/lookup.js'),
        import('../src/container/status.js'),
        import('../src/errors.js'),
      ]);
      const found = findContainer(root, name);
      const seen = observe(found.paths);
      const running = seen.status === 'running' || seen.status === 'paused';
      const ports = running ? (seen.state.network?.ports ?? []) : [];
      const [wantPort, wantProto = 'tcp'] = port?.split('/') ?? [];
      const shown = ports.filter((p) => wantPort === undefined || (String(p.containerPort) === wantPort && p.protocol === wantProto));
      if (port !== undefined && shown.length === 0) {
        throw new TsrunError('ESTATE', `no public port '${wantPort}/${wantProto}' published for ${found.record.name}`);
      }
      for (const p of shown) {
        const host = `${p.hostIp || '0.0.0.0'}:${p.hostPort}`;
        writeOut(port === undefined ? `${p.containerPort}/${p.protocol} -> ${host}\n` : `${host}\n`);
      }
    }));
}
