/**
 * Verify an audit set held in memory (a backup being restored) the way
 * `ironmesh audit verify --archives` verifies it on disk: each file's HMAC chain from
 * genesis, the LOG_ROTATED anchor linking each later file to the one before, and the
 * checkpoint's pins (catches entries cut from the end). Nothing is written anywhere.
 *
 * A reference backup holds only the last 10,000 lines of the live log (PROTOCOL-0.9 §18.9):
 * with `allowAnchor`, a single live file that fails from genesis is verified from an anchor
 * (its first entry's hmac is trusted, the chain is checked from line 2).
 */
import { comparePins, parseCheckpoint, pinWants } from "../audit/checkpoint.ts";
import { EVENT_LOG_ROTATED } from "../audit/events.ts";
import { MAX_ARCHIVES } from "../audit/files.ts";
import { logicalLines, scanBytes } from "../audit/scan.ts";
import { verifyBytes } from "../audit/verify.ts";
import { GENESIS_HMAC } from "../audit/chain.ts";

/** One log file, by its name in the state directory. */
export interface AuditSetFile {
  name: string;
  bytes: Uint8Array;
}

/** The verdict on an audit set. */
export interface AuditSetResult {
  ok: boolean;
  /** genesis: every file verified from the genesis hmac; anchor: a reference tail from its first line. */
  mode: "genesis" | "anchor";
  /** Lines checked (across files). */
  entries: number;
  /** Global 1-based line of the first problem, counted from the oldest file. */
  firstBadLine: number | null;
  message: string;
  /** missing: no checkpoint; stale: older than every kept archive (not checkable). */
  checkpoint: "ok" | "missing" | "stale" | "invalid" | "truncated" | "unchecked";
  /** With mode "anchor": the trusted first entry. */
  anchor?: { hmac: string; timestamp: number };
}

/** Options of `verifyAuditSet`. */
export interface AuditSetOptions {
  /** Require a checkpoint signature by this Ed25519 public key when the checkpoint is signed. */
  publicKey?: Uint8Array;
  /** Verify a single live file that fails from genesis from its first entry instead. */
  allowAnchor?: boolean;
}

const dec = new TextDecoder();

function firstEntry(bytes: Uint8Array): Record<string, unknown> | null {
  let text: string;
  try {
    text = dec.decode(bytes.subarray(0, Math.min(bytes.length, 1 << 20)));
  } catch {
    return null;
  }
  for (const physical of text.split("\n")) {
    const lines = logicalLines(physical);
    if (!lines.length) continue;
    try {
      const v = JSON.parse(lines[0]);
      return v !== null && typeof v === "object" && !Array.isArray(v) ? v : null;
    } catch {
      return null;
    }
  }
  return null;
}

/**
 * Verify `files` (oldest first, the live log last) and the checkpoint text (null when the
 * backup has none) with the audit key.
 */
export function verifyAuditSet(
  files: AuditSetFile[],
  checkpointText: string | null,
  key: Uint8Array,
  opts: AuditSetOptions = {},
): AuditSetResult {
  const fail = (
    line: number | null,
    message: string,
    checkpoint: AuditSetResult["checkpoint"] = "unchecked",
  ): AuditSetResult => ({
    ok: false,
    mode: "genesis",
    entries: line ?? 0,
    firstBadLine: line,
    message,
    checkpoint,
  });
  let offset = 0;
  let prevTail: string | null = null;
  const firstEvents: (string | null)[] = [];
  for (let i = 0; i < files.length; i++) {
    const f = files[i];
    const r = verifyBytes(f.bytes, key);
    if (!r.ok) {
      if (opts.allowAnchor && files.length === 1 && checkpointText === null) {
        const a = verifyBytes(f.bytes, key, { anchored: true });
        if (a.ok && a.anchor) {
          return {
            ok: true,
            mode: "anchor",
            entries: a.entries,
            firstBadLine: null,
            message: `${a.entries} entries verified from the anchor at line 1 (the backup holds ` +
              `only the log's tail; it cannot be verified from genesis)`,
            checkpoint: "missing",
            anchor: a.anchor,
          };
        }
      }
      const at = r.firstBadLine === null ? null : offset + r.firstBadLine;
      return fail(
        at,
        `${f.name}: ${r.message.replace(/line (\d+)/, (_, n) => `line ${offset + Number(n)}`)}`,
      );
    }
    const first = firstEntry(f.bytes);
    firstEvents.push(typeof first?.event === "string" ? first.event : null);
    if (i > 0) {
      const d = first?.details;
      const tail = d !== null && typeof d === "object" && !Array.isArray(d)
        ? (d as Record<string, unknown>).previous_tail_hmac
        : undefined;
      if (first?.event !== EVENT_LOG_ROTATED || tail !== (prevTail ?? GENESIS_HMAC)) {
        return fail(
          offset + 1,
          `line ${offset + 1}: the first entry of ${f.name} is not a LOG_ROTATED anchor ` +
            `carrying the previous file's last hmac (an archive is missing or out of order)`,
        );
      }
    }
    offset += r.entries;
    prevTail = r.headHmac;
  }
  const ok = (checkpoint: AuditSetResult["checkpoint"], note = ""): AuditSetResult => ({
    ok: true,
    mode: "genesis",
    entries: offset,
    firstBadLine: null,
    message: `${offset} entries verified from genesis across ${files.length} file(s)${note}`,
    checkpoint,
  });
  if (checkpointText === null) return ok("missing", "; no checkpoint");
  let read = parseCheckpoint(checkpointText, key);
  if (read.status === "ok" && read.signed && opts.publicKey) {
    read = parseCheckpoint(checkpointText, key, { expectedPublicKey: opts.publicKey });
  }
  if (read.status !== "ok") {
    const problem = read.status === "invalid" ? read.problem : "missing";
    return fail(null, `the audit checkpoint is invalid: ${problem}`, "invalid");
  }
  const pins = read.checkpoint.body.files;
  const want = pinWants(pins);
  const scans = files.map((f) => scanBytes(f.name, f.bytes, want));
  const cmp = comparePins(pins, scans, {
    complete: true,
    full: files.some((f) => f.name.endsWith(`.${MAX_ARCHIVES}`)),
    firstEvents,
  });
  if (cmp.status === "truncated") {
    let line: number | null = null;
    if (cmp.bad) {
      line = files.slice(0, cmp.bad.scan).reduce((n, _f, j) => n + scans[j].lines, 0) +
        cmp.bad.line;
    }
    return fail(line, cmp.problems[0] ?? "the log does not match its checkpoint", "truncated");
  }
  if (cmp.status === "stale") {
    return ok("stale", "; the checkpoint is older than every kept archive (not checked)");
  }
  return ok("ok", "; checkpoint matches");
}
