/**
 * Signed audit exports (`audit export` / `verify-export`, PROTOCOL-0.9 §11.5, §18.12).
 *
 * File: INDENT2 `{entries, final_hmac, entry_count, exported_at, signer, signer_pubkey,
 * signature}`; `signature` = Ed25519 without context over CANON of every other field. The
 * reference writes no `signer_pubkey`; we put it inside the signed body, so the reference's
 * `verify-export` checks the signature too. Verifying a reference export (no `signer_pubkey`)
 * needs the signer's key from elsewhere (trust store): without it the result is
 * `unknown-signer`, never `valid`.
 */
import { atomicWrite } from "../fs/atomic_write.ts";
import { type Clock, systemClock } from "../clock.ts";
import { ExitCode, IronMeshError } from "../errors.ts";
import {
  constantTimeEqual,
  constantTimeEqualString,
  fromB64,
  toB64,
  utf8,
  verifyDetached,
} from "../crypto/sodium.ts";
import { canonicalJson, indent2Json } from "../json/canonical.ts";
import { PyFloat } from "../json/py_float.ts";
import { parseJson } from "../json/parse.ts";
import { nodeIdOf } from "../identity/node_id.ts";
import { AUDIT_MAX_DEPTH, chainHmac, GENESIS_HMAC } from "./chain.ts";
import { EVENT_LOG_ROTATED } from "./events.ts";
import { logFilesOldestFirst, readFileOrNull } from "./files.ts";
import { ChainMac } from "./hmac.ts";
import { logicalLines } from "./scan.ts";
import { verifyLog } from "./verify.ts";

/** Signs exports: plain Ed25519 without context (`Identity` satisfies this). */
export interface ExportSigner {
  publicKey: Uint8Array;
  sign(message: Uint8Array, context?: Uint8Array): Uint8Array;
}

/** Options for `buildExport`. */
export interface ExportOptions {
  signer: ExportSigner;
  /** `exported_at` comes from here. */
  clock?: Clock;
  /** Export the archives too (oldest first), not only the live file as the reference does. */
  archives?: boolean;
  /** The audit key: the chain is verified first and a broken chain refuses the export. */
  key?: Uint8Array;
  /** Export even when the chain does not verify. */
  force?: boolean;
}

const decoder = new TextDecoder();

/** The signed export text (INDENT2 + "\n") and its entry count. */
export function buildExport(path: string, opts: ExportOptions): { text: string; count: number } {
  if (opts.key) {
    const v = verifyLog(path, opts.key, { archives: opts.archives ?? false });
    if (!v.ok && !opts.force) {
      throw new IronMeshError(
        "AUDIT_CHAIN_BROKEN",
        `the audit log does not verify: ${v.message}`,
        "run `audit verify` to see the problem; export with --force to export it anyway",
        ExitCode.TAMPERED,
      );
    }
  }
  const entries: Record<string, unknown>[] = [];
  for (const file of logFilesOldestFirst(path, opts.archives ?? false)) {
    const bytes = readFileOrNull(file);
    if (!bytes) continue;
    for (const physical of decoder.decode(bytes).split("\n")) {
      for (const l of logicalLines(physical)) {
        try {
          const v = parseJson(l, { preserveNumbers: true, maxDepth: AUDIT_MAX_DEPTH });
          if (v !== null && typeof v === "object" && !Array.isArray(v)) {
            entries.push(v as Record<string, unknown>);
          }
        } catch { /* torn line: not an entry */ }
      }
    }
  }
  const last = entries[entries.length - 1];
  const body: Record<string, unknown> = {
    entries,
    final_hmac: last && typeof last.hmac === "string" ? last.hmac : GENESIS_HMAC,
    entry_count: entries.length,
    exported_at: new PyFloat((opts.clock ?? systemClock).now()),
    signer: nodeIdOf(opts.signer.publicKey),
    signer_pubkey: toB64(opts.signer.publicKey),
  };
  const signature = opts.signer.sign(utf8(canonicalJson(body)));
  return {
    text: indent2Json({ ...body, signature: toB64(signature) }) + "\n",
    count: entries.length,
  };
}

/** Build an export and write it atomically to `outPath` (mode 0600). */
export async function writeExport(
  path: string,
  outPath: string,
  opts: ExportOptions,
): Promise<number> {
  const { text, count } = buildExport(path, opts);
  await atomicWrite(outPath, text);
  return count;
}

/** Verdict on an export. */
export interface ExportVerifyResult {
  /** True only when the signature verified under a known key and the body is consistent. */
  valid: boolean;
  status:
    | "valid"
    | "unknown-signer"
    | "bad-signature"
    | "signer-mismatch"
    | "inconsistent"
    | "chain-broken"
    | "malformed";
  message: string;
  signer?: string;
  entryCount?: number;
  finalHmac?: string;
  exportedAt?: number;
  /** Whether the signature was checked against `expectedPublicKey` or the included key. */
  keySource?: "expected" | "included";
  /** Chain check over the entries (needs the audit key). */
  chain: "ok" | "broken" | "unchecked";
}

/** Options for `verifyExport`. */
export interface ExportVerifyOptions {
  /** The signer's Ed25519 public key from the trust store; required for reference exports. */
  expectedPublicKey?: Uint8Array;
  /** The audit key: also verify the HMAC chain of the entries. */
  key?: Uint8Array;
}

/** Check an export's signature, signer, counts and (with the audit key) its chain. */
export function verifyExport(text: string, opts: ExportVerifyOptions = {}): ExportVerifyResult {
  const res = (
    status: ExportVerifyResult["status"],
    message: string,
    extra: Partial<ExportVerifyResult> = {},
  ): ExportVerifyResult => ({
    valid: status === "valid",
    status,
    message,
    chain: "unchecked",
    ...extra,
  });
  let v: unknown;
  try {
    v = parseJson(text, { preserveNumbers: true, maxDepth: AUDIT_MAX_DEPTH + 2 });
  } catch (e) {
    return res("malformed", `export is not JSON: ${(e as Error).message}`);
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    return res("malformed", "export is not a JSON object");
  }
  const bundle = { ...(v as Record<string, unknown>) };
  const signatureB64 = bundle.signature;
  delete bundle.signature;
  if (typeof signatureB64 !== "string") return res("malformed", "missing signature");
  const entries = bundle.entries;
  const signer = bundle.signer;
  if (!Array.isArray(entries) || typeof signer !== "string") {
    return res("malformed", "missing entries or signer");
  }
  const info: Partial<ExportVerifyResult> = {
    signer,
    entryCount: typeof bundle.entry_count === "number" ? bundle.entry_count : undefined,
    finalHmac: typeof bundle.final_hmac === "string" ? bundle.final_hmac : undefined,
    exportedAt: bundle.exported_at instanceof PyFloat || typeof bundle.exported_at === "number"
      ? Number(bundle.exported_at)
      : undefined,
  };
  let signature: Uint8Array, included: Uint8Array | null = null;
  try {
    signature = fromB64(signatureB64);
    if (bundle.signer_pubkey !== undefined) {
      if (typeof bundle.signer_pubkey !== "string") throw new TypeError("signer_pubkey");
      included = fromB64(bundle.signer_pubkey);
    }
  } catch {
    return res("malformed", "bad base64 in signature or signer_pubkey", info);
  }
  const expected = opts.expectedPublicKey ?? null;
  if (expected && included && !constantTimeEqual(included, expected)) {
    return res("signer-mismatch", "the export was signed by another key than expected", info);
  }
  const pub = expected ?? included;
  if (!pub) {
    return res(
      "unknown-signer",
      `export has no signer_pubkey: its signature cannot be checked without ${signer}'s public ` +
        "key (look it up in the trust store)",
      info,
    );
  }
  info.keySource = expected ? "expected" : "included";
  let canonical: string;
  try {
    canonical = canonicalJson(bundle);
  } catch (e) {
    return res("malformed", `export cannot be re-serialized: ${(e as Error).message}`, info);
  }
  if (!verifyDetached(signature, utf8(canonical), pub)) {
    return res("bad-signature", "signature verification failed", info);
  }
  if (nodeIdOf(pub) !== signer) {
    return res("signer-mismatch", "signer does not match the signing key's node id", info);
  }
  const last = entries[entries.length - 1] as Record<string, unknown> | undefined;
  const lastHmac = last && typeof last.hmac === "string" ? last.hmac : GENESIS_HMAC;
  if (bundle.entry_count !== entries.length || bundle.final_hmac !== lastHmac) {
    return res("inconsistent", "entry_count or final_hmac does not match the entries", info);
  }
  if (!opts.key) {
    const how = expected ? "the expected key" : "the included signer_pubkey only";
    return res("valid", `signature valid (${how}); chain not checked without the audit key`, info);
  }
  const broken = chainBreak(entries, opts.key);
  if (broken !== null) {
    return res("chain-broken", `entry ${broken} does not chain`, { ...info, chain: "broken" });
  }
  return res("valid", "signature and chain valid", { ...info, chain: "ok" });
}

/** 1-based index of the first entry that does not chain (a LOG_ROTATED anchor may restart it). */
function chainBreak(entries: unknown[], key: Uint8Array): number | null {
  const mac = new ChainMac(key);
  try {
    let prev = GENESIS_HMAC;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i];
      if (e === null || typeof e !== "object" || Array.isArray(e)) return i + 1;
      const rest = { ...(e as Record<string, unknown>) };
      const stored = rest.hmac;
      delete rest.hmac;
      if (typeof stored !== "string") return i + 1;
      const data = canonicalJson(rest);
      if (constantTimeEqualString(chainHmac(mac, prev, data), stored)) {
        prev = stored;
        continue;
      }
      const d = rest.details as Record<string, unknown> | null;
      const anchored = rest.event === EVENT_LOG_ROTATED && d !== null && typeof d === "object" &&
        d.previous_tail_hmac === prev &&
        constantTimeEqualString(chainHmac(mac, GENESIS_HMAC, data), stored);
      if (!anchored) return i + 1;
      prev = stored;
    }
    return null;
  } finally {
    mac.dispose();
  }
}
