/**
 * Clock sanity: the year must be plausible, and the clock must not be behind the audit log's
 * newest entry (a clock that went backwards writes entries out of order and makes peers
 * reject every frame: frames older than 30 s or more than 5 s ahead are dropped, §18.10).
 */
import { type CheckResult, fail, pass } from "./report.ts";

/** Bounds and tolerance of the clock check. */
export interface ClockOptions {
  /** Earliest plausible year (default 2024: this software did not exist before). */
  minYear?: number;
  /** Latest plausible year (default 2100). */
  maxYear?: number;
  /** Seconds the clock may be behind the last audit entry (default 5: sub-second jitter). */
  toleranceS?: number;
}

const FIX =
  "set the clock from NTP ('timedatectl set-ntp true', or 'chronyc makestep' / 'ntpdate -u pool.ntp.org'); " +
  "peers drop frames more than 30 s old or 5 s ahead";

/** Judge `nowS` (seconds since the epoch) against plausibility and the audit log's newest entry. */
export function checkClock(
  nowS: number,
  lastAuditTs: number | null,
  opts: ClockOptions = {},
): CheckResult {
  const id = "clock", title = "clock";
  const minYear = opts.minYear ?? 2024, maxYear = opts.maxYear ?? 2100;
  const tolerance = opts.toleranceS ?? 5;
  const iso = (s: number) => new Date(s * 1000).toISOString().replace(/\.\d+Z$/, "Z");
  const year = new Date(nowS * 1000).getUTCFullYear();
  if (!Number.isFinite(nowS) || year < minYear || year > maxYear) {
    return fail(id, title, `the system clock says ${iso(nowS)}: not plausible`, FIX);
  }
  if (lastAuditTs !== null && Number.isFinite(lastAuditTs) && nowS + tolerance < lastAuditTs) {
    const behind = lastAuditTs - nowS;
    return fail(
      id,
      title,
      `the clock (${iso(nowS)}) is ${behind.toFixed(0)} s behind the audit log's newest entry (${
        iso(lastAuditTs)
      })`,
      FIX,
    );
  }
  const rel = lastAuditTs === null
    ? "no audit entries to compare with"
    : "not behind the newest audit entry";
  return pass(id, title, `${iso(nowS)} (UTC); ${rel}`);
}
