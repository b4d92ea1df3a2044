/**
 * `ironmesh doctor --peer HOST:PORT`: a full ironmesh/0.9 client handshake against a peer,
 * timed per stage — connect (TCP + TLS + WebSocket upgrade), auth (passphrase proofs both
 * ways), hello (signed HELLOs verified), session (session key derived) — then closed.
 *
 * The TOFU hook is a throwaway in-memory one: it accepts the peer and remembers what it
 * presented, and nothing is ever pinned into the real trust store. The presented key is then
 * compared (read-only) with the pin in known_peers.json, when the caller passes the pins.
 * The handshake uses this node's identity, so the peer sees exactly what the daemon presents
 * (and may pin this node by TOFU on its side, as a daemon connection would).
 */
import { clientHandshake } from "../../daemon/handshake_driver.ts";
import { type Conn } from "../../daemon/transport/transport.ts";
import { WebSocketTransport } from "../../daemon/transport/websocket.ts";
import { constantTimeEqual } from "../../lib/crypto/sodium.ts";
import { IronMeshError } from "../../lib/errors.ts";
import type { Identity } from "../../lib/identity/identity.ts";
import { type CheckResult, fail, pass, type Stage } from "../../lib/doctor/report.ts";
import type { TofuPeer } from "../../lib/wire/v09/handshake_types.ts";

/** What the real trust store says about a node id (read-only). */
export interface PinnedPeer {
  /** The pinned Ed25519 key (null when the stored value does not decode). */
  pubkey: Uint8Array | null;
  /** trusted | pending | blocked | revoked. */
  state: string;
}

/** Options of `probePeer`. */
export interface PeerProbeOptions {
  /** `host:port`, `ws://host:port` or `wss://host:port`. */
  address: string;
  identity: Identity;
  /** The mesh passphrase. */
  passphrase: string;
  /** Per-stage deadline in ms (connect; then the handshake's receive timeout). */
  timeoutMs: number;
  /** PEM CA / pinned certificate for wss://. */
  caCerts?: string[];
  /** The pin for a node id in this node's trust store, when it could be read. */
  pinned?: (nodeId: string) => PinnedPeer | undefined;
}

const STAGES = ["connect", "auth", "hello", "session"] as const;

function errText(e: unknown): { message: string; hint: string } {
  if (e instanceof IronMeshError) return { message: e.message, hint: e.hint };
  return { message: (e as Error)?.message ?? String(e), hint: "" };
}

async function connect(
  address: string,
  timeoutMs: number,
  caCerts: string[] | undefined,
): Promise<{ conn: Conn; url: string; note: string }> {
  const transport = new WebSocketTransport({ caCerts });
  if (/^wss?:\/\//.test(address)) {
    const url = address.endsWith("/") ? address : `${address}/`;
    return { conn: await transport.dial(url, { timeoutMs }), url, note: "" };
  }
  const wss = `wss://${address}/`;
  try {
    return { conn: await transport.dial(wss, { timeoutMs }), url: wss, note: "TLS" };
  } catch (e) {
    const ws = `ws://${address}/`;
    let conn: Conn;
    try {
      conn = await transport.dial(ws, { timeoutMs });
    } catch (e2) {
      throw new Error(
        `wss:// failed (${errText(e).message}); ws:// failed (${errText(e2).message})`,
      );
    }
    return {
      conn,
      url: ws,
      note: `plaintext: wss:// failed (${
        errText(e).message
      }); 'ironmesh run' dials it only with --allow-plaintext-ws`,
    };
  }
}

/** Run the probe; never throws (every failure becomes a failed stage). */
export async function probePeer(opts: PeerProbeOptions): Promise<CheckResult> {
  const id = "peer", title = `peer ${opts.address}`;
  const stages: Stage[] = STAGES.map((name) => ({
    name,
    status: "skip",
    ms: null,
    detail: "not reached",
  }));
  const t0 = performance.now();
  let last = t0;
  const done = (i: number, detail = "") => {
    const now = performance.now();
    stages[i] = { name: STAGES[i], status: "pass", ms: Math.round(now - last), detail };
    last = now;
  };
  const failed = (i: number, e: unknown, fix: string): CheckResult => {
    const { message, hint } = errText(e);
    stages[i] = {
      name: STAGES[i],
      status: "fail",
      ms: Math.round(performance.now() - last),
      detail: message,
    };
    return { ...fail(id, title, `${STAGES[i]} failed: ${message}`, hint || fix), stages };
  };

  let c: { conn: Conn; url: string; note: string };
  try {
    c = await connect(opts.address, opts.timeoutMs, opts.caCerts);
  } catch (e) {
    return failed(
      0,
      e,
      `check that the peer runs ('ironmesh status' there), listens on that address and port, and that no firewall blocks it`,
    );
  }
  done(0, c.url + (c.note ? ` (${c.note})` : ""));
  let seen: TofuPeer | null = null;
  let reached = 1;
  try {
    const h = await clientHandshake(c.conn, {
      identity: opts.identity,
      passphrase: opts.passphrase,
      // Throwaway TOFU: accept and remember; the real trust store is only read, below.
      tofu: (peer) => {
        seen = peer;
        return { ok: true };
      },
      timeoutMs: opts.timeoutMs,
      onStage: (stage) => {
        const i = STAGES.indexOf(stage as typeof STAGES[number]);
        if (i > 0) {
          done(i);
          reached = i + 1;
        }
      },
    });
    const peer = h.peer;
    stages[2].detail = `${
      peer.name || "(no name)"
    } ${peer.nodeId} (${peer.protocolVersion}, ${peer.helloScheme} signature)`;
    try {
      h.session.close();
    } finally {
      h.conn.close(1000, "ironmesh doctor: check complete");
    }
  } catch (e) {
    try {
      c.conn.close(1000, "ironmesh doctor");
    } catch { /* already closed */ }
    return failed(
      Math.min(reached, STAGES.length - 1),
      e,
      "see the peer's log for its side of the handshake",
    );
  }
  const total = Math.round(performance.now() - t0);
  const p = seen as TofuPeer | null;
  if (!p) return { ...pass(id, title, `handshake completed in ${total} ms`), stages };
  const who = `${p.name || "(no name)"} ${p.nodeId}`;
  const pin = opts.pinned?.(p.nodeId);
  if (pin && !(pin.pubkey && constantTimeEqual(pin.pubkey, p.identityPublic))) {
    return {
      ...fail(
        id,
        title,
        `${who} presented a different key than the one pinned in known_peers.json (your daemon refuses it: TOFU mismatch)`,
        "possible impersonation: compare its fingerprint out of band ('ironmesh keys fingerprint' on the peer) before re-pinning with 'ironmesh trust'",
      ),
      stages,
    };
  }
  if (pin && (pin.state === "blocked" || pin.state === "revoked")) {
    return {
      ...fail(
        id,
        title,
        `handshake with ${who} works, but it is ${pin.state} in your trust store (your daemon refuses it)`,
        `if that is a mistake: 'ironmesh trust set-state ${p.nodeId} trusted'`,
      ),
      stages,
    };
  }
  const trustNote = opts.pinned === undefined
    ? "trust store not read"
    : pin
    ? `pinned key matches (${pin.state})`
    : "not pinned yet: your daemon pins it on first contact (TOFU)";
  return { ...pass(id, title, `handshake with ${who} in ${total} ms; ${trustNote}`), stages };
}
