/**
 * One-shot storage-format upgrade (PROTOCOL-0.9 §11.6): unprefixed payloads that open under
 * the legacy key are re-encrypted as `IMSTOREv2\0 ‖ SecretBox(key v2)`. Others are left
 * byte for byte. `storage_format = aead-v2` is written when something migrated or nothing
 * unprefixed was left; otherwise (all unprefixed rows failed: wrong passphrase, or
 * plaintext-era rows) it is withheld so a later open retries.
 */
import { type Row, type StoreContext } from "./context.ts";
import { META_STORAGE_FORMAT, setMeta, STORAGE_FORMAT_AEAD_V2 } from "./schema.ts";
import { getMeta } from "./schema.ts";
import { columnBytes, hasV2Magic } from "./storage_key.ts";
import { wipe } from "../crypto/sodium.ts";

/** Tables whose `payload` column is encrypted at rest. */
export const PAYLOAD_TABLES = ["messages", "pending_messages", "pending_trust_messages"] as const;

/** Outcome of the upgrade sweep. */
export interface PayloadMigration {
  /** False when the marker was already set and nothing was scanned. */
  scanned: boolean;
  /** Payloads re-encrypted from the legacy key. */
  migrated: number;
  /** Unprefixed payloads that did not open under the legacy key (left as they are). */
  skipped: number;
  /** Whether `storage_format = aead-v2` is now recorded. */
  marked: boolean;
}

/** Run the sweep inside the caller's transaction (skipped when the marker is set). */
export function upgradeStorageFormat(ctx: StoreContext): PayloadMigration {
  if (getMeta(ctx.db, META_STORAGE_FORMAT) === STORAGE_FORMAT_AEAD_V2) {
    return { scanned: false, migrated: 0, skipped: 0, marked: true };
  }
  let migrated = 0;
  let skipped = 0;
  for (const table of PAYLOAD_TABLES) {
    const rows = ctx.db.prepare(
      `SELECT rowid AS rid, payload FROM ${table} WHERE payload IS NOT NULL`,
    ).all() as Row[];
    const update = ctx.db.prepare(`UPDATE ${table} SET payload = ? WHERE rowid = ?`);
    for (const r of rows) {
      const blob = columnBytes(r.payload);
      if (blob.length === 0 || hasV2Magic(blob)) continue;
      const pt = ctx.cipher.openLegacy(blob);
      if (!pt) {
        skipped++;
        continue;
      }
      update.run(ctx.cipher.seal(pt), Number(r.rid));
      wipe(pt);
      migrated++;
    }
  }
  const marked = migrated > 0 || skipped === 0;
  if (marked) setMeta(ctx.db, META_STORAGE_FORMAT, STORAGE_FORMAT_AEAD_V2);
  return { scanned: true, migrated, skipped, marked };
}

/**
 * Wrong-key probe: true when prefixed payloads exist and none of the first few opens under
 * the current key (a wrong passphrase, as opposed to one damaged row).
 */
export function storageKeyMismatch(ctx: StoreContext, sample = 8): boolean {
  let seen = 0;
  for (const table of PAYLOAD_TABLES) {
    const rows = ctx.db.prepare(
      `SELECT payload FROM ${table}
       WHERE typeof(payload) = 'blob' AND substr(payload, 1, 10) = X'494D53544F5245763200'
       LIMIT ?`,
    ).all(sample) as Row[];
    for (const r of rows) {
      seen++;
      const opened = ctx.cipher.open(r.payload);
      if (opened.status === "v2") {
        wipe(opened.payload);
        return false;
      }
    }
  }
  return seen > 0;
}
