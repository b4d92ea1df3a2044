/**
 * `deno task bench`: every benchmark side by side with its baseline, in one run, as ratios.
 * `deno task bench crypto` runs one section.
 */
import { cryptoBench } from "./crypto_bench.ts";
import { wireBench } from "./wire_bench.ts";

const SECTIONS: Record<string, () => void | Promise<void>> = {
  crypto: cryptoBench,
  wire: wireBench,
  // audit_bench.ts runs at import: verify speed on a 100,000-entry log and append cost (fsync included).
  audit: async () => {
    await import("./audit_bench.ts");
  },
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
