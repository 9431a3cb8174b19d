// tsrun info [--format json|TEMPLATE]: docker info's Client/Server layout, from src/info.
import type { Command } from 'commander';
import type { SystemInfo } from '../src/info/index.js';
import { action, globalOptions } from './common.js';
import { renderTemplate } from './format.js';
import { writeOut } from './out.js';

export function register(program: Command): void {
  program
    .command('info')
    .description('Display system-wide information: kernel, cgroups, storage, registries, helper')
    .option('-f, --format <format>', 'json, or a template such as "{{.CgroupVersion}}" (a Go template, as docker\'s)')
    .action(action(async (flags: { format?: string }, cmd: Command) => {
      const g = globalOptions(cmd);
      const { gatherInfo } = await import('../src/info/index.js');
      const { humanSize } = await import('../src/image/listing.js');
      const info = await gatherInfo(g);
      if (flags.format === 'json') writeOut(JSON.stringify(pascalKeys(info)) + '\n');
      else if (flags.format) writeOut(renderTemplate(flags.format, pascalKeys(info) as Record<string, unknown>) + '\n');
      else writeOut(renderInfo(info, humanSize));
    }));
}

/** docker's JSON names every field in PascalCase, nested ones too (Storage.Root, not .root). */
export function pascalKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(pascalKeys);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k.charAt(0).toUpperCase() + k.slice(1), pascalKeys(v)]));
}

/** GiB with two decimals, as docker prints Total Memory. */
export function binarySize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let size = bytes;
  let i = 0;
  while (size >= 1024 && i < units.length - 1) {
    size /= 1024;
    i++;
  }
  return `${Math.round(size * 100) / 100}${units[i]}`;
}

/** The text docker users know: "Client:", "Server:", one-space indented "Key: value" lines. */
export function renderInfo(info: SystemInfo, humanSize: (n: number) => string): string {
  const out: string[] = [];
  const line = (indent: number, key: string, value?: string | number | boolean) =>
    out.push(`${' '.repeat(indent)}${key}:${value === undefined ? '' : ` ${String(value)}`}`);

  out.push('Client:');
  line(1, 'Version', info.ClientInfo.Version);
  line(1, 'Node.js', info.ClientInfo.NodeVersion);
  line(1, 'Debug Mode', info.ClientInfo.Debug);
  out.push('');
  // No daemon: "Server" is this machine, read directly by this process.
  out.push('Server: (no daemon: read from the store and the kernel by this command)');
  line(1, 'Containers', info.Containers);
  line(2, 'Running', info.ContainersRunning);
  line(2, 'Paused', info.ContainersPaused);
  line(2, 'Stopped', info.ContainersStopped);
  line(1, 'Images', info.Images);
  line(1, 'Server Version', info.ServerVersion);

  const s = info.Storage;
  line(1, 'Storage Driver', s.driver);
  line(2, 'Overlay In Kernel', s.overlayInKernel ? 'yes (/proc/filesystems)' : 'no (not in /proc/filesystems)');
  line(2, 'Backing Filesystem', s.backingFilesystem);
  line(2, 'Root Dir', s.rootExists ? s.root : `${s.root} (not created yet)`);
  line(2, 'Layers', `${s.layers.count} (${humanSize(s.layers.size)})`);
  line(2, 'Blobs', `${s.blobs.count} (${humanSize(s.blobs.size)})`);
  line(2, 'Container Upper Dirs', `${s.containers.count} (${humanSize(s.containers.size)})`);
  if (s.filesystem) line(2, 'Space', `${humanSize(s.filesystem.available)} available of ${humanSize(s.filesystem.size)}`);

  line(1, 'Cgroup Driver', info.CgroupDriver);
  if ('error' in info.Cgroups) {
    line(1, 'Cgroup Version', `unknown (${info.Cgroups.error})`);
  } else {
    const c = info.Cgroups;
    const mode = c.mode === 'hybrid' ? ' (hybrid: v1 controllers, plus a cgroup2 hierarchy)' : c.mode === 'v1' ? ' (v1 only)' : '';
    line(1, 'Cgroup Version', `${c.version}${mode}`);
    line(1, 'Cgroup Parent', c.parent);
    line(1, 'Cgroup Hierarchies');
    for (const h of c.hierarchies) {
      const list = h.controllers.length ? h.controllers.join(' ') : '(no controllers)';
      const sub = h.subtreeControl === undefined ? '' : `; for children: ${h.subtreeControl.length ? h.subtreeControl.join(' ') : '(none)'}`;
      line(2, `${h.kind} ${h.path}`, `${list}${sub}`);
    }
  }

  line(1, 'Runtime Helper', info.Helper.Error ? `not usable: ${info.Helper.Error}` : `tsrun-helper ${info.Helper.Version}`);
  if (info.Helper.Path) line(2, 'Path', info.Helper.Path);
  line(1, 'Firewall Backend', 'error' in info.Firewall ? `unavailable (${info.Firewall.error})` : `${info.Firewall.Backend} (${info.Firewall.Version})`);
  line(1, 'Kernel Version', info.KernelVersion);
  line(1, 'Operating System', info.OperatingSystem);
  line(1, 'OSType', info.OSType);
  line(1, 'Architecture', info.Architecture);
  line(1, 'CPUs', info.NCPU);
  line(1, 'Total Memory', binarySize(info.MemTotal));
  line(1, 'Name', info.Name);

  const r = info.Registries;
  line(1, 'Insecure Registries');
  for (const d of r.insecure) out.push(`  ${d.registry} (${d.source === 'loopback' ? 'loopback, always' : d.source})`);
  line(1, 'Registry Config', `${r.configFile}${r.configExists ? '' : ' (not found)'}`);
  const t = r.timeout;
  const from = t?.source === 'env' ? 'TSRUN_REGISTRY_TIMEOUT' : t?.source === 'config' ? r.configFile : 'default';
  line(1, 'Registry Timeout', t ? `${t.seconds}s (${from})` : 'not usable (see the warning below)');
  line(1, 'Registry Certificates');
  for (const c of r.certs) out.push(`  ${c.dir}: ${c.registries.length ? c.registries.join(', ') : '(none)'}`);

  if (info.Warnings.length) out.push('');
  for (const w of info.Warnings) out.push(`WARNING: ${w}`);
  return out.join('\n') + '\n';
}
