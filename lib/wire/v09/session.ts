/**
 * An ironmesh/0.9 session with one directly connected peer (PROTOCOL-0.9 §6, §7.4): seals and
 * opens binary v4 frames, assigns sequence numbers, adds the v2 inner source signature to
 * frames this node originates, and runs the receive pipeline in the reference's order —
 * outer signature before decryption, replay guard on the header sequence, inner-source policy,
 * terminal dedup — plus our hardening (signed frames only, header bound to the envelope,
 * frames claiming our own node id dropped). Rekey (§7.4) is handled here: REKEY_* frames are
 * answered from `open`, and the retiring key keeps decrypting for 30 s (monotonic clock) with a
 * snapshot of its epoch's replay state. Sans-I/O: time and randomness are injected.
 */
import type { Clock, Rng } from "../../clock.ts";
import { boxBeforeNm, sha256, toHex, wipe, x25519Base } from "../../crypto/sodium.ts";
import { InvalidKeyError, IronMeshError } from "../../errors.ts";
import { nodeIdOf } from "../../identity/node_id.ts";
import { DedupCache } from "../dedup.ts";
import { MAX_SEQUENCE, type ReplayOptions, ReplayWindow } from "../replay.ts";
import type { InboundMessage, OpenResult, OutboundMessage, Session } from "../session.ts";
import {
  parseRekeyPayload,
  rekeyRequestMessage,
  rekeyResponseMessage,
  uuid4FromBytes,
} from "./control.ts";
import { type Envelope, hasFloatIntField, notUtf8 } from "./envelope.ts";
import { FrameError, FrameErrorCode } from "./errors.ts";
import {
  DECRYPT_FAILED_MESSAGE,
  decryptFrameText,
  type Ed25519Signer,
  type Ed25519Verifier,
  encodeFrame,
  finishDecode,
  nodeSigner,
  nodeVerifier,
  parseFrame,
  sodiumSigner,
  sodiumVerifier,
  verifyFrameSignature,
} from "./frame.ts";
import {
  evaluateInnerSource,
  signInnerSourceV2,
  SOURCE_SIG_REQUIRED_TYPES,
  SOURCE_SIG_SCHEME_V2,
  verifyInnerSourceSignature,
} from "./inner_source.ts";

/** Profile name of this wire protocol. */
export const PROFILE_V09 = "ironmesh/0.9";
/** How long the retiring key still decrypts after a rekey (monotonic ms). */
export const REKEY_GRACE_MS = 30_000;
/** Types handled where they arrive and never relayed, whatever their destination (§6.4). */
export const LOCALLY_HANDLED_TYPES: ReadonlySet<string> = new Set([
  "ROUTE_ANNOUNCE",
  "ROUTE_UNREACHABLE",
  "GROUP_BROADCAST",
  "CAPABILITY_ANNOUNCE",
]);

const PRIORITIES = new Set(["LOW", "NORMAL", "HIGH", "CRITICAL"]);
const SOURCE_CACHE_MAX = 256;

/** Tunables of a v0.9 session. */
export interface V09SessionOptions {
  /** Freshness window: default 30 s back and 5 s ahead, each at most 300 s (§18.10). */
  replay?: ReplayOptions;
  /** Terminal dedup cache, best shared by all sessions of a node; null disables. Default: private. */
  dedup?: DedupCache | null;
  /** Identity key of a claimed originator (live peers, then the trust store); null = unknown. */
  sourceKeyLookup?: (nodeId: string) => Uint8Array | null;
  /** Opens an e2e SealedBox addressed to this node; null when it does not open. */
  unsealE2e?: (sealed: Uint8Array) => Uint8Array | null;
  /** Accept legacy v1 inner signatures (only while the protocol floor is below 0.9). Default false. */
  allowInnerV1?: boolean;
  /** §19 U1: keep direct frames whose inner signature fails, flagged. Default false (drop). */
  innerLabelFallback?: boolean;
  /** Add the inner signature also when the destination is the peer itself (default true, §19 U1). */
  innerSignDirect?: boolean;
  /** Accept header version 3 (default false). */
  acceptVersion3?: boolean;
  /** Ed25519 for the per-frame signatures: `node` (default, ~3× faster) or `sodium` (reference). */
  ed25519?: "node" | "sodium";
  /** Grace window of the retiring key in ms (default 30,000). */
  rekeyGraceMs?: number;
}

/** Everything a session is created from (the handshake's result). */
export interface V09SessionParams {
  /** 32-byte `crypto_box_beforenm` key. */
  sessionKey: Uint8Array;
  /** Our 64-byte libsodium Ed25519 secret key (seed ‖ public). */
  localSecretKey: Uint8Array;
  localNodeId: string;
  /** The peer's Ed25519 identity key (verified during the handshake). */
  peerPublicKey: Uint8Array;
  peerNodeId: string;
  clock: Clock;
  rng: Rng;
  options?: V09SessionOptions;
}

/** Result of handling one REKEY_* message. */
export interface RekeyOutcome {
  /** The session now uses a new key. */
  switched: boolean;
  /** Frame to send (a REKEY_RESPONSE sealed under the old key), if any. */
  send: Uint8Array | null;
  /** Why nothing happened, when `switched` is false. */
  reason?: string;
}

/** Counters for metrics and operator hints. */
export interface SessionCounters {
  sealed: number;
  opened: number;
  /** Rejections by `FR_*` code. */
  rejected: Record<string, number>;
  /** Direct frames kept despite a failing inner signature (§19 U1 fallback). */
  innerLabelMismatches: number;
  /** Clock offset estimated from the last clock-skew rejection (seconds, + = peer ahead). */
  lastSkewSeconds?: number;
}

interface PreviousEpoch {
  key: Uint8Array;
  /** Generation of this key (see `PreOpenContext`). */
  gen: number;
  replay: ReplayWindow;
  untilMs: number;
}

interface PendingRekey {
  secret: Uint8Array;
  rekeyId: string;
}

function keyIdOf(key: Uint8Array): string {
  return toHex(sha256(key).subarray(0, 8));
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

function badMessage(message: string): FrameError {
  return new FrameError(FrameErrorCode.BAD_MESSAGE, message);
}

/** Keys and settings for `preOpenFrame` (from `V09Session.preOpenContext`). */
export interface PreOpenContext {
  /** Keys to try, in this order: the current one, then the retiring one (during its grace). */
  keys: { gen: number; key: Uint8Array }[];
  /** The peer's Ed25519 identity key: outer signatures, and inner ones of frames it originates. */
  peerPublicKey: Uint8Array;
  peerNodeId: string;
  acceptVersion3: boolean;
  allowInnerV1: boolean;
}

/**
 * Result of `preOpenFrame` (structured-cloneable, for a worker to send back). `ok: false` means
 * "let `open` decide" — its error texts and the rekey rules stay in one place.
 */
export type PreOpened =
  | {
    ok: true;
    /** Generation of the key that opened the frame. */
    gen: number;
    /** The header sequence (the envelope's is already bound to it). */
    sequence: number;
    envelope: Envelope;
    /** The inner signature's check against the peer's key, when the peer originated the frame. */
    innerValid?: boolean;
  }
  | { ok: false };

/**
 * The stateless half of `V09Session.open`, for a worker: structure, outer signature (with
 * `peer`, the verifier of `ctx.peerPublicKey`), decryption with the context's keys, envelope
 * parsing and header binding, and — for MSG/REQ/RESP/CONV frames the peer originated — the
 * inner source signature. Never throws; pure (no clock, no state).
 */
export function preOpenFrame(
  bytes: Uint8Array,
  ctx: PreOpenContext,
  peer: Ed25519Verifier,
): PreOpened {
  try {
    const raw = parseFrame(bytes, { acceptVersion3: ctx.acceptVersion3 });
    verifyFrameSignature(raw, peer);
    for (const { gen, key } of ctx.keys) {
      const plain = decryptFrameText(raw, key);
      if (!plain.ok) {
        if (plain.reason === "decrypt") continue;
        return { ok: false };
      }
      // A float-written integer field takes the number-preserving parse, whose values do not
      // survive structured cloning: leave such rare frames to `open`.
      if (hasFloatIntField(plain.text)) return { ok: false };
      const env = finishDecode(raw, plain.text, {}).envelope;
      const pre: PreOpened = { ok: true, gen, sequence: raw.header.sequence, envelope: env };
      if (
        env.e2ePayload === undefined && env.sourceSignature !== undefined &&
        env.source === ctx.peerNodeId && SOURCE_SIG_REQUIRED_TYPES.has(env.type)
      ) {
        pre.innerValid = verifyInnerSourceSignature(
          {
            source: env.source,
            destination: env.destination,
            msgId: env.msgId,
            payload: env.payload,
            signature: env.sourceSignature,
            scheme: env.sourceSigScheme,
          },
          peer,
          ctx.allowInnerV1,
        );
      }
      return pre;
    }
    return { ok: false };
  } catch {
    return { ok: false };
  }
}

/** An established ironmesh/0.9 session. */
export class V09Session implements Session {
  readonly profile = PROFILE_V09;
  readonly localNodeId: string;
  readonly peerNodeId: string;
  readonly counters: SessionCounters = {
    sealed: 0,
    opened: 0,
    rejected: {},
    innerLabelMismatches: 0,
  };

  readonly #clock: Clock;
  readonly #rng: Rng;
  readonly #opts: V09SessionOptions;
  readonly #signer: Ed25519Signer;
  readonly #peerVerifier: Ed25519Verifier;
  readonly #dedup: DedupCache | null;
  readonly #sourceCache = new Map<string, Ed25519Verifier>();
  #key: Uint8Array;
  /** Generation of `#key`: 0 after the handshake, +1 per rekey. */
  #gen = 0;
  #keyId: string;
  #replay: ReplayWindow;
  #prev: PreviousEpoch | null = null;
  #pending: PendingRekey | null = null;
  #nextSeq = 1;
  #rekeyCount = 0;
  #closed = false;

  constructor(p: V09SessionParams) {
    if (p.sessionKey.length !== 32) throw new InvalidKeyError("session key must be 32 bytes");
    const opts = p.options ?? {};
    const sodiumPath = opts.ed25519 === "sodium";
    this.#signer = sodiumPath ? sodiumSigner(p.localSecretKey) : nodeSigner(p.localSecretKey);
    this.#peerVerifier = sodiumPath
      ? sodiumVerifier(p.peerPublicKey)
      : nodeVerifier(p.peerPublicKey);
    if (nodeIdOf(this.#signer.publicKey) !== p.localNodeId) {
      throw new InvalidKeyError("localNodeId is not the node id of the local key");
    }
    if (nodeIdOf(p.peerPublicKey) !== p.peerNodeId) {
      throw new InvalidKeyError("peerNodeId is not the node id of the peer's key");
    }
    if (p.localNodeId === p.peerNodeId) throw new InvalidKeyError("a session needs two nodes");
    this.localNodeId = p.localNodeId;
    this.peerNodeId = p.peerNodeId;
    this.#clock = p.clock;
    this.#rng = p.rng;
    this.#opts = opts;
    this.#dedup = opts.dedup === undefined ? new DedupCache() : opts.dedup;
    this.#key = p.sessionKey.slice();
    this.#keyId = keyIdOf(this.#key);
    this.#replay = new ReplayWindow(opts.replay);
  }

  /** Completed rekeys. */
  get rekeyCount(): number {
    return this.#rekeyCount;
  }

  /** First 8 bytes of SHA-256(current key), hex: identifies the key without revealing it. */
  get keyId(): string {
    return this.#keyId;
  }

  /** The sequence number the next sealed frame gets. */
  get nextSequence(): number {
    return this.#nextSeq;
  }

  /** Whether this node starts periodic rekeys with this peer (the smaller node id does). */
  get isRekeyInitiator(): boolean {
    return this.localNodeId < this.peerNodeId;
  }

  /** Whether a rekey we started is waiting for its response. */
  get rekeyPending(): boolean {
    return this.#pending !== null;
  }

  /** Whether the retiring key of the last rekey still decrypts. */
  get inRekeyGrace(): boolean {
    return this.#prev !== null && this.#clock.monotonicMs() < this.#prev.untilMs;
  }

  // -------------------------------------------------------------------------------------------
  // Sending

  /** Seal one message; assigns the next sequence number. Throws IronMeshError. */
  seal(msg: OutboundMessage): Uint8Array {
    this.#assertOpen();
    const seq = this.#nextSeq;
    if (seq > MAX_SEQUENCE) {
      throw new FrameError(FrameErrorCode.SEQUENCE_EXHAUSTED, "Sequence space exhausted");
    }
    if (typeof msg.type !== "string" || msg.type === "") throw badMessage("type must be non-empty");
    const priority = msg.priority ?? "NORMAL";
    if (!PRIORITIES.has(priority)) throw badMessage(`unknown priority ${priority}`);
    const ttl = msg.ttl ?? 3;
    if (!Number.isInteger(ttl) || ttl < 0 || ttl > 255) throw badMessage(`invalid ttl ${ttl}`);
    const retries = msg.retries ?? 0;
    if (!Number.isSafeInteger(retries) || retries < 0) {
      throw badMessage(`invalid retries ${retries}`);
    }
    const source = msg.source ?? this.localNodeId;
    const destination = msg.destination ?? "*";
    const payload = msg.payload ?? new Uint8Array(0);
    const msgId = msg.msgId ?? this.#rng.bytes(16).toHex();
    if (!msgId.isWellFormed()) throw badMessage("msgId contains a lone surrogate");
    if (!source.isWellFormed()) throw badMessage("source contains a lone surrogate");
    if (!destination.isWellFormed()) throw badMessage("destination contains a lone surrogate");
    const timestamp = msg.timestamp ?? this.#clock.now();
    const env: Envelope = {
      type: msg.type,
      payload,
      msgId,
      source,
      sourceDisplay: msg.sourceDisplay ?? source,
      destination,
      timestamp,
      priority,
      sequence: seq,
      retries,
      routing: msg.routing ?? {},
      ttl,
      hops: msg.hops ?? [],
    };
    if (msg.sourceSignature !== undefined) {
      env.sourceSignature = msg.sourceSignature;
      if (msg.sourceSigScheme !== undefined) env.sourceSigScheme = msg.sourceSigScheme;
    } else if (
      source === this.localNodeId &&
      ((this.#opts.innerSignDirect ?? true) || destination !== this.peerNodeId)
    ) {
      env.sourceSignature = signInnerSourceV2(this.#signer, {
        source,
        destination,
        msgId,
        payload: msg.e2ePlaintext ?? payload,
      });
      env.sourceSigScheme = SOURCE_SIG_SCHEME_V2;
    }
    if (msg.e2ePayload !== undefined) env.e2ePayload = msg.e2ePayload;
    const nonce = this.#rng.bytes(24);
    const frame = encodeFrame(env, { key: this.#key, nonce, signer: this.#signer });
    this.#nextSeq = seq + 1;
    this.counters.sealed++;
    return frame;
  }

  // -------------------------------------------------------------------------------------------
  // Receiving

  /** Verify, decrypt and check one frame from the peer. Never throws for bad input. */
  open(bytes: Uint8Array): OpenResult {
    return this.#counted(() => this.#open(bytes));
  }

  /**
   * The keys and settings `preOpenFrame` needs to do the stateless half of `open` elsewhere
   * (a worker). Holds copies of the session keys: the caller must wipe them when done.
   */
  preOpenContext(): PreOpenContext {
    this.#assertOpen();
    const keys = [{ gen: this.#gen, key: this.#key.slice() }];
    const prev = this.#prev;
    if (prev !== null && this.#clock.monotonicMs() < prev.untilMs) {
      keys.push({ gen: prev.gen, key: prev.key.slice() });
    }
    return {
      keys,
      peerPublicKey: this.#peerVerifier.publicKey.slice(),
      peerNodeId: this.peerNodeId,
      acceptVersion3: this.#opts.acceptVersion3 ?? false,
      allowInnerV1: this.#opts.allowInnerV1 ?? false,
    };
  }

  /**
   * `open` for a frame whose stateless half `preOpenFrame` already did (in order: call it for
   * frames in the order they arrived). The result is exactly `open`'s: the replay guard, rekey
   * grace, inner-source policy and dedup run here; when the pre-open failed, or used a key that
   * is no longer current or in grace, the frame simply goes through `open`.
   */
  openPreOpened(bytes: Uint8Array, pre: PreOpened): OpenResult {
    return this.#counted(() => {
      if (!pre.ok) return this.#open(bytes);
      let previousKey: boolean;
      if (pre.gen === this.#gen) previousKey = false;
      else if (
        this.#prev !== null && pre.gen === this.#prev.gen &&
        this.#clock.monotonicMs() < this.#prev.untilMs
      ) previousKey = true;
      else return this.#open(bytes);
      return this.#accept(pre.sequence, pre.envelope, previousKey, pre.innerValid);
    });
  }

  #counted(run: () => OpenResult): OpenResult {
    try {
      this.#assertOpen();
      const result = run();
      this.counters.opened++;
      return result;
    } catch (e) {
      const error = e instanceof IronMeshError
        ? e
        : new FrameError(FrameErrorCode.MALFORMED, `Frame rejected: ${(e as Error)?.message ?? e}`);
      this.counters.rejected[error.code] = (this.counters.rejected[error.code] ?? 0) + 1;
      if (error instanceof FrameError && error.skewSeconds !== undefined) {
        this.counters.lastSkewSeconds = error.skewSeconds;
      }
      return { ok: false, error };
    }
  }

  #open(bytes: Uint8Array): OpenResult {
    const raw = parseFrame(bytes, { acceptVersion3: this.#opts.acceptVersion3 ?? false });
    verifyFrameSignature(raw, this.#peerVerifier);
    const monoNow = this.#clock.monotonicMs();
    let plain = decryptFrameText(raw, this.#key);
    let previousKey = false;
    if (!plain.ok && plain.reason === "decrypt" && this.#prev !== null) {
      if (monoNow < this.#prev.untilMs) {
        plain = decryptFrameText(raw, this.#prev.key);
        previousKey = plain.ok || plain.reason === "utf8";
      } else {
        this.#retirePrevious();
      }
    }
    if (!plain.ok) {
      if (plain.reason === "utf8") throw notUtf8();
      throw new FrameError(FrameErrorCode.DECRYPT, DECRYPT_FAILED_MESSAGE);
    }
    const env = finishDecode(raw, plain.text, {}).envelope;
    return this.#accept(raw.header.sequence, env, previousKey, undefined);
  }

  /** The stateful half of `open`: replay guard, rekey grace, inner-source policy, dedup. */
  #accept(
    sequence: number,
    env: Envelope,
    previousKey: boolean,
    innerValid: boolean | undefined,
  ): OpenResult {
    const monoNow = this.#clock.monotonicMs();
    const window = previousKey ? this.#prev!.replay : this.#replay;
    const rejection = window.check(sequence, env.timestamp, this.#clock.now());
    if (rejection) {
      const code = rejection.kind === "clock-skew"
        ? FrameErrorCode.CLOCK_SKEW
        : FrameErrorCode.REPLAY;
      throw new FrameError(code, rejection.reason, { skewSeconds: rejection.skewSeconds });
    }
    // The first frame under the new key shows the peer has switched: retire the old key.
    if (!previousKey && this.#prev !== null) this.#retirePrevious();

    if (env.source === this.localNodeId) {
      throw new FrameError(FrameErrorCode.OWN_SOURCE, "Frame claims this node as its source");
    }
    const isRekey = env.type === "REKEY_REQUEST" || env.type === "REKEY_RESPONSE";
    if (isRekey && env.source !== this.peerNodeId) {
      throw new FrameError(FrameErrorCode.MALFORMED, `${env.type} from a node other than the peer`);
    }
    const dest = env.destination;
    const terminal = LOCALLY_HANDLED_TYPES.has(env.type) || dest === this.localNodeId ||
      dest === "*" || dest === "";

    let authenticated = env.source === this.peerNodeId;
    let e2ePending = false;
    if (env.e2ePayload === undefined) {
      authenticated = this.#innerSource(env, innerValid) || authenticated;
    } else if (terminal) {
      const unseal = this.#opts.unsealE2e;
      if (unseal) {
        const opened = unseal(env.e2ePayload);
        if (opened === null) throw new FrameError(FrameErrorCode.E2E, "E2E unseal failed");
        if (env.payload.length > 0 && !bytesEqual(env.payload, opened)) {
          throw new FrameError(FrameErrorCode.E2E, "Plaintext payload differs from the sealed one");
        }
        env.payload = opened;
        authenticated = this.#innerSource(env) || authenticated;
      } else {
        e2ePending = true;
      }
    }
    if (terminal && !e2ePending && this.#dedup?.checkAndAdd(env.source, env.msgId, monoNow)) {
      throw new FrameError(FrameErrorCode.DUPLICATE, `Duplicate message ${env.msgId}`, {
        frame: { msgId: env.msgId, source: env.source, type: env.type },
      });
    }

    const message: InboundMessage = {
      type: env.type,
      payload: env.payload,
      msgId: env.msgId,
      source: env.source,
      sourceDisplay: env.sourceDisplay,
      destination: env.destination,
      timestamp: env.timestamp,
      priority: env.priority,
      sequence: env.sequence,
      ttl: env.ttl,
      hops: env.hops,
      routing: env.routing,
      retries: env.retries,
      sourceAuthenticated: authenticated,
      terminal,
      e2ePending,
      previousKey,
    };
    if (env.sourceSignature !== undefined) message.sourceSignature = env.sourceSignature;
    if (env.sourceSigScheme !== undefined) message.sourceSigScheme = env.sourceSigScheme;
    if (env.e2ePayload !== undefined) message.e2ePayload = env.e2ePayload;

    const send: Uint8Array[] = [];
    let notice: string | undefined;
    if (isRekey) {
      const outcome = env.type === "REKEY_REQUEST"
        ? this.handleRekeyRequest(message)
        : this.handleRekeyResponse(message);
      if (outcome.send) send.push(outcome.send);
      notice = outcome.reason;
    }
    return notice === undefined ? { ok: true, message, send } : { ok: true, message, send, notice };
  }

  /**
   * Run the inner-source policy; throws on drop, returns whether the originator verified.
   * `precomputed`: the signature's check against the peer's key, done by `preOpenFrame`.
   */
  #innerSource(env: Envelope, precomputed?: boolean): boolean {
    const decision = evaluateInnerSource(
      {
        type: env.type,
        source: env.source,
        destination: env.destination,
        msgId: env.msgId,
        payload: env.payload,
        signature: env.sourceSignature,
        scheme: env.sourceSigScheme,
      },
      this.peerNodeId,
      (id) => this.#lookupSource(id),
      {
        allowV1: this.#opts.allowInnerV1 ?? false,
        labelFallback: this.#opts.innerLabelFallback ?? false,
        precomputedValid: env.source === this.peerNodeId ? precomputed : undefined,
      },
    );
    if (!decision.accept) {
      throw new FrameError(
        FrameErrorCode.INNER_SIGNATURE,
        `Inner source signature check failed (${decision.reason}) for ${env.type} from ${env.source}`,
        {
          detail: decision.reason,
          frame: { msgId: env.msgId, source: env.source, type: env.type },
        },
      );
    }
    if (decision.labelMismatch) this.counters.innerLabelMismatches++;
    return decision.authenticated;
  }

  #lookupSource(nodeId: string): Ed25519Verifier | null {
    if (nodeId === this.peerNodeId) return this.#peerVerifier;
    const pk = this.#opts.sourceKeyLookup?.(nodeId) ?? null;
    if (pk === null) return null;
    const cached = this.#sourceCache.get(nodeId);
    if (cached && bytesEqual(cached.publicKey, pk)) return cached;
    let verifier: Ed25519Verifier;
    try {
      verifier = this.#opts.ed25519 === "sodium" ? sodiumVerifier(pk) : nodeVerifier(pk);
    } catch {
      return null; // an unusable key counts as unknown
    }
    if (this.#sourceCache.size >= SOURCE_CACHE_MAX) {
      this.#sourceCache.delete(this.#sourceCache.keys().next().value!);
    }
    this.#sourceCache.set(nodeId, verifier);
    return verifier;
  }

  // -------------------------------------------------------------------------------------------
  // Rekey (§7.4)

  /** Start a rekey: REKEY_REQUEST under the current key, or null when one is already pending. */
  startRekey(): Uint8Array | null {
    this.#assertOpen();
    if (this.#pending !== null) return null;
    const secret = this.#rng.bytes(32);
    const publicKey = x25519Base(secret);
    const rekeyId = uuid4FromBytes(this.#rng.bytes(16));
    this.#pending = { secret, rekeyId };
    try {
      return this.seal(rekeyRequestMessage(this.localNodeId, publicKey, rekeyId));
    } catch (e) {
      this.#dropPending();
      throw e;
    }
  }

  /**
   * Answer a REKEY_REQUEST (called by `open`): on crossed requests the smaller node id keeps
   * its own and ignores the peer's, the larger abandons its own. Otherwise derive the new key,
   * seal REKEY_RESPONSE under the old key, then switch.
   */
  handleRekeyRequest(msg: InboundMessage): RekeyOutcome {
    this.#assertOpen();
    let req;
    try {
      req = parseRekeyPayload(msg.payload);
    } catch (e) {
      return {
        switched: false,
        send: null,
        reason: `Invalid REKEY_REQUEST: ${(e as Error).message}`,
      };
    }
    if (this.#pending !== null) {
      if (this.isRekeyInitiator) {
        return {
          switched: false,
          send: null,
          reason: "Crossed REKEY_REQUEST ignored (we initiate)",
        };
      }
      this.#dropPending();
    }
    const secret = this.#rng.bytes(32);
    let newKey: Uint8Array;
    let publicKey: Uint8Array;
    try {
      newKey = boxBeforeNm(req.newEphemeralPublic, secret);
      publicKey = x25519Base(secret);
    } catch {
      return { switched: false, send: null, reason: "REKEY_REQUEST carries an invalid key" };
    } finally {
      wipe(secret);
    }
    const response = this.seal(rekeyResponseMessage(this.localNodeId, publicKey, req.rekeyId));
    this.#switchKey(newKey);
    return { switched: true, send: response };
  }

  /** Complete our rekey on its REKEY_RESPONSE (called by `open`); other ids are ignored. */
  handleRekeyResponse(msg: InboundMessage): RekeyOutcome {
    this.#assertOpen();
    let res;
    try {
      res = parseRekeyPayload(msg.payload);
    } catch (e) {
      return {
        switched: false,
        send: null,
        reason: `Invalid REKEY_RESPONSE: ${(e as Error).message}`,
      };
    }
    const pending = this.#pending;
    if (pending === null || pending.rekeyId !== res.rekeyId) {
      return { switched: false, send: null, reason: "Rekey ID mismatch" };
    }
    let newKey: Uint8Array;
    try {
      newKey = boxBeforeNm(res.newEphemeralPublic, pending.secret);
    } catch {
      return { switched: false, send: null, reason: "REKEY_RESPONSE carries an invalid key" };
    } finally {
      this.#dropPending();
    }
    this.#switchKey(newKey);
    return { switched: true, send: null };
  }

  #switchKey(newKey: Uint8Array): void {
    if (this.#prev !== null) wipe(this.#prev.key);
    this.#prev = {
      key: this.#key,
      gen: this.#gen,
      replay: this.#replay.restore(this.#replay.snapshot()),
      untilMs: this.#clock.monotonicMs() + (this.#opts.rekeyGraceMs ?? REKEY_GRACE_MS),
    };
    this.#key = newKey;
    this.#gen++;
    this.#keyId = keyIdOf(newKey);
    this.#replay = new ReplayWindow(this.#opts.replay);
    this.#nextSeq = 1;
    this.#rekeyCount++;
  }

  #retirePrevious(): void {
    if (this.#prev !== null) wipe(this.#prev.key);
    this.#prev = null;
  }

  #dropPending(): void {
    if (this.#pending !== null) wipe(this.#pending.secret);
    this.#pending = null;
  }

  // -------------------------------------------------------------------------------------------

  /** Wipe all key material; later calls fail with FR_CLOSED. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    wipe(this.#key);
    this.#retirePrevious();
    this.#dropPending();
  }

  #assertOpen(): void {
    if (this.#closed) throw new FrameError(FrameErrorCode.CLOSED, "Session is closed");
  }
}
