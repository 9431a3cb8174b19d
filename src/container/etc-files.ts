// /etc/hosts as docker generates it for every container (resolv.conf: src/netns/dns.ts).

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
