/**
 * The SDK's request/response envelope. A request travels as a `REQ` frame and its answer as
 * a `RESP` frame (PROTOCOL-0.9 §7: application types, delivered, gated and acknowledged like
 * `MSG`); the payload of each is one compact JSON object in UTF-8:
 *
 * ```text
 * REQ   {"ironmesh_rpc":1,"id":"<uuid>","enc":"text"|"json"|"base64","body":<body>}
 * RESP  {"ironmesh_rpc":1,"id":"<same id>","ok":true,"enc":"text"|"json"|"base64","body":<body>}
 * RESP  {"ironmesh_rpc":1,"id":"<same id>","ok":false,"error":{"code":"<CODE>","message":"<text>"}}
 * ```
 *
 * `id` is the correlation id (1–128 characters; the SDK uses a random UUID, which is also the
 * `msg_id` of the `REQ` frame). `enc` says how `body` holds the payload: `text` — a JSON string;
 * `json` — the JSON value itself; `base64` — standard padded base64 of the bytes. Any program
 * that speaks ironmesh/0.9 can serve or call SDK agents by reading and writing these objects.
 * `REQ`/`RESP` frames whose payload is not such an object are delivered as plain messages.
 */
import { fromB64, toB64 } from "../lib/crypto/sodium.ts";
import { parseJson } from "../lib/json/parse.ts";
import { decodeText, encodePayload, type Payload, type PayloadEncoding } from "./payload.ts";

/** Envelope version (the value of `ironmesh_rpc`). */
export const RPC_VERSION = 1;
/** Frame type of requests. */
export const REQ_TYPE = "REQ";
/** Frame type of responses. */
export const RESP_TYPE = "RESP";
/** Longest correlation id accepted. */
export const MAX_RPC_ID = 128;

/** The `enc` values. */
type WireEncoding = "text" | "json" | "base64";

const utf8 = new TextEncoder();

/** A decoded body: its bytes and how the sender encoded it. */
export interface RpcBody {
  bytes: Uint8Array;
  encoding: PayloadEncoding;
}

/** A parsed envelope. */
export type RpcEnvelope =
  | { kind: "request"; id: string; body: RpcBody }
  | { kind: "response"; id: string; body: RpcBody }
  | { kind: "error"; id: string; code: string; message: string };

function bodyFields(p: Payload): { enc: WireEncoding; body: unknown } {
  const { bytes, encoding } = encodePayload(p);
  if (encoding === "text") return { enc: "text", body: p };
  if (encoding === "bytes") return { enc: "base64", body: toB64(bytes) };
  return { enc: "json", body: JSON.parse(new TextDecoder().decode(bytes)) };
}

function encode(obj: Record<string, unknown>): Uint8Array {
  return utf8.encode(JSON.stringify(obj));
}

/** The `REQ` payload carrying `payload` under correlation id `id`. */
export function encodeRpcRequest(id: string, payload: Payload): Uint8Array {
  return encode({ ironmesh_rpc: RPC_VERSION, id, ...bodyFields(payload) });
}

/** The successful `RESP` payload answering `id`. */
export function encodeRpcResponse(id: string, payload: Payload): Uint8Array {
  return encode({ ironmesh_rpc: RPC_VERSION, id, ok: true, ...bodyFields(payload) });
}

/** The failed `RESP` payload answering `id`. */
export function encodeRpcError(id: string, code: string, message: string): Uint8Array {
  return encode({
    ironmesh_rpc: RPC_VERSION,
    id,
    ok: false,
    error: { code: code.slice(0, 64), message: message.slice(0, 2000) },
  });
}

function decodeBody(enc: unknown, body: unknown): RpcBody | null {
  if (enc === "text" && typeof body === "string") {
    return { bytes: utf8.encode(body), encoding: "text" };
  }
  if (enc === "json" && body !== undefined) {
    return { bytes: utf8.encode(JSON.stringify(body)), encoding: "json" };
  }
  if (enc === "base64" && typeof body === "string") {
    try {
      return { bytes: fromB64(body), encoding: "bytes" };
    } catch {
      return null;
    }
  }
  return null;
}

/**
 * Parse the payload of a `REQ` (`type` "REQ") or `RESP` frame as an SDK envelope; null when
 * it is not one (then it is an ordinary application message).
 */
export function parseRpc(type: string, payload: Uint8Array): RpcEnvelope | null {
  if (type !== REQ_TYPE && type !== RESP_TYPE) return null;
  if (payload.length === 0 || payload[0] !== 0x7b /* { */) return null;
  const text = decodeText(payload);
  if (text === null) return null;
  let v: unknown;
  try {
    v = parseJson(text);
  } catch {
    return null;
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  if (o.ironmesh_rpc !== RPC_VERSION) return null;
  const id = o.id;
  if (typeof id !== "string" || id.length === 0 || id.length > MAX_RPC_ID) return null;
  if (type === REQ_TYPE) {
    const body = decodeBody(o.enc, o.body);
    return body ? { kind: "request", id, body } : null;
  }
  if (o.ok === true) {
    const body = decodeBody(o.enc, o.body);
    return body ? { kind: "response", id, body } : null;
  }
  if (o.ok === false) {
    const err = o.error as Record<string, unknown> | null | undefined;
    const code = typeof err?.code === "string" && err.code ? err.code : "REMOTE_ERROR";
    const message = typeof err?.message === "string" ? err.message : "the peer reported an error";
    return { kind: "error", id, code: code.slice(0, 64), message: message.slice(0, 2000) };
  }
  return null;
}
