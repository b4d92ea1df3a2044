/**
 * Test helper (not a test): a separate process appending to an audit log.
 *
 *   deno run --allow-read --allow-write writer_child.ts '<json config>'
 *
 * Config: {path, keyHex, count (-1 = until killed), tag, maxBytes?, checkpoint?, seedHex?}.
 * Prints "ready" once the log is open, then "done <n>" when `count` entries are written.
 */
import { AuditLog } from "../../../lib/audit/log.ts";
import { fromHex, signDetached, signKeyPairFromSeed } from "../../../lib/crypto/sodium.ts";
import { pyFloat } from "../../../lib/json/py_float.ts";

interface Config {
  path: string;
  keyHex: string;
  count: number;
  tag: string;
  maxBytes?: number;
  checkpoint?: boolean;
  seedHex?: string;
}

const cfg = JSON.parse(Deno.args[0]) as Config;
const kp = cfg.seedHex ? signKeyPairFromSeed(fromHex(cfg.seedHex)) : null;
const log = new AuditLog(cfg.path, {
  key: fromHex(cfg.keyHex),
  maxBytes: cfg.maxBytes,
  checkpoint: cfg.checkpoint ?? true,
  signer: kp
    ? { publicKey: kp.publicKey, sign: (m, c) => signDetached(m, kp.secretKey, c) }
    : undefined,
});
const out = (s: string) => Deno.stdout.writeSync(new TextEncoder().encode(s + "\n"));
out("ready");
for (let i = 0; cfg.count < 0 || i < cfg.count; i++) {
  log.appendSync("PEER_CONNECT", {
    writer: cfg.tag,
    seq: i,
    pid: Deno.pid,
    rtt_ms: pyFloat(0.5 + i / 8),
    note: i % 3 === 0 ? "caf\u00e9 \u{1f680}" : "plain",
  });
}
log.close();
out(`done ${cfg.count}`);
