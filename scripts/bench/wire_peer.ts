/**
 * The far end of the wire benchmark, in its own process: listens on 127.0.0.1,
 * and either speaks ironmesh/0.9 (mode "ironmesh") or raw WebSocket (mode "raw").
 * Protocol of the bench: a message whose first byte is 1 is echoed back (RTT);
 * byte 0 is counted silently; byte 2 asks for the count so far (reply "count:N").
 *
 * Args: mode passphrase peerRate peerBurst [poolWorkers]. Inbound frames pass the same per-peer
 * token bucket the daemon uses (`admitFrame`, checked before decryption), with the rate given
 * here; with poolWorkers > 0 they are verified and decrypted by an OpenPool of that many workers.
 */
import { systemClock } from "../../lib/clock.ts";
import { generateIdentity } from "../../lib/identity/keyfile.ts";
import { utf8 } from "../../lib/crypto/sodium.ts";
import { TokenBucket } from "../../lib/wire/token_bucket.ts";
import { serverHandshake } from "../../daemon/handshake_driver.ts";
import { OpenPool } from "../../daemon/open_pool.ts";
import { PeerLink } from "../../daemon/peer_link.ts";
import { WebSocketTransport } from "../../daemon/transport/websocket.ts";

const [mode, passphrase, rate, burst, poolWorkers] = Deno.args;
const pool = Number(poolWorkers ?? 0) > 0 ? new OpenPool({ workers: Number(poolWorkers) }) : null;
const t = new WebSocketTransport();
const me = generateIdentity("bench-server");
let count = 0;
let dropped = 0;
const l = await t.listen({
  hostname: "127.0.0.1",
  port: 0,
  onConn: (conn) => {
    if (mode === "raw") {
      (async () => {
        for (;;) {
          const m = await conn.recv();
          if (m === null) return;
          const b = m as Uint8Array;
          if (b[0] === 1) conn.send(b);
          else if (b[0] === 2) conn.send(`count:${count}`);
          else count++;
        }
      })();
      return;
    }
    serverHandshake(conn, { identity: me, passphrase, tofu: () => ({ ok: true }) }).then((h) => {
      const bucket = new TokenBucket(Number(rate), Number(burst), systemClock);
      new PeerLink(
        h.conn,
        h.session,
        h.peer,
        {
          admitFrame: () => bucket.tryConsume() || (dropped++, false),
          onMessage: (m, link) => {
            const b = m.payload;
            if (b[0] === 1) link.send({ type: "MSG", payload: b, destination: h.peer.nodeId });
            else if (b[0] === 2) {
              const reply = `count:${count}:${dropped}`;
              link.send({ type: "MSG", payload: utf8(reply), destination: h.peer.nodeId });
            } else count++;
          },
        },
        undefined,
        pool ? { openPool: pool } : {},
      );
    }, () => {});
  },
});
console.log(l.port);
