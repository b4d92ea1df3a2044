/**
 * Audit checkpoints (ours, not in the reference): a small file next to the log
 * that pins how long every log file was at the last append, so cutting whole
 * lines off the end of the log (undetectable by the chain alone) is caught.
 *
 * The body pins each file, oldest first, by the hmac of its first entry (which
 * names one file generation), its line count and the hmac of its last entry.
 * It is MACed with the audit key (HMAC over a label ‖ CANON body) and, when the
 * writer has the identity key, signed with Ed25519 under SIG_CTX_AUDIT_CHECKPOINT,
 * so it can be checked with the public key alone. The file is INDENT2 JSON:
 *
 *   {"version": 1, "body": {...}, "mac": "<hex>", "signature": "<b64>"}
 *
 * Limits: someone who can write the directory can delete the checkpoint (reported
 * as missing) or put back an older one (then only truncation below that older
 * point is caught).
 */
import { SIG_CTX_AUDIT_CHECKPOINT } from "../crypto/contexts.ts";
import {
  concatBytes,
  constantTimeEqualString,
  fromB64,
  hmacSha256,
  toB64,
  toHex,
  utf8,
  verifyDetached,
} from "../crypto/sodium.ts";
import { canonicalJson, indent2Json } from "../json/canonical.ts";
import { PyFloat } from "../json/py_float.ts";
import { parseJson } from "../json/parse.ts";
import { atomicWriteSync } from "../fs/atomic_write.ts";
import { nodeIdOf } from "../identity/node_id.ts";
import { MAX_ARCHIVES } from "./files.ts";
import type { FileScan } from "./scan.ts";
import { readFileOrNull } from "./files.ts";

/** Format version of the checkpoint file. */
export const CHECKPOINT_VERSION = 1;
const MAC_LABEL = utf8("ironmesh-ext-audit-checkpoint-v1\0");
const HEX64 = /^[0-9a-f]{64}$/;

/** One pinned file. */
export interface FilePin {
  /** File name when the checkpoint was written (informational: names shift on rotation). */
  name: string;
  /** hmac of the file's first entry: identifies the file across renames. */
  first_hmac: string;
  /** 1-based line number of the file's last entry (lines = non-blank lines). */
  entries: number;
  /** hmac of that entry. */
  last_hmac: string;
  /** Non-blank lines in the file (≥ entries when torn lines follow the last entry). */
  lines: number;
}

/** The signed and MACed checkpoint body. */
export interface CheckpointBody {
  version: number;
  /** Base name of the live log. */
  log: string;
  /** Lines across all pinned files. */
  entry_count: number;
  /** hmac of the newest entry (last entry of the live file). */
  head_hmac: string;
  /** Pinned files, oldest first; the last one was the live file. */
  files: FilePin[];
  /** Size of the live file in bytes after the last append. */
  live_bytes: number;
  /** Rotations performed by checkpointing writers (informational). */
  rotations: number;
  /** When it was written (seconds, Python float). */
  time: number;
  /** node_id of the signer, when signed. */
  signer?: string;
  /** Signer's Ed25519 public key (b64), when signed. */
  signer_pubkey?: string;
}

/** A checkpoint as stored. */
export interface Checkpoint {
  body: CheckpointBody;
  mac: string;
  signature?: string;
}

/** What signs checkpoints: the node identity (`Identity` satisfies this). */
export interface CheckpointSigner {
  publicKey: Uint8Array;
  sign(message: Uint8Array, context?: Uint8Array): Uint8Array;
}

/** The CANON bytes the MAC and the signature cover. */
export function checkpointSignedBytes(body: CheckpointBody): Uint8Array {
  return utf8(canonicalJson({ ...body, time: new PyFloat(body.time) }));
}

function macOf(key: Uint8Array, body: CheckpointBody): string {
  return toHex(hmacSha256(key, concatBytes(MAC_LABEL, checkpointSignedBytes(body))));
}

/** Build a MACed (and, with a signer, signed) checkpoint. */
export function makeCheckpoint(
  fields: Omit<
    CheckpointBody,
    "version" | "signer" | "signer_pubkey" | "entry_count" | "head_hmac"
  >,
  key: Uint8Array,
  signer?: CheckpointSigner,
): Checkpoint {
  const last = fields.files[fields.files.length - 1];
  const body: CheckpointBody = {
    version: CHECKPOINT_VERSION,
    log: fields.log,
    entry_count: fields.files.reduce((n, f) => n + f.lines, 0),
    head_hmac: last ? last.last_hmac : "0".repeat(64),
    files: fields.files.map((f) => ({ ...f })),
    live_bytes: fields.live_bytes,
    rotations: fields.rotations,
    time: fields.time,
  };
  if (signer) {
    body.signer = nodeIdOf(signer.publicKey);
    body.signer_pubkey = toB64(signer.publicKey);
  }
  const cp: Checkpoint = { body, mac: macOf(key, body) };
  if (signer) {
    cp.signature = toB64(signer.sign(checkpointSignedBytes(body), SIG_CTX_AUDIT_CHECKPOINT));
  }
  return cp;
}

/** The checkpoint file text (INDENT2, trailing newline). */
export function encodeCheckpoint(cp: Checkpoint): string {
  const out: Record<string, unknown> = {
    version: CHECKPOINT_VERSION,
    body: { ...cp.body, time: new PyFloat(cp.body.time) },
    mac: cp.mac,
  };
  if (cp.signature !== undefined) out.signature = cp.signature;
  return indent2Json(out) + "\n";
}

/** Result of reading a checkpoint. */
export type CheckpointRead =
  | { status: "missing" }
  | { status: "invalid"; problem: string; text: string }
  | { status: "ok"; checkpoint: Checkpoint; text: string; signed: boolean };

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

function validateBody(b: Record<string, unknown>): string | null {
  if (b.version !== CHECKPOINT_VERSION) return `unsupported checkpoint version ${b.version}`;
  if (typeof b.log !== "string" || b.log.length === 0) return "bad log name";
  if (!isCount(b.entry_count) || !isCount(b.live_bytes) || !isCount(b.rotations)) {
    return "bad counters";
  }
  if (typeof b.head_hmac !== "string" || !HEX64.test(b.head_hmac)) return "bad head_hmac";
  if (!(b.time instanceof PyFloat) && typeof b.time !== "number") return "bad time";
  if (!Array.isArray(b.files) || b.files.length > MAX_ARCHIVES + 1) return "bad files list";
  for (const f of b.files) {
    if (f === null || typeof f !== "object") return "bad file pin";
    const p = f as Record<string, unknown>;
    if (typeof p.name !== "string") return "bad file pin name";
    if (typeof p.first_hmac !== "string" || !HEX64.test(p.first_hmac)) return "bad first_hmac";
    if (typeof p.last_hmac !== "string" || !HEX64.test(p.last_hmac)) return "bad last_hmac";
    if (!isCount(p.entries) || !isCount(p.lines) || p.entries < 1 || p.lines < p.entries) {
      return "bad file pin counts";
    }
  }
  if (b.signer !== undefined && typeof b.signer !== "string") return "bad signer";
  if (b.signer_pubkey !== undefined && typeof b.signer_pubkey !== "string") {
    return "bad signer_pubkey";
  }
  return null;
}

/** How to authenticate a checkpoint. */
export interface CheckpointReadOptions {
  /** Require a valid signature by exactly this Ed25519 public key. */
  expectedPublicKey?: Uint8Array;
  /** Check a present signature against its `signer_pubkey` (default true; the writer skips it). */
  verifySignature?: boolean;
}

/**
 * Parse and authenticate checkpoint text. The MAC must verify under `key`. A signature, when
 * present, must verify under its `signer_pubkey`; with `expectedPublicKey` a valid signature by
 * exactly that key is required.
 */
export function parseCheckpoint(
  text: string,
  key: Uint8Array,
  opts: CheckpointReadOptions = {},
): CheckpointRead {
  const expectedPublicKey = opts.expectedPublicKey;
  const invalid = (problem: string): CheckpointRead => ({ status: "invalid", problem, text });
  let v: unknown;
  try {
    v = parseJson(text, { preserveNumbers: true, maxDepth: 8 });
  } catch (e) {
    return invalid(`checkpoint is not JSON: ${(e as Error).message}`);
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) return invalid("not an object");
  const o = v as Record<string, unknown>;
  if (o.version !== CHECKPOINT_VERSION) return invalid(`unsupported version ${o.version}`);
  if (o.body === null || typeof o.body !== "object" || Array.isArray(o.body)) {
    return invalid("missing body");
  }
  const rawBody = o.body as Record<string, unknown>;
  const problem = validateBody(rawBody);
  if (problem) return invalid(problem);
  const body = { ...rawBody, time: Number(rawBody.time) } as unknown as CheckpointBody;
  if (typeof o.mac !== "string" || !constantTimeEqualString(o.mac, macOf(key, body))) {
    return invalid("checkpoint MAC does not verify (edited, or written with another audit key)");
  }
  const signature = o.signature;
  if (signature !== undefined && typeof signature !== "string") return invalid("bad signature");
  const cp: Checkpoint = { body, mac: o.mac };
  if (signature !== undefined) cp.signature = signature;
  if ((signature !== undefined && opts.verifySignature !== false) || expectedPublicKey) {
    if (signature === undefined) return invalid("checkpoint is not signed");
    let pub: Uint8Array, sig: Uint8Array;
    try {
      pub = expectedPublicKey ?? fromB64(body.signer_pubkey ?? "");
      sig = fromB64(signature);
    } catch {
      return invalid("bad signature or signer_pubkey encoding");
    }
    if (body.signer_pubkey !== undefined && body.signer_pubkey !== toB64(pub)) {
      return invalid("checkpoint signed by another key");
    }
    if (body.signer !== undefined && body.signer !== nodeIdOf(pub)) {
      return invalid("checkpoint signer does not match its public key");
    }
    if (!verifyDetached(sig, checkpointSignedBytes(body), pub, SIG_CTX_AUDIT_CHECKPOINT)) {
      return invalid("checkpoint signature does not verify");
    }
  }
  return { status: "ok", checkpoint: cp, text, signed: signature !== undefined };
}

/** Read and authenticate the checkpoint at `path` (see `parseCheckpoint`). */
export function readCheckpoint(
  path: string,
  key: Uint8Array,
  opts: CheckpointReadOptions = {},
): CheckpointRead {
  const bytes = readFileOrNull(path);
  if (bytes === null) return { status: "missing" };
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return { status: "invalid", problem: "checkpoint is not UTF-8", text: "" };
  }
  return parseCheckpoint(text, key, opts);
}

/** Write a checkpoint atomically (tmp + fsync + rename, mode 0600). */
export function writeCheckpoint(path: string, cp: Checkpoint): void {
  atomicWriteSync(path, encodeCheckpoint(cp));
}

/** Pins for files as scanned now (files without any entry are not pinned). */
export function pinsFromScans(scans: FileScan[], names: string[]): FilePin[] {
  const pins: FilePin[] = [];
  scans.forEach((s, i) => {
    if (s.firstHmac === null || s.lastHmac === null) return;
    pins.push({
      name: names[i],
      first_hmac: s.firstHmac,
      entries: s.lastHmacLine,
      last_hmac: s.lastHmac,
      lines: s.lines,
    });
  });
  return pins.slice(-(MAX_ARCHIVES + 1));
}

/** For `scanBytes`/verify: the line numbers whose hmac the pins need, by first hmac. */
export function pinWants(pins: FilePin[]): (firstHmac: string) => number[] {
  const m = new Map<string, number[]>();
  for (const p of pins) m.set(p.first_hmac, [...(m.get(p.first_hmac) ?? []), p.entries]);
  return (h) => m.get(h) ?? [];
}

/** Outcome of comparing a checkpoint with the files on disk. */
export interface PinComparison {
  /** ok: every pin holds; stale: pinned files rotated away (cannot check); needs-archives:
   * the live file is newer than the checkpoint, check with archives; truncated: a pin fails. */
  status: "ok" | "stale" | "needs-archives" | "truncated";
  problems: string[];
  /** First failing place: index into `scans` and 1-based line in that file. */
  bad?: { scan: number; line: number };
}

/** What `comparePins` knows about the files scanned. */
export interface PinScope {
  /** The scans include the archives (otherwise only the live file is checked). */
  complete: boolean;
  /** The oldest archive slot (`.5`) is occupied, so older files may have rotated out. */
  full: boolean;
  /** Event of each scan's first entry (tells a rotation since the checkpoint). */
  firstEvents: (string | null)[];
}

/** Compare pins with scans of the files present now (oldest first). */
export function comparePins(pins: FilePin[], scans: FileScan[], scope: PinScope): PinComparison {
  const { complete, full, firstEvents } = scope;
  const problems: string[] = [];
  let bad: { scan: number; line: number } | undefined;
  const fail = (msg: string, scan: number, line: number) => {
    problems.push(msg);
    if (!bad) bad = { scan, line };
  };
  if (pins.length === 0) return { status: "ok", problems };
  const seen = new Map<string, number>();
  scans.forEach((s, j) => {
    if (s.firstHmac !== null) {
      if (seen.has(s.firstHmac)) fail(`${s.path} duplicates another log file`, j, 1);
      seen.set(s.firstHmac, j);
    }
  });
  const idx = pins.map((p) => seen.get(p.first_hmac) ?? -1);
  let lastMatched = -1;
  pins.forEach((p, i) => {
    const j = idx[i];
    if (j < 0) return;
    const s = scans[j];
    if (j <= lastMatched) fail(`${s.path} is out of order`, j, 1);
    lastMatched = Math.max(lastMatched, j);
    if (s.lines < p.entries) {
      fail(
        `${s.path} has ${s.lines} lines but the checkpoint recorded ${p.entries}: truncated`,
        j,
        s.lines + 1,
      );
    } else if (s.wanted.get(p.entries) !== p.last_hmac) {
      fail(
        `${s.path} line ${p.entries} does not carry the checkpoint's hmac: truncated and re-chained`,
        j,
        p.entries,
      );
    }
  });
  const newest = pins.length - 1;
  const anyMatched = idx.some((j) => j >= 0);
  if (idx[newest] < 0) {
    const live = scans.length - 1;
    if (!complete) {
      if (anyMatched) {
        fail("the live log is older than the checkpoint (rolled back)", Math.max(live, 0), 1);
      } else if (live >= 0 && firstEvents[live] === "LOG_ROTATED") {
        if (problems.length === 0) return { status: "needs-archives", problems };
      } else {
        fail("the log that the checkpoint pins is missing or replaced", Math.max(live, 0), 1);
      }
    } else if (!full || anyMatched) {
      fail(
        "the file that was live at the checkpoint is missing",
        Math.max(live, 0),
        (scans[live]?.lines ?? 0) + 1,
      );
    } else if (problems.length === 0) {
      return { status: "stale", problems };
    }
  }
  if (complete) {
    // A pinned archive may only be missing when older than every pinned file still present
    // and the oldest slot is occupied (it rotated out).
    const firstMatched = idx.findIndex((j) => j >= 0);
    pins.forEach((p, i) => {
      if (idx[i] >= 0 || i === newest) return;
      if (i > firstMatched || !full) {
        fail(`archive ${p.name} pinned by the checkpoint is missing`, Math.max(0, idx[newest]), 1);
      }
    });
  }
  return problems.length ? { status: "truncated", problems, bad } : { status: "ok", problems };
}
