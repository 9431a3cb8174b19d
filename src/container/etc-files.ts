// The three files docker generates for every container and bind-mounts over the image's:
// /etc/hostname, /etc/hosts and /etc/resolv.conf.
import { readFileSync } from 'node:fs';

export function hostsFile(hostname: string, extra: Array<[ip: string, names: string]> = []): string {
  const lines = [
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    'fe00::0\tip6-localnet',
    'ff00::0\tip6-mcastprefix',
    'ff02::1\tip6-allnodes',
    'ff02::2\tip6-allrouters',
    ...extra.map(([ip, names]) => `${ip}\t${names}`),
  ];
  // Without an address of its own, the hostname still resolves (to loopback), as with docker --network none.
  if (extra.length === 0) lines.push(`127.0.1.1\t${hostname}`);
  return lines.join('\n') + '\n';
}

/**
 * The host's resolv.conf for the container. A loopback resolver (systemd-resolved's 127.0.0.53)
 * is unreachable from another network namespace, so it is replaced by the upstream servers
 * systemd-resolved lists, or by public ones when there is none, as docker does.
 */
export function resolvConf(hostFile = '/etc/resolv.conf', upstreamFile = '/run/systemd/resolve/resolv.conf'): string {
  let text: string;
  try {
    text = readFileSync(hostFile, 'utf8');
  } catch {
    text = '';
  }
  const isLoopback = (line: string) => /^\s*nameserver\s+(127\.|::1\b)/.test(line);
  if (!text.split('\n').some(isLoopback)) return text;
  let upstream = '';
  try {
    upstream = readFileSync(upstreamFile, 'utf8');
  } catch {
    // no systemd-resolved upstream list
  }
  const servers = upstream.split('\n').filter((l) => /^\s*nameserver\s/.test(l) && !isLoopback(l));
  const kept = text.split('\n').filter((l) => !isLoopback(l) && !/^\s*nameserver\s/.test(l));
  const fallback = ['nameserver 8.8.8.8', 'nameserver 8.8.4.4'];
  return [...kept.filter((l) => l.trim() !== ''), ...(servers.length > 0 ? servers : fallback)].join('\n') + '\n';
}
