/**
 * Payload encoding of the SDK and the message object applications receive.
 *
 * Sending: a `string` travels as its UTF-8 bytes, a `Uint8Array` as is, anything else
 * (object, array, number, boolean, null) as its `JSON.stringify` text in UTF-8. Plain `MSG`
 * frames carry only those bytes (so the CLI, the dashboard and Python nodes read them as
 * usual); the receiver decides how to read them (`text`, `json()`, `bytes`). Request and
 * response bodies also carry their encoding (see sdk/rpc.ts), so `data` gives back the value
 * in the form it was sent.
 */
import { ExitCode, IronMeshError } from "../lib/errors.ts";
import { parseJson } from "../lib/json/parse.ts";

/**
 * What can be sent: a string (UTF-8), bytes (`Uint8Array` as is; an `ArrayBuffer` or other
 * typed array / `DataView` as its bytes), or a JSON-serialisable value (object, array, number,
 * boolean, null → `JSON.stringify`, UTF-8).
 */
export type Payload = string | Uint8Array | number | boolean | null | object;

/** How a payload was encoded: `text` (UTF-8), `json` (JSON text, UTF-8) or `bytes`. */
export type PayloadEncoding = "text" | "json" | "bytes";

/** A peer as messages and events name it. */
export interface Sender {
  /** Node id (32 hex characters). */
  id: string;
  /** Agent name the peer announced (free text; not proof of identity — the id is). */
  name: string;
}

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

function badPayload(message: string): IronMeshError {
  return new IronMeshError(
    "BAD_PAYLOAD",
    message,
    "send a string, a Uint8Array or a JSON-serialisable value",
    ExitCode.BAD_INPUT,
  );
}

/** Encode a payload; throws BAD_PAYLOAD for `undefined`, functions, symbols, BigInt or cycles. */
export function encodePayload(p: Payload): { bytes: Uint8Array; encoding: PayloadEncoding } {
  if (typeof p === "string") return { bytes: utf8.encode(p), encoding: "text" };
  if (p instanceof Uint8Array) return { bytes: p, encoding: "bytes" };
  if (p instanceof ArrayBuffer) return { bytes: new Uint8Array(p), encoding: "bytes" };
  if (ArrayBuffer.isView(p)) {
    return { bytes: new Uint8Array(p.buffer, p.byteOffset, p.byteLength), encoding: "bytes" };
  }
  let text: string | undefined;
  try {
    text = JSON.stringify(p);
  } catch (e) {
    throw badPayload(`payload is not JSON-serialisable: ${(e as Error).message}`);
  }
  if (text === undefined) throw badPayload(`a payload of type ${typeof p} cannot be sent`);
  return { bytes: utf8.encode(text), encoding: "json" };
}

/** Strict UTF-8 decoding, or null when the bytes are not valid UTF-8. */
export function decodeText(b: Uint8Array): string | null {
  try {
    return strictUtf8.decode(b);
  } catch {
    return null;
  }
}

/** Fields of a received message. */
export interface MessageInit {
  /** msg_id. */
  id: string;
  /** The authenticated sender. */
  from: Sender;
  /** Frame type. */
  type: string;
  /** Payload bytes. */
  bytes: Uint8Array;
  /** Arrival, seconds since the epoch. */
  timestamp: number;
  /** How the sender encoded the payload, when it said so. */
  encoding?: PayloadEncoding;
}

/**
 * A message this agent received: a plain message (`MSG`, or any other application type a
 * peer sent), a request an `onRequest` handler serves (`REQ`) or the response to
 * `agent.request` (`RESP`).
 *
 * @example
 * ```ts
 * for await (const msg of agent.messages()) {
 *   console.log(`${msg.from.name}: ${msg.text ?? `<${msg.bytes.length} bytes>`}`);
 * }
 * ```
 */
export class AgentMessage {
  /** The message id (`msg_id`, a UUID for user messages). */
  readonly id: string;
  /** Who sent it (the authenticated originator, also when relayed over the mesh). */
  readonly from: Sender;
  /** Frame type: `MSG`, `REQ`, `RESP`, `CONV`, … */
  readonly type: string;
  /** The payload bytes. */
  readonly bytes: Uint8Array;
  /** When it arrived (seconds since the epoch). */
  readonly timestamp: number;
  /** How the sender encoded it, when it says so (requests and responses); else undefined. */
  readonly encoding?: PayloadEncoding;

  /** Build a message (the agent does; applications receive them). */
  constructor(init: MessageInit) {
    this.id = init.id;
    this.from = init.from;
    this.type = init.type;
    this.bytes = init.bytes;
    this.timestamp = init.timestamp;
    if (init.encoding) this.encoding = init.encoding;
  }

  /** The payload as text when it is valid UTF-8, else null. */
  get text(): string | null {
    return decodeText(this.bytes);
  }

  /** The payload parsed as JSON (depth-guarded); throws BAD_PAYLOAD when it is not JSON. */
  json<T = unknown>(): T {
    const t = this.text;
    if (t === null) throw badJson("it is not UTF-8 text");
    try {
      return parseJson(t) as T;
    } catch (e) {
      throw badJson((e as Error).message);
    }
  }

  /**
   * The payload in its most natural form: for requests and responses, the value as it was
   * sent (string, parsed JSON value, or bytes); for plain messages, the text when the bytes
   * are UTF-8, else the bytes (a JSON object sent as a plain message arrives as its text:
   * use `json()`).
   */
  get data(): unknown {
    if (this.encoding === "bytes") return this.bytes;
    if (this.encoding === "json") return this.json();
    return this.text ?? this.bytes;
  }
}

function badJson(why: string): IronMeshError {
  return new IronMeshError(
    "BAD_PAYLOAD",
    `the message payload is not JSON: ${why}`,
    "read it with msg.text or msg.bytes instead",
    ExitCode.BAD_INPUT,
  );
}
