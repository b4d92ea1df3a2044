/**
 * Audit chain verification, result-compatible with the reference's `verify()` and
 * `verify_chain_across_archives()` (PROTOCOL-0.9 §11.5, vectors README quirk 13):
 * line numbers are 1-based, count only non-blank lines and run across archives
 * from the oldest file; the first failing line is reported and checking stops.
 *
 * Fast path: a line we (or the reference) wrote is entry_data with
 * `"hmac":"<64 hex>",` inserted before `"timestamp":`, so cutting that substring
 * out gives the MAC input without parsing. Lines that fail it are re-parsed and
 * re-serialized with CANON like the reference does, so reordered keys or raw UTF-8
 * still verify, as in Python.
 *
 * Our decisions beyond the reference:
 * - A torn line (an unparsable fragment shaped like the start of an entry, left by
 *   an interrupted write) that is followed by an entry chaining from the last good
 *   one is tolerated: the writer recovered there. It is listed in `tornLines`.
 *   A torn last line (not yet recovered) still fails, as in the reference. Use
 *   `strict: true` to get exactly the reference's verdict for every line.
 * - `NaN`/`Infinity` in a line and invalid UTF-8 fail at that line (the reference
 *   accepts NaN and reports decode errors at an earlier line).
 * - With a checkpoint next to the log (see checkpoint.ts), whole lines cut from the
 *   end, and a tail cut and re-chained, are reported as `truncated`.
 */
import { constantTimeEqualString, utf8 } from "../crypto/sodium.ts";
import { JsonError } from "../json/parse.ts";
import {
  chainHmac,
  GENESIS_HMAC,
  HMAC_FIELD_LEN,
  locateHmacField,
  parseLineForVerify,
} from "./chain.ts";
import { EVENT_LOG_ROTATED } from "./events.ts";
import { checkpointPathFor, logFilesOldestFirst, MAX_ARCHIVES, readFileOrNull } from "./files.ts";
import { ChainMac } from "./hmac.ts";
import { emptyScan, type FileScan, logicalLines, looksTorn } from "./scan.ts";
import { type CheckpointRead, comparePins, pinWants, readCheckpoint } from "./checkpoint.ts";

const latin1 = new TextDecoder("latin1");
const utf8Fatal = new TextDecoder("utf-8", { fatal: true });
const GENESIS_BYTES = utf8(GENESIS_HMAC);
/** Bytes of log copied into the wasm heap at a time for the fast path. */
const STAGE_BYTES = 1 << 22;

/** Why verification failed. */
export type VerifyReason =
  | "hmac-mismatch"
  | "malformed"
  | "torn-tail"
  | "bad-anchor"
  | "truncated"
  | "checkpoint-invalid";

/** Options for `verifyLog`. */
export interface VerifyOptions {
  /** Walk `.5 … .1` then the live file, requiring LOG_ROTATED anchors (`audit verify --archives`). */
  archives?: boolean;
  /** Exactly the reference's verdict: any unparsable line fails (no torn-line tolerance). */
  strict?: boolean;
  /** Use the checkpoint (default true: next to the log); a path; or false to ignore it. */
  checkpoint?: boolean | string;
  /** Require a checkpoint signature by this Ed25519 public key. */
  checkpointPublicKey?: Uint8Array;
  /** Trust the first entry's hmac and verify from line 2 (a restored tail, §18.9). */
  anchored?: boolean;
}

/** One file as verified. */
export interface FileReport {
  path: string;
  /** Global line number of this file's first line. */
  firstLine: number;
  lines: number;
  firstHmac: string | null;
  lastHmac: string | null;
  bytes: number;
}

/** What the checkpoint said. */
export interface CheckpointReport {
  status:
    | "ok"
    | "missing"
    | "invalid"
    | "truncated"
    | "stale"
    | "needs-archives"
    | "unchecked"
    | "disabled";
  path: string | null;
  problems: string[];
  signed: boolean;
  entryCount?: number;
  headHmac?: string;
  time?: number;
}

/** The outcome of verifying a log. */
export interface VerifyResult {
  ok: boolean;
  /** Lines examined; on failure up to and including the bad line (the reference's entries_checked). */
  entries: number;
  /** 1-based global line number of the first problem, or null. */
  firstBadLine: number | null;
  reason: VerifyReason | null;
  /** One line for humans. */
  message: string;
  /** hmac of the last verified entry of the last file read (genesis when none). */
  headHmac: string;
  files: FileReport[];
  /** Torn lines that were tolerated because the next entry chained past them. */
  tornLines: number[];
  checkpoint: CheckpointReport;
  /** With `anchored`: the trusted first entry. */
  anchor?: { hmac: string; timestamp: number };
}

interface FileFailure {
  line: number;
  reason: VerifyReason;
  message: string;
}

interface FileOutcome {
  scan: FileScan;
  firstEvent: string | null;
  torn: number[];
  fail?: FileFailure;
  anchor?: { hmac: string; timestamp: number };
}

interface FileContext {
  mac: ChainMac;
  strict: boolean;
  startLine: number;
  /** Required previous_tail_hmac of the first entry (archives mode, not the oldest file). */
  anchorPrev: string | null;
  want: (firstHmac: string) => number[];
  anchored: boolean;
}

function firstEntryInfo(text: string): { event: unknown; details: unknown; timestamp: unknown } {
  try {
    const o = JSON.parse(text);
    if (o !== null && typeof o === "object" && !Array.isArray(o)) {
      return { event: o.event, details: o.details, timestamp: o.timestamp };
    }
  } catch { /* verified lines always parse */ }
  return { event: null, details: null, timestamp: null };
}

/** Verify one file's bytes. */
function verifyFileBytes(path: string, bytes: Uint8Array, ctx: FileContext): FileOutcome {
  const { mac, strict } = ctx;
  const scan = emptyScan(path, bytes.length);
  const out: FileOutcome = { scan, firstEvent: null, torn: [] };
  // Staged region: bytes[chunkStart, chunkEnd) lives at heap[base, …) for the fast path.
  let chunkStart = 0, chunkEnd = 0, base = 0;
  // The previous hmac as JS bytes (for strings) and as a heap pointer (for the fast path).
  let prev = GENESIS_BYTES, prevOff = 0;
  let prevHeap = mac.setPrev(GENESIS_BYTES);
  let wanted: Set<number> | null = null;
  const pendingTorn: number[] = [];
  let line = 0;
  const g = (local: number) => ctx.startLine + local;
  const fail = (local: number, reason: VerifyReason, message: string): FileOutcome => {
    out.fail = { line: g(local), reason, message };
    scan.lines = local;
    if (scan.lastHmacLine > 0) scan.lastHmac = latin1.decode(prev.subarray(prevOff, prevOff + 64));
    return out;
  };

  /** Bookkeeping after line `line` verified; returns a failure for a bad anchor. */
  const accepted = (hb: Uint8Array, ho: number, text: () => string): FileOutcome | null => {
    if (scan.firstHmac === null) {
      const hex = latin1.decode(hb.subarray(ho, ho + 64));
      scan.firstHmac = hex;
      const info = firstEntryInfo(text());
      out.firstEvent = typeof info.event === "string" ? info.event : null;
      const w = ctx.want(hex);
      if (w.length) wanted = new Set(w);
      if (ctx.anchorPrev !== null) {
        const d = info.details;
        const tail = d !== null && typeof d === "object" && !Array.isArray(d)
          ? (d as Record<string, unknown>).previous_tail_hmac
          : undefined;
        if (info.event !== EVENT_LOG_ROTATED || tail !== ctx.anchorPrev) {
          return fail(
            line,
            "bad-anchor",
            `line ${g(line)}: the first entry of ${path} is not a LOG_ROTATED anchor ` +
              `carrying the previous file's last hmac`,
          );
        }
      }
    }
    if (pendingTorn.length) {
      for (const t of pendingTorn) out.torn.push(g(t));
      pendingTorn.length = 0;
    }
    scan.lastHmacLine = line;
    if (wanted !== null && wanted.has(line)) {
      scan.wanted.set(line, latin1.decode(hb.subarray(ho, ho + 64)));
    }
    prev = hb;
    prevOff = ho;
    prevHeap = hb === bytes && ho >= chunkStart && ho + 64 <= chunkEnd
      ? base + ho - chunkStart
      : mac.setPrev(hb.subarray(ho, ho + 64));
    return null;
  };

  const n = bytes.length;
  let pos = 0;
  while (pos < n) {
    let nl = bytes.indexOf(10, pos);
    if (nl < 0) nl = n;
    const start = pos, end = nl;
    pos = nl + 1;
    if (start === end) continue;
    const k = locateHmacField(bytes, start, end);
    if (k >= 0) {
      if (ctx.anchored && line === 0 && scan.firstHmac === null && pendingTorn.length === 0) {
        // Restored tail: the first entry is trusted, not verified.
        line++;
        const text = () => utf8Fatal.decode(bytes.subarray(start, end));
        const info = firstEntryInfo(text());
        out.anchor = {
          hmac: latin1.decode(bytes.subarray(k + 8, k + 72)),
          timestamp: Number(info.timestamp),
        };
        const r = accepted(bytes, k + 8, text);
        if (r) return r;
        continue;
      }
      if (end > chunkEnd) {
        // Keep the previous hmac alive across re-staging, then stage the next chunk of lines.
        if (prevHeap !== mac.prevSlot) prevHeap = mac.setPrev(prevHeap);
        chunkStart = start;
        const target = start + STAGE_BYTES;
        if (target >= n) chunkEnd = n;
        else {
          const cut = bytes.lastIndexOf(10, target);
          chunkEnd = cut >= end ? cut : end;
        }
        base = mac.stage(bytes.subarray(chunkStart, chunkEnd));
      }
      const b = base - chunkStart;
      if (
        mac.verifyStaged(
          prevHeap,
          b + start,
          k - start,
          b + k + HMAC_FIELD_LEN,
          end - k - HMAC_FIELD_LEN,
          b + k + 8,
        )
      ) {
        line++;
        const r = accepted(bytes, k + 8, () => utf8Fatal.decode(bytes.subarray(start, end)));
        if (r) return r;
        continue;
      }
    }
    // Slow path: what the reference does (parse, pop hmac, CANON, MAC).
    let text: string;
    try {
      text = utf8Fatal.decode(bytes.subarray(start, end));
    } catch {
      line++;
      return fail(pendingTorn[0] ?? line, "malformed", `line ${g(line)} is not valid UTF-8`);
    }
    for (const l of logicalLines(text)) {
      line++;
      let parsed;
      try {
        parsed = parseLineForVerify(l);
      } catch (e) {
        if (!(e instanceof JsonError)) throw e;
        if (!strict && looksTorn(l)) {
          pendingTorn.push(line);
          continue;
        }
        const at = pendingTorn[0] ?? line;
        return fail(at, "malformed", `line ${g(at)} is not a valid audit entry (${e.message})`);
      }
      const stored = parsed.storedHmac;
      if (ctx.anchored && scan.firstHmac === null && pendingTorn.length === 0 && line === 1) {
        if (typeof stored !== "string" || stored.length !== 64) {
          return fail(line, "malformed", `line ${g(line)} has no hmac to anchor on`);
        }
        out.anchor = { hmac: stored, timestamp: Number(parsed.object.timestamp) };
        const r = accepted(utf8(stored), 0, () => l);
        if (r) return r;
        continue;
      }
      const prevHex = latin1.decode(prev.subarray(prevOff, prevOff + 64));
      const expected = chainHmac(mac, prevHex, parsed.entryData);
      if (typeof stored !== "string" || !constantTimeEqualString(stored, expected)) {
        if (pendingTorn.length) {
          const at = pendingTorn[0];
          return fail(
            at,
            "malformed",
            `line ${g(at)} is a torn write not followed by its recovery`,
          );
        }
        const cause = scan.firstHmac === null
          ? "entry edited, or the log was written with another identity's key"
          : "entry edited, deleted, inserted or reordered";
        return fail(line, "hmac-mismatch", `line ${g(line)}: hmac does not match (${cause})`);
      }
      const r = accepted(utf8(stored), 0, () => l);
      if (r) return r;
    }
  }
  scan.lines = line;
  if (pendingTorn.length) {
    return fail(
      pendingTorn[0],
      "torn-tail",
      `line ${g(pendingTorn[0])} is incomplete (interrupted write or cut file)`,
    );
  }
  if (scan.lastHmacLine > 0) scan.lastHmac = latin1.decode(prev.subarray(prevOff, prevOff + 64));
  return out;
}

/** Verify in-memory log bytes (one file, no archives, no checkpoint). */
export function verifyBytes(
  bytes: Uint8Array,
  key: Uint8Array,
  opts: { strict?: boolean; anchored?: boolean } = {},
): VerifyResult {
  return verifyFiles([{ path: "<memory>", bytes }], key, { ...opts, archives: false }, null);
}

/** Verify the audit log at `path` (and its archives with `archives: true`) with the audit key. */
export function verifyLog(path: string, key: Uint8Array, opts: VerifyOptions = {}): VerifyResult {
  const files = logFilesOldestFirst(path, opts.archives ?? false).map((p) => ({
    path: p,
    bytes: readFileOrNull(p) ?? new Uint8Array(0),
  }));
  let cpPath: string | null = null;
  if (opts.checkpoint !== false) {
    cpPath = typeof opts.checkpoint === "string" ? opts.checkpoint : checkpointPathFor(path);
  }
  const cp = cpPath
    ? {
      path: cpPath,
      read: readCheckpoint(cpPath, key, { expectedPublicKey: opts.checkpointPublicKey }),
    }
    : null;
  return verifyFiles(files, key, opts, cp);
}

function verifyFiles(
  files: { path: string; bytes: Uint8Array }[],
  key: Uint8Array,
  opts: VerifyOptions,
  cp: { path: string; read: CheckpointRead } | null,
): VerifyResult {
  const archives = opts.archives ?? false;
  const pins = cp?.read.status === "ok" ? cp.read.checkpoint.body.files : [];
  const want = pinWants(pins);
  const mac = new ChainMac(key);
  const reports: FileReport[] = [];
  const scans: FileScan[] = [];
  const firstEvents: (string | null)[] = [];
  const torn: number[] = [];
  let line = 0;
  let prevTail: string | null = null;
  let failure: FileFailure | undefined;
  let anchor: { hmac: string; timestamp: number } | undefined;
  try {
    for (let i = 0; i < files.length; i++) {
      const f = files[i];
      const outcome = verifyFileBytes(f.path, f.bytes, {
        mac,
        strict: opts.strict ?? false,
        startLine: line,
        anchorPrev: archives && i > 0 ? prevTail ?? GENESIS_HMAC : null,
        want,
        anchored: (opts.anchored ?? false) && i === 0,
      });
      const s = outcome.scan;
      reports.push({
        path: f.path,
        firstLine: line + 1,
        lines: s.lines,
        firstHmac: s.firstHmac,
        lastHmac: s.lastHmac,
        bytes: s.bytes,
      });
      scans.push(s);
      firstEvents.push(outcome.firstEvent);
      torn.push(...outcome.torn);
      if (outcome.anchor) anchor = outcome.anchor;
      if (outcome.fail) {
        failure = outcome.fail;
        break;
      }
      line += s.lines;
      prevTail = s.lastHmac ?? GENESIS_HMAC;
    }
  } finally {
    mac.dispose();
  }
  const headHmac = scans.length ? scans[scans.length - 1].lastHmac ?? GENESIS_HMAC : GENESIS_HMAC;
  const report: CheckpointReport = {
    status: cp === null ? "disabled" : "unchecked",
    path: cp?.path ?? null,
    problems: [],
    signed: false,
  };
  const result: VerifyResult = {
    ok: failure === undefined,
    entries: failure ? failure.line : line,
    firstBadLine: failure ? failure.line : null,
    reason: failure ? failure.reason : null,
    message: failure ? failure.message : `${line} entries verified`,
    headHmac,
    files: reports,
    tornLines: torn,
    checkpoint: report,
  };
  if (anchor) result.anchor = anchor;
  if (torn.length && !failure) {
    result.message += `; ${torn.length} torn line(s) from interrupted writes tolerated (${
      torn.join(", ")
    })`;
  }
  if (cp === null) return result;
  const read = cp.read;
  if (read.status === "missing") {
    report.status = "missing";
    return result;
  }
  if (read.status === "invalid") {
    report.status = "invalid";
    report.problems.push(read.problem);
    if (!failure) {
      result.ok = false;
      result.reason = "checkpoint-invalid";
      result.message = `checkpoint ${cp.path} is invalid: ${read.problem}`;
    }
    return result;
  }
  const body = read.checkpoint.body;
  report.signed = read.signed;
  report.entryCount = body.entry_count;
  report.headHmac = body.head_hmac;
  report.time = body.time;
  if (failure) return result;
  const cmp = comparePins(body.files, scans, {
    complete: archives,
    full: files.some((f) => f.path.endsWith(`.${MAX_ARCHIVES}`)),
    firstEvents,
  });
  report.status = cmp.status;
  report.problems = cmp.problems;
  if (cmp.status === "truncated") {
    result.ok = false;
    result.reason = "truncated";
    const bad = cmp.bad!;
    const r = reports[bad.scan];
    result.firstBadLine = r ? r.firstLine - 1 + bad.line : line + 1;
    result.message = cmp.problems[0];
  } else if (cmp.status === "needs-archives") {
    result.message += "; the log rotated since the checkpoint: verify with archives to check it";
  } else if (cmp.status === "stale") {
    result.message += "; the checkpoint is older than every kept archive (not checked)";
  }
  return result;
}
