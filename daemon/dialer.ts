/**
 * Outbound connection policy (PROTOCOL-0.9 §4): a bare `host:port` is tried as
 * `wss://` first; only with `allowPlaintextWs` (and never with `strictTls`) does a
 * failed TLS attempt fall back to `ws://`, logged loudly. An explicit `ws://` or
 * `wss://` URL is dialed as given (plaintext still needs `allowPlaintextWs`).
 */
import { ExitCode, IronMeshError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import type { Conn, Transport } from "./transport/transport.ts";

/** Dial policy. */
export interface DialPolicy {
  allowPlaintextWs: boolean;
  strictTls: boolean;
  timeoutMs?: number;
}

function plaintextRefused(address: string, why: string): IronMeshError {
  return new IronMeshError(
    "DIAL_FAILED",
    `cannot reach ${address} over wss:// (${why}) and plaintext ws:// is not allowed`,
    "give the peer a TLS certificate (--tls-cert/--tls-key) and trust it here (--pinned-ca), " +
      "or pass --allow-plaintext-ws on a network you trust",
    ExitCode.NETWORK,
  );
}

/** Dial `address` with the wss-first policy; memory transports dial the address as is. */
export async function dialPeer(
  transport: Transport,
  address: string,
  policy: DialPolicy,
  log: Logger,
): Promise<Conn> {
  const opts = { timeoutMs: policy.timeoutMs ?? 10_000 };
  if (transport.name !== "websocket") return await transport.dial(address, opts);
  if (address.startsWith("ws://")) {
    if (!policy.allowPlaintextWs || policy.strictTls) {
      throw plaintextRefused(address, "a ws:// URL was given");
    }
    log.warn("PLAINTEXT WebSocket: frames are still encrypted, but connection metadata is not", {
      address,
    });
    return await transport.dial(address, opts);
  }
  const host = address.replace(/^wss:\/\//, "").replace(/\/$/, "");
  try {
    return await transport.dial(`wss://${host}/`, opts);
  } catch (e) {
    const why = (e as Error).message;
    if (!policy.allowPlaintextWs || policy.strictTls || address.startsWith("wss://")) {
      throw plaintextRefused(host, why);
    }
    log.warn("TLS failed; FALLING BACK TO PLAINTEXT ws:// (--allow-plaintext-ws)", {
      address: host,
      tls_error: why,
    });
    return await transport.dial(`ws://${host}/`, opts);
  }
}
