/** Crypto primitives: libsodium (wasm) vs node:crypto (native), side by side, as ratios. */
import {
  createPrivateKey,
  createPublicKey,
  sign as nodeSign,
  verify as nodeVerify,
} from "node:crypto";
import {
  hmacSha256,
  hmacSha256Node,
  randomBytes,
  signDetached,
  signKeyPairFromSeed,
  verifyDetached,
} from "../../lib/crypto/sodium.ts";
import { fmt, opsPerSecond, printTable } from "./util.ts";

/** Run the crypto benchmark and print its table. */
export function cryptoBench(): void {
  const seed = randomBytes(32);
  const kp = signKeyPairFromSeed(seed);
  const msg = randomBytes(1024);
  const sig = signDetached(msg, kp.secretKey);
  const pkcs8 = new Uint8Array([
    ...new Uint8Array([
      0x30,
      0x2e,
      0x02,
      0x01,
      0x00,
      0x30,
      0x05,
      0x06,
      0x03,
      0x2b,
      0x65,
      0x70,
      0x04,
      0x22,
      0x04,
      0x20,
    ]),
    ...seed,
  ]);
  const priv = createPrivateKey({ key: pkcs8 as unknown as Buffer, format: "der", type: "pkcs8" });
  const pub = createPublicKey(priv);
  const key32 = randomBytes(32);
  const m64 = randomBytes(64);
  const rows: [string, number, number][] = [
    [
      "Ed25519 sign 1 KiB",
      opsPerSecond(() => signDetached(msg, kp.secretKey)),
      opsPerSecond(() => nodeSign(null, msg, priv)),
    ],
    [
      "Ed25519 verify 1 KiB",
      opsPerSecond(() => verifyDetached(sig, msg, kp.publicKey)),
      opsPerSecond(() => nodeVerify(null, msg, pub, sig)),
    ],
    [
      "HMAC-SHA256 64 B",
      opsPerSecond(() => hmacSha256(key32, m64)),
      opsPerSecond(() => hmacSha256Node(key32, m64)),
    ],
  ];
  printTable(
    "crypto primitives (ops/s, one core)",
    ["operation", "libsodium (wasm)", "node:crypto", "node:crypto / libsodium"],
    rows.map(([n, a, b]) => [n, fmt(a), fmt(b), `${(b / a).toFixed(2)}×`]),
  );
}
