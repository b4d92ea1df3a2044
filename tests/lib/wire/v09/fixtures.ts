/** Shared vector loaders and identities for the ironmesh/0.9 session-layer tests. */
import { fromHex, sha256, signKeyPairFromSeed } from "../../../../lib/crypto/sodium.ts";
import { loadVector, type VectorFloat, vectorFloat } from "../../../support/vectors.ts";
import { b64DecodeStrict, type Envelope } from "../../../../lib/wire/v09/envelope.ts";

/** One identity of the vectors. */
export interface Ident {
  name: string;
  seed: Uint8Array;
  publicKey: Uint8Array;
  secretKey: Uint8Array;
  nodeId: string;
  x25519Public: Uint8Array;
  x25519Secret: Uint8Array;
}

/** A frame's inputs in frames_v4.json. */
export interface FrameInputs {
  session_key_hex: string;
  outer_signer: string | null;
  outer_signer_seed_hex: string | null;
  source_signer: string | null;
  msg_type: string;
  payload_hex: string;
  msg_id: string;
  source: string;
  destination: string;
  priority: string;
  sequence: number;
  timestamp: VectorFloat;
  ttl: number;
  hops: string[];
  secretbox_nonce_hex: string;
}

/** A valid frame of frames_v4.json. */
export interface ValidFrame {
  name: string;
  inputs: FrameInputs;
  frame_hex: string;
  header: {
    version: number;
    flags: number;
    sequence: number;
    timestamp_ms: number;
    msg_id_hash_hex: string;
    ciphertext_length: number;
  };
  inner_json_text: string;
  inner: Record<string, unknown>;
  outer_signature_hex?: string;
  inner_source_signature?: {
    scheme: string;
    signature_hex: string;
    canonical_inner_source_hex: string;
    signed_message_hex: string;
  };
  e2e?: { e2e_payload_hex: string };
}

/** An invalid frame of frames_v4.json. */
export interface InvalidFrame {
  name: string;
  frame_hex: string;
  session_key_hex: string;
  outer_verify_key_hex: string | null;
  inner_source_verify_key_hex: string | null;
  expect: { python_error: string };
}

/** A captured control payload of control_payloads.json. */
export interface ControlCase {
  name: string;
  sent_by: string;
  session_key_hex: string;
  payload_text?: string;
  payload_hex?: string;
  payload_json?: Record<string, unknown>;
  frame: {
    frame_hex: string;
    header: { sequence: number };
    inner_json_text: string;
    inner: Record<string, unknown>;
    outer_signature_hex: string;
  };
  random_draws: { purpose: string; size: number; hex: string }[];
  signed_message_text?: string;
  signature_hex?: string;
  clock?: VectorFloat;
  rekey_result?: { initiator_ephemeral_secret_hex: string; new_session_key_hex: string };
  e2e?: { unsealed_hex?: string };
}

/** frames_v4.json, typed. */
export const FRAMES = loadVector<{
  identities: Record<string, Record<string, string>>;
  session_keys: Record<string, string>;
  frames: ValidFrame[];
  invalid_frames: InvalidFrame[];
}>("frames_v4.json");

/** control_payloads.json, typed. */
export const CONTROL = loadVector<{
  identities: Record<string, Record<string, string>>;
  session_keys: Record<string, string>;
  payloads: ControlCase[];
}>("control_payloads.json");

/** An identity by name (alice, bob, carol, dave, mallory). */
export function ident(name: string): Ident {
  const r = CONTROL.identities[name] ?? FRAMES.identities[name];
  if (!r) throw new Error(`no identity ${name}`);
  const seed = fromHex(r.ed25519_seed_hex);
  const kp = signKeyPairFromSeed(seed);
  return {
    name,
    seed,
    publicKey: kp.publicKey,
    secretKey: kp.secretKey,
    nodeId: r.node_id,
    x25519Public: fromHex(r.x25519_public_hex),
    x25519Secret: fromHex(r.x25519_seed_hex),
  };
}

/** The alice↔bob session key (from the handshake transcript). */
export const KEY_AB = fromHex(FRAMES.session_keys["alice<->bob"]);

/** The recorded float of a vector field. */
export const vf = vectorFloat;

/** An Envelope from a vector's parsed `inner` object (timestamps as recorded). */
export function envelopeFromInner(inner: Record<string, unknown>, timestamp?: number): Envelope {
  const env: Envelope = {
    type: inner.type as string,
    payload: inner.payload ? b64DecodeStrict(inner.payload as string) : new Uint8Array(0),
    msgId: inner.msg_id as string,
    source: inner.source as string,
    sourceDisplay: inner.source_display as string,
    destination: inner.destination as string,
    timestamp: timestamp ?? (inner.timestamp as number),
    priority: inner.priority as string,
    sequence: inner.sequence as number,
    retries: inner.retries as number,
    routing: inner.routing as Record<string, unknown>,
    ttl: inner.ttl as number,
    hops: inner.hops as string[],
  };
  if (inner.source_signature) {
    env.sourceSignature = b64DecodeStrict(inner.source_signature as string);
    env.sourceSigScheme = inner.source_sig_scheme as string;
  }
  if (inner.e2e_payload) env.e2ePayload = b64DecodeStrict(inner.e2e_payload as string);
  return env;
}

/** Flip one bit of a copy. */
export function flip(bytes: Uint8Array, index: number, mask = 0x01): Uint8Array {
  const c = bytes.slice();
  c[index] ^= mask;
  return c;
}

/** A deterministic Rng for tests (SHA-256 counter stream; not for production). */
export class TestRng {
  #counter = 0;
  constructor(readonly label = "test") {}
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let o = 0; o < n; o += 32) {
      const block = sha256(new TextEncoder().encode(`${this.label}/${this.#counter++}`));
      out.set(block.subarray(0, Math.min(32, n - o)), o);
    }
    return out;
  }
}
