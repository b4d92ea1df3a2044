/**
 * Where a frame's time goes, in CPU time (so other load on the machine inflates it less): `V09Session.seal` and `.open` for 64 B, 1 KiB and
 * 64 KiB payloads next to the primitives they are made of (node:crypto Ed25519 sign/verify,
 * libsodium SecretBox, the envelope JSON). The last column is the crypto floor: what seal +
 * open would cost if everything but the two signs, two verifies and two SecretBox passes were
 * free. With both ends on one 2-core machine, the one-way ceiling is about 2 cores / (seal + open).
 */
import process from "node:process";
import { systemClock, systemRng } from "../../lib/clock.ts";
import { generateIdentity } from "../../lib/identity/keyfile.ts";
import { randomBytes } from "../../lib/crypto/sodium.ts";
import { envelopeJson, parseEnvelopeText } from "../../lib/wire/v09/envelope.ts";
import {
  decryptFrameText,
  nodeSigner,
  nodeVerifier,
  parseFrame,
} from "../../lib/wire/v09/frame.ts";
import { sealText } from "../../lib/wire/v09/frame_box.ts";
import { innerSourceSignedMessageV2 } from "../../lib/wire/v09/inner_source.ts";
import { V09Session } from "../../lib/wire/v09/session.ts";
import { fmt, median, printTable } from "./util.ts";

/** The process's CPU time in µs (user + system): unlike wall time, not inflated by other load. */
function cpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** Median CPU µs per call of `fn` over three timed rounds of about `ms` each (after a warm-up). */
function usPer(fn: () => void, ms = 150): number {
  const rounds: number[] = [];
  for (let r = 0; r < 4; r++) {
    let n = 0;
    const t0 = performance.now(), c0 = cpuMicros();
    while (performance.now() - t0 < ms) {
      for (let i = 0; i < 8; i++) fn();
      n += 8;
    }
    if (r > 0) rounds.push((cpuMicros() - c0) / n); // round 0 warms up
  }
  return median(rounds);
}

/** Run the per-stage frame benchmark and print its table. */
export function frameBench(): void {
  const a = generateIdentity("a"), b = generateIdentity("b");
  const key = randomBytes(32);
  const session = (l: typeof a, p: typeof a) =>
    new V09Session({
      sessionKey: key,
      localSecretKey: l.secretKey,
      localNodeId: l.nodeId,
      peerPublicKey: p.publicKey,
      peerNodeId: p.nodeId,
      clock: systemClock,
      rng: systemRng,
      options: { dedup: null },
    });
  const signer = nodeSigner(a.secretKey), verifier = nodeVerifier(a.publicKey);
  const rows: (string | number)[][] = [];
  for (const size of [64, 1024, 65536]) {
    const payload = randomBytes(size);
    const msg = { type: "MSG", payload, destination: b.nodeId };
    const sa = session(a, b);
    const seal = usPer(() => void sa.seal(msg));
    // open needs fresh frames (replay guard): seal a stock first, then time the opens
    const sb = session(b, a), sc = session(a, b);
    const stock: Uint8Array[] = [];
    const n = size > 10_000 ? 1500 : 12_000;
    for (let i = 0; i < n; i++) stock.push(sc.seal(msg));
    let k = 0;
    const open = usPer(() => {
      const r = sb.open(stock[k++ % n]);
      if (!r.ok && k <= n) throw r.error;
    }, size > 10_000 ? 100 : 150);
    const frame = stock[0];
    const raw = parseFrame(frame);
    const dec = decryptFrameText(raw, key);
    if (!dec.ok) throw new Error("bench frame does not open");
    const env = parseEnvelopeText(dec.text);
    const inner = innerSourceSignedMessageV2(env);
    const sigOuter = signer.sign(raw.ciphertext), sigInner = signer.sign(inner);
    const nonce = randomBytes(24);
    const text = envelopeJson(env);
    const box = new Uint8Array(text.length + 16);
    const signOuter = usPer(() => void signer.sign(raw.ciphertext));
    const signInner = usPer(() => void signer.sign(inner));
    const verifyOuter = usPer(() => void verifier.verify(sigOuter, raw.ciphertext));
    const verifyInner = usPer(() => void verifier.verify(sigInner, inner));
    const boxSeal = usPer(() => void sealText(text, nonce, key, () => ({ out: box, offset: 0 })));
    const boxOpen = usPer(() => void decryptFrameText(raw, key));
    const json = usPer(() => void envelopeJson(env)) + usPer(() => void parseEnvelopeText(text));
    const floor = signOuter + signInner + verifyOuter + verifyInner + boxSeal + boxOpen;
    rows.push([
      size >= 1024 ? `${size / 1024} KiB` : `${size} B`,
      fmt(seal, 1),
      fmt(open, 1),
      `${fmt(signOuter, 1)} + ${fmt(signInner, 1)}`,
      `${fmt(verifyOuter, 1)} + ${fmt(verifyInner, 1)}`,
      `${fmt(boxSeal, 1)} / ${fmt(boxOpen, 1)}`,
      fmt(json, 1),
      `${fmt(floor, 1)} (${Math.round((floor / (seal + open)) * 100)}%)`,
      fmt(2e6 / (seal + open)),
    ]);
  }
  printTable("per-frame cost, CPU µs (median of 3 rounds)", [
    "payload",
    "seal",
    "open",
    "Ed25519 sign outer + inner",
    "verify outer + inner",
    "SecretBox seal / open",
    "envelope JSON write + parse",
    "crypto floor (share of seal + open)",
    "2-core ceiling, msg/s",
  ], rows);
}
