/**
 * Frame rejection codes of the ironmesh/0.9 session layer (PROTOCOL-0.9 §17). Every reason a
 * received frame is dropped, or a frame cannot be sent, maps to one stable `FR_*` code with an
 * operator hint; the message keeps the reference's wording where the reference has one.
 */
import { ExitCode, IronMeshError } from "../../errors.ts";

/** Stable frame error codes. */
export const FrameErrorCode = {
  /** Structurally invalid frame, header or inner envelope. */
  MALFORMED: "FR_MALFORMED",
  /** Encrypted frame without the SIGNED flag (ours: every frame must be signed, §18.5). */
  UNSIGNED: "FR_UNSIGNED",
  /** Outer Ed25519 signature missing or invalid. */
  SIGNATURE: "FR_SIGNATURE",
  /** SecretBox authentication failed (wrong or retired key, tampered ciphertext). */
  DECRYPT: "FR_DECRYPT",
  /** Unauthenticated header disagrees with the encrypted envelope (ours, §18.1). */
  HEADER_MISMATCH: "FR_HEADER_MISMATCH",
  /** Sequence number replayed, out of order, zero or out of range. */
  REPLAY: "FR_REPLAY",
  /** Inner timestamp outside the freshness window. */
  CLOCK_SKEW: "FR_CLOCK_SKEW",
  /** Inner source signature policy dropped the frame (§6.5). */
  INNER_SIGNATURE: "FR_INNER_SIGNATURE",
  /** Declared or produced ciphertext larger than the protocol allows. */
  TOO_LARGE: "FR_TOO_LARGE",
  /** Frame whose inner source is our own node id (reflection, §18.5). */
  OWN_SOURCE: "FR_OWN_SOURCE",
  /** (source, msg_id) already delivered within the dedup window (§18.1). */
  DUPLICATE: "FR_DUPLICATE",
  /** End-to-end sealed payload could not be opened, or disagrees with the plaintext (§18.8). */
  E2E: "FR_E2E",
  /** The send sequence space is exhausted; the session must be rekeyed. */
  SEQUENCE_EXHAUSTED: "FR_SEQUENCE_EXHAUSTED",
  /** The session was closed. */
  CLOSED: "FR_CLOSED",
  /** A message handed to `seal` is invalid (caller error, nothing was sent). */
  BAD_MESSAGE: "FR_BAD_MESSAGE",
} as const;

/** One of the `FR_*` codes. */
export type FrameErrorCodeValue = typeof FrameErrorCode[keyof typeof FrameErrorCode];

const HINTS: Record<FrameErrorCodeValue, string> = {
  FR_MALFORMED: "the peer sent a frame this node cannot parse; check that it runs ironmesh/0.9",
  FR_UNSIGNED: "the peer sent an unsigned frame; only signed frames are accepted",
  FR_SIGNATURE: "the frame was not signed by the peer's identity key (tampering or a wrong peer)",
  FR_DECRYPT: "the frame does not decrypt under the session key; the session may need a new " +
    "handshake",
  FR_HEADER_MISMATCH: "the frame header was altered in transit; check the link for an " +
    "on-path attacker",
  FR_REPLAY: "a frame was replayed or arrived out of order; repeated reports suggest an attack",
  FR_CLOCK_SKEW: "the peer's clock differs from ours; synchronise both clocks (NTP) or raise " +
    "--clock-skew-tolerance",
  FR_INNER_SIGNATURE: "the originator's signature is missing, unknown or invalid; the frame " +
    "may be forged",
  FR_TOO_LARGE: "the message is larger than the 1 MiB frame limit; split it",
  FR_OWN_SOURCE: "a frame claiming to come from this node was reflected back; the peer may be " +
    "hostile",
  FR_DUPLICATE: "the message was already delivered; nothing to do",
  FR_E2E: "the end-to-end sealed payload could not be opened or was altered",
  FR_SEQUENCE_EXHAUSTED: "rekey the session before sending more frames",
  FR_CLOSED: "the session was closed; open a new connection",
  FR_BAD_MESSAGE: "fix the message (type, ttl 0..255, priority, UTF-8 ids) before sending it",
};

/** A rejected frame (or a frame that cannot be sent), with a stable code and an operator hint. */
export class FrameError extends IronMeshError {
  /** Machine-readable detail (inner-source reason such as `missing-on-relayed`, …). */
  readonly detail?: string;
  /** For FR_CLOCK_SKEW: how far the peer's clock is off, in seconds (positive = ahead). */
  readonly skewSeconds?: number;
  /** The frame the error is about, once its envelope was read (duplicates, inner signatures). */
  readonly frame?: { msgId: string; source: string; type: string };

  constructor(
    code: FrameErrorCodeValue,
    message: string,
    extra: {
      detail?: string;
      skewSeconds?: number;
      frame?: { msgId: string; source: string; type: string };
    } = {},
  ) {
    super(code, message, HINTS[code], ExitCode.BAD_INPUT);
    this.name = "FrameError";
    this.detail = extra.detail;
    this.skewSeconds = extra.skewSeconds;
    this.frame = extra.frame;
  }
}
