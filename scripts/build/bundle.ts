/**
 * `deno task bundle` → dist/ironmesh.js: one file (libsodium's wasm included) that
 * runs with plain `deno run` from an empty folder. Prints the run command with
 * the least-privilege permission flags.
 */
import { dirname } from "node:path";
import { RUN_FLAGS } from "./permissions.ts";

const out = Deno.args[0] ?? "dist/ironmesh.js";
await Deno.mkdir(dirname(out) || ".", { recursive: true });
const res = await new Deno.Command(Deno.execPath(), {
  args: ["bundle", "--platform", "deno", "--minify", "-o", out, "cli/main.ts"],
  stdout: "inherit",
  stderr: "inherit",
}).output();
if (!res.success) Deno.exit(res.code || 1);
const size = (await Deno.stat(out)).size;
console.log(`bundled ${out} (${(size / 1024).toFixed(0)} KiB)`);
console.log(`run it: deno run ${RUN_FLAGS.join(" ")} ${out} --help`);
