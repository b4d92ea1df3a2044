/**
 * `ironmesh doctor` results: one entry per check, ✓ pass / ✗ fail / ○ skip, each failure
 * with a concrete fix. Skipped checks (something needed to run them is unavailable) do not
 * fail the run; the summary says how many were skipped.
 */

/** A check's outcome. */
export type CheckStatus = "pass" | "fail" | "skip";

/** One timed stage of a multi-step check (the handshake of `--peer`). */
export interface Stage {
  name: string;
  status: CheckStatus;
  /** Milliseconds the stage took (null when it did not run). */
  ms: number | null;
  detail: string;
}

/** One checklist line. */
export interface CheckResult {
  /** Stable id for scripts (`state-dir`, `keys`, `audit-chain`, …). */
  id: string;
  /** Short label shown in the checklist. */
  title: string;
  status: CheckStatus;
  /** What was found. */
  detail: string;
  /** What to do: required for "fail", says how to enable the check for "skip". */
  fix?: string;
  stages?: Stage[];
}

/** A passing check. */
export function pass(id: string, title: string, detail: string): CheckResult {
  return { id, title, status: "pass", detail };
}

/** A failing check with its fix. */
export function fail(id: string, title: string, detail: string, fix: string): CheckResult {
  return { id, title, status: "fail", detail, fix };
}

/** A skipped check, with how to make it run. */
export function skip(id: string, title: string, detail: string, fix?: string): CheckResult {
  return fix === undefined ? { id, title, status: "skip", detail } : {
    id,
    title,
    status: "skip",
    detail,
    fix,
  };
}

/** Counts over a run. `ok` is true when nothing failed. */
export interface Summary {
  ok: boolean;
  passed: number;
  failed: number;
  skipped: number;
}

/** Count the results. */
export function summarize(results: CheckResult[]): Summary {
  const n = (s: CheckStatus) => results.filter((r) => r.status === s).length;
  const failed = n("fail");
  return { ok: failed === 0, passed: n("pass"), failed, skipped: n("skip") };
}

/** The mark of a status: ✓ ✗ ○. */
export function mark(status: CheckStatus): string {
  return status === "pass" ? "✓" : status === "fail" ? "✗" : "○";
}
