/**
 * Request/response for the MCP tools, in the TypeScript SDK's envelope (sdk/rpc.ts), so an
 * MCP-driven agent and SDK agents (`agent.request` / `agent.onRequest`) serve and call each
 * other: a request is a `REQ` message, its answer a `RESP` message, each carrying
 * `{"ironmesh_rpc":1,"id":"<uuid>","enc":"text"|"json"|"base64","body":…}` (a response adds
 * `"ok":true`, or `"ok":false` with `"error":{"code","message"}` instead of a body). The
 * requester accepts an answer only from the node it sent the request to.
 * This module adapts that envelope to the control socket, which carries text.
 */
import {
  encodeRpcRequest,
  encodeRpcResponse,
  MAX_RPC_ID,
  parseRpc,
  REQ_TYPE,
  RESP_TYPE,
} from "../../sdk/rpc.ts";

/** Message type of a request. */
export const RPC_REQUEST_TYPE = REQ_TYPE;
/** Message type of a response. */
export const RPC_RESPONSE_TYPE = RESP_TYPE;

/** A request or response body as the tools pass it: text, or a JSON object. */
export type RpcBody = string | Record<string, unknown>;

/** An envelope read from a message, with its body in its natural JSON form. */
export interface RpcInfo {
  kind: "request" | "response" | "error";
  /** Correlation id, echoed by the responder. */
  id: string;
  /** Text (enc text), the JSON value (enc json), or `{payload_b64}` (enc base64). */
  body?: unknown;
  /** For `kind: "error"`: what the responder reported. */
  error?: { code: string; message: string };
}

const utf8 = new TextEncoder();
const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** A fresh correlation id (a random UUID, as the SDK uses). */
export function newCorrelationId(): string {
  return crypto.randomUUID();
}

/** True when `id` can be a correlation id. */
export function isCorrelationId(id: string): boolean {
  return id.length > 0 && id.length <= MAX_RPC_ID;
}

/** The text of a REQ payload asking `body` under `id`. */
export function requestText(id: string, body: RpcBody): string {
  return text(encodeRpcRequest(id, body));
}

/** The text of a successful RESP payload answering `id` with `body`. */
export function responseText(id: string, body: RpcBody): string {
  return text(encodeRpcResponse(id, body));
}

function bodyValue(bytes: Uint8Array, encoding: string): unknown {
  const t = text(bytes);
  if (encoding === "text") return t;
  if (encoding === "json") return JSON.parse(t);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return { payload_b64: btoa(bin) };
}

/** The envelope of a received message (`type`, UTF-8 text payload), or null. */
export function readRpc(type: string, payloadText: string | null): RpcInfo | null {
  if (payloadText === null) return null;
  const env = parseRpc(type, utf8.encode(payloadText));
  if (!env) return null;
  if (env.kind === "error") {
    return { kind: "error", id: env.id, error: { code: env.code, message: env.message } };
  }
  return { kind: env.kind, id: env.id, body: bodyValue(env.body.bytes, env.body.encoding) };
}
