/**
 * `deno task bench`: every benchmark side by side with its baseline, in one run, as ratios.
 * `deno task bench crypto` runs one section.
 */
import { cryptoBench } from "./crypto_bench.ts";
import { daemonBench } from "./daemon_bench.ts";
import { frameBench } from "./frame_bench.ts";
import { meshBench } from "./mesh_bench.ts";
import { wireBench } from "./wire_bench.ts";

const SECTIONS: Record<string, () => void | Promise<void>> = {
  crypto: cryptoBench,
  frame: frameBench,
  wire: wireBench,
  // audit_bench.ts runs at import: verify speed on a 100,000-entry log and append cost (fsync included).
  audit: async () => {
    await import("./audit_bench.ts");
  },
  // two real daemons: idle RSS with one peer, RSS and CPU at 100 msg/s (reference: ~50/~60 MB).
  daemon: daemonBench,
  // a line of 4 nodes over ws://: 3-hop RTT and throughput next to 1-hop; 100-node vnet convergence.
  mesh: meshBench,
};

const pick = Deno.args.length ? Deno.args : Object.keys(SECTIONS);
console.log(
  `# ironmesh bench — deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} cores, ${
    new Date().toISOString()
  }`,
);
for (const name of pick) {
  const fn = SECTIONS[name];
  if (!fn) {
    console.error(
      `error: unknown bench section '${name}' — choose from ${Object.keys(SECTIONS).join(", ")}`,
    );
    Deno.exit(2);
  }
  await fn();
}
// Exit explicitly: an imported section may hold an open handle at module level (wire_bench's
// MessageChannel), which would keep a run of only the other sections alive after the tables.
Deno.exit(0);
