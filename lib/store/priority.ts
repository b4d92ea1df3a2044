/** Message priorities (PROTOCOL-0.9 §7.2) and the rank order the offline queue uses. */
import { ExitCode, IronMeshError } from "../errors.ts";

/** A message priority. */
export type Priority = "LOW" | "NORMAL" | "HIGH" | "CRITICAL";

/** All priorities, lowest first. */
export const PRIORITIES: readonly Priority[] = ["LOW", "NORMAL", "HIGH", "CRITICAL"];

/** Reference rank: CRITICAL 0 … LOW 3 (smaller = more important); unknown text ranks as NORMAL. */
export function priorityRank(p: string): number {
  switch (p) {
    case "CRITICAL":
      return 0;
    case "HIGH":
      return 1;
    case "LOW":
      return 3;
    default:
      return 2;
  }
}

/** The same rank as an SQL expression over a `priority` column. */
export const PRIORITY_RANK_SQL =
  "CASE priority WHEN 'CRITICAL' THEN 0 WHEN 'HIGH' THEN 1 WHEN 'NORMAL' THEN 2 " +
  "WHEN 'LOW' THEN 3 ELSE 2 END";

/** Check a priority given by our own code; throws `STORE_BAD_PRIORITY` otherwise. */
export function requirePriority(p: unknown): Priority {
  if (typeof p === "string" && (PRIORITIES as readonly string[]).includes(p)) return p as Priority;
  throw new IronMeshError(
    "STORE_BAD_PRIORITY",
    `unknown message priority ${JSON.stringify(p)}`,
    "use one of LOW, NORMAL, HIGH, CRITICAL",
    ExitCode.BAD_INPUT,
  );
}

/** Priority from a peer (the wire does not validate it): unknown values become NORMAL. */
export function normalizePriority(p: unknown): Priority {
  return typeof p === "string" && (PRIORITIES as readonly string[]).includes(p)
    ? p as Priority
    : "NORMAL";
}
