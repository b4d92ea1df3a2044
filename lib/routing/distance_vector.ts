/**
 * Distance-vector routing (PROTOCOL-0.9 §8.1, §13, §18.6), sans-I/O.
 *
 * The table keeps the reference's rules (`mesh.py` `RoutingTable`): a route costs the announced
 * cost + 1; a cost ≤ 0 or ≥ 16 (infinity) is a withdrawal, honoured only from the neighbour the
 * route was learned from; the same learner always overwrites (the cost may rise); another
 * neighbour wins only with a strictly lower cost; routes expire 90 s after their last refresh.
 * Announcements are the reference's COMPACT `{"origin","routes","sequence_number"}` with split
 * horizon and poisoned reverse (routes learned from the recipient at cost 16, the route to the
 * recipient itself omitted), one sequence counter across all neighbours.
 *
 * Ours, on top (all wire-compatible):
 * - triggered updates: any change makes an announcement due to every neighbour at once, rate
 *   limited to one per `triggeredMinIntervalS` (1 s) per neighbour; a new link gets our table
 *   at once; the periodic 30 s announcement still runs;
 * - explicit withdrawals: a lost route is announced at cost 16 for `withdrawHoldS` (the reference
 *   just omits it, so its neighbours keep it until it expires);
 * - a route learned from a neighbour and missing from that neighbour's next full announcement is
 *   withdrawn (the reference only lets it expire);
 * - when a neighbour newly withdraws a destination we still reach another way, it gets our
 *   table at once, so it learns the alternative in one round;
 * - cost 0 is accepted only for the announcing neighbour itself; `origin` must be the sender;
 *   a `sequence_number` not above the last one on this link is ignored; at most 1024 entries per
 *   announcement and `maxRoutes` destinations; optional filters (trusted peers only, no routes
 *   to revoked nodes);
 * - partition suspicion (`MESH_PARTITION_SUSPECTED`) when a lost destination stays unreachable
 *   for 2 × TTL since it was last heard of (the reference's check can never fire: its routes
 *   expire first).
 *
 * Time: wall-clock seconds (`Clock.now`) for route ages (they are persisted in routes.json),
 * monotonic milliseconds for announcement scheduling.
 */
import type { Clock } from "../clock.ts";
import { isNodeId } from "../identity/node_id.ts";
import { compactJson } from "../json/canonical.ts";
import { JsonError, parseJson } from "../json/parse.ts";
import { PyFloat } from "../json/py_float.ts";
import { type MeshEvent, meshEvent } from "./events.ts";

/** RIP-style infinity: a cost ≥ this (or ≤ 0) withdraws a route. */
export const INFINITY_COST = 16;
/** Default `--route-ttl`: a route expires this long after its last refresh (seconds). */
export const DEFAULT_ROUTE_TTL_S = 90;
/** Default `--route-announce-interval` (seconds). */
export const DEFAULT_ANNOUNCE_INTERVAL_S = 30;
/** Default minimum spacing of two announcements to the same neighbour (seconds). */
export const DEFAULT_TRIGGERED_MIN_INTERVAL_S = 1;
/** How often the reference expires routes and persists the table (seconds). */
export const ROUTE_CLEANUP_INTERVAL_S = 60;
/** Largest accepted ROUTE_ANNOUNCE payload (bytes). */
export const MAX_ANNOUNCE_BYTES = 1_048_576;
/** At most this many entries of one announcement are processed, and we never send more. */
export const MAX_ANNOUNCE_ENTRIES = 1024;
/** Default bound on the number of destinations in the table. */
export const DEFAULT_MAX_ROUTES = 1000;
/** `MESH_PARTITION_SUSPECTED` is repeated at most this often per destination (seconds). */
export const PARTITION_REPEAT_S = 300;
/** A lost destination is forgotten (no more partition reports) after this long (seconds). */
export const PARTITION_FORGET_S = 3600;

/** One installed route. */
export interface RouteEntry {
  destination: string;
  /** Direct neighbour to forward to (always equal to `learnedFrom`, as in the reference). */
  nextHop: string;
  /** Hop count, 1..15. */
  cost: number;
  /** Neighbour whose announcement installed the route. */
  learnedFrom: string;
  /** Wall-clock seconds of the last refresh. */
  updated: number;
}

/** One `{"destination","cost"}` entry of an announcement. */
export interface RouteAnnouncementEntry {
  destination: string;
  cost: number;
}

/** A ROUTE_ANNOUNCE payload. */
export interface RouteAnnouncement {
  origin: string;
  routes: RouteAnnouncementEntry[];
  sequenceNumber: number;
}

/** What a mutation did. */
export interface RouteUpdate {
  /** The set of usable routes changed (triggered announcements are now due). */
  changed: boolean;
  /** Audit events to record, in order. */
  events: MeshEvent[];
}

/** Why a whole announcement was refused. */
export type AnnounceRejection =
  | "not-a-neighbor"
  | "untrusted-peer"
  | "too-large"
  | "malformed"
  | "origin-mismatch"
  | "stale-sequence";

/** Result of `onAnnounce`. */
export interface AnnounceResult extends RouteUpdate {
  accepted: boolean;
  reason?: AnnounceRejection;
  detail?: string;
  /** Routes installed or re-costed. */
  learned: number;
  /** Routes removed (explicit, implicit or poisoned withdrawals). */
  withdrawn: number;
  /** Entries skipped (invalid, filtered, table full, cost 0 for another node, …). */
  ignored: number;
}

/** A parsed announcement (`parseRouteAnnounce`). */
export interface ParsedRouteAnnounce {
  /** `origin` when it is a string. */
  origin?: string;
  /** `sequence_number` when it is a safe integer. */
  sequenceNumber?: number;
  /** Valid entries: a non-empty string destination and a cost Python's `int()` accepts. */
  entries: RouteAnnouncementEntry[];
  /** Entries dropped by the parser (not an object, bad destination or cost). */
  skipped: number;
  /** The list held more than the entry limit; the rest was not looked at. */
  truncated: boolean;
}

/** A ROUTE_ANNOUNCE that cannot be used at all. */
export class RouteAnnounceError extends Error {
  constructor(readonly reason: "too-large" | "malformed", message: string) {
    super(message);
    this.name = "RouteAnnounceError";
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** The COMPACT payload bytes, keys in the reference's order (`origin`, `routes`, `sequence_number`). */
export function encodeRouteAnnounce(a: RouteAnnouncement): Uint8Array {
  return encoder.encode(compactJson({
    origin: a.origin,
    routes: a.routes.map((r) => ({ destination: r.destination, cost: r.cost })),
    sequence_number: a.sequenceNumber,
  }));
}

const PY_WS = "[\\t\\n\\x0b\\x0c\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029" +
  "\\u202f\\u205f\\u3000]*";
const PY_INT_TEXT = new RegExp(`^${PY_WS}([+-]?)([0-9](?:_?[0-9])*)${PY_WS}$`);

/**
 * Python `int(x)` for a JSON value, as the reference applies it to `cost`: ints as they are,
 * floats truncated, booleans 1/0, decimal strings parsed; null when Python would raise.
 * Integers beyond 2^53 are clamped (only their sign matters for a cost).
 */
export function pyIntCost(v: unknown): number | null {
  if (typeof v === "boolean") return v ? 1 : 0;
  if (typeof v === "bigint") return v > 0n ? Number.MAX_SAFE_INTEGER : -Number.MAX_SAFE_INTEGER;
  if (v instanceof PyFloat) v = v.value;
  if (typeof v === "number") {
    if (!Number.isFinite(v)) return null;
    const t = Math.trunc(v);
    return Math.max(-Number.MAX_SAFE_INTEGER, Math.min(Number.MAX_SAFE_INTEGER, t)) + 0;
  }
  if (typeof v === "string") {
    const m = PY_INT_TEXT.exec(v);
    if (!m) return null;
    const n = Math.min(Number(m[2].replaceAll("_", "")), Number.MAX_SAFE_INTEGER);
    return m[1] === "-" ? -n : n;
  }
  return null;
}

/**
 * Parse a received ROUTE_ANNOUNCE payload: ≤ 1 MiB, UTF-8, depth-guarded JSON object whose
 * `routes` (default `[]`) is a list. Entries that are not objects, lack a non-empty string
 * `destination`, or whose `cost` (default 16) Python's `int()` refuses are skipped, as the
 * reference does. Throws RouteAnnounceError.
 */
export function parseRouteAnnounce(
  payload: Uint8Array,
  maxEntries = MAX_ANNOUNCE_ENTRIES,
): ParsedRouteAnnounce {
  if (payload.length > MAX_ANNOUNCE_BYTES) {
    throw new RouteAnnounceError("too-large", `ROUTE_ANNOUNCE of ${payload.length} bytes`);
  }
  let data: unknown;
  try {
    data = parseJson(decoder.decode(payload), { preserveNumbers: true });
  } catch (e) {
    const why = e instanceof JsonError ? e.message : "not UTF-8";
    throw new RouteAnnounceError("malformed", `ROUTE_ANNOUNCE: ${why}`);
  }
  if (data === null || typeof data !== "object" || Array.isArray(data) || data instanceof PyFloat) {
    throw new RouteAnnounceError("malformed", "ROUTE_ANNOUNCE is not a JSON object");
  }
  const obj = data as Record<string, unknown>;
  const routes = obj.routes ?? [];
  if (!Array.isArray(routes)) throw new RouteAnnounceError("malformed", "routes is not a list");
  const out: ParsedRouteAnnounce = {
    entries: [],
    skipped: 0,
    truncated: routes.length > maxEntries,
  };
  if (typeof obj.origin === "string") out.origin = obj.origin;
  if (typeof obj.sequence_number === "number" && Number.isSafeInteger(obj.sequence_number)) {
    out.sequenceNumber = obj.sequence_number;
  }
  for (const e of routes.slice(0, maxEntries)) {
    if (e === null || typeof e !== "object" || Array.isArray(e) || e instanceof PyFloat) {
      out.skipped++;
      continue;
    }
    const entry = e as Record<string, unknown>;
    const destination = entry.destination;
    const cost = pyIntCost(entry.cost === undefined ? INFINITY_COST : entry.cost);
    if (typeof destination !== "string" || destination === "" || cost === null) {
      out.skipped++;
      continue;
    }
    out.entries.push({ destination, cost });
  }
  return out;
}

/** Options of a routing table. */
export interface RoutingTableOptions {
  /** This node's id. */
  selfId: string;
  clock: Clock;
  /** Route lifetime without refresh (default 90 s). */
  routeTtlS?: number;
  /** Periodic announcement interval (default 30 s). */
  announceIntervalS?: number;
  /** Minimum spacing of announcements to one neighbour (default 1 s). */
  triggeredMinIntervalS?: number;
  /** How long a lost route is still announced at cost 16 (default: the route TTL). */
  withdrawHoldS?: number;
  /** Most destinations kept (default 1000). */
  maxRoutes?: number;
  /** Require destinations to be node ids (32 lowercase hex; default true). */
  validateIds?: boolean;
  /** Learn routes only from peers this accepts (§18.6: trusted peers). Default: all. */
  acceptFrom?: (peerId: string) => boolean;
  /** Learn a route only when this accepts it (§18.6: e.g. no routes to revoked nodes). */
  learnFilter?: (destination: string, fromPeer: string) => boolean;
}

interface LinkState {
  /** Last `sequence_number` received on this link. */
  lastSeq?: number;
  /** Last cost this neighbour advertised per destination (raw announced cost). */
  advertised: Map<string, number>;
  /** Monotonic ms of our last announcement to it. */
  lastSentMs?: number;
}

interface LostDestination {
  /** Wall seconds when the destination was last known reachable. */
  lastSeen: number;
  lastReported?: number;
}

/** A distance-vector routing table for one node. */
export class RoutingTable {
  readonly selfId: string;
  readonly routeTtlS: number;
  readonly announceIntervalS: number;
  readonly triggeredMinIntervalS: number;
  readonly withdrawHoldS: number;
  readonly maxRoutes: number;

  readonly #clock: Clock;
  readonly #validateIds: boolean;
  readonly #acceptFrom?: (peerId: string) => boolean;
  readonly #learnFilter?: (destination: string, fromPeer: string) => boolean;
  /** destination → route, in the reference's dict order. */
  readonly #routes = new Map<string, RouteEntry>();
  /** destination → wall seconds of its withdrawal (announced at 16 until the hold ends). */
  readonly #holds = new Map<string, number>();
  readonly #lost = new Map<string, LostDestination>();
  readonly #links = new Map<string, LinkState>();
  readonly #dirty = new Set<string>();
  #sequence = 0;
  #persistDirty = false;

  constructor(opts: RoutingTableOptions) {
    this.selfId = opts.selfId;
    this.#clock = opts.clock;
    this.routeTtlS = opts.routeTtlS ?? DEFAULT_ROUTE_TTL_S;
    this.announceIntervalS = Math.max(1, opts.announceIntervalS ?? DEFAULT_ANNOUNCE_INTERVAL_S);
    this.triggeredMinIntervalS = opts.triggeredMinIntervalS ?? DEFAULT_TRIGGERED_MIN_INTERVAL_S;
    this.withdrawHoldS = opts.withdrawHoldS ?? this.routeTtlS;
    this.maxRoutes = opts.maxRoutes ?? DEFAULT_MAX_ROUTES;
    this.#validateIds = opts.validateIds ?? true;
    this.#acceptFrom = opts.acceptFrom;
    this.#learnFilter = opts.learnFilter;
    if (!(this.routeTtlS > 0) || !(this.triggeredMinIntervalS >= 0) || !(this.maxRoutes > 0)) {
      throw new RangeError("routeTtlS and maxRoutes must be positive");
    }
  }

  // -------------------------------------------------------------------------------------------
  // Links

  /** A direct, mesh-capable session with `peerId` is up: it gets our table at once. */
  linkUp(peerId: string): RouteUpdate {
    const wasLinked = this.#links.has(peerId);
    this.#links.set(peerId, { advertised: new Map() });
    this.#dirty.add(peerId);
    // Routes loaded from disk through this neighbour become usable (and announceable) now.
    let changed = false;
    if (!wasLinked) {
      for (const r of this.#routes.values()) {
        if (r.learnedFrom === peerId) changed = true;
      }
      if (changed) this.#markAllDirty();
    }
    return { changed, events: [] };
  }

  /** The session with `peerId` is gone: every route through it is withdrawn. */
  linkDown(peerId: string): RouteUpdate {
    this.#links.delete(peerId);
    this.#dirty.delete(peerId);
    const events: MeshEvent[] = [];
    const now = this.#clock.now();
    for (const r of [...this.#routes.values()]) {
      if (r.learnedFrom === peerId) this.#withdraw(r, now, "link-down", events);
    }
    if (events.length) this.#markAllDirty();
    return { changed: events.length > 0, events };
  }

  /** Whether `peerId` is a live direct neighbour. */
  isLinked(peerId: string): boolean {
    return this.#links.has(peerId);
  }

  /** Live direct neighbours, in link-up order. */
  neighbors(): string[] {
    return [...this.#links.keys()];
  }

  // -------------------------------------------------------------------------------------------
  // Receiving

  /** Apply a ROUTE_ANNOUNCE payload received from the direct neighbour `fromPeer`. */
  onAnnounce(fromPeer: string, payload: Uint8Array): AnnounceResult {
    const result: AnnounceResult = {
      accepted: false,
      changed: false,
      events: [],
      learned: 0,
      withdrawn: 0,
      ignored: 0,
    };
    const link = this.#links.get(fromPeer);
    if (!link) return this.#refuse(result, "not-a-neighbor", `${fromPeer} is not linked`);
    if (this.#acceptFrom && !this.#acceptFrom(fromPeer)) {
      return this.#refuse(result, "untrusted-peer", `routes from ${fromPeer} are not accepted`);
    }
    let parsed: ParsedRouteAnnounce;
    try {
      parsed = parseRouteAnnounce(payload);
    } catch (e) {
      const err = e as RouteAnnounceError;
      return this.#refuse(result, err.reason ?? "malformed", err.message);
    }
    if (parsed.origin !== undefined && parsed.origin !== fromPeer) {
      return this.#refuse(result, "origin-mismatch", `origin ${parsed.origin} sent by ${fromPeer}`);
    }
    if (parsed.sequenceNumber !== undefined) {
      if (link.lastSeq !== undefined && parsed.sequenceNumber <= link.lastSeq) {
        return this.#refuse(
          result,
          "stale-sequence",
          `sequence_number ${parsed.sequenceNumber} ≤ ${link.lastSeq}`,
        );
      }
      link.lastSeq = parsed.sequenceNumber;
    }
    result.accepted = true;
    result.ignored = parsed.skipped;
    const now = this.#clock.now();
    const mentioned = new Set<string>();
    for (const { destination: dst, cost } of parsed.entries) {
      if (dst === this.selfId) continue;
      if (
        (this.#validateIds && !isNodeId(dst)) ||
        (cost === 0 && dst !== fromPeer) ||
        (this.#learnFilter && !this.#learnFilter(dst, fromPeer))
      ) {
        result.ignored++;
        continue;
      }
      mentioned.add(dst);
      const previous = link.advertised.get(dst);
      link.advertised.set(dst, cost);
      this.#apply(dst, fromPeer, cost, previous, now, result);
    }
    if (!parsed.truncated) {
      // A full table dump that no longer lists a route we learned from its sender withdraws it.
      for (const r of [...this.#routes.values()]) {
        if (r.learnedFrom === fromPeer && !mentioned.has(r.destination)) {
          this.#withdraw(r, now, "omitted", result.events);
          result.withdrawn++;
          result.changed = true;
        }
      }
      for (const dst of [...link.advertised.keys()]) {
        if (!mentioned.has(dst)) link.advertised.delete(dst);
      }
    }
    if (result.changed) this.#markAllDirty();
    return result;
  }

  #refuse(
    result: AnnounceResult,
    reason: AnnounceRejection,
    detail: string,
  ): AnnounceResult {
    result.reason = reason;
    result.detail = detail;
    return result;
  }

  /** The reference's `add_route` for one entry (announced `cost`, installed at cost + 1). */
  #apply(
    dst: string,
    from: string,
    cost: number,
    previous: number | undefined,
    now: number,
    result: AnnounceResult,
  ): void {
    const newCost = cost + 1;
    const existing = this.#routes.get(dst);
    if (newCost <= 0 || newCost >= INFINITY_COST) {
      if (existing && existing.learnedFrom === from) {
        this.#withdraw(existing, now, "withdrawn", result.events);
        result.withdrawn++;
        result.changed = true;
      } else if (
        existing && this.#links.has(existing.learnedFrom) &&
        (previous === undefined || (previous >= 0 && previous + 1 < INFINITY_COST))
      ) {
        // The neighbour just lost `dst`, which we still reach another way: tell it now.
        this.#dirty.add(from);
      }
      return;
    }
    const route: RouteEntry = {
      destination: dst,
      nextHop: from,
      cost: newCost,
      learnedFrom: from,
      updated: now,
    };
    if (!existing) {
      if (this.#routes.size >= this.maxRoutes) {
        result.ignored++;
        return;
      }
      this.#install(route, result);
      return;
    }
    if (existing.learnedFrom === from) {
      const costChanged = existing.cost !== newCost;
      existing.cost = newCost;
      existing.nextHop = from;
      existing.updated = now;
      if (costChanged) this.#install(existing, result);
      return;
    }
    // Another learner wins with a strictly lower cost, or over a route whose neighbour is down
    // (one loaded from disk).
    if (newCost < existing.cost || !this.#links.has(existing.learnedFrom)) {
      this.#install(route, result);
    }
  }

  #install(route: RouteEntry, result: AnnounceResult): void {
    this.#routes.set(route.destination, route); // an existing key keeps its position
    this.#holds.delete(route.destination);
    this.#lost.delete(route.destination);
    this.#persistDirty = true;
    result.learned++;
    result.changed = true;
    result.events.push(meshEvent("ROUTE_LEARNED", {
      destination: route.destination,
      next_hop: route.nextHop,
      cost: route.cost,
    }));
  }

  #withdraw(r: RouteEntry, now: number, reason: string, events: MeshEvent[]): void {
    this.#routes.delete(r.destination);
    this.#holds.delete(r.destination);
    this.#holds.set(r.destination, now);
    while (this.#holds.size > this.maxRoutes) this.#holds.delete(this.#holds.keys().next().value!);
    this.#noteLost(r.destination, reason === "expired" ? r.updated : now);
    this.#persistDirty = true;
    if (reason === "expired") {
      events.push(meshEvent("ROUTE_EXPIRED", { destination: r.destination }));
    } else {
      events.push(meshEvent("ROUTE_WITHDRAWN", {
        destination: r.destination,
        learned_from: r.learnedFrom,
        reason,
      }));
    }
  }

  #noteLost(dst: string, lastSeen: number): void {
    this.#lost.delete(dst);
    this.#lost.set(dst, { lastSeen });
    while (this.#lost.size > this.maxRoutes) this.#lost.delete(this.#lost.keys().next().value!);
  }

  #markAllDirty(): void {
    for (const p of this.#links.keys()) this.#dirty.add(p);
  }

  // -------------------------------------------------------------------------------------------
  // Time

  /**
   * Expire routes not refreshed for the TTL (`ROUTE_EXPIRED`), end withdrawal holds, and report
   * destinations lost for 2 × TTL (`MESH_PARTITION_SUSPECTED`, at most every 5 min each).
   * Call it every few seconds (the reference: every 60 s).
   */
  expire(now: number = this.#clock.now()): RouteUpdate {
    const events: MeshEvent[] = [];
    let changed = false;
    for (const r of [...this.#routes.values()]) {
      if (now - r.updated > this.routeTtlS) {
        this.#withdraw(r, now, "expired", events);
        changed = true;
      }
    }
    for (const [dst, at] of [...this.#holds]) {
      if (now - at > this.withdrawHoldS) this.#holds.delete(dst);
    }
    for (const [dst, lost] of [...this.#lost]) {
      const silent = now - lost.lastSeen;
      if (silent > PARTITION_FORGET_S) {
        this.#lost.delete(dst);
      } else if (
        silent > 2 * this.routeTtlS &&
        (lost.lastReported === undefined || now - lost.lastReported > PARTITION_REPEAT_S)
      ) {
        lost.lastReported = now;
        events.push(meshEvent("MESH_PARTITION_SUSPECTED", { destination: dst }));
      }
    }
    if (changed) this.#markAllDirty();
    return { changed, events };
  }

  // -------------------------------------------------------------------------------------------
  // Announcing

  /** The announcement `peerId` would get now (no side effects; `sequenceNumber` = the next one). */
  announcementFor(peerId: string, sequenceNumber = this.#sequence + 1): RouteAnnouncement {
    const routes: RouteAnnouncementEntry[] = [{ destination: this.selfId, cost: 0 }];
    for (const [dst, r] of this.#routes) {
      if (dst === peerId || !this.#links.has(r.learnedFrom)) continue;
      routes.push({ destination: dst, cost: r.learnedFrom === peerId ? INFINITY_COST : r.cost });
    }
    for (const dst of this.#holds.keys()) {
      if (dst !== peerId && !this.#routes.has(dst)) {
        routes.push({ destination: dst, cost: INFINITY_COST });
      }
    }
    return {
      origin: this.selfId,
      routes: routes.slice(0, MAX_ANNOUNCE_ENTRIES),
      sequenceNumber,
    };
  }

  /**
   * Build the ROUTE_ANNOUNCE payload for `peerId` and record it as sent now: bumps the sequence
   * number and clears the peer's triggered flag. Send it as a frame with `destination` = peer.
   */
  announceFor(peerId: string): Uint8Array {
    const a = this.announcementFor(peerId, ++this.#sequence);
    const link = this.#links.get(peerId);
    if (link) link.lastSentMs = this.#clock.monotonicMs();
    this.#dirty.delete(peerId);
    return encodeRouteAnnounce(a);
  }

  /** The sequence number of the last announcement built. */
  get sequenceNumber(): number {
    return this.#sequence;
  }

  /** Neighbours an announcement is due to now: triggered (rate-limited) or periodic. */
  dueAnnouncements(nowMs: number = this.#clock.monotonicMs()): string[] {
    const out: string[] = [];
    for (const [peer, link] of this.#links) {
      const at = this.#dueAt(peer, link);
      if (at !== null && at <= nowMs) out.push(peer);
    }
    return out;
  }

  /** Monotonic ms when the next announcement falls due (now when one is due; null: no neighbours). */
  nextAnnounceAt(): number | null {
    let next: number | null = null;
    for (const [peer, link] of this.#links) {
      const at = this.#dueAt(peer, link);
      if (at !== null && (next === null || at < next)) next = at;
    }
    return next === -Infinity ? this.#clock.monotonicMs() : next;
  }

  /** Whether a triggered announcement is pending for `peerId`. */
  isTriggered(peerId: string): boolean {
    return this.#dirty.has(peerId);
  }

  #dueAt(peer: string, link: LinkState): number | null {
    if (link.lastSentMs === undefined) return this.#dirty.has(peer) ? -Infinity : null;
    const periodic = link.lastSentMs + this.announceIntervalS * 1000;
    if (!this.#dirty.has(peer)) return periodic;
    return Math.min(periodic, link.lastSentMs + this.triggeredMinIntervalS * 1000);
  }

  // -------------------------------------------------------------------------------------------
  // Lookups

  /**
   * Next hop toward `dest` (`get_route`): a live direct link to it always wins; otherwise the
   * route's neighbour when it is linked. `avoid` skips hops (open circuit breakers, the peer a
   * frame came from, hops already on its path).
   */
  nextHop(dest: string, avoid?: (hop: string) => boolean): string | null {
    if (dest === this.selfId) return null;
    if (this.#links.has(dest) && !avoid?.(dest)) return dest;
    const r = this.#routes.get(dest);
    if (!r || !this.#links.has(r.nextHop) || avoid?.(r.nextHop)) return null;
    return r.nextHop;
  }

  /** The installed route to `dest`, if any (a copy). */
  route(dest: string): RouteEntry | undefined {
    const r = this.#routes.get(dest);
    return r ? { ...r } : undefined;
  }

  /** Every installed route, in table order (copies). */
  routes(): RouteEntry[] {
    return [...this.#routes.values()].map((r) => ({ ...r }));
  }

  /** Number of installed routes. */
  get size(): number {
    return this.#routes.size;
  }

  /** Destinations currently announced at cost 16 after a withdrawal. */
  withdrawnDestinations(): string[] {
    return [...this.#holds.keys()].filter((d) => !this.#routes.has(d));
  }

  // -------------------------------------------------------------------------------------------
  // Persistence support (see persist.ts)

  /** Routes changed since the last `markPersisted()` (the reference saves on its 60 s loop). */
  get persistDirty(): boolean {
    return this.#persistDirty;
  }

  /** Record that the table was saved. */
  markPersisted(): void {
    this.#persistDirty = false;
  }

  /**
   * Install routes read from routes.json (already re-stamped by the caller). Invalid entries,
   * routes to this node and destinations already known are skipped. Returns how many were added.
   */
  restore(entries: Iterable<RouteEntry>): number {
    let added = 0;
    for (const e of entries) {
      if (
        typeof e.destination !== "string" || e.destination === "" ||
        e.destination === this.selfId || this.#routes.has(e.destination) ||
        (this.#validateIds && !isNodeId(e.destination)) || typeof e.learnedFrom !== "string" ||
        !Number.isSafeInteger(e.cost) || e.cost <= 0 || e.cost >= INFINITY_COST ||
        !Number.isFinite(e.updated) || this.#routes.size >= this.maxRoutes
      ) continue;
      this.#routes.set(e.destination, {
        destination: e.destination,
        nextHop: e.learnedFrom,
        cost: e.cost,
        learnedFrom: e.learnedFrom,
        updated: e.updated,
      });
      added++;
    }
    if (added) this.#markAllDirty();
    return added;
  }
}
