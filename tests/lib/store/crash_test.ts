import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { assert, assertEquals } from "../../support/assert.ts";
import { randomBytes, toHex } from "../../../lib/crypto/sodium.ts";
import { openStore } from "../../../lib/store/db.ts";
import { crashPayload, crashPeer } from "./crash_shared.ts";
import { rawDb, tempDir } from "./store_helpers.ts";

const CHILD = fileURLToPath(new URL("./crash_child.ts", import.meta.url));
const ROUNDS = 5;

interface Reported {
  queued: string[];
  history: string[];
}

/** Run the child until it has reported `target` commits, SIGKILL it, collect every full line. */
async function runAndKill(path: string, round: number, keyHex: string, target: number) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      CHILD,
      path,
      String(round),
      "20000",
    ],
    env: { IRONMESH_TEST_STORE_KEY: keyHex, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reported: Reported = { queued: [], history: [] };
  let buf = "";
  let killed = false;
  const stderr = new Response(child.stderr).text();
  for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
    buf += chunk;
    const lines = buf.split("\n");
    buf = lines.pop()!; // an unfinished line was not fully reported: ignore it
    for (const line of lines) {
      const [kind, id] = line.split(" ");
      (kind === "Q" ? reported.queued : reported.history).push(id);
    }
    if (!killed && reported.queued.length + reported.history.length >= target) {
      killed = true;
      // A random extra moment so the kill lands anywhere inside a transaction.
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 15)));
      child.kill("SIGKILL");
    }
  }
  const status = await child.status;
  return { status, reported, stderr: await stderr };
}

Deno.test("crash safety: SIGKILL at random moments never loses or duplicates a committed write", async () => {
  const dir = tempDir();
  const path = join(dir, "data.db");
  const key = randomBytes(32);
  const keys = { storageKey: key, legacyKey: null };
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const target = 20 + Math.floor(Math.random() * 280);
      const { status, reported, stderr } = await runAndKill(path, round, toHex(key), target);
      assertEquals(status.signal, "SIGKILL", `child ended on its own: ${stderr}`);
      assert(reported.queued.length > 0, `child reported nothing: ${stderr}`);

      const store = await openStore(path, { credential: { keys }, maxPendingPerPeer: 0 });
      try {
        assertEquals(store.integrityCheck(), ["ok"]);
        const peer = crashPeer(round);
        const queued = store.queue.takeBatch(peer, 1_000_000);
        const order = queued.map((m) => m.msgId);
        // Every reported id is there exactly once, in the order it was committed.
        assertEquals(order.slice(0, reported.queued.length), reported.queued);
        assertEquals(new Set(order).size, order.length);
        for (const m of queued) {
          assertEquals(m.payloadStatus, "v2");
          assertEquals(m.payload, crashPayload(m.msgId));
        }
        // Anything beyond the reports is the commit(s) that landed just before the kill.
        assert(order.length - reported.queued.length <= 3, "unexpected extra rows");
        for (const id of reported.history) {
          assert(store.history.hasMessage(id), `history ${id} lost`);
          assertEquals(store.history.get(id)!.payload, crashPayload(id));
        }
        // Earlier rounds are intact too.
        for (let r = 0; r < round; r++) assert(store.queue.pendingCount(crashPeer(r)) > 0);
      } finally {
        store.close();
      }
      // No row appears twice in the raw table either.
      const db = rawDb(path);
      const dup = db.prepare(
        "SELECT COUNT(*) AS n FROM (SELECT msg_id FROM pending_messages GROUP BY peer_node_id, msg_id HAVING COUNT(*) > 1)",
      ).get() as { n: number };
      db.close();
      assertEquals(dup.n, 0);
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
