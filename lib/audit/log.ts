/**
 * The audit log writer (PROTOCOL-0.9 §11.5): one write + fdatasync per entry,
 * mode 0600, under an in-process mutex and the cross-process flock on
 * `<path>.lock` that the reference also takes. Before each write the chain tail
 * is re-read from the end of the file (the last parsable line with a 64-char
 * hmac), so several processes can share one log. A file that does not end in
 * "\n" (a torn write) gets a "\n" before the next entry; the torn line stays and
 * verify lists it (see verify.ts). After a write that leaves the file at or above
 * `maxBytes`, archives shift (`.4→.5 … .1→.2`, live → `.1`) and the new file
 * starts with `LOG_ROTATED {previous_tail_hmac}` chained from genesis.
 *
 * Ours: after every append the checkpoint (checkpoint.ts) is rewritten. When the
 * checkpoint no longer matches the files (lines cut off, a file replaced or
 * missing, or a bad MAC) the writer keeps logging but stops updating it, so the
 * evidence stays for `verify`, and reports the problem once; `resetCheckpoint()`
 * re-baselines it (an operator decision).
 */
import { basename, dirname, join, resolve } from "node:path";
import { type Clock, systemClock } from "../clock.ts";
import { ExitCode, IronMeshError } from "../errors.ts";
import { syncDirSync } from "../fs/atomic_write.ts";
import { withFileLock, withFileLockSync } from "../fs/flock.ts";
import { utf8 } from "../crypto/sodium.ts";
import {
  type AuditDetails,
  type EncodedEntry,
  encodeEntry,
  entryDataText,
  GENESIS_HMAC,
  isTailHmac,
} from "./chain.ts";
import { EVENT_LOG_ROTATED } from "./events.ts";
import {
  archivePath,
  checkpointPathFor,
  DEFAULT_MAX_BYTES,
  fileExists,
  lockPathFor,
  logFilesOldestFirst,
  MAX_ARCHIVES,
  MIN_MAX_BYTES,
  readFileOrNull,
} from "./files.ts";
import { ChainMac } from "./hmac.ts";
import { logicalLines, scanBytes } from "./scan.ts";
import {
  type CheckpointSigner,
  comparePins,
  type FilePin,
  makeCheckpoint,
  pinsFromScans,
  pinWants,
  readCheckpoint,
  writeCheckpoint,
} from "./checkpoint.ts";

/** The end of a log file as the writer sees it. */
export interface LogTail {
  exists: boolean;
  size: number;
  /** hmac to chain the next entry from (genesis when none). */
  hmac: string;
  /** False when the last byte is not "\n" (a torn write): the next entry starts with "\n". */
  endsWithNewline: boolean;
}

/** Options for `AuditLog`. */
export interface AuditLogOptions {
  /** 32-byte audit key: `auditKey(seed)`. */
  key: Uint8Array;
  /** Timestamps come from here (default: the system clock). */
  clock?: Clock;
  /** Rotate after a write leaves the file at or above this size (default 10 MiB, min 1024). */
  maxBytes?: number;
  /** Signs checkpoints (the node identity). Without it checkpoints are only MACed. */
  signer?: CheckpointSigner;
  /** Maintain `audit.checkpoint` (default true). */
  checkpoint?: boolean;
  /**
   * Rewrite the checkpoint every N appends (default 1 = every append). With N > 1 up to N-1
   * entries can be cut unnoticed; call `flushCheckpoint()` on shutdown. Rotation always writes it.
   */
  checkpointEvery?: number;
  /**
   * Called once when the checkpoint stops matching the files (truncation evidence). It runs
   * after the append returns (outside the lock), so it may `append()` an event itself.
   */
  onCheckpointProblem?: (problems: string[]) => void;
}

/** What one append did. */
export interface AppendResult {
  entry: EncodedEntry;
  /** The LOG_ROTATED anchor when this append rotated the log. */
  anchor?: EncodedEntry;
  /** updated; deferred (checkpointEvery); frozen (left as evidence, see `checkpointProblems`); disabled. */
  checkpoint: "updated" | "deferred" | "frozen" | "disabled";
}

const TAIL_CHUNK = 8192;

/** Read the chain tail from the end of the file only (grows the window until a line is found). */
export function readTail(path: string): LogTail {
  let f: Deno.FsFile;
  try {
    f = Deno.openSync(path, { read: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      return { exists: false, size: 0, hmac: GENESIS_HMAC, endsWithNewline: true };
    }
    const perm = e instanceof Deno.errors.PermissionDenied;
    throw new IronMeshError(
      "AUDIT_UNREADABLE",
      `cannot read ${path}: ${(e as Error).message}`,
      perm ? "run as the user that owns the state directory" : "check that it is a regular file",
      perm ? ExitCode.PERMISSION : ExitCode.FAILURE,
    );
  }
  try {
    const size = f.statSync().size;
    const t = tailBefore(f, size);
    return { exists: true, size, hmac: t.hmac ?? GENESIS_HMAC, endsWithNewline: t.endsWithNewline };
  } finally {
    f.close();
  }
}

function readAt(f: Deno.FsFile, from: number, to: number): Uint8Array {
  const buf = new Uint8Array(to - from);
  f.seekSync(from, Deno.SeekMode.Start);
  let off = 0;
  while (off < buf.length) {
    const n = f.readSync(buf.subarray(off));
    if (n === null) break;
    off += n;
  }
  return buf.subarray(0, off);
}

/** The last stored hmac in `f[0, end)` by the reference's tail rule, reading backwards in windows. */
function tailBefore(
  f: Deno.FsFile,
  end: number,
): { hmac: string | null; endsWithNewline: boolean } {
  if (end === 0) return { hmac: null, endsWithNewline: true };
  let window = TAIL_CHUNK;
  for (;;) {
    const from = Math.max(0, end - window);
    const buf = readAt(f, from, end);
    const endsWithNewline = buf[buf.length - 1] === 10;
    let stop = buf.length;
    while (stop > 0) {
      const nl = buf.lastIndexOf(10, stop - 1);
      if (nl < 0 && from > 0) break; // the line may start before the window
      const h = tailHmacOf(buf.subarray(nl + 1, stop));
      if (h !== null) return { hmac: h, endsWithNewline };
      stop = nl < 0 ? 0 : nl;
    }
    if (from === 0) return { hmac: null, endsWithNewline };
    window *= 4;
  }
}

/** The reference's tail rule on one physical line: last logical line that parses with a 64-char hmac. */
function tailHmacOf(bytes: Uint8Array): string | null {
  if (bytes.length === 0) return null;
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
  const lines = logicalLines(text);
  for (let i = lines.length - 1; i >= 0; i--) {
    try {
      const v = JSON.parse(lines[i]);
      if (v !== null && typeof v === "object" && !Array.isArray(v) && isTailHmac(v.hmac)) {
        return v.hmac;
      }
    } catch { /* torn: skip */ }
  }
  return null;
}

/** Serializes appends to one log inside this process, across AuditLog instances. */
class PathMutex {
  #tail: Promise<void> = Promise.resolve();
  #pending = 0;
  /** True while an async append is queued or running. */
  get busy(): boolean {
    return this.#pending > 0;
  }
  async run<T>(fn: () => Promise<T>): Promise<T> {
    this.#pending++;
    const prev = this.#tail;
    let release!: () => void;
    this.#tail = new Promise((r) => (release = r));
    try {
      await prev;
      return await fn();
    } finally {
      this.#pending--;
      release();
    }
  }
}

const mutexes = new Map<string, PathMutex>();
function mutexFor(path: string): PathMutex {
  let m = mutexes.get(path);
  if (!m) mutexes.set(path, m = new PathMutex());
  return m;
}

function writeAllSync(f: Deno.FsFile, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.length) off += f.writeSync(bytes.subarray(off));
}

/** Append bytes with one write and fdatasync; returns the file size afterwards. */
function appendDurably(path: string, bytes: Uint8Array): number {
  const f = Deno.openSync(path, { append: true, create: true, mode: 0o600 });
  try {
    writeAllSync(f, bytes);
    f.syncDataSync();
    return f.statSync().size;
  } finally {
    f.close();
  }
}

interface PinState {
  pins: FilePin[];
  /** Non-blank lines in the live file before this append. */
  liveLines: number;
  rotations: number;
  /** Rebuilt by scanning the files (missing or lagging checkpoint): write it now. */
  rebuilt?: boolean;
}

/** Append-only, HMAC-chained audit log with rotation and checkpoints. */
export class AuditLog {
  /** Path of the live log file. */
  readonly path: string;
  /** The flock sentinel shared with the reference. */
  readonly lockPath: string;
  /** Where the checkpoint lives. */
  readonly checkpointPath: string;
  /** Rotation threshold in bytes. */
  readonly maxBytes: number;
  #key: Uint8Array;
  #mac: ChainMac;
  #clock: Clock;
  #signer?: CheckpointSigner;
  #checkpointOn: boolean;
  #every: number;
  #unsaved = 0;
  #onProblem?: (problems: string[]) => void;
  #frozen: { text: string; problems: string[] } | null = null;
  #wroteCheckpoint = false;
  #cleaned = false;
  #closed = false;

  constructor(path: string, opts: AuditLogOptions) {
    this.path = resolve(path);
    this.lockPath = lockPathFor(this.path);
    this.checkpointPath = checkpointPathFor(this.path);
    this.maxBytes = Math.max(MIN_MAX_BYTES, Math.floor(opts.maxBytes ?? DEFAULT_MAX_BYTES));
    this.#key = opts.key.slice();
    this.#mac = new ChainMac(opts.key);
    this.#clock = opts.clock ?? systemClock;
    this.#signer = opts.signer;
    this.#checkpointOn = opts.checkpoint ?? true;
    this.#every = Math.max(1, Math.floor(opts.checkpointEvery ?? 1));
    this.#onProblem = opts.onCheckpointProblem;
  }

  /** Append an event (async: waits for the flock without blocking the event loop). */
  append(event: string, details: AuditDetails = {}): Promise<AppendResult> {
    this.#checkOpen();
    try {
      entryDataText(event, details ?? {}, 0); // refuse bad details before touching any file
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#locked(() => this.#appendLocked(event, details));
  }

  /**
   * Append an event synchronously (shutdown paths, CLI). Throws AUDIT_BUSY if an async
   * `append` to the same log is in flight in this process (waiting here could deadlock).
   */
  appendSync(event: string, details: AuditDetails = {}): AppendResult {
    this.#checkOpen();
    entryDataText(event, details ?? {}, 0); // refuse bad details before touching any file
    return this.#lockedSync(() => this.#appendLocked(event, details));
  }

  /** The current chain tail (read without the lock). */
  tail(): LogTail {
    return readTail(this.path);
  }

  /** Problems that froze the checkpoint, or null while it is maintained. */
  checkpointProblems(): string[] | null {
    return this.#frozen ? [...this.#frozen.problems] : null;
  }

  /** Write the checkpoint now if appends are pending (with `checkpointEvery` > 1). */
  flushCheckpoint(): Promise<boolean> {
    this.#checkOpen();
    return this.#locked(() => this.#flushLocked());
  }

  /** Synchronous `flushCheckpoint` (shutdown paths). */
  flushCheckpointSync(): boolean {
    this.#checkOpen();
    return this.#lockedSync(() => this.#flushLocked());
  }

  /** Re-baseline the checkpoint on the files as they are now (an operator decision). */
  resetCheckpoint(): Promise<void> {
    this.#checkOpen();
    return this.#locked(() => {
      this.#frozen = null;
      const state = this.#scanState(null, this.#currentRotations());
      if (state) this.#writeCheckpoint(state.pins, readTail(this.path).size, state.rotations);
    });
  }

  /** Flush a pending checkpoint (best effort) and wipe the key material. */
  close(): void {
    if (this.#closed) return;
    if (this.#unsaved > 0 && !mutexFor(this.path).busy) {
      try {
        this.flushCheckpointSync();
      } catch { /* best effort */ }
    }
    this.#closed = true;
    this.#mac.dispose();
    this.#key.fill(0);
  }

  #checkOpen(): void {
    if (this.#closed) {
      throw new IronMeshError("AUDIT_CLOSED", "audit log is closed", "open a new AuditLog");
    }
  }

  #locked<T>(fn: () => T): Promise<T> {
    return mutexFor(this.path).run(() => withFileLock(this.lockPath, fn));
  }

  #lockedSync<T>(fn: () => T): T {
    if (mutexFor(this.path).busy) {
      throw new IronMeshError(
        "AUDIT_BUSY",
        "an asynchronous audit append is in progress",
        "await append() instead of calling appendSync() while appends are pending",
      );
    }
    return withFileLockSync(this.lockPath, fn);
  }

  #appendLocked(event: string, rawDetails: AuditDetails): AppendResult {
    const details = rawDetails ?? {};
    if (!this.#cleaned) this.#cleanStaleTemps();
    let tail = readTail(this.path);
    let state = this.#checkpointOn ? this.#loadState(tail) : null;
    const frozen = this.#checkpointOn && state === null;
    let rotations = state?.rotations ?? 0;
    let anchor: EncodedEntry | undefined;
    if (tail.hmac === GENESIS_HMAC && fileExists(archivePath(this.path, 1))) {
      // A rotation was interrupted before its anchor: finish it so the archives still chain.
      const written = this.#writeAnchor(
        readTail(archivePath(this.path, 1)).hmac,
        !tail.endsWithNewline,
      );
      anchor = written.entry;
      tail = { exists: true, size: written.size, hmac: anchor.hmac, endsWithNewline: true };
      rotations++;
      if (state) {
        // Torn lines before the anchor still count as lines of the live file.
        const line = state.liveLines + 1;
        const pin = { ...this.#anchorPin(anchor), entries: line, lines: line };
        state = {
          pins: [...state.pins, pin].slice(-(MAX_ARCHIVES + 1)),
          liveLines: line,
          rotations,
          rebuilt: true,
        };
      }
    }
    const entry = encodeEntry(this.#mac, tail.hmac, event, details, this.#clock.now());
    const payload = utf8((tail.endsWithNewline ? "" : "\n") + entry.line + "\n");
    let size: number;
    try {
      size = appendDurably(this.path, payload);
    } catch (e) {
      throw writeError(this.path, e);
    }
    if (!tail.exists) syncDirSync(dirname(this.path));
    let pins = state ? this.#withAppended(state, entry.hmac) : null;
    let rotated = false;
    if (size >= this.maxBytes) {
      const r = this.#rotate(entry.hmac, pins);
      anchor = r.anchor;
      size = r.size;
      pins = r.pins;
      rotations++;
      rotated = true;
    }
    let checkpoint: AppendResult["checkpoint"] = !this.#checkpointOn
      ? "disabled"
      : frozen
      ? "frozen"
      : "updated";
    if (pins) {
      this.#unsaved++;
      if (rotated || state?.rebuilt || this.#unsaved >= this.#every) {
        this.#writeCheckpoint(pins, size, rotations);
      } else checkpoint = "deferred";
    }
    return anchor ? { entry, anchor, checkpoint } : { entry, checkpoint };
  }

  /** Start a new live file with `LOG_ROTATED {previous_tail_hmac}` chained from genesis. */
  #writeAnchor(previousTail: string, newlineFirst = false): { entry: EncodedEntry; size: number } {
    const entry = encodeEntry(
      this.#mac,
      GENESIS_HMAC,
      EVENT_LOG_ROTATED,
      { previous_tail_hmac: previousTail },
      this.#clock.now(),
    );
    let size: number;
    try {
      size = appendDurably(this.path, utf8((newlineFirst ? "\n" : "") + entry.line + "\n"));
    } catch (e) {
      throw writeError(this.path, e);
    }
    syncDirSync(dirname(this.path));
    return { entry, size };
  }

  #anchorPin(anchor: EncodedEntry): FilePin {
    return {
      name: basename(this.path),
      first_hmac: anchor.hmac,
      entries: 1,
      last_hmac: anchor.hmac,
      lines: 1,
    };
  }

  #flushLocked(): boolean {
    if (!this.#checkpointOn || this.#unsaved === 0) return false;
    const tail = readTail(this.path);
    const state = this.#loadState(tail);
    if (!state) return false;
    this.#writeCheckpoint(state.pins, tail.size, state.rotations);
    return true;
  }

  /** Pins updated for one more entry at the end of the live file. */
  #withAppended(state: PinState, hmac: string): FilePin[] {
    const name = basename(this.path);
    const pins = state.pins.map((p) => ({ ...p }));
    const line = state.liveLines + 1;
    const last = pins[pins.length - 1];
    if (last && last.name === name) {
      last.entries = line;
      last.lines = line;
      last.last_hmac = hmac;
    } else {
      pins.push({ name, first_hmac: hmac, entries: line, last_hmac: hmac, lines: line });
    }
    return pins.slice(-(MAX_ARCHIVES + 1));
  }

  #rotate(
    oldTail: string,
    pins: FilePin[] | null,
  ): { anchor: EncodedEntry; size: number; pins: FilePin[] | null } {
    const p = this.path;
    try {
      for (let i = MAX_ARCHIVES - 1; i >= 1; i--) {
        if (fileExists(archivePath(p, i))) {
          Deno.renameSync(archivePath(p, i), archivePath(p, i + 1));
        }
      }
      Deno.renameSync(p, archivePath(p, 1));
    } catch (e) {
      throw new IronMeshError(
        "AUDIT_ROTATE_FAILED",
        `could not rotate ${p}: ${(e as Error).message}`,
        "check the permissions of the state directory",
      );
    }
    const { entry: anchor, size } = this.#writeAnchor(oldTail);
    let next: FilePin[] | null = null;
    if (pins) {
      // Pins match files by first hmac; names are informational (the file's slot after the shift).
      const kept = [...pins, this.#anchorPin(anchor)].slice(-(MAX_ARCHIVES + 1));
      const base = basename(p);
      next = kept.map((pin, i) => ({
        ...pin,
        name: i === kept.length - 1 ? base : `${base}.${kept.length - 1 - i}`,
      }));
    }
    return { anchor, size, pins: next };
  }

  #writeCheckpoint(pins: FilePin[], liveBytes: number, rotations: number): void {
    const cp = makeCheckpoint(
      {
        log: basename(this.path),
        files: pins,
        live_bytes: liveBytes,
        rotations,
        time: this.#clock.now(),
      },
      this.#key,
      this.#signer,
    );
    writeCheckpoint(this.checkpointPath, cp);
    this.#wroteCheckpoint = true;
    this.#unsaved = 0;
  }

  #currentRotations(): number {
    const read = readCheckpoint(this.checkpointPath, this.#key, { verifySignature: false });
    return read.status === "ok" ? read.checkpoint.body.rotations : 0;
  }

  /** Pins for the files as they are before this append, or null when the checkpoint is frozen. */
  #loadState(tail: LogTail): PinState | null {
    const read = readCheckpoint(this.checkpointPath, this.#key, { verifySignature: false });
    const text = read.status === "missing" ? "" : read.text;
    if (this.#frozen && this.#frozen.text === text) return null;
    this.#frozen = null;
    if (read.status === "invalid") return this.#freeze(text, [read.problem]);
    if (read.status === "missing") {
      if (this.#wroteCheckpoint) return this.#freeze("", ["the audit checkpoint was deleted"]);
      return this.#scanState(null, 0);
    }
    const body = read.checkpoint.body;
    return this.#incrementalState(body.files, body.live_bytes, body.rotations, tail) ??
      this.#scanState(body.files, body.rotations, text);
  }

  /**
   * The common case: the live file still holds the checkpoint's last entry ending exactly at
   * `live_bytes`, so only the bytes written since then need reading.
   */
  #incrementalState(
    pins: FilePin[],
    liveBytes: number,
    rotations: number,
    tail: LogTail,
  ): PinState | null {
    const last = pins[pins.length - 1];
    if (!last || last.name !== basename(this.path) || liveBytes === 0 || liveBytes > tail.size) {
      return null;
    }
    if (liveBytes === tail.size) {
      if (last.last_hmac !== tail.hmac || !tail.endsWithNewline) return null;
      return { pins, liveLines: last.lines, rotations };
    }
    let f: Deno.FsFile;
    try {
      f = Deno.openSync(this.path, { read: true });
    } catch {
      return null;
    }
    try {
      const before = tailBefore(f, liveBytes);
      if (before.hmac !== last.last_hmac || !before.endsWithNewline) return null;
      const rest = scanBytes(this.path, readAt(f, liveBytes, tail.size));
      const updated = pins.map((p) => ({ ...p }));
      const live = updated[updated.length - 1];
      if (rest.lastHmac !== null) {
        live.entries = last.lines + rest.lastHmacLine;
        live.last_hmac = rest.lastHmac;
      }
      live.lines = last.lines + rest.lines;
      return { pins: updated, liveLines: live.lines, rotations };
    } finally {
      f.close();
    }
  }

  /** Scan every file; with old pins, freeze instead of re-baselining when they fail. */
  #scanState(old: FilePin[] | null, rotations: number, text = ""): PinState | null {
    const paths = logFilesOldestFirst(this.path, true);
    const want = pinWants(old ?? []);
    const scans = paths.map((p) => scanBytes(p, readFileOrNull(p) ?? new Uint8Array(0), want));
    if (old) {
      const cmp = comparePins(old, scans, {
        complete: true,
        full: fileExists(archivePath(this.path, MAX_ARCHIVES)),
        firstEvents: scans.map(() => null),
      });
      if (cmp.status === "truncated") return this.#freeze(text, cmp.problems);
    }
    const live = paths.length && paths[paths.length - 1] === this.path
      ? scans[scans.length - 1]
      : null;
    const pins = pinsFromScans(scans, paths.map((p) => basename(p)));
    // A live file without any entry yet is not pinned; its torn lines still count.
    return { pins, liveLines: live ? live.lines : 0, rotations, rebuilt: true };
  }

  #freeze(text: string, problems: string[]): null {
    this.#frozen = { text, problems };
    const cb = this.#onProblem;
    // After the lock is released, so the callback may itself append (e.g. a warning event).
    if (cb) {
      queueMicrotask(() => {
        try {
          cb([...problems]);
        } catch { /* a failing callback must not stop audit writes */ }
      });
    }
    return null;
  }

  /** Remove checkpoint temp files left by a writer killed mid-update (we hold the lock). */
  #cleanStaleTemps(): void {
    this.#cleaned = true;
    const dir = dirname(this.checkpointPath);
    const prefix = basename(this.checkpointPath) + ".";
    try {
      for (const e of Deno.readDirSync(dir)) {
        if (e.isFile && e.name.startsWith(prefix) && e.name.endsWith(".tmp")) {
          try {
            Deno.removeSync(join(dir, e.name));
          } catch { /* raced or not ours */ }
        }
      }
    } catch { /* directory not readable yet */ }
  }
}

function writeError(path: string, e: unknown): IronMeshError {
  const perm = e instanceof Deno.errors.PermissionDenied;
  return new IronMeshError(
    "AUDIT_WRITE_FAILED",
    `could not write the audit log ${path}: ${(e as Error).message}`,
    perm ? "check the permissions of the state directory" : "check free disk space",
    perm ? ExitCode.PERMISSION : ExitCode.FAILURE,
  );
}
