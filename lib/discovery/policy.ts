/**
 * Auto-dial policy for peers found by mDNS (PROTOCOL-0.9 §12, `bridge.py`):
 * default deny — only names in the allow-list, or anyone with open discovery —
 * and only the side with the lexicographically smaller agent name dials; the
 * other side just remembers the address and waits to be dialed.
 */

/** What the policy needs to know about a sighting. */
export interface DialCandidate {
  name: string;
  /** Set when the peer said goodbye (TTL 0); such a peer is not dialed until seen again. */
  departedAt?: number | null;
}

/** The local side of the policy. */
export interface AutoDialPolicy {
  /** Names allowed to be dialed (`--allowed-peers`). */
  allowedPeers: ReadonlySet<string>;
  /** `--open-discovery`: any discovered name may be dialed. */
  openDiscovery: boolean;
  /** Our own agent name. */
  localName: string;
}

/** Outcome of the policy: dial now, remember the address (the peer dials us), or do nothing. */
export type AutoDialDecision =
  | { action: "dial" }
  | { action: "remember"; reason: "peer_dials" | "departed" }
  | { action: "deny"; reason: "self" | "not_allowed" };

/**
 * Compare two names by Unicode code point, as Python compares `str` (JavaScript's
 * `<` compares UTF-16 units, which orders astral characters differently).
 */
export function compareNames(a: string, b: string): number {
  const x = Array.from(a, (c) => c.codePointAt(0)!);
  const y = Array.from(b, (c) => c.codePointAt(0)!);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return x[i] < y[i] ? -1 : 1;
  return x.length === y.length ? 0 : x.length < y.length ? -1 : 1;
}

/** True when we are the side that dials `peerName` (our name is the smaller one). */
export function weDial(localName: string, peerName: string): boolean {
  return compareNames(localName, peerName) < 0;
}

/** Decide what to do with a discovered peer. */
export function autoDialDecision(c: DialCandidate, p: AutoDialPolicy): AutoDialDecision {
  if (c.name === p.localName) return { action: "deny", reason: "self" };
  if (!p.openDiscovery && !p.allowedPeers.has(c.name)) {
    return { action: "deny", reason: "not_allowed" };
  }
  if (!weDial(p.localName, c.name)) return { action: "remember", reason: "peer_dials" };
  if (c.departedAt != null) return { action: "remember", reason: "departed" };
  return { action: "dial" };
}

/** Whether to dial a discovered peer now (default deny; the smaller name dials). */
export function shouldAutoDial(c: DialCandidate, p: AutoDialPolicy): boolean {
  return autoDialDecision(c, p).action === "dial";
}
