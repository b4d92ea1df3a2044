/**
 * The small subset of tar that IMB1 backups need (PROTOCOL-0.9 §11.7), sans I/O:
 *
 * - Writing: POSIX ustar regular files only (mode 0600, uid/gid 0, empty uname/gname),
 *   padded to a 10,240-byte record like Python's `tarfile` and GNU tar, so any tar reader
 *   (Python's `tarfile.open(mode="r:gz")` in the reference's restore) accepts it.
 * - Reading: ustar, GNU and pax archives as Python's `tarfile` writes them (the reference's
 *   backups carry pax `x` headers for float mtimes). Every entry is returned with its kind;
 *   the caller decides what is allowed (restore accepts regular files only). Pax `path` and
 *   `size` records and GNU long names (`L`) apply to the next entry; global pax headers are
 *   ignored. Checksums are verified; sizes are bounded by the archive.
 *
 * Hand-written rather than an npm dependency: a few regular files in memory is ~150 lines,
 * and the reader must refuse things (links, devices, bad checksums) a general tar library
 * would happily extract.
 */

const BLOCK = 512;
/** Python's `tarfile.RECORDSIZE` (20 blocks): archives are padded to a multiple of it. */
export const RECORD_SIZE = 20 * BLOCK;
/** Longest name a plain ustar `name` field holds (we never need the prefix field). */
export const MAX_NAME_BYTES = 100;

/** One file to write. */
export interface TarFileInput {
  name: string;
  data: Uint8Array;
  /** Seconds since the epoch (integer part is stored). */
  mtime: number;
  /** Default 0o600. */
  mode?: number;
}

/** What an entry is. */
export type TarEntryKind =
  | "file"
  | "directory"
  | "symlink"
  | "hardlink"
  | "device"
  | "fifo"
  | "other";

/** One entry as read. `data` is empty for anything but regular files. */
export interface TarEntry {
  name: string;
  kind: TarEntryKind;
  /** The raw type flag, for messages. */
  typeflag: string;
  mode: number;
  size: number;
  mtime: number;
  linkname: string;
  data: Uint8Array;
}

/** A malformed archive (the message says where). */
export class TarError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TarError";
  }
}

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: false });

function writeString(h: Uint8Array, off: number, len: number, s: string): void {
  const b = enc.encode(s);
  if (b.length > len) throw new TarError(`tar field too long: ${s}`);
  h.set(b, off);
}

function writeOctal(h: Uint8Array, off: number, len: number, n: number): void {
  // `len - 1` octal digits, zero padded, then NUL (as Python and GNU tar write).
  const s = Math.floor(n).toString(8).padStart(len - 1, "0");
  if (s.length > len - 1) throw new TarError(`tar number too large: ${n}`);
  writeString(h, off, len, s + "\0");
}

function checksum(h: Uint8Array): { unsigned: number; signed: number } {
  let unsigned = 0, signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : h[i];
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return { unsigned, signed };
}

function header(f: TarFileInput): Uint8Array {
  const nameBytes = enc.encode(f.name);
  if (nameBytes.length === 0 || nameBytes.length > MAX_NAME_BYTES) {
    throw new TarError(`tar member name must be 1–${MAX_NAME_BYTES} bytes: ${f.name}`);
  }
  const h = new Uint8Array(BLOCK);
  h.set(nameBytes, 0);
  writeOctal(h, 100, 8, f.mode ?? 0o600);
  writeOctal(h, 108, 8, 0); // uid
  writeOctal(h, 116, 8, 0); // gid
  writeOctal(h, 124, 12, f.data.length);
  writeOctal(h, 136, 12, Math.max(0, Math.floor(f.mtime)));
  h[156] = 0x30; // '0' regular file
  writeString(h, 257, 6, "ustar\0");
  writeString(h, 263, 2, "00");
  writeOctal(h, 329, 8, 0); // devmajor
  writeOctal(h, 337, 8, 0); // devminor
  const sum = checksum(h).unsigned;
  writeString(h, 148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  return h;
}

/** A ustar archive of `files`, in order, padded to a whole record. */
export function writeTar(files: TarFileInput[]): Uint8Array {
  let size = 0;
  for (const f of files) size += BLOCK + Math.ceil(f.data.length / BLOCK) * BLOCK;
  size += 2 * BLOCK;
  size = Math.ceil(size / RECORD_SIZE) * RECORD_SIZE;
  const out = new Uint8Array(size);
  let off = 0;
  for (const f of files) {
    out.set(header(f), off);
    off += BLOCK;
    out.set(f.data, off);
    off += Math.ceil(f.data.length / BLOCK) * BLOCK;
  }
  return out;
}

function readString(h: Uint8Array, off: number, len: number): string {
  const field = h.subarray(off, off + len);
  const nul = field.indexOf(0);
  return dec.decode(nul >= 0 ? field.subarray(0, nul) : field);
}

function readNumber(h: Uint8Array, off: number, len: number, what: string): number {
  const field = h.subarray(off, off + len);
  if (field[0] & 0x80) {
    // GNU base-256: big-endian, first byte's high bit is the marker (negative values refused).
    if (field[0] & 0x40) throw new TarError(`negative ${what} in a tar header`);
    let n = field[0] & 0x3f;
    for (let i = 1; i < len; i++) {
      n = n * 256 + field[i];
      if (n > Number.MAX_SAFE_INTEGER) throw new TarError(`${what} too large in a tar header`);
    }
    return n;
  }
  const s = readString(h, off, len).trim();
  if (s === "") return 0;
  if (!/^[0-7]+$/.test(s)) throw new TarError(`bad ${what} field '${s}' in a tar header`);
  return parseInt(s, 8);
}

function kindOf(flag: string): TarEntryKind {
  switch (flag) {
    case "0":
    case "\0":
    case "":
      return "file";
    case "1":
      return "hardlink";
    case "2":
      return "symlink";
    case "3":
    case "4":
      return "device";
    case "5":
      return "directory";
    case "6":
      return "fifo";
    default:
      return "other";
  }
}

/** Parse pax extended-header records (`"<len> <key>=<value>\n"`). */
export function parsePaxRecords(data: Uint8Array): Map<string, string> {
  const out = new Map<string, string>();
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] === 0) break;
    const sp = data.indexOf(0x20, pos);
    if (sp < 0) throw new TarError("malformed pax header record");
    const lenText = dec.decode(data.subarray(pos, sp));
    if (!/^\d+$/.test(lenText)) throw new TarError("malformed pax header length");
    const len = Number(lenText);
    if (len <= sp - pos + 1 || pos + len > data.length || data[pos + len - 1] !== 0x0a) {
      throw new TarError("malformed pax header record");
    }
    const rec = dec.decode(data.subarray(sp + 1, pos + len - 1));
    const eq = rec.indexOf("=");
    if (eq < 0) throw new TarError("malformed pax header record");
    out.set(rec.slice(0, eq), rec.slice(eq + 1));
    pos += len;
  }
  return out;
}

/** Options of `readTar`. */
export interface ReadTarOptions {
  /** Refuse more entries than this (default 64). */
  maxEntries?: number;
}

/** Read every entry of a tar archive held in memory. Throws TarError when it is malformed. */
export function readTar(bytes: Uint8Array, opts: ReadTarOptions = {}): TarEntry[] {
  const maxEntries = opts.maxEntries ?? 64;
  const entries: TarEntry[] = [];
  let off = 0;
  let pax = new Map<string, string>();
  let longName: string | null = null;
  let sawEnd = false;
  while (off + BLOCK <= bytes.length) {
    const h = bytes.subarray(off, off + BLOCK);
    if (h.every((b) => b === 0)) {
      sawEnd = true;
      break;
    }
    const stored = readNumber(h, 148, 8, "checksum");
    const sum = checksum(h);
    if (stored !== sum.unsigned && stored !== sum.signed) {
      throw new TarError(`bad tar header checksum at byte ${off}`);
    }
    const flag = String.fromCharCode(h[156]);
    let size = readNumber(h, 124, 12, "size");
    const paxSize = pax.get("size");
    if (paxSize !== undefined && /^\d+$/.test(paxSize)) size = Number(paxSize);
    const dataStart = off + BLOCK;
    if (size > bytes.length - dataStart) {
      throw new TarError(`tar entry at byte ${off} runs past the end of the archive (truncated)`);
    }
    const data = bytes.subarray(dataStart, dataStart + size);
    off = dataStart + Math.ceil(size / BLOCK) * BLOCK;
    if (flag === "x") {
      pax = parsePaxRecords(data);
      continue;
    }
    if (flag === "g") continue; // global pax defaults: nothing we use
    if (flag === "L") {
      const nul = data.indexOf(0);
      longName = dec.decode(nul >= 0 ? data.subarray(0, nul) : data);
      continue;
    }
    if (flag === "K") continue; // GNU long link name: links are refused anyway
    const magic = readString(h, 257, 6);
    let name = readString(h, 0, 100);
    const prefix = magic === "ustar" ? readString(h, 345, 155) : "";
    if (prefix) name = `${prefix}/${name}`;
    if (longName !== null) name = longName;
    const paxPath = pax.get("path");
    if (paxPath !== undefined) name = paxPath;
    const kind = kindOf(flag);
    entries.push({
      name,
      kind,
      typeflag: flag === "\0" ? "0" : flag,
      mode: readNumber(h, 100, 8, "mode"),
      size,
      mtime: readNumber(h, 136, 12, "mtime"),
      linkname: pax.get("linkpath") ?? readString(h, 157, 100),
      data: kind === "file" ? data.slice() : new Uint8Array(0),
    });
    if (entries.length > maxEntries) {
      throw new TarError(`more than ${maxEntries} entries: not an ironmesh backup`);
    }
    pax = new Map();
    longName = null;
  }
  if (!sawEnd && off < bytes.length) throw new TarError("trailing partial tar block (truncated)");
  if (!sawEnd && entries.length === 0) throw new TarError("empty or truncated tar archive");
  return entries;
}
