/**
 * The in-memory trust data (the decrypted plaintext of known_peers.json) and
 * every pure operation on it. Time is passed in; nothing here touches disk.
 * Each operation returns what changed plus the audit events (§9.2, §10, §11.5)
 * the caller should log — the store never writes audit entries itself.
 *
 * Extra plaintext keys we add (ignored by the reference loader, dropped by a
 * reference save): `names` (§18.2), `revocations_cleared` {node_id: time}
 * and `revocations_advisory` {node_id: {revoker, timestamp, reason}} (§18.7).
 */
import { constantTimeEqual } from "../crypto/sodium.ts";
import { ExitCode, type ExitCodeValue, IronMeshError } from "../errors.ts";
import { isNodeId } from "../identity/node_id.ts";
import { PyFloat, pyFloat } from "../json/py_float.ts";
import {
  acceptPending,
  applyObservation,
  type CapObservation,
  classifyCapabilities,
  rejectPending,
  stashPending,
} from "./capability_binding.ts";
import type { TrustPlain } from "./envelope.ts";
import { bindableName, type NameTable } from "./name_binding.ts";
import {
  canonicalKeyB64,
  decodeStoredKey,
  numberField,
  type PeerRecord,
  type RawRecord,
  recordState,
  requireKeyForNode,
  requireTrustState,
  type RevocationRecord,
  toPeerRecord,
  type TrustChange,
  type TrustEvent,
  type TrustState,
} from "./records.ts";

/** Read-only queries over trust data (what policy and resolution need). */
export interface TrustView extends NameTable {
  /** The typed record of a pinned peer. */
  getPeer(nodeId: string): PeerRecord | undefined;
  /** The raw stored record (do not mutate). */
  rawPeer(nodeId: string): Readonly<RawRecord> | undefined;
  /** revoked → blocked; unknown → pending; else the record's state (missing → trusted). */
  trustState(nodeId: string): TrustState;
  /** True when `nodeId` has a revocation. */
  isRevoked(nodeId: string): boolean;
  /** The revocation of `nodeId`, if any. */
  revocation(nodeId: string): RevocationRecord | undefined;
  /** Names bound to `nodeId`. */
  namesOf(nodeId: string): string[];
  /** Every (name, node id) binding, sorted by name. */
  nameBindings(): [string, string][];
  /** Pinned node ids, sorted. */
  peerIds(): string[];
  /** Revoked node ids, sorted. */
  revokedIds(): string[];
  /** When an operator last cleared a revocation of `nodeId` (seconds), if ever. */
  revocationClearedAt(nodeId: string): number | undefined;
  /** A pending advisory revocation of `nodeId` (§18.7), if any. */
  advisoryRevocation(nodeId: string): RevocationRecord | undefined;
}

/** Who did it (`"cli"`, `"daemon"`, `"dashboard"`); added to event details when given. */
export interface ActorOption {
  actor?: string;
}

/** Options for `pin`. */
export interface PinOptions extends ActorOption {
  /** Initial state (default trusted). */
  state?: TrustState;
  /** Provenance: `"invite"`, `"operator"`, `"allow_list"`; omitted for plain TOFU. */
  pinnedVia?: string;
  /** Bind this name to the node (taking it from any previous owner). */
  name?: string;
  /** Extra `trigger` detail on TOFU_NEW_PEER (the reference CLI uses "operator_manual_pin"). */
  trigger?: string;
}

/** A revocation as received or made: timestamp kept as a Python float unless `int`. */
export interface RevocationInput {
  revoker: string;
  timestamp: number;
  reason?: string;
  /** Write the timestamp as a Python int (default float, like the daemon's `float(ts)`). */
  timestampKind?: "float" | "int";
}

function err(
  code: string,
  message: string,
  hint: string,
  exit: ExitCodeValue = ExitCode.NOT_FOUND,
): IronMeshError {
  return new IronMeshError(code, message, hint, exit);
}

function unknownPeer(nodeId: string): IronMeshError {
  return err(
    "TRUST_UNKNOWN_PEER",
    `peer ${nodeId} is not in the trust store`,
    "run `ironmesh trust list` to see pinned peers",
  );
}

function withActor(details: Record<string, unknown>, o: ActorOption): Record<string, unknown> {
  return o.actor === undefined ? details : { ...details, actor: o.actor };
}

function cloneValue(v: unknown): unknown {
  if (v instanceof PyFloat) return new PyFloat(v.value);
  if (Array.isArray(v)) return v.map(cloneValue);
  if (v !== null && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, cloneValue(x)]));
  }
  return v;
}

function cloneRecord(r: RawRecord): RawRecord {
  return cloneValue(r) as RawRecord;
}

function timestampValue(r: RevocationInput): number | PyFloat {
  if (!Number.isFinite(r.timestamp)) {
    throw err("TRUST_BAD_INPUT", "revocation timestamp must be finite", "", ExitCode.BAD_INPUT);
  }
  if (r.timestampKind === "int") {
    if (!Number.isSafeInteger(r.timestamp)) {
      throw err(
        "TRUST_BAD_INPUT",
        "int revocation timestamp must be an integer",
        "",
        ExitCode.BAD_INPUT,
      );
    }
    return r.timestamp;
  }
  return pyFloat(r.timestamp);
}

function toRevocation(nodeId: string, raw: RawRecord): RevocationRecord {
  return {
    nodeId,
    revoker: typeof raw.revoker === "string" ? raw.revoker : "",
    timestamp: numberField(raw.timestamp) ?? 0,
    reason: typeof raw.reason === "string" ? raw.reason : "",
  };
}

function sortedKeys<V>(m: Map<string, V>): string[] {
  return [...m.keys()].sort();
}

function mapOf(v: unknown): Map<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v)
    ? new Map(Object.entries(v))
    : new Map();
}

/** The trust data with its pure operations. */
export class TrustData implements TrustView {
  #peers = new Map<string, RawRecord>();
  #revoked = new Map<string, RawRecord>();
  #names = new Map<string, string>();
  #cleared = new Map<string, unknown>();
  #advisory = new Map<string, RawRecord>();
  #extras: Record<string, unknown> = {};

  /** Build from decoded plaintext (takes ownership of the objects). */
  static fromPlain(plain: TrustPlain): TrustData {
    const d = new TrustData();
    for (const [k, v] of Object.entries(plain.peers)) d.#peers.set(k, v);
    for (const [k, v] of Object.entries(plain.revoked)) d.#revoked.set(k, v);
    const { names, revocations_cleared, revocations_advisory, ...rest } = plain.extras;
    for (const [k, v] of mapOf(names)) if (typeof v === "string") d.#names.set(k, v);
    for (const [k, v] of mapOf(revocations_cleared)) {
      if (numberField(v) !== undefined) d.#cleared.set(k, v);
    }
    for (const [k, v] of mapOf(revocations_advisory)) {
      if (v !== null && typeof v === "object" && !Array.isArray(v)) {
        d.#advisory.set(k, v as RawRecord);
      }
    }
    d.#extras = rest;
    return d;
  }

  /** The plaintext to encrypt; extension maps are omitted when empty. */
  toPlain(): TrustPlain {
    const extras: Record<string, unknown> = { ...this.#extras };
    if (this.#names.size) extras.names = Object.fromEntries(this.#names);
    if (this.#cleared.size) extras.revocations_cleared = Object.fromEntries(this.#cleared);
    if (this.#advisory.size) extras.revocations_advisory = Object.fromEntries(this.#advisory);
    return {
      peers: Object.fromEntries(this.#peers),
      revoked: Object.fromEntries(this.#revoked),
      extras,
    };
  }

  /** A deep copy (mutations are applied to a copy and committed after the write). */
  clone(): TrustData {
    const d = new TrustData();
    for (const [k, v] of this.#peers) d.#peers.set(k, cloneRecord(v));
    for (const [k, v] of this.#revoked) d.#revoked.set(k, cloneRecord(v));
    d.#names = new Map(this.#names);
    d.#cleared = new Map([...this.#cleared].map(([k, v]) => [k, cloneValue(v)]));
    for (const [k, v] of this.#advisory) d.#advisory.set(k, cloneRecord(v));
    d.#extras = cloneValue(this.#extras) as Record<string, unknown>;
    return d;
  }

  // ---- queries ----------------------------------------------------------

  /** The typed record of a pinned peer. */
  getPeer(nodeId: string): PeerRecord | undefined {
    const raw = this.#peers.get(nodeId);
    return raw ? toPeerRecord(nodeId, raw, this.namesOf(nodeId)) : undefined;
  }

  /** The raw stored record (do not mutate). */
  rawPeer(nodeId: string): Readonly<RawRecord> | undefined {
    return this.#peers.get(nodeId);
  }

  /** revoked → blocked; unknown → pending; else the record's state. */
  trustState(nodeId: string): TrustState {
    if (this.#revoked.has(nodeId)) return "blocked";
    const raw = this.#peers.get(nodeId);
    return raw ? recordState(raw.trust_state) : "pending";
  }

  /** True when `nodeId` has a revocation. */
  isRevoked(nodeId: string): boolean {
    return this.#revoked.has(nodeId);
  }

  /** The revocation of `nodeId`, if any. */
  revocation(nodeId: string): RevocationRecord | undefined {
    const raw = this.#revoked.get(nodeId);
    return raw ? toRevocation(nodeId, raw) : undefined;
  }

  /** A pending advisory revocation of `nodeId`, if any. */
  advisoryRevocation(nodeId: string): RevocationRecord | undefined {
    const raw = this.#advisory.get(nodeId);
    return raw ? toRevocation(nodeId, raw) : undefined;
  }

  /** When an operator last cleared a revocation of `nodeId`. */
  revocationClearedAt(nodeId: string): number | undefined {
    return numberField(this.#cleared.get(nodeId));
  }

  /** The node id owning `name`, if bound. */
  nameOwner(name: string): string | undefined {
    return this.#names.get(name);
  }

  /** Names bound to `nodeId`, sorted. */
  namesOf(nodeId: string): string[] {
    return [...this.#names].filter(([, id]) => id === nodeId).map(([n]) => n).sort();
  }

  /** Every (name, node id) binding, sorted by name. */
  nameBindings(): [string, string][] {
    return [...this.#names].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /** Pinned node ids, sorted. */
  peerIds(): string[] {
    return sortedKeys(this.#peers);
  }

  /** Revoked node ids, sorted. */
  revokedIds(): string[] {
    return sortedKeys(this.#revoked);
  }

  /** Every pinned peer, sorted by node id. */
  listPeers(): PeerRecord[] {
    return this.peerIds().map((id) => this.getPeer(id)!);
  }

  /** Every revocation, sorted by node id. */
  listRevoked(): RevocationRecord[] {
    return this.revokedIds().map((id) => this.revocation(id)!);
  }

  #requirePeer(nodeId: string): RawRecord {
    const raw = this.#peers.get(nodeId);
    if (!raw) throw unknownPeer(nodeId);
    return raw;
  }

  // ---- pins and states --------------------------------------------------

  /**
   * Pin a key (TOFU first contact, invite, allow-list or operator `trust pin`).
   * The key must hash to `nodeId`; it is stored as canonical b64. Replaces an
   * existing pin. Events: TOFU_NEW_PEER {peer_id, trust_state[, pinned_via,
   * trigger, name, replaced, actor]} and, when `name` is taken from another node,
   * the `bindName` event.
   */
  pin(
    nodeId: string,
    pubkeyB64: string,
    now: number,
    opts: PinOptions = {},
  ): TrustChange & { record: PeerRecord } {
    const key = requireKeyForNode(nodeId, pubkeyB64);
    const state = requireTrustState(opts.state ?? "trusted");
    if (this.#revoked.has(nodeId)) {
      throw err(
        "TRUST_REVOKED",
        `peer ${nodeId} is revoked`,
        `clear the revocation first: \`ironmesh trust clear-revocation ${nodeId}\``,
        ExitCode.FAILURE,
      );
    }
    const replaced = this.#peers.has(nodeId);
    const rec: RawRecord = {
      pubkey: canonicalKeyB64(key),
      fingerprint: nodeId,
      first_seen: pyFloat(now),
      last_seen: pyFloat(now),
      trust_state: state,
    };
    if (opts.pinnedVia !== undefined) rec.pinned_via = opts.pinnedVia;
    this.#peers.set(nodeId, rec);
    const details: Record<string, unknown> = { peer_id: nodeId, trust_state: state };
    if (opts.pinnedVia !== undefined) details.pinned_via = opts.pinnedVia;
    if (opts.trigger !== undefined) details.trigger = opts.trigger;
    if (replaced) details.replaced = true;
    // A first binding is reported inside TOFU_NEW_PEER; only a name taken from another node
    // gets its own event.
    const nameEvents = opts.name === undefined
      ? []
      : this.bindName(opts.name, nodeId, opts).events.filter((e) =>
        e.details.previous_owner !== null
      );
    if (opts.name !== undefined) details.name = opts.name;
    const events = [{ event: "TOFU_NEW_PEER", details: withActor(details, opts) }, ...nameEvents];
    return { changed: true, events, record: this.getPeer(nodeId)! };
  }

  /**
   * A known peer reconnected: `last_seen` := now (the reference rewrites it on every
   * reconnect). With `presentedKey`, a stored pin that decodes to the same bytes
   * but is not canonical b64 is rewritten canonically. No events.
   */
  touch(nodeId: string, now: number, presentedKey?: Uint8Array): TrustChange {
    const rec = this.#requirePeer(nodeId);
    rec.last_seen = pyFloat(now);
    if (presentedKey) {
      const canonical = canonicalKeyB64(presentedKey);
      const stored = decodeStoredKey(rec.pubkey);
      if (rec.pubkey !== canonical && stored && constantTimeEqual(stored, presentedKey)) {
        rec.pubkey = canonical;
      }
    }
    return { changed: true, events: [] };
  }

  /**
   * Operator or gate state change (`trust set-state`, promote, block). Events as
   * the reference CLI: → trusted PEER_PROMOTED, → blocked PEER_BLOCKED, else
   * PEER_STATE_CHANGED; details {peer_id, old_state, new_state[, actor]}.
   * Setting the current state again changes nothing.
   */
  setState(
    nodeId: string,
    state: TrustState,
    opts: ActorOption = {},
  ): TrustChange & { oldState: TrustState; newState: TrustState } {
    const newState = requireTrustState(state);
    const rec = this.#requirePeer(nodeId);
    const oldState = recordState(rec.trust_state);
    if (rec.trust_state === newState) return { changed: false, events: [], oldState, newState };
    rec.trust_state = newState;
    const event = newState === "trusted"
      ? "PEER_PROMOTED"
      : newState === "blocked"
      ? "PEER_BLOCKED"
      : "PEER_STATE_CHANGED";
    const details = withActor({ peer_id: nodeId, old_state: oldState, new_state: newState }, opts);
    return { changed: true, events: [{ event, details }], oldState, newState };
  }

  /**
   * Delete a pin (ours: `trust forget`) and release the names it owned; the
   * peer is pinned afresh on next contact. Event PEER_STATE_CHANGED
   * {peer_id, old_state, new_state: "forgotten", released_names[, actor]}.
   */
  forget(nodeId: string, opts: ActorOption = {}): TrustChange {
    const rec = this.#requirePeer(nodeId);
    const oldState = recordState(rec.trust_state);
    this.#peers.delete(nodeId);
    const released = this.namesOf(nodeId);
    for (const n of released) this.#names.delete(n);
    const details = withActor({
      peer_id: nodeId,
      old_state: oldState,
      new_state: "forgotten",
      released_names: released,
    }, opts);
    return { changed: true, events: [{ event: "PEER_STATE_CHANGED", details }] };
  }

  // ---- revocations ------------------------------------------------------

  /**
   * Ours (§18.12): a local `trust revoke` records a revocation by our own node
   * (timestamp = now, float) and drops the pin; names stay bound to the revoked
   * node so nobody else can take them. Event PEER_REVOKED_LOCAL {peer_id, reason[, actor]}.
   */
  revokeLocal(
    nodeId: string,
    ownNodeId: string,
    now: number,
    opts: ActorOption & { reason?: string } = {},
  ): TrustChange {
    const reason = opts.reason ?? "";
    this.#setRevoked(nodeId, { revoker: ownNodeId, timestamp: now, reason });
    const details = withActor({ peer_id: nodeId, reason }, opts);
    return { changed: true, events: [{ event: "PEER_REVOKED_LOCAL", details }] };
  }

  /**
   * Record an accepted signed REVOCATION (or our own broadcast): the reference's
   * `mark_revoked` — revoked[target] = {revoker, timestamp, reason}, pin dropped.
   * Event PEER_STATE_CHANGED {peer_id, old_state, new_state: "blocked",
   * reason: "revocation", revoker, revocation_reason}.
   */
  recordRevocation(nodeId: string, rev: RevocationInput): TrustChange {
    const oldState = this.trustState(nodeId);
    this.#setRevoked(nodeId, rev);
    const details = {
      peer_id: nodeId,
      old_state: oldState,
      new_state: "blocked",
      reason: "revocation",
      revoker: rev.revoker,
      revocation_reason: rev.reason ?? "",
    };
    return { changed: true, events: [{ event: "PEER_STATE_CHANGED", details }] };
  }

  #setRevoked(nodeId: string, rev: RevocationInput): void {
    if (!isNodeId(nodeId)) {
      throw err(
        "TRUST_BAD_INPUT",
        `not a node id: ${nodeId}`,
        "node ids are 32 hex chars",
        ExitCode.BAD_INPUT,
      );
    }
    this.#revoked.set(nodeId, {
      revoker: rev.revoker,
      timestamp: timestampValue(rev),
      reason: rev.reason ?? "",
    });
    this.#peers.delete(nodeId);
    this.#advisory.delete(nodeId);
  }

  /**
   * §18.7: a revocation of an operator/invite/allow-list pinned peer is only
   * advisory until an operator confirms it. Event PEER_STATE_CHANGED {peer_id,
   * old_state, new_state: old_state, reason: "revocation-advisory", revoker,
   * revocation_reason}.
   */
  recordAdvisoryRevocation(nodeId: string, rev: RevocationInput): TrustChange {
    const state = this.trustState(nodeId);
    this.#advisory.set(nodeId, {
      revoker: rev.revoker,
      timestamp: timestampValue(rev),
      reason: rev.reason ?? "",
    });
    const details = {
      peer_id: nodeId,
      old_state: state,
      new_state: state,
      reason: "revocation-advisory",
      revoker: rev.revoker,
      revocation_reason: rev.reason ?? "",
    };
    return { changed: true, events: [{ event: "PEER_STATE_CHANGED", details }] };
  }

  /** Operator confirms an advisory revocation: it becomes a real one (events of `recordRevocation`). */
  confirmAdvisoryRevocation(nodeId: string): TrustChange {
    const raw = this.#advisory.get(nodeId);
    if (!raw) {
      throw err("TRUST_NO_ADVISORY", `no advisory revocation for ${nodeId}`, "nothing to confirm");
    }
    const ts = raw.timestamp;
    return this.recordRevocation(nodeId, {
      revoker: String(raw.revoker ?? ""),
      timestamp: numberField(ts) ?? 0,
      reason: String(raw.reason ?? ""),
      timestampKind: ts instanceof PyFloat ? "float" : "int",
    });
  }

  /** Operator dismisses an advisory revocation. No events (nothing about the peer changed). */
  dismissAdvisoryRevocation(nodeId: string): TrustChange {
    return { changed: this.#advisory.delete(nodeId), events: [] };
  }

  /**
   * Operator clears a revocation (allows re-pinning) and records when, so an
   * older REVOCATION replayed later is refused (§18.7). Event PEER_STATE_CHANGED
   * {peer_id, old_state: "blocked", new_state, reason: "clear-revocation"[, actor]}.
   */
  clearRevocation(nodeId: string, now: number, opts: ActorOption = {}): TrustChange {
    if (!this.#revoked.delete(nodeId)) {
      throw err(
        "TRUST_NOT_REVOKED",
        `peer ${nodeId} is not revoked`,
        "run `ironmesh trust list-revoked` to see revocations",
      );
    }
    this.#cleared.set(nodeId, pyFloat(now));
    const details = withActor({
      peer_id: nodeId,
      old_state: "blocked",
      new_state: this.trustState(nodeId),
      reason: "clear-revocation",
    }, opts);
    return { changed: true, events: [{ event: "PEER_STATE_CHANGED", details }] };
  }

  // ---- capability binding (§9.2) ---------------------------------------

  /**
   * The reference's `observe_capabilities`: classify and record (baseline on the
   * first observation, `last_seen` on a change, stash cleared on a revert). It
   * does not stash or demote — `bindCapabilities` does the whole §9.2 step.
   * Events: first → PEER_CAP_BASELINE {peer, capability_hash, capability_count};
   * reverted → PEER_CAP_SET_CHANGED (revert form); others none.
   */
  observeCapabilities(
    nodeId: string,
    caps: Iterable<unknown>,
    now: number,
  ): TrustChange & { observation: CapObservation } {
    const rec = this.#requirePeer(nodeId);
    const obs = classifyCapabilities(rec, caps);
    const changed = applyObservation(rec, obs, now);
    const events: TrustEvent[] = [];
    if (obs.status === "first-observation") {
      events.push({
        event: "PEER_CAP_BASELINE",
        details: { peer: nodeId, capability_hash: obs.hash, capability_count: obs.set.length },
      });
    } else if (obs.status === "reverted") {
      events.push({
        event: "PEER_CAP_SET_CHANGED",
        details: {
          peer: nodeId,
          old_hash: obs.clearedPendingHash,
          new_hash: obs.hash,
          added: [],
          removed: [],
          trust_state_effective: `${recordState(rec.trust_state)} (reverted to baseline)`,
          note: "peer reverted to previously-accepted capability set; operator action still " +
            "required to re-promote",
        },
      });
    }
    return { changed, events, observation: obs };
  }

  /** The reference's `stash_pending_capability_change`. No events. */
  stashPendingCapabilities(nodeId: string, caps: Iterable<unknown>): TrustChange {
    stashPending(this.#requirePeer(nodeId), caps);
    return { changed: true, events: [] };
  }

  /**
   * The whole §9.2 binding step for one observation, in one write: observe; on a
   * change stash the new set and demote a `trusted` peer to `pending-cap-change`.
   * Ours: `pending` and `blocked` peers keep their state (the reference would
   * turn `blocked` into `pending-cap-change`, and a later accept would promote an
   * unapproved `pending` peer). Event on a change: PEER_CAP_SET_CHANGED {peer,
   * old_hash, new_hash, added, removed, trust_state_effective, stashed, demoted}.
   */
  bindCapabilities(
    nodeId: string,
    caps: Iterable<unknown>,
    now: number,
  ): TrustChange & { observation: CapObservation } {
    const capList = [...caps];
    const res = this.observeCapabilities(nodeId, capList, now);
    const obs = res.observation;
    if (obs.status !== "changed") return res;
    const rec = this.#requirePeer(nodeId);
    stashPending(rec, capList);
    const state = recordState(rec.trust_state);
    let demoted = state === "pending-cap-change";
    if (state === "trusted") {
      rec.trust_state = "pending-cap-change";
      demoted = true;
    }
    const details = {
      peer: nodeId,
      old_hash: obs.oldHash,
      new_hash: obs.newHash,
      added: obs.added,
      removed: obs.removed,
      trust_state_effective: recordState(rec.trust_state),
      stashed: true,
      demoted,
    };
    return {
      changed: true,
      events: [{ event: "PEER_CAP_SET_CHANGED", details }],
      observation: obs,
    };
  }

  /**
   * Operator accepts the pending set (`cap-promote`): baseline := pending,
   * `cap_accepted_at` := now, and a `pending-cap-change` peer becomes `trusted`
   * (other states are kept). Event PEER_CAP_ACCEPTED {peer, old_hash, new_hash,
   * trust_state_effective[, actor]}.
   */
  acceptCapabilityChange(nodeId: string, now: number, opts: ActorOption = {}): TrustChange {
    const rec = this.#requirePeer(nodeId);
    const oldHash = rec.capability_hash ?? null;
    const newHash = rec.capability_hash_pending;
    if (!acceptPending(rec, now)) throw noPending(nodeId);
    if (recordState(rec.trust_state) === "pending-cap-change") rec.trust_state = "trusted";
    const details = withActor({
      peer: nodeId,
      old_hash: oldHash,
      new_hash: newHash,
      trust_state_effective: recordState(rec.trust_state),
    }, opts);
    return { changed: true, events: [{ event: "PEER_CAP_ACCEPTED", details }] };
  }

  /**
   * Operator rejects the pending set (`cap-reject [--block]`): the stash is
   * dropped, `cap_rejected_at` := now; the peer is blocked when asked, else a
   * `pending-cap-change` peer returns to `trusted`. Event PEER_BLOCKED or
   * PEER_STATE_CHANGED {peer_id, reason: "cap-reject", rejected_pending_hash,
   * old_state, new_state[, actor]}.
   */
  rejectCapabilityChange(
    nodeId: string,
    now: number,
    opts: ActorOption & { block?: boolean } = {},
  ): TrustChange {
    const rec = this.#requirePeer(nodeId);
    const pendingHash = rec.capability_hash_pending;
    const oldState = recordState(rec.trust_state);
    if (!rejectPending(rec, now)) throw noPending(nodeId);
    const newState: TrustState = opts.block
      ? "blocked"
      : oldState === "pending-cap-change"
      ? "trusted"
      : oldState;
    rec.trust_state = newState;
    const details = withActor({
      peer_id: nodeId,
      reason: "cap-reject",
      rejected_pending_hash: pendingHash,
      old_state: oldState,
      new_state: newState,
    }, opts);
    const event = opts.block ? "PEER_BLOCKED" : "PEER_STATE_CHANGED";
    return { changed: true, events: [{ event, details }] };
  }

  // ---- names (§18.2) ----------------------------------------------------

  /**
   * Bind `name` to `nodeId` (operator action, or first sight during admission),
   * taking it from any previous owner. Event when it moves or is new:
   * PEER_STATE_CHANGED {peer_id, reason: "name-bound", name, previous_owner[, actor]}.
   */
  bindName(name: string, nodeId: string, opts: ActorOption = {}): TrustChange {
    const n = bindableName(name);
    if (n === null) {
      throw err(
        "TRUST_BAD_NAME",
        "a bound name must be non-blank and at most 256 characters",
        "choose another name",
        ExitCode.BAD_INPUT,
      );
    }
    if (!isNodeId(nodeId)) {
      throw err(
        "TRUST_BAD_INPUT",
        `not a node id: ${nodeId}`,
        "node ids are 32 hex chars",
        ExitCode.BAD_INPUT,
      );
    }
    const previous = this.#names.get(n);
    if (previous === nodeId) return { changed: false, events: [] };
    this.#names.set(n, nodeId);
    const details = withActor({
      peer_id: nodeId,
      reason: "name-bound",
      name: n,
      previous_owner: previous ?? null,
    }, opts);
    return { changed: true, events: [{ event: "PEER_STATE_CHANGED", details }] };
  }

  /** Release a name binding. Event PEER_STATE_CHANGED {peer_id, reason: "name-released", name}. */
  unbindName(name: string, opts: ActorOption = {}): TrustChange {
    const owner = this.#names.get(name);
    if (owner === undefined) return { changed: false, events: [] };
    this.#names.delete(name);
    const details = withActor({ peer_id: owner, reason: "name-released", name }, opts);
    return { changed: true, events: [{ event: "PEER_STATE_CHANGED", details }] };
  }
}

function noPending(nodeId: string): IronMeshError {
  return err(
    "TRUST_NO_PENDING_CAPS",
    `peer ${nodeId} has no pending capability change`,
    "run `ironmesh trust cap-status` to see peers awaiting review",
  );
}
