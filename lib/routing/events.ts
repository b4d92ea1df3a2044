/**
 * Audit events the mesh libraries ask the caller to record. Names and detail keys follow the
 * reference's `audit.py` / `mesh.py` where the reference has the event (PROTOCOL-0.9 §8, §11.5);
 * the few names the reference lacks are marked "ours". The libraries never write the log
 * themselves (sans-I/O): they return these and the daemon appends them.
 */

/** Event names produced under `lib/routing/`. */
export type MeshEventName =
  | "ROUTE_LEARNED"
  | "ROUTE_EXPIRED"
  /** Ours: a route removed by a withdrawal (cost ≥ 16, omission or link loss). */
  | "ROUTE_WITHDRAWN"
  | "MESH_PARTITION_SUSPECTED"
  | "MESSAGE_RELAYED"
  | "TTL_EXPIRED"
  | "ROUTE_LOOP"
  | "NO_ROUTE"
  | "DUPLICATE_DROPPED"
  | "MSG_REPLAY_CROSS_TRANSPORT"
  | "CIRCUIT_BREAKER_TRIPPED"
  | "E2E_DECRYPT_FAILURE"
  | "INNER_SOURCE_SIG_DROP"
  | "CAPABILITY_LEARNED"
  | "CAPABILITY_ANNOUNCE_BAD_SIG";

/** One audit event: its name and the details object (snake_case keys, as the reference). */
export interface MeshEvent {
  event: MeshEventName;
  details: Record<string, unknown>;
}

/** Build a MeshEvent. */
export function meshEvent(event: MeshEventName, details: Record<string, unknown>): MeshEvent {
  return { event, details };
}
