/**
 * The profile-neutral session interface (ARCHITECTURE.md idea 2). A handshake of any wire
 * profile ends in a `Session`; code above `lib/wire` only seals, opens and rekeys through it.
 * Sans-I/O: `seal` returns bytes to write, `open` takes bytes that were read; frames the
 * session itself must send (e.g. a rekey answer) come back in `OpenOk.send`.
 */
import type { IronMeshError } from "../errors.ts";

/** Message priorities (PROTOCOL-0.9 §7.2). */
export type Priority = "LOW" | "NORMAL" | "HIGH" | "CRITICAL";

/** What the node hands a session to send. Omitted fields take the reference's defaults. */
export interface OutboundMessage {
  /** Message type (`MSG`, `PING`, …). */
  type: string;
  /** Payload bytes (default empty). */
  payload?: Uint8Array;
  /** Destination node id, or `"*"` (default) for control frames. */
  destination?: string;
  /** Default `NORMAL`. */
  priority?: Priority;
  /** Default: 16 random bytes as 32 hex characters (user messages pass `str(uuid4())`). */
  msgId?: string;
  /** Hop budget 0..255 (default 3; user messages use 5). */
  ttl?: number;
  /** Relays that already forwarded this message (default none). */
  hops?: string[];
  /** Originator (default: this node, which then adds its inner source signature). */
  source?: string;
  /** Default: `source`. */
  sourceDisplay?: string;
  /** Originator's wall clock in seconds (default now; relays keep the originator's). */
  timestamp?: number;
  /** Default `{}`; `{compressed: true}` for gzip bodies. */
  routing?: Record<string, unknown>;
  /** Default 0. */
  retries?: number;
  /** Originator's inner signature (relays pass it through; never re-signed). */
  sourceSignature?: Uint8Array;
  /** Tag of `sourceSignature` (`v2`). */
  sourceSigScheme?: string;
  /** End-to-end sealed body (a SealedBox to the destination). */
  e2ePayload?: Uint8Array;
  /**
   * The plaintext inside `e2ePayload` when `payload` is stripped (strict confidentiality): the
   * inner signature covers these bytes. Default: `payload`.
   */
  e2ePlaintext?: Uint8Array;
}

/** A message a session accepted. */
export interface InboundMessage {
  type: string;
  /** Payload bytes (for an unsealed e2e frame: the unsealed plaintext). */
  payload: Uint8Array;
  msgId: string;
  source: string;
  sourceDisplay: string;
  destination: string;
  /** Originator's timestamp, seconds. */
  timestamp: number;
  priority: string;
  /** This hop's sequence number. */
  sequence: number;
  ttl: number;
  hops: string[];
  routing: Record<string, unknown>;
  retries: number;
  sourceSignature?: Uint8Array;
  sourceSigScheme?: string;
  e2ePayload?: Uint8Array;
  /**
   * The claimed `source` is authenticated: the frame came straight from it (outer signature)
   * or the originator's inner signature verified.
   */
  sourceAuthenticated: boolean;
  /** For this node (own id, `"*"`, `""`, or a type handled locally) — not to be relayed. */
  terminal: boolean;
  /**
   * True when `e2ePayload` still has to be opened by the caller (no unsealer configured), who
   * then also owes the inner-source check and dedup.
   */
  e2ePending: boolean;
  /** Decrypted with the retiring key during a rekey grace window. */
  previousKey: boolean;
}

/** `open` accepted the frame. `send`: frames to write now, in order, before anything newer. */
export interface OpenOk {
  ok: true;
  message: InboundMessage;
  send: Uint8Array[];
  /** What the session did (or declined to do) with a session-control message, for the log. */
  notice?: string;
}

/** `open` dropped the frame; `error.code` is a stable `FR_*` code. */
export interface OpenRejected {
  ok: false;
  error: IronMeshError;
}

/** Result of `Session.open`. */
export type OpenResult = OpenOk | OpenRejected;

/** An established, encrypted session with one directly connected peer. */
export interface Session {
  /** Wire profile, e.g. `ironmesh/0.9`. */
  readonly profile: string;
  readonly localNodeId: string;
  readonly peerNodeId: string;
  /** Completed rekeys. */
  readonly rekeyCount: number;
  /** A non-secret fingerprint of the current key (for logs and tests). */
  readonly keyId: string;
  /** Seal one message into frame bytes (assigns the next sequence number). Throws IronMeshError. */
  seal(msg: OutboundMessage): Uint8Array;
  /** Verify, decrypt and check one received frame. Never throws for bad input. */
  open(bytes: Uint8Array): OpenResult;
  /** Start a rekey; returns the frame to send, or null when one is already in progress. */
  startRekey(): Uint8Array | null;
  /** Wipe the keys; later calls fail with FR_CLOSED. */
  close(): void;
}
