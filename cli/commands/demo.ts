/**
 * `ironmesh demo` — the 10-second smoke test: two agents with throw-away identities
 * on 127.0.0.1, the full ironmesh/0.9 handshake, one encrypted PING and one MSG,
 * each stage timed. Touches nothing in ~/.ironmesh and sends no multicast.
 */
import { join } from "node:path";
import { ExitCode, IronMeshError } from "../../lib/errors.ts";
import { encodeKeyFile, generateIdentity } from "../../lib/identity/keyfile.ts";
import type { Identity } from "../../lib/identity/identity.ts";
import { fromUtf8, randomBytes, toB64, utf8 } from "../../lib/crypto/sodium.ts";
import type { TofuHook } from "../../lib/wire/v09/handshake_types.ts";
import type { InboundMessage } from "../../lib/wire/session.ts";
import {
  clientHandshake,
  type Handshaken,
  serverHandshake,
} from "../../daemon/handshake_driver.ts";
import { PeerLink } from "../../daemon/peer_link.ts";
import { WebSocketTransport } from "../../daemon/transport/websocket.ts";
import type { Conn, Listener } from "../../daemon/transport/transport.ts";
import { intFlag, parseCommandArgs, usageError } from "../args.ts";
import type { Command } from "../command.ts";
import { makeContext } from "../context.ts";
import { color } from "../output.ts";
import { GLOBAL_HELP } from "../subcommand.ts";

const HELP = `ironmesh demo — 10-second smoke test on 127.0.0.1

Starts two agents ("alice" and "bob") with throw-away identities in a temp dir,
runs the full ironmesh/0.9 handshake (passphrase proofs, signed HELLOs, session key),
sends one encrypted PING and one encrypted MSG, prints each stage with its timing and
the round-trip time, then cleans up. Touches nothing in ~/.ironmesh; no multicast.

Usage: ironmesh demo [--port N] [--timeout S] [--json]

  --port N       alice listens on N, bob on N+2 (default 18765)
  --timeout S    give up after S seconds (default 10)

Examples:
  ironmesh demo
  ironmesh demo --port 28765 --json

${GLOBAL_HELP}`;

interface Stage {
  stage: string;
  ms: number;
  detail?: string;
}

/** Trust-on-first-use for two fresh identities: pin whatever completes the handshake. */
function demoTofu(): TofuHook {
  const pins = new Map<string, string>();
  return (p) => {
    const known = pins.get(p.nodeId);
    if (known && known !== p.identityPublicB64) {
      return { ok: false, code: "HS_TOFU_MISMATCH", reason: "key changed" };
    }
    pins.set(p.nodeId, p.identityPublicB64);
    return { ok: true };
  };
}

async function listenOn(
  t: WebSocketTransport,
  port: number,
  onConn: (c: Conn) => void,
): Promise<Listener> {
  try {
    return await t.listen({ hostname: "127.0.0.1", port, onConn });
  } catch (e) {
    if (e instanceof Deno.errors.AddrInUse) {
      throw new IronMeshError(
        "PORT_BUSY",
        `port ${port} on 127.0.0.1 is busy`,
        `pass --port with a free port (the demo uses --port N and N+2), e.g. 'ironmesh demo --port ${
          port + 10
        }'`,
        ExitCode.NETWORK,
      );
    }
    throw e;
  }
}

async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, {
    port: { type: "string" },
    timeout: { type: "string" },
  }, "demo");
  if (values.help) return console.log(HELP), 0;
  if (positionals.length) throw usageError(`unexpected argument '${positionals[0]}'`, "demo");
  const ctx = makeContext(values, "demo");
  const port = intFlag(values.port, "port", 18765, 1, 65533, "demo");
  const timeoutS = intFlag(values.timeout, "timeout", 10, 1, 600, "demo");
  const t0 = performance.now();
  const stages: Stage[] = [];
  const mark = (stage: string, detail?: string) => {
    const s = { stage, ms: +(performance.now() - t0).toFixed(2), detail };
    stages.push(s);
    ctx.out.line(
      `  ${color.green("✓")} ${stage.padEnd(22)} ${color.dim(`${s.ms.toFixed(1).padStart(7)} ms`)}${
        detail ? `  ${detail}` : ""
      }`,
    );
  };
  let current = "setup";
  const tmp = await Deno.makeTempDir({ prefix: "ironmesh-demo-" });
  const transport = new WebSocketTransport();
  const listeners: Listener[] = [];
  const links: PeerLink[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const work = (async () => {
      ctx.out.line(
        `${color.bold("ironmesh demo")} — two agents on 127.0.0.1 (ports ${port} and ${port + 2})`,
      );
      // Throw-away identities, written the way a node keeps them (plaintext: they die with the temp dir).
      const alice = generateIdentity("alice"), bob = generateIdentity("bob");
      for (const id of [alice, bob]) {
        await Deno.mkdir(join(tmp, id.name), { mode: 0o700 });
        await Deno.writeTextFile(
          join(tmp, id.name, "keys.json"),
          encodeKeyFile(id, { passphrase: null }),
          { mode: 0o600 },
        );
      }
      const passphrase = toB64(randomBytes(24));
      mark("identities", `alice ${alice.nodeId.slice(0, 12)}…  bob ${bob.nodeId.slice(0, 12)}…`);

      current = "listen";
      let accept!: (h: Promise<Handshaken>) => void;
      const aliceSide = new Promise<Promise<Handshaken>>((r) => accept = r);
      listeners.push(
        await listenOn(
          transport,
          port,
          (conn) => accept(serverHandshake(conn, setup(alice, passphrase))),
        ),
      );
      listeners.push(await listenOn(transport, port + 2, (c) => c.close()));
      mark("listening", `ws://127.0.0.1:${port}/`);

      current = "connect";
      const conn = await transport.dial(`ws://127.0.0.1:${port}/`, { timeoutMs: timeoutS * 1000 });
      mark("connected", `bob → alice over ${conn.kind}://`);

      current = "handshake";
      const bobSide = clientHandshake(conn, setup(bob, passphrase, mark));
      const [a, b] = await Promise.all([aliceSide.then((p) => p), bobSide]);
      if (a.session.keyId !== b.session.keyId) {
        throw new IronMeshError(
          "DEMO_KEY_MISMATCH",
          "the two sides derived different session keys",
          "this is a bug: please report it",
          ExitCode.FAILURE,
        );
      }
      mark("session key", `same key on both sides (id ${b.session.keyId})`);

      let received!: (m: InboundMessage) => void;
      const gotMsg = new Promise<InboundMessage>((r) => received = r);
      const aliceLink = new PeerLink(a.conn, a.session, a.peer, { onMessage: (m) => received(m) });
      const bobLink = new PeerLink(conn, b.session, b.peer);
      links.push(aliceLink, bobLink);

      current = "ping";
      const rtt = await bobLink.ping(timeoutS * 1000);
      mark("PONG", `encrypted PING → PONG, RTT ${rtt.toFixed(2)} ms`);

      current = "message";
      const text = "hello alice, this is bob";
      bobLink.send({
        type: "MSG",
        payload: utf8(text),
        destination: alice.nodeId,
        msgId: crypto.randomUUID(),
        ttl: 5,
      });
      const m = await gotMsg;
      const body = fromUtf8(m.payload);
      if (body !== text || m.source !== bob.nodeId || !m.sourceAuthenticated) {
        throw new IronMeshError(
          "DEMO_MESSAGE",
          "the message arrived altered or unauthenticated",
          "this is a bug: please report it",
          ExitCode.FAILURE,
        );
      }
      mark("MSG delivered", `alice got "${body}" from bob (signed, encrypted)`);
      return rtt;
    })();
    const deadline = new Promise<never>((_, reject) =>
      timer = setTimeout(
        () =>
          reject(
            new IronMeshError(
              "DEMO_TIMEOUT",
              `timed out after ${timeoutS} s`,
              "raise --timeout, or run 'ironmesh doctor'",
              ExitCode.NETWORK,
            ),
          ),
        timeoutS * 1000,
      )
    );
    const rtt = await Promise.race([work, deadline]);
    const total = performance.now() - t0;
    ctx.out.result({ ok: true, rtt_ms: +rtt.toFixed(3), total_ms: +total.toFixed(1), stages });
    ctx.out.line(
      `\n${color.green("demo passed")}: round trip ${rtt.toFixed(2)} ms, all done in ${
        total.toFixed(0)
      } ms. Next: 'ironmesh keys generate', then 'ironmesh run'.`,
    );
    return 0;
  } catch (e) {
    const err = e instanceof IronMeshError ? e : new IronMeshError(
      "DEMO_FAILED",
      (e as Error).message,
      "run with --log-level debug, or 'ironmesh doctor'",
      ExitCode.FAILURE,
    );
    throw new IronMeshError(
      err.code,
      `demo failed at stage '${current}': ${err.message}`,
      err.hint,
      err.exitCode === ExitCode.USAGE ? ExitCode.FAILURE : err.exitCode,
    );
  } finally {
    clearTimeout(timer);
    for (const l of links) l.goodbye();
    await Promise.allSettled(links.map((l) => l.done));
    await Promise.allSettled(listeners.map((l) => l.close()));
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

function setup(identity: Identity, passphrase: string, mark?: (s: string, d?: string) => void) {
  return {
    identity,
    passphrase,
    tofu: demoTofu(),
    onStage: mark
      ? (s: string) => {
        if (s === "auth") mark("auth", "passphrase proofs verified both ways (HMAC-SHA256)");
        if (s === "hello") {
          mark(
            "HELLO verified",
            "Ed25519-signed HELLOs, channel-bound to the nonce",
          );
        }
      }
      : undefined,
  };
}

export const demoCommand: Command = {
  name: "demo",
  summary: "10-second smoke test: two agents on 127.0.0.1, handshake, encrypted ping",
  help: HELP,
  run,
};
