import { join } from "node:path";
import { assert, assertEquals, assertThrows } from "../../support/assert.ts";
import { vectorPath } from "../../support/vectors.ts";
import { buildExport, verifyExport, writeExport } from "../../../lib/audit/export.ts";
import { AuditLog } from "../../../lib/audit/log.ts";
import { FakeClock } from "../../../lib/clock.ts";
import { fromHex, sha256, toB64, toHex, utf8 } from "../../../lib/crypto/sodium.ts";
import { canonicalJson, indent2Json } from "../../../lib/json/canonical.ts";
import { parseJson } from "../../../lib/json/parse.ts";
import { IronMeshError } from "../../../lib/errors.ts";
import { nodeIdOf } from "../../../lib/identity/node_id.ts";
import { EXPECTED, KEY, signerFor, VECTOR_KEY, withTempDir } from "./helpers.ts";

const VECTOR_EXPORT = Deno.readTextFileSync(vectorPath("audit", "audit.export.json"));
const ALICE_PUB = fromHex(EXPECTED.signed_export.signer_public_hex);
const OTHER = signerFor(new Uint8Array(32).fill(9));

Deno.test("reference export without signer_pubkey: unknown signer, never 'valid' by itself", () => {
  const r = verifyExport(VECTOR_EXPORT);
  assertEquals([r.valid, r.status], [false, "unknown-signer"]);
  assertEquals(r.signer, EXPECTED.owner.node_id);
  assertEquals(r.entryCount, 32);
  assert(r.message.includes("trust store"));
});

Deno.test("reference export verifies with alice's key from the trust store, chain included", () => {
  const bundle = parseJson(VECTOR_EXPORT, { preserveNumbers: true }) as Record<string, unknown>;
  delete bundle.signature;
  assertEquals(
    toHex(sha256(utf8(canonicalJson(bundle)))),
    EXPECTED.signed_export.signed_text_sha256,
  );
  const r = verifyExport(VECTOR_EXPORT, { expectedPublicKey: ALICE_PUB });
  assertEquals([r.valid, r.status, r.keySource, r.chain], [true, "valid", "expected", "unchecked"]);
  assertEquals(r.finalHmac, EXPECTED.main_log.final_hmac);
  assertEquals(r.exportedAt, 1736999999.5);
  const c = verifyExport(VECTOR_EXPORT, { expectedPublicKey: ALICE_PUB, key: VECTOR_KEY });
  assertEquals([c.valid, c.chain], [true, "ok"]);
  assertEquals(
    verifyExport(VECTOR_EXPORT, { expectedPublicKey: OTHER.publicKey }).status,
    "bad-signature",
  );
  const edited = VECTOR_EXPORT.replace('"port": 8765', '"port": 8766');
  assert(edited !== VECTOR_EXPORT);
  assertEquals(verifyExport(edited, { expectedPublicKey: ALICE_PUB }).status, "bad-signature");
});

async function ourLog(dir: string, n: number, maxBytes?: number): Promise<string> {
  const path = join(dir, "audit.log");
  const log = new AuditLog(path, { key: KEY, clock: new FakeClock(1736812800), maxBytes });
  for (let i = 0; i < n; i++) {
    await log.append("PEER_CONNECT", { i, name: `\u00e9${i}`, pad: "e".repeat(100) });
  }
  log.close();
  return path;
}

Deno.test("our export: INDENT2, signer_pubkey inside the signed body, verifies alone and against the trust store", async () => {
  await withTempDir(async (dir) => {
    const path = await ourLog(dir, 5);
    const signer = signerFor();
    const { text, count } = buildExport(path, {
      signer,
      clock: new FakeClock(1736999999),
      key: KEY,
    });
    assertEquals(count, 5);
    const o = JSON.parse(text);
    assertEquals(Object.keys(o), [
      "entries",
      "final_hmac",
      "entry_count",
      "exported_at",
      "signer",
      "signer_pubkey",
      "signature",
    ]);
    assert(text.includes('"exported_at": 1736999999.0'));
    assert(text.includes('"timestamp": 1736812800.0'));
    assertEquals([o.signer, o.signer_pubkey], [
      nodeIdOf(signer.publicKey),
      toB64(signer.publicKey),
    ]);
    // The reference's verifier would see exactly this text re-serialized: it is INDENT2 of the parse.
    assertEquals(indent2Json(parseJson(text, { preserveNumbers: true })) + "\n", text);
    const alone = verifyExport(text);
    assertEquals([alone.valid, alone.keySource], [true, "included"]);
    const known = verifyExport(text, { expectedPublicKey: signer.publicKey, key: KEY });
    assertEquals([known.valid, known.keySource, known.chain], [true, "expected", "ok"]);
    assertEquals(
      verifyExport(text, { expectedPublicKey: OTHER.publicKey }).status,
      "signer-mismatch",
    );
    assertEquals(verifyExport(text.replace(/"i": 2/, '"i": 7')).status, "bad-signature");
  });
});

Deno.test("export with archives chains across LOG_ROTATED anchors", async () => {
  await withTempDir(async (dir) => {
    const path = await ourLog(dir, 14, 1024);
    const { text, count } = buildExport(path, { signer: signerFor(), archives: true, key: KEY });
    const o = JSON.parse(text);
    assert(o.entries.filter((e: { event: string }) => e.event === "LOG_ROTATED").length >= 2);
    assertEquals(count, o.entries.length);
    assert(count > 14);
    const r = verifyExport(text, { key: KEY });
    assertEquals([r.valid, r.chain], [true, "ok"]);
    const live = buildExport(path, { signer: signerFor() });
    assert(live.count < count);
  });
});

Deno.test("signed but inconsistent or chain-broken exports are refused", async () => {
  await withTempDir(async (dir) => {
    const path = await ourLog(dir, 4);
    const signer = signerFor();
    const resign = (mutate: (b: Record<string, unknown>) => void) => {
      const b = parseJson(buildExport(path, { signer }).text, { preserveNumbers: true }) as Record<
        string,
        unknown
      >;
      delete b.signature;
      mutate(b);
      b.signature = toB64(signer.sign(utf8(canonicalJson(b))));
      return indent2Json(b);
    };
    assertEquals(verifyExport(resign((b) => (b.entry_count = 3))).status, "inconsistent");
    assertEquals(
      verifyExport(resign((b) => (b.final_hmac = "0".repeat(64)))).status,
      "inconsistent",
    );
    const edited = resign((b) => {
      ((b.entries as Record<string, unknown>[])[1].details as Record<string, unknown>).i = 99;
    });
    assertEquals(verifyExport(edited).status, "valid");
    const c = verifyExport(edited, { key: KEY });
    assertEquals([c.valid, c.status, c.chain], [false, "chain-broken", "broken"]);
    assertEquals(verifyExport("{").status, "malformed");
    assertEquals(verifyExport('{"entries": []}').status, "malformed");
    assertEquals(verifyExport(resign((b) => (b.signer_pubkey = "!!"))).status, "malformed");
  });
});

Deno.test("export refuses a log that does not verify unless forced; writeExport writes 0600", async () => {
  await withTempDir(async (dir) => {
    const path = await ourLog(dir, 4);
    const text = Deno.readTextFileSync(path);
    Deno.writeTextFileSync(path, text.replace('"i":1', '"i":5'));
    const e = assertThrows(
      () => buildExport(path, { signer: signerFor(), key: KEY }),
      IronMeshError,
    ) as IronMeshError;
    assertEquals(e.code, "AUDIT_CHAIN_BROKEN");
    const forced = buildExport(path, { signer: signerFor(), key: KEY, force: true });
    assertEquals(forced.count, 4);
    Deno.writeTextFileSync(path, text);
    const out = join(dir, "export.json");
    assertEquals(await writeExport(path, out, { signer: signerFor(), key: KEY }), 4);
    assertEquals((Deno.statSync(out).mode ?? 0) & 0o777, 0o600);
    assertEquals(verifyExport(Deno.readTextFileSync(out), { key: KEY }).valid, true);
  });
});
