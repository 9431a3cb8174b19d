// The iptables rules of tsrun's networks, as data (pure functions, unit-tested without root).
//
// tsrun's own chains, each entered by one jump from a built-in chain:
//
//   filter FORWARD ─► TSRUN-FORWARD ─► TSRUN-ISOLATION-1 ─► TSRUN-ISOLATION-2   networks apart
//                                   ─► TSRUN-PORTS            published ports may come in
//                                      -o br ESTABLISHED accept; -i br accept; -o br DROP
//   filter INPUT   ─► TSRUN-INPUT     no packets to the host's 127.0.0.0/8 from a bridge
//   nat PREROUTING, OUTPUT (to a local address) ─► TSRUN-DNAT   published ports → container
//   nat POSTROUTING ─► TSRUN-POSTROUTING   masquerade outbound, 127.0.0.1 → container, hairpin
//
// Every rule carries a comment: "tsrun" on the skeleton, "tsrun:<bridge>" on a network's
// rules, "tsrun:<bridge>:<id12>" on a container's. Removal finds rules by that tag in
// iptables-save's output, so it needs no memory of what was added (it works after a crash),
// and it never touches a rule tsrun did not make. Bridges are named uniquely on the host,
// so several state dirs (tests, a second --root) share the chains without confusion.
import type { Endpoint, NetworkConfig } from './store.js';

export type Table = 'filter' | 'nat';
export const TABLES: Table[] = ['filter', 'nat'];

export const CHAINS: Record<Table, string[]> = {
  filter: ['TSRUN-FORWARD', 'TSRUN-ISOLATION-1', 'TSRUN-ISOLATION-2', 'TSRUN-PORTS', 'TSRUN-INPUT'],
  nat: ['TSRUN-DNAT', 'TSRUN-POSTROUTING'],
};

const SKELETON = '-m comment --comment tsrun';

/** Jumps from built-in chains, inserted first so that tsrun's rules see packets before a DROP policy does. */
export const JUMPS: Record<Table, Array<{ from: string; to: string; match: string }>> = {
  filter: [
    { from: 'FORWARD', to: 'TSRUN-FORWARD', match: '' },
    { from: 'INPUT', to: 'TSRUN-INPUT', match: '' },
  ],
  nat: [
    // Only packets addressed to one of the host's own addresses (127.0.0.1 included) are published ports.
    { from: 'PREROUTING', to: 'TSRUN-DNAT', match: '-m addrtype --dst-type LOCAL ' },
    { from: 'OUTPUT', to: 'TSRUN-DNAT', match: '-m addrtype --dst-type LOCAL ' },
    { from: 'POSTROUTING', to: 'TSRUN-POSTROUTING', match: '' },
  ],
};

/** The first rules of TSRUN-FORWARD, in this order, before any network's own. */
export const FORWARD_HEAD = ['TSRUN-ISOLATION-1', 'TSRUN-PORTS'];

export const networkTag = (bridge: string) => `tsrun:${bridge}`;
export const endpointTag = (bridge: string, id: string) => `tsrun:${bridge}:${id.slice(0, 12)}`;
const comment = (tag: string) => `-m comment --comment ${tag}`;

/** A network's rules ("CHAIN spec"), appended when its bridge is created. */
export function networkRules(net: Pick<NetworkConfig, 'bridge' | 'subnet'>): Record<Table, string[]> {
  const br = net.bridge;
  const c = comment(networkTag(br));
  return {
    filter: [
      // Leaving this bridge for another tsrun bridge: dropped (docker's DOCKER-ISOLATION-STAGE-1/2).
      `TSRUN-ISOLATION-1 -i ${br} ! -o ${br} ${c} -j TSRUN-ISOLATION-2`,
      `TSRUN-ISOLATION-2 -o ${br} ${c} -j DROP`,
      // Replies to the containers' own connections come back in.
      `TSRUN-FORWARD -o ${br} -m conntrack --ctstate RELATED,ESTABLISHED ${c} -j ACCEPT`,
      // Containers may talk to each other and out.
      `TSRUN-FORWARD -i ${br} ${c} -j ACCEPT`,
      // Nothing else comes in: only published ports (TSRUN-PORTS, above) reach a container.
      `TSRUN-FORWARD -o ${br} ${c} -j DROP`,
      // route_localnet=1 (needed to publish on 127.0.0.1) would let a container send to the host's
      // 127.0.0.1 services through the bridge (CVE-2020-8558); replies to the host's own connections are fine.
      `TSRUN-INPUT -i ${br} -d 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED ${c} -j DROP`,
    ],
    nat: [
      // Outbound: containers' private addresses leave with the host's address on the way out.
      `TSRUN-POSTROUTING -s ${net.subnet} ! -o ${br} ${c} -j MASQUERADE`,
      // Host → 127.0.0.1:port → DNAT to a container: the source 127.0.0.1 would make the container
      // answer itself, so it becomes the gateway address.
      `TSRUN-POSTROUTING -s 127.0.0.0/8 -o ${br} ${c} -j MASQUERADE`,
      // Hairpin: a container reaching a published port through a host address, DNATed back into
      // this bridge. Without this the server would answer the client directly, from an address
      // the client never called.
      `TSRUN-POSTROUTING -s ${net.subnet} -o ${br} -m conntrack --ctstate DNAT ${c} -j MASQUERADE`,
    ],
  };
}

/** A container's published ports ("CHAIN spec"). */
export function portRules(ep: Pick<Endpoint, 'id' | 'bridge' | 'ip' | 'ports'>): Record<Table, string[]> {
  const c = comment(endpointTag(ep.bridge, ep.id));
  const nat: string[] = [];
  const filter: string[] = [];
  for (const p of ep.ports) {
    const dst = p.hostIp === '' ? '' : `-d ${p.hostIp}/32 `;
    nat.push(`TSRUN-DNAT ${dst}-p ${p.protocol} -m ${p.protocol} --dport ${p.hostPort} ${c} -j DNAT --to-destination ${ep.ip}:${p.containerPort}`);
    filter.push(`TSRUN-PORTS -d ${ep.ip}/32 -o ${ep.bridge} -p ${p.protocol} -m ${p.protocol} --dport ${p.containerPort} ${c} -j ACCEPT`);
  }
  return { filter, nat };
}

// ---- iptables-save output ----------------------------------------------------------------

export interface SavedRule {
  table: Table;
  chain: string;
  /** The rule as printed, without "-A CHAIN ". */
  spec: string;
  /** The value of its comment, if any ("tsrun:br0"). */
  tag: string | undefined;
  /** The chain it jumps to (-j), if any. */
  target: string | undefined;
}

export interface SavedState {
  chains: Record<Table, Set<string>>;
  rules: SavedRule[];
}

export function parseSave(text: string): SavedState {
  const state: SavedState = { chains: { filter: new Set(), nat: new Set() }, rules: [] };
  let table: Table | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) {
      const t = line.slice(1).trim();
      table = t === 'filter' || t === 'nat' ? t : undefined;
    } else if (table === undefined) {
      continue;
    } else if (line.startsWith(':')) {
      state.chains[table].add(line.slice(1).split(' ')[0]!);
    } else if (line.startsWith('-A ')) {
      const m = /^-A (\S+) (.*)$/.exec(line);
      if (!m) continue;
      const spec = m[2]!;
      const tag = /--comment (?:"([^"]*)"|(\S+))/.exec(spec);
      state.rules.push({ table, chain: m[1]!, spec, tag: tag ? (tag[1] ?? tag[2]) : undefined, target: /(?:^| )-j (\S+)/.exec(spec)?.[1] });
    }
  }
  return state;
}

/** Does this tag belong to the bridge (its network rules and its containers' rules)? */
export function isBridgeTag(tag: string | undefined, bridge: string): boolean {
  return tag === networkTag(bridge) || (tag?.startsWith(`${networkTag(bridge)}:`) ?? false);
}

/** iptables-restore input: per table, "*table", the lines, "COMMIT"; tables without lines are left out. */
export function restoreScript(lines: Record<Table, string[]>): string {
  return TABLES.filter((t) => lines[t].length > 0)
    .map((t) => [`*${t}`, ...lines[t], 'COMMIT'].join('\n') + '\n')
    .join('');
}

const emptyLines = (): Record<Table, string[]> => ({ filter: [], nat: [] });

/**
 * Restore lines that give the bridge its network rules: create what is missing of the skeleton
 * (chains, the jumps into them, TSRUN-FORWARD's head), delete the bridge's rules left from an
 * earlier run, append them afresh. Idempotent.
 */
export function setupLines(saved: SavedState, net: Pick<NetworkConfig, 'bridge' | 'subnet'>): Record<Table, string[]> {
  const out = emptyLines();
  const rules = networkRules(net);
  for (const table of TABLES) {
    // ":CHAIN - [0:0]" flushes a chain that exists: declare only the missing ones.
    for (const chain of CHAINS[table]) if (!saved.chains[table].has(chain)) out[table].push(`:${chain} - [0:0]`);
    const has = (chain: string, target: string) => saved.rules.some((r) => r.table === table && r.chain === chain && r.target === target);
    for (const j of JUMPS[table]) {
      if (!has(j.from, j.to)) out[table].push(`-I ${j.from} 1 ${j.match}${SKELETON} -j ${j.to}`);
    }
    if (table === 'filter') {
      FORWARD_HEAD.forEach((to, i) => {
        if (!has('TSRUN-FORWARD', to)) out.filter.push(`-I TSRUN-FORWARD ${i + 1} ${SKELETON} -j ${to}`);
      });
    }
    for (const r of saved.rules) if (r.table === table && r.tag === networkTag(net.bridge)) out[table].push(`-D ${r.chain} ${r.spec}`);
    for (const rule of rules[table]) out[table].push(`-A ${rule}`);
  }
  return out;
}

/**
 * Restore lines that remove every rule of the bridge (its containers' too); and, when no
 * other tsrun network has rules left, the jumps and chains themselves.
 */
export function teardownLines(saved: SavedState, bridge: string): Record<Table, string[]> {
  const out = emptyLines();
  const ours = saved.rules.filter((r) => isBridgeTag(r.tag, bridge));
  const othersLeft = saved.rules.some((r) => r.tag?.startsWith('tsrun:') && !isBridgeTag(r.tag, bridge));
  for (const table of TABLES) {
    for (const r of ours) if (r.table === table) out[table].push(`-D ${r.chain} ${r.spec}`);
    if (othersLeft) continue;
    const mine = CHAINS[table].filter((c) => saved.chains[table].has(c));
    for (const r of saved.rules) {
      if (r.table === table && !CHAINS[table].includes(r.chain) && r.target !== undefined && CHAINS[table].includes(r.target)) {
        out[table].push(`-D ${r.chain} ${r.spec}`);
      }
    }
    for (const c of mine) out[table].push(`-F ${c}`);
    for (const c of mine) out[table].push(`-X ${c}`);
  }
  return out;
}

/** Restore lines that remove the rules with exactly this tag (a container's ports). */
export function deleteTaggedLines(saved: SavedState, tag: string): Record<Table, string[]> {
  const out = emptyLines();
  for (const r of saved.rules) if (r.tag === tag) out[r.table].push(`-D ${r.chain} ${r.spec}`);
  return out;
}

export function addLines(rules: Record<Table, string[]>, op: '-A' | '-D'): Record<Table, string[]> {
  return { filter: rules.filter.map((r) => `${op} ${r}`), nat: rules.nat.map((r) => `${op} ${r}`) };
}
