/**
 * Capability binding per pinned peer (PROTOCOL-0.9 §9.2, `TrustStore.observe_capabilities`):
 * classify an observed capability set against the stored baseline and pending
 * stash, and apply the record changes. Pure functions over a raw record.
 */
import { codePointCompare } from "../json/canonical.ts";
import { pyFloat } from "../json/py_float.ts";
import { capabilityHash, observedCapabilitySet } from "./capability_hash.ts";
import type { RawRecord } from "./records.ts";

/** What an observation means for the binding. */
export type CapObservation =
  | { status: "first-observation"; hash: string; set: string[] }
  | { status: "match"; hash: string; set: string[] }
  | { status: "pending-match"; hash: string; set: string[] }
  | { status: "reverted"; hash: string; set: string[]; clearedPendingHash: string }
  | {
    status: "changed";
    oldHash: string;
    newHash: string;
    oldSet: string[];
    newSet: string[];
    added: string[];
    removed: string[];
  };

/** Added and removed entries between two sets, each sorted by code point. */
export function capabilityDiff(
  oldSet: readonly string[],
  newSet: readonly string[],
): { added: string[]; removed: string[] } {
  const a = new Set(oldSet), b = new Set(newSet);
  return {
    added: [...b].filter((x) => !a.has(x)).sort(codePointCompare),
    removed: [...a].filter((x) => !b.has(x)).sort(codePointCompare),
  };
}

function storedSet(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
}

/** Classify `caps` against a record's baseline and pending stash (no mutation). */
export function classifyCapabilities(rec: RawRecord, caps: Iterable<unknown>): CapObservation {
  const set = observedCapabilitySet(caps);
  const hash = capabilityHash(set);
  const stored = typeof rec.capability_hash === "string" ? rec.capability_hash : undefined;
  const pending = typeof rec.capability_hash_pending === "string"
    ? rec.capability_hash_pending
    : undefined;
  if (stored === undefined) return { status: "first-observation", hash, set };
  if (stored === hash) {
    return pending !== undefined
      ? { status: "reverted", hash, set, clearedPendingHash: pending }
      : { status: "match", hash, set };
  }
  if (pending !== undefined && pending === hash) return { status: "pending-match", hash, set };
  const oldSet = storedSet(rec.capability_set);
  return {
    status: "changed",
    oldHash: stored,
    newHash: hash,
    oldSet,
    newSet: set,
    ...capabilityDiff(oldSet, set),
  };
}

/**
 * Apply an observation the way the reference does: a first observation records
 * the baseline; a change or a revert touches `last_seen`; a revert clears the
 * stash. Returns true when the record changed (and must be saved).
 */
export function applyObservation(rec: RawRecord, obs: CapObservation, now: number): boolean {
  switch (obs.status) {
    case "first-observation":
      rec.last_seen = pyFloat(now);
      rec.capability_hash = obs.hash;
      rec.capability_set = [...obs.set];
      rec.cap_first_observed = pyFloat(now);
      return true;
    case "reverted":
      rec.last_seen = pyFloat(now);
      delete rec.capability_hash_pending;
      delete rec.capability_set_pending;
      return true;
    case "changed":
      rec.last_seen = pyFloat(now);
      return true;
    default:
      return false;
  }
}

/** Stash a not-yet-accepted set (`stash_pending_capability_change`). */
export function stashPending(rec: RawRecord, caps: Iterable<unknown>): void {
  const set = observedCapabilitySet(caps);
  rec.capability_hash_pending = capabilityHash(set);
  rec.capability_set_pending = set;
}

/** Make the pending stash the baseline (`accept_capability_change`); false if none. */
export function acceptPending(rec: RawRecord, now: number): boolean {
  if (typeof rec.capability_hash_pending !== "string") return false;
  rec.capability_hash = rec.capability_hash_pending;
  rec.capability_set = storedSet(rec.capability_set_pending);
  delete rec.capability_hash_pending;
  delete rec.capability_set_pending;
  rec.cap_accepted_at = pyFloat(now);
  return true;
}

/** Drop the pending stash (`trust cap-reject`); false if none. */
export function rejectPending(rec: RawRecord, now: number): boolean {
  if (typeof rec.capability_hash_pending !== "string") return false;
  delete rec.capability_hash_pending;
  delete rec.capability_set_pending;
  rec.cap_rejected_at = pyFloat(now);
  return true;
}
