/**
 * routes.json and capabilities.json (PROTOCOL-0.9 §11.1, §11.4; `mesh.py` `RoutingTable.save/
 * load`, `capabilities.py` `CapabilityRegistry.save/load`), byte-compatible with the reference:
 * the file is DEFAULT-profile JSON `{"hmac": <hex>, "body": <string>}` with `hmac` =
 * HMAC-SHA256(key, UTF-8 body); the body is CANON JSON. Keys come from the identity seed
 * (`routesKey`, `capabilitiesKey` in lib/crypto/kdf.ts).
 *
 * - routes body: `{"my_node_id","routes":{dst:{"cost","learned_from","next_hop","updated"}},
 *   "ttl"}` (`updated` and `ttl` are Python floats). On load every route is re-stamped
 *   `updated = now − max(0, ttl − 30)`, so it expires 30 s later unless refreshed. A file of
 *   another node is ignored; with a bad HMAC *and* another node id it is deleted (the "keys
 *   rotated" case), as the reference does.
 * - capabilities body: `{"local":[sorted],"my_node_id","remote":{node:[sorted]}}`; a file that
 *   fails its HMAC or names another node is ignored (never deleted).
 *
 * The encode/decode functions are pure; the `*File` helpers do the file I/O (atomic writes).
 */
import { constantTimeEqualString, hmacSha256, toHex, utf8 } from "../crypto/sodium.ts";
import { atomicWrite } from "../fs/atomic_write.ts";
import { canonicalJson, codePointCompare, defaultJson } from "../json/canonical.ts";
import { JsonError, parseJson } from "../json/parse.ts";
import { PyFloat } from "../json/py_float.ts";
import type { CapabilityRegistry } from "./capabilities.ts";
import type { RouteEntry, RoutingTable } from "./distance_vector.ts";

/** Loaded routes expire this long after loading (`refresh_ttl`, seconds). */
export const ROUTES_REFRESH_TTL_S = 30;

/** HMAC-SHA256(key, UTF-8 body) as lowercase hex. */
export function stateFileHmac(body: string, key: Uint8Array): string {
  return toHex(hmacSha256(key, utf8(body)));
}

/** The file text: `json.dump({"hmac": …, "body": …})` with Python's default separators. */
export function encodeStateFile(body: string, key: Uint8Array): string {
  return defaultJson({ hmac: stateFileHmac(body, key), body });
}

/** Why a state file was not loaded. */
export type StateFileFailure = "missing" | "unreadable" | "malformed" | "bad-hmac" | "other-node";

/** Result of `decodeStateFile`. */
export type DecodedStateFile =
  | { ok: true; body: Record<string, unknown> }
  | {
    ok: false;
    reason: StateFileFailure;
    /** The reference deletes the file (bad HMAC and another node id: a rotated identity). */
    discard: boolean;
  };

function asObject(v: unknown): Record<string, unknown> | null {
  return v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof PyFloat)
    ? v as Record<string, unknown>
    : null;
}

/** Verify and parse a state file's text for node `selfId`. */
export function decodeStateFile(text: string, key: Uint8Array, selfId: string): DecodedStateFile {
  let outer: Record<string, unknown> | null;
  try {
    outer = asObject(parseJson(text));
  } catch {
    outer = null;
  }
  if (!outer) return { ok: false, reason: "malformed", discard: false };
  const stored = outer.hmac ?? "";
  const body = outer.body ?? "";
  if (typeof stored !== "string" || typeof body !== "string") {
    return { ok: false, reason: "malformed", discard: false };
  }
  let parsed: Record<string, unknown> | null = null;
  try {
    parsed = body ? asObject(parseJson(body, { preserveNumbers: true })) : null;
  } catch (e) {
    if (!(e instanceof JsonError)) throw e;
  }
  if (!constantTimeEqualString(stored, stateFileHmac(body, key))) {
    const id = parsed?.my_node_id;
    const rotated = typeof id === "string" && id !== "" && id !== selfId;
    return rotated
      ? { ok: false, reason: "other-node", discard: true }
      : { ok: false, reason: "bad-hmac", discard: false };
  }
  if (!parsed) return { ok: false, reason: "malformed", discard: false };
  if (parsed.my_node_id !== selfId) return { ok: false, reason: "other-node", discard: false };
  return { ok: true, body: parsed };
}

// ---------------------------------------------------------------------------------------------
// routes.json

/** The CANON routes body for `selfId`'s routes (`updated` and `ttl` as Python floats). */
export function routesBody(selfId: string, routes: Iterable<RouteEntry>, ttlS: number): string {
  return canonicalJson({
    my_node_id: selfId,
    routes: Object.fromEntries([...routes].map((r) => [r.destination, {
      cost: r.cost,
      learned_from: r.learnedFrom,
      next_hop: r.nextHop,
      updated: new PyFloat(r.updated),
    }])),
    ttl: new PyFloat(ttlS),
  });
}

/**
 * The routes of a verified body, re-stamped `updated = now − max(0, ttlS − 30)` (`ttlS` is the
 * loading node's own route TTL, as in the reference). Entries that are not objects with an
 * integer cost and string hops are skipped, as are routes to `selfId`.
 */
export function routesFromBody(
  body: Record<string, unknown>,
  selfId: string,
  now: number,
  ttlS: number,
): RouteEntry[] {
  const routes = asObject(body.routes);
  if (!routes) return [];
  const updated = now - Math.max(0, ttlS - ROUTES_REFRESH_TTL_S);
  const out: RouteEntry[] = [];
  for (const [destination, v] of Object.entries(routes)) {
    const r = asObject(v);
    if (!r || destination === selfId) continue;
    const { cost, learned_from: learnedFrom, next_hop: nextHop } = r;
    if (typeof cost !== "number" || !Number.isSafeInteger(cost)) continue;
    if (typeof learnedFrom !== "string" || learnedFrom === "") continue;
    out.push({
      destination,
      cost,
      learnedFrom,
      nextHop: typeof nextHop === "string" && nextHop !== "" ? nextHop : learnedFrom,
      updated,
    });
  }
  return out;
}

/** Outcome of loading a state file. */
export interface LoadOutcome {
  loaded: boolean;
  reason?: StateFileFailure;
  /** The file was deleted (another identity's file with a bad HMAC). */
  deleted?: boolean;
  /** Entries restored. */
  count: number;
}

async function readState(
  path: string,
  key: Uint8Array,
  selfId: string,
  deleteRotated: boolean,
): Promise<{ decoded: DecodedStateFile; deleted: boolean }> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    const reason = e instanceof Deno.errors.NotFound ? "missing" : "unreadable";
    return { decoded: { ok: false, reason, discard: false }, deleted: false };
  }
  const decoded = decodeStateFile(text, key, selfId);
  let deleted = false;
  if (!decoded.ok && decoded.discard && deleteRotated) {
    try {
      await Deno.remove(path);
      deleted = true;
    } catch { /* already gone */ }
  }
  return { decoded, deleted };
}

function failed(decoded: DecodedStateFile, deleted: boolean): LoadOutcome {
  const out: LoadOutcome = { loaded: false, count: 0 };
  if (!decoded.ok) out.reason = decoded.reason;
  if (deleted) out.deleted = true;
  return out;
}

/** Write routes.json atomically and mark the table persisted. */
export async function saveRoutesFile(
  path: string,
  key: Uint8Array,
  table: RoutingTable,
): Promise<void> {
  await atomicWrite(
    path,
    encodeStateFile(routesBody(table.selfId, table.routes(), table.routeTtlS), key),
  );
  table.markPersisted();
}

/** Load routes.json into `table` (re-stamped to expire 30 s after `now`). */
export async function loadRoutesFile(
  path: string,
  key: Uint8Array,
  table: RoutingTable,
  now: number,
): Promise<LoadOutcome> {
  const { decoded, deleted } = await readState(path, key, table.selfId, true);
  if (!decoded.ok) return failed(decoded, deleted);
  const count = table.restore(routesFromBody(decoded.body, table.selfId, now, table.routeTtlS));
  return { loaded: true, count };
}

// ---------------------------------------------------------------------------------------------
// capabilities.json

/** The CANON capabilities body (lists sorted by code point). */
export function capabilitiesBody(
  selfId: string,
  local: Iterable<string>,
  remote: Record<string, Iterable<string>>,
): string {
  const sorted = (xs: Iterable<string>) => [...new Set(xs)].sort(codePointCompare);
  return canonicalJson({
    local: sorted(local),
    my_node_id: selfId,
    remote: Object.fromEntries(Object.entries(remote).map(([id, caps]) => [id, sorted(caps)])),
  });
}

/** The local and remote sets of a verified body (non-string entries dropped). */
export function capabilitiesFromBody(
  body: Record<string, unknown>,
): { local: string[]; remote: Record<string, string[]> } {
  const strings = (v: unknown) =>
    Array.isArray(v) ? v.filter((c): c is string => typeof c === "string" && c !== "") : [];
  const remote: Record<string, string[]> = {};
  for (const [id, caps] of Object.entries(asObject(body.remote) ?? {})) {
    if (Array.isArray(caps)) remote[id] = strings(caps);
  }
  return { local: strings(body.local), remote };
}

/** Write capabilities.json atomically. */
export async function saveCapabilitiesFile(
  path: string,
  key: Uint8Array,
  registry: CapabilityRegistry,
): Promise<void> {
  const s = registry.snapshot();
  await atomicWrite(
    path,
    encodeStateFile(capabilitiesBody(registry.selfId, s.local, s.remote), key),
  );
}

/**
 * Load capabilities.json into `registry`. Pass `keepLocal` when `--capability` values replace
 * the persisted local set (they are set after loading). Returns the number of remote nodes.
 */
export async function loadCapabilitiesFile(
  path: string,
  key: Uint8Array,
  registry: CapabilityRegistry,
  opts: { keepLocal?: boolean } = {},
): Promise<LoadOutcome> {
  const { decoded, deleted } = await readState(path, key, registry.selfId, false);
  if (!decoded.ok) return failed(decoded, deleted);
  const state = capabilitiesFromBody(decoded.body);
  registry.restore(opts.keepLocal ? { remote: state.remote } : state);
  return { loaded: true, count: Object.keys(state.remote).length };
}
