/**
 * Child process for crash_test.ts: enqueues messages (and records inbound history) in a loop
 * and prints `Q <msg_id>` / `H <msg_id>` to stdout only after each commit returned. The
 * parent SIGKILLs it at a random moment.
 *
 * Usage: crash_child.ts <data.db path> <round> <max iterations>; env IRONMESH_TEST_STORE_KEY (hex).
 */
import { fromHex, utf8 } from "../../../lib/crypto/sodium.ts";
import { openStore } from "../../../lib/store/db.ts";
import { crashPayload, crashPeer } from "./crash_shared.ts";

const [path, round, maxArg] = Deno.args;
const key = fromHex(Deno.env.get("IRONMESH_TEST_STORE_KEY") ?? "");
const store = await openStore(path, {
  credential: { keys: { storageKey: key, legacyKey: null } },
  maxPendingPerPeer: 0, // unbounded: eviction must not hide a committed message
});
const peer = crashPeer(round);
const max = Number(maxArg);

function report(line: string): void {
  const bytes = utf8(line + "\n");
  let off = 0;
  while (off < bytes.length) off += Deno.stdout.writeSync(bytes.subarray(off));
}

let i = 0;
while (i < max) {
  if (i % 5 === 4) {
    // Every fifth step: a batch of three in one transaction.
    const ids = [0, 1, 2].map((k) => `r${round}-m${i + k}`);
    store.queue.enqueueMany(
      peer,
      ids.map((id) => ({ msgId: id, source: "self", msgType: "MSG", payload: crashPayload(id) })),
    );
    for (const id of ids) report(`Q ${id}`);
    i += 3;
  } else {
    const id = `r${round}-m${i}`;
    store.queue.enqueue(peer, {
      msgId: id,
      source: "self",
      msgType: "MSG",
      payload: crashPayload(id),
    });
    report(`Q ${id}`);
    const hid = `r${round}-h${i}`;
    store.history.recordInbound({
      msgId: hid,
      source: peer,
      destination: "self",
      msgType: "MSG",
      payload: crashPayload(hid),
    });
    report(`H ${hid}`);
    i += 1;
  }
}
store.close();
