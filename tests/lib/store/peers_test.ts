import { assertEquals, assertThrows } from "../../support/assert.ts";
import { FakeClock } from "../../../lib/clock.ts";
import { IronMeshError } from "../../../lib/errors.ts";
import { openTestStore, tempDir } from "./store_helpers.ts";

const BOB = "a5f14a936d289f5d15e90fcaff39a373";
const CAROL = "2c348b324e762618695f63bfdefdf6cd";

Deno.test("upsert inserts, then updates last_seen and only the fields given", async () => {
  const dir = tempDir();
  const clock = new FakeClock(1736812808);
  const s = await openTestStore(dir, { clock });
  try {
    s.peers.upsert(BOB, {
      identityPublicB64: "qnDafBMEuTR+7nXO99ZNdGgfKE1NEAjitB8XmWwMwRc=",
      fingerprint: BOB,
      address: "127.0.0.1:50312",
    });
    assertEquals(s.peers.get(BOB), {
      nodeId: BOB,
      identityPublicB64: "qnDafBMEuTR+7nXO99ZNdGgfKE1NEAjitB8XmWwMwRc=",
      fingerprint: BOB,
      firstSeen: 1736812808,
      lastSeen: 1736812808,
      lastAddress: "127.0.0.1:50312",
      trusted: 0,
      trustFirstSeen: null,
    });
    clock.advance(60);
    s.peers.upsert(BOB, { address: "10.0.0.2:7777" });
    const bob = s.peers.get(BOB)!;
    assertEquals(bob.firstSeen, 1736812808);
    assertEquals(bob.lastSeen, 1736812868);
    assertEquals(bob.lastAddress, "10.0.0.2:7777");
    assertEquals(bob.identityPublicB64, "qnDafBMEuTR+7nXO99ZNdGgfKE1NEAjitB8XmWwMwRc=");
    clock.advance(1);
    s.peers.upsert(CAROL);
    assertEquals(s.peers.list().map((p) => p.nodeId), [CAROL, BOB]);
    assertEquals(s.peers.count(), 2);
    assertEquals(s.peers.get("unknown"), null);
    assertThrows(() => s.peers.upsert(""), IronMeshError, "nodeId");
  } finally {
    s.close();
    Deno.removeSync(dir, { recursive: true });
  }
});
