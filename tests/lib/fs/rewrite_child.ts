// Child for the crash test: rewrites a state file forever with atomicWrite.
// Each version is self-checking: {"n": N, "pad": "...", "sum": <length of pad>}.
import { atomicWrite } from "../../../lib/fs/atomic_write.ts";

const path = Deno.args[0];
for (let n = 1;; n++) {
  const pad = "x".repeat(1000 + (n % 50) * 997);
  await atomicWrite(path, JSON.stringify({ n, pad, sum: pad.length }));
  if (n === 1) console.log("started");
}
