/**
 * Where `ironmesh trust` reads and changes trust: the `TrustBackend` interface, and its
 * file-backed implementation that works on the state files directly (no daemon running).
 *
 * A running daemon serves the same operations on its open store over its control socket
 * (daemon/trust_control.ts, cli/trust_backend.ts); a state directory whose lock is held by
 * a daemon that does not answer refuses changes.
 *
 * Every change runs under three locks, in this order: the state-directory lock
 * (`ironmesh.lock`, so no daemon starts mid-change), the trust store's flock
 * (`known_peers.json.lock`, taken by `TrustStore.mutate`, which reloads the file first), then
 * the audit log's flock (`audit.log.lock`, taken by `AuditLog.append`). The operator argument
 * is resolved inside the store lock, on the data being changed. The audit events are the ones
 * the trust operation returns, with `actor: "cli"`.
 */
import { readEntries } from "../audit/query.ts";
import { ExitCode, IronMeshError } from "../errors.ts";
import { lockStateDir, type StateLock } from "../fs/lock.ts";
import type { Identity } from "../identity/identity.ts";
import { fsError } from "../identity/keystore.ts";
import { isNodeId, nodeIdOf } from "../identity/node_id.ts";
import type { EnvelopeFailure } from "./envelope.ts";
import type { TrustConflict } from "./policy.ts";
import {
  decodeStoredKey,
  type PeerRecord,
  type RevocationRecord,
  type TrustChange,
  type TrustEvent,
  type TrustState,
} from "./records.ts";
import { type ResolvedPeer, resolvePeer } from "./resolve.ts";
import type { TrustData, TrustView } from "./state.ts";
import type { LoadedFormat, TrustStore } from "./store.ts";
import {
  auditLogPath,
  checkLogFile,
  type LockHolder,
  openAuditWriter,
  openTrustStore,
  stateLockHolder,
} from "../state_files.ts";

/** Who the CLI's audit events name as the actor. */
export const CLI_ACTOR = "cli";

/** Everything `trust list` / `verify` / `cap-status` need, as plain data. */
export interface TrustSnapshot {
  /** Where the trust data lives (the file, or later the daemon's socket). */
  location: string;
  /** This node's id (the revoker of local revocations). */
  ownNodeId: string;
  /** How the store loaded: `v2`, a legacy `v1…` form, `missing` (no file yet) or `failed`. */
  format: LoadedFormat;
  /** Set when the integrity check failed: the store is read-only and shows no peers. */
  readOnly: { failure: EnvelopeFailure; reason: string } | null;
  /** A legacy file that the next change rewrites as v2. */
  needsMigration: boolean;
  /** Pinned peers, sorted by node id. */
  peers: PeerRecord[];
  /** Revocations, sorted by node id. */
  revoked: RevocationRecord[];
  /** Advisory revocations awaiting an operator (§18.7). */
  advisory: RevocationRecord[];
  /** (name, owner node id) bindings, sorted by name. */
  names: [string, string][];
}

/** An unresolved TOFU conflict, with both fingerprints and how often it was seen. */
export interface TrustConflictInfo extends TrustConflict {
  /** TOFU_MISMATCH entries in the audit log for it (0 for a damaged pin found in the store). */
  attempts: number;
  /** Time of the latest attempt (seconds), or null. */
  lastSeen: number | null;
}

/** What a change did. */
export interface TrustOpResult extends TrustChange {
  /** The peers acted on (one, or several for `cap-promote --all`). */
  nodeIds: string[];
  /** How the operator's argument matched. */
  resolved?: ResolvedPeer;
  /** State before and after (`forgotten` after a forget). */
  oldState?: string;
  newState?: string;
  /** The audit log the events went to (null when nothing changed). */
  auditLog: string | null;
  /** Things the operator should know (e.g. the audit checkpoint stopped matching). */
  warnings: string[];
}

/** Options of `pin`. */
export interface PinRequest {
  /** Bind this name to the node (taking it from a previous owner). */
  name?: string;
  /** Initial state (default trusted). */
  state?: TrustState;
}

/** Reading and changing trust: on the files now, through the daemon later. */
export interface TrustBackend {
  /** `file`: the state files directly; `daemon`: a running daemon's control socket. */
  readonly kind: "file" | "daemon";
  /** The current trust data. */
  snapshot(): Promise<TrustSnapshot>;
  /** Unresolved name conflicts (from TOFU_MISMATCH audit entries) and damaged pins. */
  conflicts(): Promise<TrustConflictInfo[]>;
  /** Resolve a node id, unique node-id prefix, name or unique name prefix. */
  resolve(id: string): Promise<ResolvedPeer>;
  /** `trust set-state`. */
  setState(id: string, state: TrustState): Promise<TrustOpResult>;
  /** `trust pin`: pin `pubkeyB64` for the full node id `nodeId` (operator pin). */
  pin(nodeId: string, pubkeyB64: string, opts?: PinRequest): Promise<TrustOpResult>;
  /** `trust revoke`: a local revocation (drops the pin, refuses the node). */
  revoke(id: string, reason?: string): Promise<TrustOpResult>;
  /** `trust clear-revocation`. */
  clearRevocation(id: string): Promise<TrustOpResult>;
  /** `trust forget`: delete the pin and release its names. */
  forget(id: string): Promise<TrustOpResult>;
  /** `trust cap-promote <id>`: accept the pending capability set. */
  capPromote(id: string): Promise<TrustOpResult>;
  /** `trust cap-promote --all`: accept every pending capability set, in one change. */
  capPromoteAll(): Promise<TrustOpResult>;
  /** `trust cap-reject`: drop the pending set, optionally blocking the peer. */
  capReject(id: string, opts?: { block?: boolean }): Promise<TrustOpResult>;
  /** Release what the backend holds. */
  close(): void;
}

/** The refusal while a daemon holds the state directory. */
export function daemonRunningError(stateDir: string, holder: LockHolder | null): IronMeshError {
  const pid = holder?.pid ?? null;
  const who = pid ? `pid ${pid}${holder?.purpose ? `, ${holder.purpose}` : ""}` : "another process";
  return new IronMeshError(
    "DAEMON_RUNNING",
    `state directory ${stateDir} is in use by a running ironmesh daemon (${who}) ` +
      "whose control socket does not answer",
    `check the daemon's log; if it is stuck, stop it${pid ? ` (kill ${pid})` : ""} and retry`,
    ExitCode.LOCKED,
  );
}

/** Refuse (before asking for a passphrase) when a daemon holds the state directory. */
export function assertNoDaemon(stateDir: string): void {
  const holder = stateLockHolder(stateDir);
  if (holder && !isShortCliHolder(holder)) throw daemonRunningError(stateDir, holder);
}

/** Another short CLI command (it releases the lock within moments): worth waiting for. */
function isShortCliHolder(h: LockHolder): boolean {
  return /^(trust|audit|keys) /.test(h.purpose);
}

const LOCK_WAIT_MS = 5000;

/** Take the state-directory lock, waiting briefly for another CLI command, never for a daemon. */
async function lockForChange(stateDir: string, purpose: string): Promise<StateLock> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      return lockStateDir(stateDir, purpose);
    } catch (e) {
      if (!(e instanceof IronMeshError) || e.code !== "STATE_LOCKED") {
        throw fsError(e, stateDir, "state directory");
      }
      const holder = stateLockHolder(stateDir);
      if (holder && (!isShortCliHolder(holder) || Date.now() > deadline)) {
        throw daemonRunningError(stateDir, holder);
      }
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

function notPinned(d: TrustView, nodeId: string, what: string): IronMeshError {
  if (d.isRevoked(nodeId)) {
    return new IronMeshError(
      "TRUST_REVOKED",
      `peer ${nodeId} is revoked, not pinned: nothing to ${what}`,
      `run \`ironmesh trust clear-revocation ${nodeId}\` first if the revocation was a mistake`,
      ExitCode.NOT_FOUND,
    );
  }
  return new IronMeshError(
    "TRUST_UNKNOWN_PEER",
    `peer ${nodeId} is not pinned`,
    "run `ironmesh trust list` to see pinned peers",
    ExitCode.NOT_FOUND,
  );
}

function requirePinned(d: TrustData, arg: string, what: string): ResolvedPeer {
  const r = resolvePeer(d, arg);
  if (!d.getPeer(r.nodeId)) throw notPinned(d, r.nodeId, what);
  return r;
}

/** Like `resolvePeer`, but a full node id never seen (e.g. an impostor's) is accepted as is. */
function resolveOrNodeId(d: TrustView, arg: string): ResolvedPeer {
  try {
    return resolvePeer(d, arg);
  } catch (e) {
    const full = arg.trim().toLowerCase();
    if (e instanceof IronMeshError && e.code === "TRUST_UNKNOWN_PEER" && isNodeId(full)) {
      return { nodeId: full, via: "node-id" };
    }
    throw e;
  }
}

type OpOutcome = Omit<TrustOpResult, "auditLog" | "warnings">;

/**
 * What a store-backed backend needs around each change: exclusive access, a check that
 * the audit log can take the events (before anything changes), and the audit writer.
 */
export interface ChangeEnv {
  /** The audit log the events go to (also read for `conflicts`). */
  auditPath: string;
  lock(purpose: string): Promise<{ release(): void }>;
  precheck(): void;
  /** Append the events (actor already set); returns warnings for the operator. */
  audit(events: TrustEvent[]): Promise<string[]>;
}

/** The environment of the CLI working on the files: the state-directory lock and its own audit writer. */
export function fileChangeEnv(stateDir: string, id: Identity): ChangeEnv {
  const auditPath = auditLogPath(stateDir);
  return {
    auditPath,
    lock: (purpose) => lockForChange(stateDir, purpose),
    precheck() {
      if (checkLogFile(auditPath) === "ok") {
        try {
          Deno.openSync(auditPath, { write: true, append: true }).close();
        } catch (e) {
          throw fsError(e, auditPath, "audit log");
        }
      }
    },
    async audit(events) {
      const warnings: string[] = [];
      const log = openAuditWriter(stateDir, id);
      try {
        for (const e of events) {
          const a = await log.append(e.event, e.details);
          if (a.checkpoint === "frozen" && warnings.length === 0) {
            warnings.push(
              `the audit checkpoint no longer matches ${auditPath} ` +
                "(entries may have been cut off): run `ironmesh audit verify`",
            );
          }
        }
      } catch (e) {
        throw new IronMeshError(
          "AUDIT_WRITE_FAILED",
          `the trust change was saved but its audit entry could not be written: ${
            (e as Error).message
          }`,
          `check ${auditPath} and the state directory's permissions`,
          e instanceof IronMeshError ? e.exitCode : ExitCode.FAILURE,
        );
      } finally {
        log.close();
      }
      return warnings;
    },
  };
}

/** A trust store and its audit log: the CLI's files, or the daemon's open store (served over its control socket). */
export class StoreTrustBackend implements TrustBackend {
  readonly kind: "file" | "daemon";
  readonly auditPath: string;
  #store: TrustStore;
  #env: ChangeEnv;

  constructor(kind: "file" | "daemon", store: TrustStore, env: ChangeEnv) {
    this.kind = kind;
    this.auditPath = env.auditPath;
    this.#store = store;
    this.#env = env;
  }

  /** Open the state directory's trust store with `id` (the caller keeps and wipes `id`). */
  static async open(stateDir: string, id: Identity): Promise<StoreTrustBackend> {
    return new StoreTrustBackend(
      "file",
      await openTrustStore(stateDir, id),
      fileChangeEnv(stateDir, id),
    );
  }

  /** The underlying store (tests, diagnostics). */
  get store(): TrustStore {
    return this.#store;
  }

  async snapshot(): Promise<TrustSnapshot> {
    await this.#reload();
    const s = this.#store;
    return {
      location: s.path,
      ownNodeId: s.ownNodeId,
      format: s.loadedFormat,
      readOnly: s.readOnlyState ? { ...s.readOnlyState } : null,
      needsMigration: s.needsMigration,
      peers: s.listPeers(),
      revoked: s.listRevoked(),
      advisory: s.peerIds().flatMap((id) => {
        const a = s.advisoryRevocation(id);
        return a ? [a] : [];
      }),
      names: s.nameBindings(),
    };
  }

  async conflicts(): Promise<TrustConflictInfo[]> {
    await this.#reload();
    const s = this.#store;
    const out: TrustConflictInfo[] = [];
    for (const p of s.listPeers()) {
      const key = decodeStoredKey(p.pubkey);
      const pinnedFp = key && key.length === 32 ? nodeIdOf(key) : "(undecodable pin)";
      if (pinnedFp !== p.nodeId) {
        out.push({
          kind: "key",
          pinnedNodeId: p.nodeId,
          pinnedFingerprint: pinnedFp,
          presentedFingerprint: p.nodeId,
          attempts: 0,
          lastSeen: null,
        });
      }
    }
    if (checkLogFile(this.auditPath) === "missing") return out;
    const byPair = new Map<string, TrustConflictInfo>();
    for (const e of readEntries(this.auditPath, { archives: true })) {
      if (e.event !== "TOFU_MISMATCH" || e.details.reason !== "name-conflict") continue;
      const { name, pinned_node_id: pinned, presented_node_id: presented } = e.details;
      if (typeof name !== "string" || typeof pinned !== "string") continue;
      if (typeof presented !== "string" || pinned === presented) continue;
      // Still unresolved: the name is still bound to the node it was pinned to, and the
      // presenter was not revoked since.
      if (s.nameOwner(name) !== pinned || s.isRevoked(presented)) continue;
      const k = JSON.stringify([name, presented]);
      const c = byPair.get(k) ?? {
        kind: "name" as const,
        name,
        pinnedNodeId: pinned,
        pinnedFingerprint: pinned,
        presentedFingerprint: presented,
        attempts: 0,
        lastSeen: null,
      };
      c.attempts++;
      if (Number.isFinite(e.timestamp) && (c.lastSeen === null || e.timestamp > c.lastSeen)) {
        c.lastSeen = e.timestamp;
      }
      byPair.set(k, c);
    }
    return [...out, ...byPair.values()];
  }

  async resolve(id: string): Promise<ResolvedPeer> {
    await this.#reload();
    return resolvePeer(this.#store.data, id);
  }

  setState(id: string, state: TrustState): Promise<TrustOpResult> {
    return this.#change("trust set-state", (d) => {
      const r = requirePinned(d, id, "change");
      const res = d.setState(r.nodeId, state, { actor: CLI_ACTOR });
      return { ...res, nodeIds: [r.nodeId], resolved: r };
    });
  }

  pin(nodeId: string, pubkeyB64: string, opts: PinRequest = {}): Promise<TrustOpResult> {
    const id = nodeId.trim().toLowerCase();
    if (!isNodeId(id)) {
      return Promise.reject(
        new IronMeshError(
          "TRUST_BAD_INPUT",
          `not a node id: "${nodeId}"`,
          "give the peer's full 32-hex node id (`ironmesh keys fingerprint` on that node prints it)",
          ExitCode.BAD_INPUT,
        ),
      );
    }
    if (id === this.#store.ownNodeId) {
      return Promise.reject(
        new IronMeshError(
          "TRUST_BAD_INPUT",
          "refusing to pin this node's own key",
          "pin the other node's id and key (`ironmesh keys info` on that node prints them)",
          ExitCode.BAD_INPUT,
        ),
      );
    }
    return this.#change("trust pin", (d, now) => {
      const oldState = d.getPeer(id) ? d.trustState(id) : "unpinned";
      const res = d.pin(id, pubkeyB64.trim(), now, {
        actor: CLI_ACTOR,
        pinnedVia: "operator",
        trigger: "operator_manual_pin",
        ...(opts.state ? { state: opts.state } : {}),
        ...(opts.name !== undefined ? { name: opts.name } : {}),
      });
      return {
        changed: res.changed,
        events: res.events,
        nodeIds: [id],
        oldState,
        newState: res.record.trustState,
      };
    });
  }

  revoke(id: string, reason = ""): Promise<TrustOpResult> {
    return this.#change("trust revoke", (d, now) => {
      const r = resolveOrNodeId(d, id);
      if (r.nodeId === this.#store.ownNodeId) {
        throw new IronMeshError(
          "TRUST_BAD_INPUT",
          "refusing to revoke this node itself",
          "to retire this identity, create a new one with `ironmesh keys generate --force`",
          ExitCode.BAD_INPUT,
        );
      }
      const oldState = d.trustState(r.nodeId);
      if (d.isRevoked(r.nodeId)) {
        return {
          changed: false,
          events: [],
          nodeIds: [r.nodeId],
          resolved: r,
          oldState: "revoked",
          newState: "revoked",
        };
      }
      const res = d.revokeLocal(r.nodeId, this.#store.ownNodeId, now, {
        actor: CLI_ACTOR,
        reason,
      });
      return { ...res, nodeIds: [r.nodeId], resolved: r, oldState, newState: "revoked" };
    });
  }

  clearRevocation(id: string): Promise<TrustOpResult> {
    return this.#change("trust clear-revocation", (d, now) => {
      const r = resolvePeer(d, id);
      const res = d.clearRevocation(r.nodeId, now, { actor: CLI_ACTOR });
      return {
        ...res,
        nodeIds: [r.nodeId],
        resolved: r,
        oldState: "revoked",
        newState: d.getPeer(r.nodeId) ? d.trustState(r.nodeId) : "unpinned",
      };
    });
  }

  forget(id: string): Promise<TrustOpResult> {
    return this.#change("trust forget", (d) => {
      const r = requirePinned(d, id, "forget");
      const oldState = d.trustState(r.nodeId);
      const res = d.forget(r.nodeId, { actor: CLI_ACTOR });
      return { ...res, nodeIds: [r.nodeId], resolved: r, oldState, newState: "forgotten" };
    });
  }

  capPromote(id: string): Promise<TrustOpResult> {
    return this.#change("trust cap-promote", (d, now) => {
      const r = requirePinned(d, id, "promote");
      const oldState = d.trustState(r.nodeId);
      const res = d.acceptCapabilityChange(r.nodeId, now, { actor: CLI_ACTOR });
      return {
        ...res,
        nodeIds: [r.nodeId],
        resolved: r,
        oldState,
        newState: d.trustState(r.nodeId),
      };
    });
  }

  capPromoteAll(): Promise<TrustOpResult> {
    return this.#change("trust cap-promote", (d, now) => {
      const ids = d.listPeers().filter((p) => p.capabilityHashPending !== undefined).map((p) =>
        p.nodeId
      );
      const events: TrustEvent[] = [];
      for (const id of ids) {
        events.push(...d.acceptCapabilityChange(id, now, { actor: CLI_ACTOR }).events);
      }
      return { changed: ids.length > 0, events, nodeIds: ids };
    });
  }

  capReject(id: string, opts: { block?: boolean } = {}): Promise<TrustOpResult> {
    return this.#change("trust cap-reject", (d, now) => {
      const r = requirePinned(d, id, "reject");
      const oldState = d.trustState(r.nodeId);
      const res = d.rejectCapabilityChange(r.nodeId, now, {
        actor: CLI_ACTOR,
        block: opts.block ?? false,
      });
      return {
        ...res,
        nodeIds: [r.nodeId],
        resolved: r,
        oldState,
        newState: d.trustState(r.nodeId),
      };
    });
  }

  close(): void {}

  async #reload(): Promise<void> {
    try {
      await this.#store.reload();
    } catch (e) {
      throw fsError(e, this.#store.path, "trust store");
    }
  }

  /**
   * Lock the state directory, check the audit log can take the events, apply `fn` under the
   * store lock (reloaded; refused when read-only), then append the returned events.
   */
  async #change(
    purpose: string,
    fn: (d: TrustData, now: number) => OpOutcome,
  ): Promise<TrustOpResult> {
    const lock = await this.#env.lock(purpose);
    try {
      this.#env.precheck();
      let res: OpOutcome;
      try {
        res = await this.#store.mutate(fn);
      } catch (e) {
        throw fsError(e, this.#store.path, "trust store");
      }
      if (res.events.length === 0) return { ...res, auditLog: null, warnings: [] };
      for (const e of res.events) {
        // Events the store adds itself (e.g. TRUST_STORE_ENCRYPTED on migration) were caused
        // by this command too.
        if (e.details.actor === undefined) e.details = { ...e.details, actor: CLI_ACTOR };
      }
      const warnings = await this.#env.audit(res.events);
      return { ...res, auditLog: this.auditPath, warnings };
    } finally {
      lock.release();
    }
  }
}

/** The file backend of a state directory (no daemon running). */
export function openFileTrustBackend(stateDir: string, id: Identity): Promise<TrustBackend> {
  return StoreTrustBackend.open(stateDir, id);
}
