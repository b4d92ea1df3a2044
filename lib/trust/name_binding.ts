/**
 * Name binding (PROTOCOL-0.9 §18.2, ours): the first node id seen under a name
 * owns it. Another key presenting the same name is a `name-conflict`: refused,
 * audited, and never returned by name resolution until an operator acts
 * (`trust forget <owner>`, `trust pin <id> <key> --name`, or `bindName`).
 * Bindings persist in the trust-store plaintext under the extra key `"names"`
 * (`{name: node_id}`); the reference loader reads only `peers` and `revoked`, so
 * the file stays loadable there (a reference *save* drops the bindings).
 */

/** Longest name we bind (longer names are accepted but never bound). */
export const MAX_BOUND_NAME_LENGTH = 256;

/** The name as bound (exact, case-sensitive), or null when it cannot be bound (empty, too long). */
export function bindableName(name: unknown): string | null {
  if (typeof name !== "string") return null;
  if (name.trim() === "" || name.length > MAX_BOUND_NAME_LENGTH) return null;
  return name;
}

/** Read access to the name table. */
export interface NameTable {
  /** The node id owning `name`, if bound. */
  nameOwner(name: string): string | undefined;
}

/** How a presented (name, node id) pair relates to the table. */
export type NameStatus =
  | { status: "unbindable" }
  | { status: "unbound"; name: string }
  | { status: "owned"; name: string }
  | { status: "conflict"; name: string; owner: string };

/** Classify a presented name for `nodeId`. */
export function nameStatus(table: NameTable, name: unknown, nodeId: string): NameStatus {
  const n = bindableName(name);
  if (n === null) return { status: "unbindable" };
  const owner = table.nameOwner(n);
  if (owner === undefined) return { status: "unbound", name: n };
  return owner === nodeId ? { status: "owned", name: n } : { status: "conflict", name: n, owner };
}
