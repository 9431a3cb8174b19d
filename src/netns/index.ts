// The network layer's public API (DESIGN.md: src/netns/). The lead's `run` calls attach()
// after the helper reports the container's pid and before it lets the container exec.
export { attach, detach, recover, reloadFirewall, networkPeers, hostsEntries, hostVethName, netnsName, NETNS_DIR } from './endpoint.js';
export type { AttachRequest, Attachment, Peer } from './endpoint.js';
export { connect, commitConnect, disconnect, releaseStray, renameEndpoints } from './connect.js';
export type { ConnectRequest } from './connect.js';
export { createNetwork, removeNetwork, pruneNetworks, listNetworks, inspectNetwork, networkJson, findNetwork, DEFAULT_NETWORK, DEFAULT_BRIDGE, DEFAULT_SUBNET } from './network.js';
export type { CreateNetworkOptions, NetworkInspect } from './network.js';
export type { NetworkConfig, Endpoint } from './store.js';
export { connectKilled, endpointId, readContainerEndpoints } from './store.js';
export { parsePublish, formatPort } from './publish.js';
export type { PortMapping, Protocol } from './publish.js';
export { resolvConf, hostResolvConf, parseAddHost, addHostEntries, FALLBACK_NAMESERVERS } from './dns.js';
export type { DnsOptions, AddHost } from './dns.js';
export { firewallBackend } from './firewall.js';
export type { FirewallInfo } from './firewall.js';
export { observeCommands } from './exec.js';
export type { CommandObserver } from './exec.js';
