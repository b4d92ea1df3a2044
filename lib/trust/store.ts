/**
 * known_peers.json on disk (PROTOCOL-0.9 §11.1, §11.3; C-ST-04/05/06).
 *
 * - Every read and write happens under an exclusive flock on `<path>.lock` (the
 *   reference's sentinel) plus an in-process queue, and every modification
 *   reloads the file first, so the CLI and a running daemon (ours or the
 *   reference) never lose each other's changes.
 * - Writes are atomic (tmp + fsync + rename, 0600) v2 envelopes with a fresh nonce.
 * - v1 files load and are rewritten as v2 on the next save; a v1 file MACed with
 *   the legacy home-directory key is accepted once and rewritten immediately.
 * - A MAC/decryption failure (or, ours, an unparsable file) loads as empty and
 *   latches the store read-only: every write throws TRUST_STORE_READ_ONLY until
 *   the file is fixed or moved aside (the latch is re-evaluated on each reload).
 */
import { dirname, resolve } from "node:path";
import { type Clock, type Rng, systemClock, systemRng } from "../clock.ts";
import { fromUtf8, signKeyPairFromSeed } from "../crypto/sodium.ts";
import { ExitCode, IronMeshError } from "../errors.ts";
import { atomicWrite } from "../fs/atomic_write.ts";
import { withFileLock } from "../fs/flock.ts";
import { nodeIdOf } from "../identity/node_id.ts";
import {
  decodeEnvelope,
  encodeEnvelope,
  encodeInner,
  type EnvelopeFailure,
  type EnvelopeFormat,
  legacyMacKeyFor,
  type TrustKeys,
  trustKeys,
} from "./envelope.ts";
import type { PeerRecord, RevocationRecord, TrustChange, TrustState } from "./records.ts";
import {
  type ActorOption,
  type PinOptions,
  type RevocationInput,
  TrustData,
  type TrustView,
} from "./state.ts";
import type { CapObservation } from "./capability_binding.ts";

/** Options for `TrustStore.open`. */
export interface TrustStoreOptions {
  /** Clock for first_seen/last_seen and friends (default: system clock). */
  clock?: Clock;
  /** Source of envelope nonces (default: libsodium CSPRNG). */
  rng?: Rng;
  /** Home directory for the legacy v1 MAC key (default `$HOME`; null disables it). */
  legacyHomeDir?: string | null;
}

/** How the file last loaded: an envelope format, "missing" (no file) or "failed" (latched). */
export type LoadedFormat = EnvelopeFormat | "missing" | "failed";

/** Why the store is read-only. */
export interface ReadOnlyState {
  failure: EnvelopeFailure;
  reason: string;
}

const READ_ONLY_HINT = "inspect it, then move it aside to start fresh";

/** In-process serialisation per absolute path (flock is per open file, not per task). */
const queues = new Map<string, Promise<unknown>>();

function serialise<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const prev = queues.get(key) ?? Promise.resolve();
  const run = prev.then(fn, fn);
  const tail = run.catch(() => {});
  queues.set(key, tail);
  tail.then(() => {
    if (queues.get(key) === tail) queues.delete(key);
  });
  return run;
}

function defaultHome(): string | null {
  try {
    return Deno.env.get("HOME") ?? null;
  } catch {
    return null;
  }
}

/** The trust store: in-memory trust data bound to its file. */
export class TrustStore implements TrustView {
  /** Absolute path of known_peers.json. */
  readonly path: string;
  /** The flock sentinel (`<path>.lock`). */
  readonly lockPath: string;
  /** Our node id (the revoker of local revocations). */
  readonly ownNodeId: string;
  #keys: TrustKeys;
  #clock: Clock;
  #rng: Rng;
  #legacyKey: Uint8Array | undefined;
  #data = new TrustData();
  #format: LoadedFormat = "missing";
  #readOnly: ReadOnlyState | null = null;

  private constructor(path: string, seed: Uint8Array, opts: TrustStoreOptions) {
    this.path = resolve(path);
    this.lockPath = this.path + ".lock";
    this.ownNodeId = nodeIdOf(signKeyPairFromSeed(seed).publicKey);
    this.#keys = trustKeys(seed);
    this.#clock = opts.clock ?? systemClock;
    this.#rng = opts.rng ?? systemRng;
    const home = opts.legacyHomeDir === undefined ? defaultHome() : opts.legacyHomeDir;
    this.#legacyKey = home === null ? undefined : legacyMacKeyFor(home);
  }

  /** Open (and load) the store at `path` for the identity whose 32-byte seed is `seed`. */
  static async open(
    path: string,
    seed: Uint8Array,
    opts: TrustStoreOptions = {},
  ): Promise<TrustStore> {
    const store = new TrustStore(path, seed, opts);
    await Deno.mkdir(dirname(store.path), { recursive: true, mode: 0o700 });
    await store.reload();
    return store;
  }

  /** True while the last load failed its integrity check (writes are refused). */
  get readOnly(): boolean {
    return this.#readOnly !== null;
  }

  /** Why the store is read-only, or null. */
  get readOnlyReason(): string | null {
    return this.#readOnly?.reason ?? null;
  }

  /** The failure kind behind the latch, or null. */
  get readOnlyState(): ReadOnlyState | null {
    return this.#readOnly;
  }

  /** How the file last loaded. */
  get loadedFormat(): LoadedFormat {
    return this.#format;
  }

  /** True when the file is in a legacy form that the next save rewrites as v2. */
  get needsMigration(): boolean {
    return this.#format === "v1" || this.#format === "v1-unauthenticated";
  }

  /** The current trust data (read-only use). */
  get data(): TrustView {
    return this.#data;
  }

  /** The TRUST_STORE_READ_ONLY error for the current latch. */
  readOnlyError(): IronMeshError {
    const reason = this.#readOnly?.reason ?? "the trust store is read-only";
    return new IronMeshError(
      "TRUST_STORE_READ_ONLY",
      `trust store ${this.path} is read-only`,
      `${reason}; ${READ_ONLY_HINT}`,
      ExitCode.TAMPERED,
    );
  }

  /** Re-read the file (under the lock). */
  reload(): Promise<void> {
    return this.#exclusive(() => this.#load());
  }

  /**
   * Lock, reload, apply `fn` to a copy of the data, write it if `changed`, then
   * commit. Throws TRUST_STORE_READ_ONLY when latched (before `fn` runs).
   * When the write migrates a legacy file, TRUST_STORE_ENCRYPTED is appended to the events.
   */
  mutate<R extends TrustChange>(fn: (data: TrustData, now: number) => R): Promise<R> {
    return this.#exclusive(async () => {
      await this.#load();
      if (this.#readOnly) throw this.readOnlyError();
      const draft = this.#data.clone();
      const result = fn(draft, this.#clock.now());
      if (result.changed) {
        const migrated = this.needsMigration;
        await this.#write(draft);
        if (migrated) {
          result.events.push({
            event: "TRUST_STORE_ENCRYPTED",
            details: { path: this.path, trigger: "auto_migrate" },
          });
        }
      }
      return result;
    });
  }

  /** Rewrite the file now as v2 (e.g. `trust migrate`); throws when read-only. */
  save(): Promise<TrustChange> {
    return this.mutate(() => ({ changed: true, events: [] }));
  }

  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return serialise(this.path, () => withFileLock(this.lockPath, fn));
  }

  async #load(): Promise<void> {
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(this.path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      this.#data = new TrustData();
      this.#format = "missing";
      this.#readOnly = null;
      return;
    }
    let text: string;
    try {
      text = fromUtf8(bytes);
    } catch {
      this.#latch({ failure: "json", reason: "known_peers.json is not valid UTF-8" });
      return;
    }
    const res = decodeEnvelope(text, this.#keys, { legacyMacKey: this.#legacyKey });
    if (!res.ok) {
      this.#latch({ failure: res.failure, reason: res.reason });
      return;
    }
    this.#data = TrustData.fromPlain(res.plain);
    this.#format = res.format;
    this.#readOnly = null;
    // The legacy home-directory MAC is accepted exactly once: rewrite under the seed key now.
    if (res.format === "v1-legacy-key") await this.#write(this.#data);
  }

  #latch(state: ReadOnlyState): void {
    this.#data = new TrustData();
    this.#format = "failed";
    this.#readOnly = state;
  }

  async #write(data: TrustData): Promise<void> {
    const text = encodeEnvelope(encodeInner(data.toPlain()), this.#keys, this.#rng.bytes(24));
    await atomicWrite(this.path, text, { mode: 0o600 });
    this.#data = data;
    this.#format = "v2";
  }

  // ---- TrustView (delegates to the current data) ------------------------

  /** The typed record of a pinned peer. */
  getPeer(nodeId: string): PeerRecord | undefined {
    return this.#data.getPeer(nodeId);
  }
  /** The raw stored record (do not mutate). */
  rawPeer(nodeId: string): Readonly<Record<string, unknown>> | undefined {
    return this.#data.rawPeer(nodeId);
  }
  /** revoked → blocked; unknown → pending; else the record's state. */
  trustState(nodeId: string): TrustState {
    return this.#data.trustState(nodeId);
  }
  /** True when `nodeId` has a revocation. */
  isRevoked(nodeId: string): boolean {
    return this.#data.isRevoked(nodeId);
  }
  /** The revocation of `nodeId`, if any. */
  revocation(nodeId: string): RevocationRecord | undefined {
    return this.#data.revocation(nodeId);
  }
  /** A pending advisory revocation of `nodeId`, if any. */
  advisoryRevocation(nodeId: string): RevocationRecord | undefined {
    return this.#data.advisoryRevocation(nodeId);
  }
  /** When an operator last cleared a revocation of `nodeId`. */
  revocationClearedAt(nodeId: string): number | undefined {
    return this.#data.revocationClearedAt(nodeId);
  }
  /** The node id owning `name`, if bound. */
  nameOwner(name: string): string | undefined {
    return this.#data.nameOwner(name);
  }
  /** Names bound to `nodeId`, sorted. */
  namesOf(nodeId: string): string[] {
    return this.#data.namesOf(nodeId);
  }
  /** Every (name, node id) binding, sorted by name. */
  nameBindings(): [string, string][] {
    return this.#data.nameBindings();
  }
  /** Pinned node ids, sorted. */
  peerIds(): string[] {
    return this.#data.peerIds();
  }
  /** Revoked node ids, sorted. */
  revokedIds(): string[] {
    return this.#data.revokedIds();
  }
  /** Every pinned peer, sorted by node id. */
  listPeers(): PeerRecord[] {
    return this.#data.listPeers();
  }
  /** Every revocation, sorted by node id. */
  listRevoked(): RevocationRecord[] {
    return this.#data.listRevoked();
  }

  // ---- operations (each: lock, reload, apply, write; see TrustData for events) ----

  /** Pin a key (see `TrustData.pin`). */
  pin(nodeId: string, pubkeyB64: string, opts: PinOptions = {}) {
    return this.mutate((d, now) => d.pin(nodeId, pubkeyB64, now, opts));
  }
  /** Update `last_seen` of a known peer. */
  touch(nodeId: string, presentedKey?: Uint8Array): Promise<TrustChange> {
    return this.mutate((d, now) => d.touch(nodeId, now, presentedKey));
  }
  /** Change a pinned peer's state. */
  setState(nodeId: string, state: TrustState, opts: ActorOption = {}) {
    return this.mutate((d) => d.setState(nodeId, state, opts));
  }
  /** Delete a pin and release its names. */
  forget(nodeId: string, opts: ActorOption = {}): Promise<TrustChange> {
    return this.mutate((d) => d.forget(nodeId, opts));
  }
  /** Local `trust revoke`: a revocation by our own node (§18.12). */
  revokeLocal(nodeId: string, opts: ActorOption & { reason?: string } = {}) {
    return this.mutate((d, now) => d.revokeLocal(nodeId, this.ownNodeId, now, opts));
  }
  /** Record an accepted REVOCATION (check it with `acceptRevocation` first). */
  recordRevocation(nodeId: string, rev: RevocationInput): Promise<TrustChange> {
    return this.mutate((d) => d.recordRevocation(nodeId, rev));
  }
  /** Record an advisory revocation awaiting operator confirmation (§18.7). */
  recordAdvisoryRevocation(nodeId: string, rev: RevocationInput): Promise<TrustChange> {
    return this.mutate((d) => d.recordAdvisoryRevocation(nodeId, rev));
  }
  /** Operator confirms an advisory revocation. */
  confirmAdvisoryRevocation(nodeId: string): Promise<TrustChange> {
    return this.mutate((d) => d.confirmAdvisoryRevocation(nodeId));
  }
  /** Operator clears a revocation. */
  clearRevocation(nodeId: string, opts: ActorOption = {}): Promise<TrustChange> {
    return this.mutate((d, now) => d.clearRevocation(nodeId, now, opts));
  }
  /** The reference's low-level `observe_capabilities`. */
  observeCapabilities(
    nodeId: string,
    caps: Iterable<unknown>,
  ): Promise<TrustChange & { observation: CapObservation }> {
    return this.mutate((d, now) => d.observeCapabilities(nodeId, caps, now));
  }
  /** The reference's low-level `stash_pending_capability_change`. */
  stashPendingCapabilities(nodeId: string, caps: Iterable<unknown>): Promise<TrustChange> {
    return this.mutate((d) => d.stashPendingCapabilities(nodeId, caps));
  }
  /** The whole §9.2 binding step (observe, stash, demote) in one write. */
  bindCapabilities(
    nodeId: string,
    caps: Iterable<unknown>,
  ): Promise<TrustChange & { observation: CapObservation }> {
    return this.mutate((d, now) => d.bindCapabilities(nodeId, caps, now));
  }
  /** Operator accepts a pending capability change. */
  acceptCapabilityChange(nodeId: string, opts: ActorOption = {}): Promise<TrustChange> {
    return this.mutate((d, now) => d.acceptCapabilityChange(nodeId, now, opts));
  }
  /** Operator rejects a pending capability change (optionally blocking the peer). */
  rejectCapabilityChange(
    nodeId: string,
    opts: ActorOption & { block?: boolean } = {},
  ): Promise<TrustChange> {
    return this.mutate((d, now) => d.rejectCapabilityChange(nodeId, now, opts));
  }
  /** Operator binds a name to a node id. */
  bindName(name: string, nodeId: string, opts: ActorOption = {}): Promise<TrustChange> {
    return this.mutate((d) => d.bindName(name, nodeId, opts));
  }
  /** Operator releases a name. */
  unbindName(name: string, opts: ActorOption = {}): Promise<TrustChange> {
    return this.mutate((d) => d.unbindName(name, opts));
  }
}
