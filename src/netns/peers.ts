// Who else is on a network: read from the endpoint records alone, so writing a container's
// /etc/hosts needs none of the machinery that creates links and rules.
import { DEFAULT_NETWORK } from './network-names.js';
import { readContainerEndpoints, readEndpoints, type Endpoint } from './store.js';

export interface Peer {
  id: string;
  name: string;
  aliases: string[];
  ip: string;
}

/** The containers attached to a network. */
export function networkPeers(stateDir: string, network: string): Peer[] {
  return readEndpoints(stateDir)
    .filter((e) => e.network === network)
    .map(({ id, name, aliases, ip }) => ({ id, name, aliases, ip }));
}

/**
 * /etc/hosts lines naming the other containers on this container's networks (the one it was
 * started on, and those `network connect` added). Like docker, the default network gives no
 * names (only user-defined networks do).
 */
export function hostsEntries(stateDir: string, id: string, own: Endpoint[] = readContainerEndpoints(stateDir, id)): Array<[ip: string, names: string]> {
  const named = new Set(own.map((e) => e.network).filter((n) => n !== DEFAULT_NETWORK));
  if (named.size === 0) return [];
  return readEndpoints(stateDir)
    .filter((p) => p.id !== id && named.has(p.network))
    .map((p) => [p.ip, [p.name, ...p.aliases].join(' ')]);
}
