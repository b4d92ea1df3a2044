/**
 * Audit log benchmark: verify speed on a generated 100,000-entry log (fast path,
 * and the re-serializing slow path for comparison) and the cost of one append
 * (write + fdatasync, with and without the signed checkpoint).
 *
 *   deno run --allow-read --allow-write --allow-env scripts/bench/audit_bench.ts [entries]
 */
import { join } from "node:path";
import { AuditLog } from "../../lib/audit/log.ts";
import { verifyBytes, verifyLog } from "../../lib/audit/verify.ts";
import { encodeEntry, GENESIS_HMAC } from "../../lib/audit/chain.ts";
import { ChainMac } from "../../lib/audit/hmac.ts";
import { auditKey } from "../../lib/crypto/kdf.ts";
import { signDetached, signKeyPairFromSeed, utf8 } from "../../lib/crypto/sodium.ts";
import { pyFloat } from "../../lib/json/py_float.ts";
import { FakeClock } from "../../lib/clock.ts";

const N = Number(Deno.env.get("IRONMESH_AUDIT_BENCH_N") ?? 100_000);
const seed = new Uint8Array(32).fill(7);
const key = auditKey(seed);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** A realistic mix of details (peer ids, addresses, a float, nested stats). */
function details(i: number): Record<string, unknown> {
  switch (i % 4) {
    case 0:
      return {
        address: `127.0.0.1:${50000 + (i % 1000)}`,
        peer_id: "a5f14a936d289f5d15e90fcaff39a373",
        peer_name: "bob",
      };
    case 1:
      return {
        cost: i % 7,
        destination: "ea5404ba3b231221f6536b8488f52c65",
        next_hop: "a5f14a936d289f5d15e90fcaff39a373",
      };
    case 2:
      return { failure_count: i % 5, ip: "192.0.2.7" };
    default:
      return {
        peer_id: "2c348b324e762618695f63bfdefdf6cd",
        stats: { rtt_ms: pyFloat(3.25 + i / 1000) },
      };
  }
}

const EVENTS = ["PEER_CONNECT", "ROUTE_LEARNED", "AUTH_FAILURE", "PEER_DISCONNECT"];

const dir = await Deno.makeTempDir({ prefix: "ironmesh-audit-bench-" });
try {
  // 1. Generate the log in memory (same bytes the writer produces) and write it once.
  const mac = new ChainMac(key);
  const parts: string[] = [];
  let prev = GENESIS_HMAC;
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    const e = encodeEntry(mac, prev, EVENTS[i % 4], details(i), 1736812800 + i * 0.25);
    parts.push(e.line, "\n");
    prev = e.hmac;
  }
  const encodeMs = performance.now() - t0;
  mac.dispose();
  const bytes = utf8(parts.join(""));
  const path = join(dir, "audit.log");
  Deno.writeFileSync(path, bytes);

  // 2. Verify (fast path), a few runs.
  const runs: number[] = [];
  for (let r = 0; r < 5; r++) {
    const s = performance.now();
    const res = verifyLog(path, key, { checkpoint: false });
    runs.push(performance.now() - s);
    if (!res.ok || res.entries !== N) throw new Error(`verify failed: ${res.message}`);
  }
  // 3. Slow path for comparison: a space after "{" defeats the fast path on every line, so each
  // line is parsed and re-serialized with CANON (what the reference verifier always does).
  const slowN = Math.min(N, 20_000);
  const text = new TextDecoder().decode(bytes);
  const spaced = text.split("\n").slice(0, slowN).map((l) =>
    l.replace('{"details":', '{ "details":')
  ).join("\n");
  const slowBytes = utf8(spaced);
  const ss = performance.now();
  const slowRes = verifyBytes(slowBytes, key);
  const slowMs = performance.now() - ss;
  if (!slowRes.ok) throw new Error(`slow verify failed: ${slowRes.message}`);

  // 4. Append cost (write + fdatasync), without and with a signed checkpoint.
  const kp = signKeyPairFromSeed(seed);
  const signer = {
    publicKey: kp.publicKey,
    sign: (m: Uint8Array, c?: Uint8Array) => signDetached(m, kp.secretKey, c),
  };
  const appendCost = (checkpoint: boolean, n: number): number => {
    const d = Deno.makeTempDirSync({ dir });
    const log = new AuditLog(join(d, "audit.log"), {
      key,
      clock: new FakeClock(),
      checkpoint,
      signer: checkpoint ? signer : undefined,
    });
    const times: number[] = [];
    for (let i = 0; i < n; i++) {
      const s = performance.now();
      log.appendSync("PEER_CONNECT", details(i));
      times.push(performance.now() - s);
    }
    log.close();
    return median(times);
  };
  const plain = appendCost(false, 300);
  const withCp = appendCost(true, 300);

  const verifyMs = median(runs);
  const mb = bytes.length / 1e6;
  console.log(`audit bench (${N.toLocaleString("en")} entries, ${mb.toFixed(1)} MB)`);
  console.log("| measure | median | rate |");
  console.log("|---|---|---|");
  console.log(
    `| encode (no I/O) | ${encodeMs.toFixed(0)} ms | ${
      (N / encodeMs * 1000).toFixed(0)
    } entries/s |`,
  );
  console.log(
    `| verify, fast path | ${verifyMs.toFixed(0)} ms | ${
      (N / verifyMs * 1000).toFixed(0)
    } entries/s (${(mb / verifyMs * 1000).toFixed(0)} MB/s) |`,
  );
  console.log(
    `| verify, re-serializing path (${slowN.toLocaleString("en")} lines) | ${
      slowMs.toFixed(0)
    } ms | ${(slowN / slowMs * 1000).toFixed(0)} entries/s |`,
  );
  console.log(
    `| append (write + fdatasync) | ${(plain * 1000).toFixed(0)} µs | ${
      (1000 / plain).toFixed(0)
    } appends/s |`,
  );
  console.log(
    `| append + signed checkpoint | ${(withCp * 1000).toFixed(0)} µs | ${
      (1000 / withCp).toFixed(0)
    } appends/s |`,
  );
  console.log(
    `ratio fast/slow verify: ${
      ((N / verifyMs) / (slowN / slowMs)).toFixed(1)
    }x; checkpoint overhead: ${(withCp / plain).toFixed(2)}x`,
  );
} finally {
  await Deno.remove(dir, { recursive: true });
}
