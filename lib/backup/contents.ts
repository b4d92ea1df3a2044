/**
 * What an IMB1 backup holds and how its members are checked, sans I/O.
 *
 * The reference (`backup.py`) writes `manifest.json` = INDENT2
 * `{version: 1, created_at: <float>, node_id, includes: {keys, trust, audit}}` and the members
 * `keys.json`, `known_peers.json` and `audit.log` (only the last 10,000 lines). Its restore reads
 * the manifest with `json.loads`, takes those three names, and skips every other member.
 *
 * Ours (a deliberate deviation, PROTOCOL-0.9 §18.9): the `audit.log` member is the whole live
 * log, and the rotated archives `audit.log.1`–`.5` and the signed checkpoint `audit.checkpoint`
 * ride in extra members, so a restored node verifies from genesis. The manifest keeps the
 * reference's four keys first, in its order, and adds:
 *
 *   "writer": "ironmesh <version>",
 *   "audit_complete": true,
 *   "files": [{"name", "present": true, "size", "sha256"} | {"name", "present": false}, …]
 *
 * listing every state file we back up, absent ones included. A Python restore ignores the
 * extra keys and members (they are plain names without `..`, `/` or `\`), so it still restores
 * keys.json, known_peers.json and the whole live audit.log from our backups.
 */
import { sha256, toHex } from "../crypto/sodium.ts";
import { ExitCode, IronMeshError } from "../errors.ts";
import { indent2Json } from "../json/canonical.ts";
import { PyFloat } from "../json/py_float.ts";
import { MAX_ARCHIVES } from "../audit/files.ts";
import type { TarEntry } from "./tar.ts";

/** The manifest member. */
export const MANIFEST_NAME = "manifest.json";
/** The reference's manifest version. */
export const MANIFEST_VERSION = 1;
/** The identity member (required by our restore). */
export const KEYS_NAME = "keys.json";
/** The trust store member. */
export const TRUST_NAME = "known_peers.json";
/** The live audit log member. */
export const AUDIT_NAME = "audit.log";
/** The checkpoint member (ours). */
export const CHECKPOINT_NAME = "audit.checkpoint";

/** Archive member names, oldest first (`audit.log.5` … `audit.log.1`). */
export const ARCHIVE_NAMES: readonly string[] = Array.from(
  { length: MAX_ARCHIVES },
  (_, i) => `${AUDIT_NAME}.${MAX_ARCHIVES - i}`,
);

/**
 * Every state file a backup carries, in member order; each is also its name in the state
 * directory. The audit files come oldest first, then the live log, then the checkpoint.
 */
export const STATE_FILES: readonly string[] = [
  KEYS_NAME,
  TRUST_NAME,
  ...ARCHIVE_NAMES,
  AUDIT_NAME,
  CHECKPOINT_NAME,
];

/** One state file as listed in our manifest. */
export type FileListing =
  | { name: string; present: true; size: number; sha256: string }
  | { name: string; present: false };

/** A parsed manifest (the reference's fields, plus ours when present). */
export interface Manifest {
  version: number;
  createdAt: number | null;
  nodeId: string | null;
  includes: { keys: boolean; trust: boolean; audit: boolean };
  /** "ironmesh <version>" for our backups; null for the reference's. */
  writer: string | null;
  /** True when the backup holds the whole audit set (ours), false for a reference tail. */
  auditComplete: boolean;
  /** Our per-file listing; null for the reference's backups. */
  files: FileListing[] | null;
  text: string;
}

/** Hex SHA-256. */
export function sha256Hex(data: Uint8Array): string {
  return toHex(sha256(data));
}

/** Build the manifest text for the state files read (`null` = absent). */
export function buildManifest(opts: {
  createdAt: number;
  nodeId: string | null;
  writer: string;
  files: Map<string, Uint8Array | null>;
}): string {
  const listing: FileListing[] = STATE_FILES.map((name) => {
    const data = opts.files.get(name) ?? null;
    return data === null
      ? { name, present: false }
      : { name, present: true, size: data.length, sha256: sha256Hex(data) };
  });
  const has = (n: string) => (opts.files.get(n) ?? null) !== null;
  return indent2Json({
    version: MANIFEST_VERSION,
    created_at: new PyFloat(opts.createdAt),
    node_id: opts.nodeId,
    includes: { keys: has(KEYS_NAME), trust: has(TRUST_NAME), audit: has(AUDIT_NAME) },
    writer: opts.writer,
    audit_complete: true,
    files: listing,
  });
}

function bad(message: string, exitCode: 10 | 13 = ExitCode.BAD_INPUT): IronMeshError {
  return new IronMeshError(
    exitCode === ExitCode.TAMPERED ? "BACKUP_TAMPERED" : "BACKUP_BAD_MANIFEST",
    message,
    exitCode === ExitCode.TAMPERED
      ? "do not restore this file: it does not match its own manifest; use another copy"
      : "this is not a backup written by ironmesh or Python IronMesh; use another copy",
    exitCode,
  );
}

const HEX64 = /^[0-9a-f]{64}$/;

/** Parse and validate manifest.json text. */
export function parseManifest(text: string): Manifest {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw bad("manifest.json is not valid JSON");
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    throw bad("manifest.json is not a JSON object");
  }
  const o = v as Record<string, unknown>;
  if (o.version !== MANIFEST_VERSION) {
    throw new IronMeshError(
      "BACKUP_UNSUPPORTED_VERSION",
      `manifest.json has version ${
        JSON.stringify(o.version)
      }; this ironmesh reads version ${MANIFEST_VERSION}`,
      "restore it with the IronMesh version that wrote it",
      ExitCode.UNSUPPORTED,
    );
  }
  if (o.node_id !== undefined && o.node_id !== null && typeof o.node_id !== "string") {
    throw bad("manifest.json node_id is not a string");
  }
  const inc = o.includes;
  const includes = { keys: false, trust: false, audit: false };
  if (inc !== undefined) {
    if (inc === null || typeof inc !== "object" || Array.isArray(inc)) {
      throw bad("manifest.json includes is not an object");
    }
    const i = inc as Record<string, unknown>;
    includes.keys = i.keys === true;
    includes.trust = i.trust === true;
    includes.audit = i.audit === true;
  }
  let files: FileListing[] | null = null;
  if (o.files !== undefined) {
    if (!Array.isArray(o.files)) throw bad("manifest.json files is not a list");
    files = [];
    const seen = new Set<string>();
    for (const f of o.files) {
      if (f === null || typeof f !== "object" || Array.isArray(f)) {
        throw bad("manifest.json lists a file that is not an object");
      }
      const r = f as Record<string, unknown>;
      if (typeof r.name !== "string" || seen.has(r.name)) {
        throw bad("manifest.json lists a file without a name, or twice");
      }
      seen.add(r.name);
      if (r.present === false) files.push({ name: r.name, present: false });
      else if (
        r.present === true && typeof r.size === "number" && Number.isSafeInteger(r.size) &&
        r.size >= 0 && typeof r.sha256 === "string" && HEX64.test(r.sha256)
      ) {
        files.push({ name: r.name, present: true, size: r.size, sha256: r.sha256 });
      } else throw bad(`manifest.json entry for ${r.name} is malformed`);
    }
  }
  return {
    version: MANIFEST_VERSION,
    createdAt: typeof o.created_at === "number" ? o.created_at : null,
    nodeId: typeof o.node_id === "string" ? o.node_id : null,
    includes,
    writer: typeof o.writer === "string" ? o.writer : null,
    auditComplete: o.audit_complete === true && files !== null,
    files,
    text,
  };
}

/**
 * Why a member name is unsafe to restore, or null when it is a plain relative name. Stricter
 * than the reference (which skips names containing `..`, starting with `/` or holding `\`):
 * empty names, NUL and control characters, and drive letters are refused as well.
 */
export function unsafeMemberReason(name: string): string | null {
  if (name.length === 0) return "an empty name";
  if (name.startsWith("/")) return "an absolute path";
  if (name.includes("\\")) return "a backslash";
  if (name.includes("..")) return "'..'";
  if (/^[A-Za-z]:/.test(name)) return "a drive letter";
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x1f\x7f]/.test(name)) return "a control character";
  return null;
}

/** The checked contents of a backup archive. */
export interface BackupContents {
  manifest: Manifest;
  /** State file name → bytes, for every managed member present. */
  files: Map<string, Uint8Array>;
  /** Members ignored (unknown names), for a warning. */
  ignored: string[];
}

/** Printable form of a member name for messages. */
function shown(name: string): string {
  return JSON.stringify(name);
}

/**
 * Check the archive's entries and pick the state files. Refuses (throws) unsafe names, any
 * entry that is not a regular file (links, devices, directories, fifos), duplicate names, a
 * missing manifest, and — for our backups — any difference from the manifest's listing
 * (missing, extra, or changed files). Unknown regular files with safe names are ignored, as
 * the reference does.
 */
export function checkEntries(entries: TarEntry[]): BackupContents {
  const byName = new Map<string, TarEntry>();
  for (const e of entries) {
    const why = unsafeMemberReason(e.name);
    if (why) {
      throw new IronMeshError(
        "BACKUP_UNSAFE_MEMBER",
        `the backup holds a member with an unsafe path ${shown(e.name)} (${why})`,
        "do not restore this file: it was not written by ironmesh; use another copy",
        ExitCode.BAD_INPUT,
      );
    }
    if (e.kind !== "file") {
      throw new IronMeshError(
        "BACKUP_UNSAFE_MEMBER",
        `the backup member ${shown(e.name)} is a ${e.kind} (tar type '${e.typeflag}'${
          e.linkname ? ` → ${shown(e.linkname)}` : ""
        }); only regular files are restored`,
        "do not restore this file: it was not written by ironmesh; use another copy",
        ExitCode.BAD_INPUT,
      );
    }
    if (byName.has(e.name)) {
      throw bad(`the backup holds ${shown(e.name)} twice`, ExitCode.TAMPERED);
    }
    byName.set(e.name, e);
  }
  const m = byName.get(MANIFEST_NAME);
  if (!m) throw bad("the backup has no manifest.json");
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(m.data);
  } catch {
    throw bad("manifest.json is not UTF-8");
  }
  const manifest = parseManifest(text);
  const files = new Map<string, Uint8Array>();
  const ignored: string[] = [];
  const managed = new Set(STATE_FILES);
  for (const [name, e] of byName) {
    if (name === MANIFEST_NAME) continue;
    if (managed.has(name)) files.set(name, e.data);
    else ignored.push(name);
  }
  if (manifest.files) {
    const listed = new Map(manifest.files.map((f) => [f.name, f]));
    for (const f of manifest.files) {
      if (!managed.has(f.name)) continue;
      const data = files.get(f.name);
      if (!f.present) {
        if (data) {
          throw bad(`${f.name} is in the backup but its manifest lists it as absent`, 10);
        }
        continue;
      }
      if (!data) throw bad(`the manifest lists ${f.name} but the backup does not hold it`, 10);
      if (data.length !== f.size || sha256Hex(data) !== f.sha256) {
        throw bad(`${f.name} does not match the SHA-256 in the manifest`, 10);
      }
    }
    for (const name of files.keys()) {
      if (!listed.has(name)) {
        throw bad(`${name} is in the backup but not in its manifest`, 10);
      }
    }
  }
  return { manifest, files, ignored };
}
