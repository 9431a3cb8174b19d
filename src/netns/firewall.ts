// Applying firewall-rules.ts with iptables: one iptables-save to see what is there, one
// iptables-restore --noflush to change it (atomically per table, and without touching
// anyone else's rules). Works with either backend behind the host's `iptables`
// (iptables-nft or iptables-legacy); firewallBackend() says which, for `tsrun info`.
import { TsrunError } from '../errors.js';
import { runCommand } from './exec.js';
import {
  addLines,
  deleteTaggedLines,
  endpointTag,
  parseSave,
  portRules,
  restoreScript,
  setupLines,
  teardownLines,
  type SavedState,
  type Table,
} from './firewall-rules.js';
import type { Endpoint, NetworkConfig } from './store.js';

async function save(): Promise<SavedState> {
  const { stdout } = await runCommand(['iptables-save'], '', 'read the firewall rules (iptables-save)');
  return parseSave(stdout);
}

async function restore(lines: Record<Table, string[]>, doing: string): Promise<void> {
  const script = restoreScript(lines);
  if (script === '') return;
  // -w: wait for the xtables lock instead of failing when another iptables runs (legacy backend).
  await runCommand(['iptables-restore', '--noflush', '-w'], script, `${doing} (iptables-restore --noflush)`);
}

/** Give the network its rules (creating tsrun's chains if this is the first network). */
export async function setupNetworkFirewall(net: Pick<NetworkConfig, 'bridge' | 'subnet'>): Promise<void> {
  await restore(setupLines(await save(), net), `add the firewall rules of bridge ${net.bridge}`);
}

/** Remove the network's rules and its containers'; the chains too when no other network uses them. */
export async function teardownNetworkFirewall(bridge: string): Promise<void> {
  await restore(teardownLines(await save(), bridge), `remove the firewall rules of bridge ${bridge}`);
}

/** Publish the endpoint's ports: one iptables-restore, appending to existing chains. */
export async function addPortRules(ep: Endpoint): Promise<void> {
  if (ep.ports.length === 0) return;
  await restore(addLines(portRules(ep), '-A'), `publish ports of container ${ep.id.slice(0, 12)}`);
}

/**
 * Unpublish the endpoint's ports. Fast path: delete exactly the rules addPortRules made
 * (no iptables-save). If any is missing (a crash half-way, a flushed firewall), the whole
 * restore fails unchanged, and the rules are found by their tag instead.
 */
export async function removePortRules(ep: Endpoint): Promise<void> {
  if (ep.ports.length === 0) return;
  try {
    await restore(addLines(portRules(ep), '-D'), `unpublish ports of container ${ep.id.slice(0, 12)}`);
  } catch {
    await removeTagged(endpointTag(ep.bridge, ep.id));
  }
}

export async function removeTagged(tag: string): Promise<void> {
  await restore(deleteTaggedLines(await save(), tag), `remove the firewall rules tagged ${tag}`);
}

export interface FirewallInfo {
  /** "iptables-nft" (nf_tables kernel API) or "iptables-legacy" (x_tables). */
  backend: 'iptables-nft' | 'iptables-legacy';
  version: string;
}

/** Which iptables the host's `iptables` is, e.g. { backend: 'iptables-nft', version: '1.8.9' }. */
export async function firewallBackend(): Promise<FirewallInfo> {
  const { stdout } = await runCommand(['iptables', '-V'], '', 'find the iptables version (iptables -V)');
  const m = /v(\S+)(?:\s+\((\w+)\))?/.exec(stdout);
  if (!m) throw new TsrunError('ENETWORK', `unexpected output from iptables -V: ${stdout.trim()}`);
  // Before 1.8 there was only the legacy backend, and `iptables -V` printed no "(legacy)".
  return { backend: m[2] === 'nf_tables' ? 'iptables-nft' : 'iptables-legacy', version: m[1]! };
}
