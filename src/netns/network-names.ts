// The default network's names, apart from the code that creates networks so that light
// readers (peers.ts) need not load it.
export const DEFAULT_NETWORK = 'bridge';
export const DEFAULT_BRIDGE = 'tsrun0';
// Clear of docker's 172.17.0.0/16, podman's 10.88.0.0/16 and podman's user networks (10.89.x).
export const DEFAULT_SUBNET = '10.99.0.0/24';

/** The default network's subnet: TSRUN_BRIDGE_SUBNET, or DEFAULT_SUBNET. */
export function defaultSubnet(): string {
  return process.env.TSRUN_BRIDGE_SUBNET || DEFAULT_SUBNET;
}
