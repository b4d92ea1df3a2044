import { DatabaseSync } from "node:sqlite";
import { assert, assertEquals, assertThrows } from "../../support/assert.ts";
import { FakeClock } from "../../../lib/clock.ts";
import { randomBytes } from "../../../lib/crypto/sodium.ts";
import { StoreContext } from "../../../lib/store/context.ts";
import { PayloadCipher } from "../../../lib/store/storage_key.ts";

function ctx(): StoreContext {
  const db = new DatabaseSync(":memory:");
  db.exec("CREATE TABLE t (v INTEGER)");
  const cipher = new PayloadCipher({ storageKey: randomBytes(32), legacyKey: null }, {
    bytes: randomBytes,
  });
  return new StoreContext(db, cipher, new FakeClock());
}

const count = (c: StoreContext) => Number(c.get("SELECT COUNT(*) AS n FROM t")!.n);

Deno.test("tx commits, rolls back on throw, and nested calls join the outer transaction", () => {
  const c = ctx();
  c.tx(() => c.run("INSERT INTO t VALUES (1)"));
  assertEquals(count(c), 1);
  assertThrows(
    () =>
      c.tx(() => {
        c.run("INSERT INTO t VALUES (2)");
        c.tx(() => c.run("INSERT INTO t VALUES (3)"));
        throw new Error("boom");
      }),
    Error,
    "boom",
  );
  assertEquals(count(c), 1);
  assert(!c.db.isTransaction);
  c.db.close();
});

Deno.test("tx refuses an async function and leaves no transaction open", () => {
  const c = ctx();
  assertThrows(() => c.tx(() => Promise.resolve(1)), TypeError, "synchronous");
  assert(!c.db.isTransaction);
  c.db.close();
});

Deno.test("statements are prepared once per SQL text", () => {
  const c = ctx();
  const a = c.stmt("SELECT v FROM t");
  assert(a === c.stmt("SELECT v FROM t"));
  c.clear();
  assert(a !== c.stmt("SELECT v FROM t"));
  c.db.close();
});
