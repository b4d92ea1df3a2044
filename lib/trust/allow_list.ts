/**
 * Allow lists for the `allow_list` trust policy: peers named by node id or by
 * b64 Ed25519 public key, from one file (one entry per line, `#` comments, words
 * after the entry are a free-form label) or from a directory of key files with
 * one entry per file (like an `authorized_keys/` directory). Dotfiles are skipped.
 */
import { join } from "node:path";
import { constantTimeEqual } from "../crypto/sodium.ts";
import { ExitCode, IronMeshError } from "../errors.ts";
import { nodeIdOf } from "../identity/node_id.ts";
import { canonicalKeyB64, decodePresentedKey } from "./records.ts";

/** One allowed peer. */
export interface AllowEntry {
  /** The node id (given, or derived from the key). */
  nodeId: string;
  /** The key, when the entry was a key (then only that exact key matches). */
  key?: Uint8Array;
  /** Canonical b64 of the key, when given. */
  keyB64?: string;
  /** Free text after the entry on its line. */
  label?: string;
  /** `file:line` the entry came from. */
  source: string;
}

/** A parsed allow list. */
export interface AllowList {
  entries: AllowEntry[];
}

function invalid(source: string, what: string): IronMeshError {
  return new IronMeshError(
    "TRUST_ALLOW_LIST_INVALID",
    `${source}: ${what}`,
    "each entry is a 32-hex node id or a padded base64 Ed25519 public key; `#` starts a comment",
    ExitCode.BAD_INPUT,
  );
}

/** Parse one entry token (node id in any case, or strict b64 of 32 bytes), or null. */
export function parseAllowEntry(token: string, source: string, label?: string): AllowEntry | null {
  const lower = token.toLowerCase();
  if (/^[0-9a-f]{32}$/.test(lower)) {
    return { nodeId: lower, source, ...(label ? { label } : {}) };
  }
  const key = decodePresentedKey(token);
  if (!key) return null;
  return {
    nodeId: nodeIdOf(key),
    key,
    keyB64: canonicalKeyB64(key),
    source,
    ...(label ? { label } : {}),
  };
}

/** Parse allow-list text; throws TRUST_ALLOW_LIST_INVALID naming `source:line`. */
export function parseAllowList(text: string, source = "allow list"): AllowList {
  const entries: AllowEntry[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    const body = line.split("#")[0].trim();
    if (!body) return;
    const [token, ...rest] = body.split(/\s+/);
    const where = `${source}:${i + 1}`;
    const entry = parseAllowEntry(token, where, rest.join(" "));
    if (!entry) throw invalid(where, "not a node id or base64 Ed25519 public key");
    entries.push(entry);
  });
  return { entries };
}

/** Load an allow list from a file or from a directory of one-entry key files. */
export async function loadAllowList(path: string): Promise<AllowList> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new IronMeshError(
        "TRUST_ALLOW_LIST_MISSING",
        `allow list ${path} does not exist`,
        "create it (one node id or public key per line) or point --allow-list at it",
        ExitCode.NOT_FOUND,
      );
    }
    throw e;
  }
  if (!info.isDirectory) return parseAllowList(await Deno.readTextFile(path), path);
  const names: string[] = [];
  for await (const e of Deno.readDir(path)) if (!e.name.startsWith(".")) names.push(e.name);
  const entries: AllowEntry[] = [];
  for (const name of names.sort()) {
    const file = join(path, name);
    if (!(await Deno.stat(file)).isFile) continue;
    const list = parseAllowList(await Deno.readTextFile(file), file);
    if (list.entries.length !== 1) {
      throw invalid(file, `a key file holds exactly one entry, found ${list.entries.length}`);
    }
    entries.push(list.entries[0]);
  }
  return { entries };
}

/** The entry admitting (`nodeId`, `key`), if any: key entries compare decoded bytes. */
export function allowListMatch(
  list: AllowList,
  nodeId: string,
  key: Uint8Array,
): AllowEntry | undefined {
  return list.entries.find((e) => e.key ? constantTimeEqual(e.key, key) : e.nodeId === nodeId);
}
