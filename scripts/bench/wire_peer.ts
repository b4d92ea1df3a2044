/**
 * The far end of the wire benchmark, in its own process: listens on 127.0.0.1,
 * and either speaks ironmesh/0.9 (mode "ironmesh") or raw WebSocket (mode "raw").
 * Protocol of the bench: a message whose first byte is 1 is echoed back (RTT);
 * byte 0 is counted silently; byte 2 asks for the count so far (reply "count:N").
 */
import { generateIdentity } from "../../lib/identity/keyfile.ts";
import { utf8 } from "../../lib/crypto/sodium.ts";
import { serverHandshake } from "../../daemon/handshake_driver.ts";
import { PeerLink } from "../../daemon/peer_link.ts";
import { WebSocketTransport } from "../../daemon/transport/websocket.ts";

const [mode, passphrase] = Deno.args;
const t = new WebSocketTransport();
const me = generateIdentity("bench-server");
let count = 0;
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
      new PeerLink(h.conn, h.session, h.peer, {
        onMessage: (m, link) => {
          const b = m.payload;
          if (b[0] === 1) link.send({ type: "MSG", payload: b, destination: h.peer.nodeId });
          else if (b[0] === 2) {
            link.send({ type: "MSG", payload: utf8(`count:${count}`), destination: h.peer.nodeId });
          } else count++;
        },
      });
    }, () => {});
  },
});
console.log(l.port);
