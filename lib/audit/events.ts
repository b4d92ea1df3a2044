/** Audit event names written by the reference (`audit.py`, `bridge.py`; PROTOCOL-0.9 §11.5). */

/** Every event name the reference defines, in its source order. */
export const AUDIT_EVENTS = [
  "KEY_ROTATION",
  "TOFU_NEW_PEER",
  "TOFU_MISMATCH",
  "AUTH_FAILURE",
  "AUTH_IP_BLOCKED",
  "DECRYPT_FAILURE",
  "SIGNATURE_FAILURE",
  "REPLAY_DETECTED",
  "PEER_CONNECT",
  "PEER_DISCONNECT",
  "GUI_ACCESS",
  "STARTUP",
  "SHUTDOWN",
  "PEER_DROPPED_LONG",
  "ROUTE_ANNOUNCED",
  "ROUTE_LEARNED",
  "ROUTE_EXPIRED",
  "MESSAGE_RELAYED",
  "TTL_EXPIRED",
  "ROUTE_LOOP",
  "NO_ROUTE",
  "DUPLICATE_DROPPED",
  "MESH_PARTITION_SUSPECTED",
  "CIRCUIT_BREAKER_TRIPPED",
  "CAPABILITY_LEARNED",
  "E2E_DECRYPT_FAILURE",
  "LOG_ROTATED",
  "MSG_GATED_QUEUE",
  "MSG_GATED_DROP",
  "PEER_PROMOTED",
  "PEER_BLOCKED",
  "PEER_CAP_SET_CHANGED",
  "PEER_CAP_BASELINE",
  "PEER_CAP_ACCEPTED",
  "MSG_REPLAY_CROSS_TRANSPORT",
  "PEER_REVOKED_LOCAL",
  "PEER_STATE_CHANGED",
  "PEER_CAP_BINDING_PARTIAL",
  "TRUST_STORE_ENCRYPTED",
  "STRICT_TLS_ENABLED",
  "GLOBAL_RATE_LIMIT_TRIGGERED",
  "CAPABILITY_ANNOUNCE_BAD_SIG",
  "INNER_SOURCE_SIG_DROP",
  "INVITE_ACCEPTED",
  "INVITE_REJECTED",
  "GLOBAL_RATE_CAP_CONFIGURED",
] as const;

/** One of the reference's event names. */
export type AuditEventName = typeof AUDIT_EVENTS[number];

/** The anchor written as the first entry of a new file after rotation. */
export const EVENT_LOG_ROTATED = "LOG_ROTATED";

const KNOWN = new Set<string>(AUDIT_EVENTS);

/** True if `name` is an event the reference defines (others are still accepted by the chain). */
export function isKnownEvent(name: string): name is AuditEventName {
  return KNOWN.has(name);
}
