/**
 * Reading the audit log for people: `audit tail` (since / event / limit filters),
 * `audit stats` (counts per event and per UTC day) and a follow helper that yields
 * entries as they are appended, across rotations. Queries do not check the chain
 * (that is `verifyLog`); unparsable (torn) lines are skipped.
 */
import { ExitCode, IronMeshError } from "../errors.ts";
import { type AuditEntry, entryFromObject } from "./chain.ts";
import { logFilesOldestFirst, readFileOrNull } from "./files.ts";
import { logicalLines } from "./scan.ts";

/** An entry with where it was read. */
export interface QueryEntry extends AuditEntry {
  /** Global 1-based line number (as verify counts them), 0 when unknown (follow). */
  line: number;
  /** File it came from. */
  file: string;
}

const decoder = new TextDecoder();

/** Parse one line into an entry, or null when it is not an entry object. */
export function parseEntryLine(text: string): AuditEntry | null {
  try {
    const v = JSON.parse(text);
    if (v === null || typeof v !== "object" || Array.isArray(v)) return null;
    if (typeof v.event !== "string" || typeof v.timestamp !== "number") return null;
    return entryFromObject(v);
  } catch {
    return null;
  }
}

/** Every entry of the live log (and archives, oldest first, with `archives`). */
export function readEntries(path: string, opts: { archives?: boolean } = {}): QueryEntry[] {
  const out: QueryEntry[] = [];
  let line = 0;
  for (const file of logFilesOldestFirst(path, opts.archives ?? false)) {
    const bytes = readFileOrNull(file);
    if (!bytes) continue;
    for (const physical of decoder.decode(bytes).split("\n")) {
      for (const l of logicalLines(physical)) {
        line++;
        const e = parseEntryLine(l);
        if (e) out.push({ ...e, line, file });
      }
    }
  }
  return out;
}

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
const RELATIVE = /^(\d+(?:\.\d+)?)\s*([smhdw])$/i;
const ISO =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/i;

function badSince(text: string): IronMeshError {
  return new IronMeshError(
    "AUDIT_BAD_SINCE",
    `cannot read the time "${text}"`,
    "use a duration like 30s, 5m, 2h, 7d, 1w or an ISO-8601 time like 2025-01-14 or " +
      "2025-01-14T08:00:00Z (no offset means UTC)",
    ExitCode.USAGE,
  );
}

/**
 * Parse `--since`: a duration back from `now` (`30s`, `5m`, `2h`, `7d`, `1w`) or an ISO-8601
 * date/time (`2025-01-14`, `2025-01-14T08:00`, `…:00.5Z`, `…+02:00`; no offset = UTC).
 * Returns epoch seconds.
 */
export function parseSince(text: string, now: number): number {
  const s = text.trim();
  const rel = RELATIVE.exec(s);
  if (rel) return now - Number(rel[1]) * UNIT_SECONDS[rel[2].toLowerCase()];
  const m = ISO.exec(s);
  if (!m) throw badSince(text);
  const [y, mo, d, h, mi, sec] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i] ?? 0));
  const frac = m[7] ? Number(m[7]) : 0;
  if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 59) throw badSince(text);
  const ms = Date.UTC(y, mo - 1, d, h, mi, sec);
  if (new Date(ms).getUTCDate() !== d) throw badSince(text); // e.g. 2025-02-30
  let offset = 0;
  const tz = m[8];
  if (tz && tz.toUpperCase() !== "Z") {
    const sign = tz[0] === "-" ? -1 : 1;
    const digits = tz.slice(1).replace(":", "");
    const oh = Number(digits.slice(0, 2)), om = Number(digits.slice(2));
    if (oh > 23 || om > 59) throw badSince(text);
    offset = sign * (oh * 3600 + om * 60);
  }
  return ms / 1000 + frac - offset;
}

/** Parse an event filter: a comma list (or array) of names, matched case-insensitively. */
export function parseEventFilter(events: string | string[]): Set<string> {
  const list = Array.isArray(events) ? events : events.split(",");
  return new Set(list.map((e) => e.trim().toUpperCase()).filter((e) => e.length > 0));
}

/** Filters for `tail`. */
export interface TailOptions {
  /** Only entries at or after this time: epoch seconds or a `parseSince` string. */
  since?: string | number;
  /** Only these events (comma list or array). */
  events?: string | string[];
  /** At most this many, the most recent (default 20; 0 = all). */
  limit?: number;
  /** Include archives. */
  archives?: boolean;
  /** "Now" for relative `since` (seconds; default the system time). */
  now?: number;
}

/** Apply tail filters to entries in file order; returns the last `limit` matches, oldest first. */
export function filterEntries<T extends AuditEntry>(entries: T[], opts: TailOptions = {}): T[] {
  const now = opts.now ?? Date.now() / 1000;
  const since = opts.since === undefined
    ? null
    : typeof opts.since === "number"
    ? opts.since
    : parseSince(opts.since, now);
  const events = opts.events === undefined ? null : parseEventFilter(opts.events);
  const picked = entries.filter((e) =>
    (since === null || e.timestamp >= since) &&
    (events === null || events.has(e.event.toUpperCase()))
  );
  const limit = opts.limit ?? 20;
  if (!Number.isSafeInteger(limit) || limit < 0) {
    throw new IronMeshError(
      "AUDIT_BAD_LIMIT",
      `bad limit ${limit}`,
      "use a whole number ≥ 0",
      ExitCode.USAGE,
    );
  }
  return limit === 0 ? picked : picked.slice(-limit);
}

/** `audit tail`: the latest entries of the log matching the filters. */
export function tail(path: string, opts: TailOptions = {}): QueryEntry[] {
  return filterEntries(readEntries(path, { archives: opts.archives }), opts);
}

/** Counts for `audit stats`. */
export interface AuditStats {
  total: number;
  byEvent: Record<string, number>;
  /** Keyed by UTC day `YYYY-MM-DD`. */
  byDay: Record<string, number>;
  first: number | null;
  last: number | null;
}

/** UTC day of an epoch-seconds timestamp. */
export function utcDay(ts: number): string {
  return new Date(ts * 1000).toISOString().slice(0, 10);
}

/** Count entries per event and per UTC day (keys sorted). */
export function computeStats(entries: AuditEntry[]): AuditStats {
  const byEvent = new Map<string, number>(), byDay = new Map<string, number>();
  let first: number | null = null, last: number | null = null;
  for (const e of entries) {
    byEvent.set(e.event, (byEvent.get(e.event) ?? 0) + 1);
    if (Number.isFinite(e.timestamp)) {
      const day = utcDay(e.timestamp);
      byDay.set(day, (byDay.get(day) ?? 0) + 1);
      if (first === null || e.timestamp < first) first = e.timestamp;
      if (last === null || e.timestamp > last) last = e.timestamp;
    }
  }
  const sorted = (m: Map<string, number>) =>
    Object.fromEntries([...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return { total: entries.length, byEvent: sorted(byEvent), byDay: sorted(byDay), first, last };
}

/** `audit stats` over the log (filters as `tail`, without the limit). */
export function stats(path: string, opts: Omit<TailOptions, "limit"> = {}): AuditStats {
  return computeStats(filterEntries(readEntries(path, { archives: opts.archives }), {
    ...opts,
    limit: 0,
  }));
}

/** Options for `follow`. */
export interface FollowOptions {
  /** Stop following (the generator returns). */
  signal?: AbortSignal;
  /** Poll interval in ms (default 250). */
  pollMs?: number;
  /** Start with the entries already in the file (default: only new ones). */
  fromStart?: boolean;
  /** Injected wait (tests); must resolve early when `signal` aborts. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * Yield entries as they are appended to the live log. On rotation the old file (still open)
 * is drained first, then the new live file is read from its start. Partial lines wait for
 * their newline; unparsable lines are skipped.
 */
export async function* follow(path: string, opts: FollowOptions = {}): AsyncGenerator<QueryEntry> {
  const sleep = opts.sleep ?? defaultSleep;
  const pollMs = opts.pollMs ?? 250;
  let file: Deno.FsFile | null = null;
  let ino: number | null = null;
  let pending = new Uint8Array(0);
  let first = true;
  const buf = new Uint8Array(65536);
  const open = (fromEnd: boolean): boolean => {
    try {
      file = Deno.openSync(path, { read: true });
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return false;
      throw e;
    }
    const st = file.statSync();
    ino = st.ino ?? null;
    if (fromEnd) file.seekSync(st.size, Deno.SeekMode.Start);
    pending = new Uint8Array(0);
    return true;
  };
  /** Read to EOF from the open file; yield complete lines. */
  const drain = function* (): Generator<QueryEntry> {
    if (!file) return;
    for (;;) {
      const n = file.readSync(buf);
      if (n === null || n === 0) break;
      const merged = new Uint8Array(pending.length + n);
      merged.set(pending);
      merged.set(buf.subarray(0, n), pending.length);
      const cut = merged.lastIndexOf(10);
      pending = cut < 0 ? merged : merged.slice(cut + 1);
      if (cut < 0) continue;
      for (const physical of decoder.decode(merged.subarray(0, cut)).split("\n")) {
        for (const l of logicalLines(physical)) {
          const e = parseEntryLine(l);
          if (e) yield { ...e, line: 0, file: path };
        }
      }
    }
  };
  try {
    while (!opts.signal?.aborted) {
      if (!file) {
        if (!open(first && !opts.fromStart)) {
          first = false;
          await sleep(pollMs, opts.signal);
          continue;
        }
        first = false;
      }
      yield* drain();
      // Rotation: the path now names another file (or the file shrank): switch after draining.
      let st: Deno.FileInfo | null = null;
      try {
        st = Deno.statSync(path);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
      const current = file as Deno.FsFile | null;
      const pos = current ? current.seekSync(0, Deno.SeekMode.Current) : 0;
      const rotated = st !== null &&
        ((ino !== null && st.ino !== null && st.ino !== ino) || st.size < pos);
      if (rotated && current) {
        yield* drain();
        current.close();
        file = null;
        if (open(false)) continue;
      }
      await sleep(pollMs, opts.signal);
    }
  } finally {
    (file as Deno.FsFile | null)?.close();
  }
}
