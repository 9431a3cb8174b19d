// Who else is on a network: read from the endpoint records alone, so writing a container's
// /etc/hosts needs none of the machinery that creates links and rules.
import { DEFAULT_NETWORK } from './network-names.js';
import { endpointPath, readEndpoints, readJson, type Endpoint } from './store.js';

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
 * /etc/hosts lines naming the other containers on this container's network. Like docker, the
 * default network gives no names (only user-defined networks do).
 */
export function hostsEntries(stateDir: string, id: string): Array<[ip: string, names: string]> {
  const self = readJson<Endpoint>(endpointPath(stateDir, id));
  if (!self || self.network === DEFAULT_NETWORK) return [];
  return networkPeers(stateDir, self.network)
    .filter((p) => p.id !== id)
    .map((p) => [p.ip, [p.name, ...p.aliases].join(' ')]);
}
