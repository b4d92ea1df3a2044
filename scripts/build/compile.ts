/**
 * `deno task compile` → dist/ironmesh, a self-contained binary with the
 * least-privilege permissions embedded. `deno compile` needs Deno's `denort`
 * runtime: it uses $DENORT_BIN when set, else a cached download, else it tries to
 * download it (which fails on machines without internet). `--print-command` shows
 * the command without running it.
 */
import { RUN_FLAGS } from "./permissions.ts";

const out = "dist/ironmesh";
const args = ["compile", ...RUN_FLAGS, "--output", out, "cli/main.ts"];
if (Deno.args.includes("--print-command")) {
  console.log([Deno.execPath(), ...args].join(" "));
  Deno.exit(0);
}
const denort = Deno.env.get("DENORT_BIN");
if (denort) {
  try {
    if (!(await Deno.stat(denort)).isFile) throw new Error("not a file");
  } catch {
    console.error(
      `error: DENORT_BIN=${denort} is not a file — point it at the denort binary for Deno ${Deno.version.deno}`,
    );
    Deno.exit(1);
  }
  console.log(`using denort from DENORT_BIN=${denort}`);
} else {
  console.log(`DENORT_BIN is not set: deno compile will use a cached denort or try to download it`);
}
await Deno.mkdir("dist", { recursive: true });
const res = await new Deno.Command(Deno.execPath(), { args, stdout: "inherit", stderr: "inherit" })
  .output();
if (!res.success) {
  console.error(
    `error: deno compile failed — it needs the denort runtime for Deno ${Deno.version.deno}; on an offline machine set DENORT_BIN=/path/to/denort (or use 'deno task bundle', which needs no runtime download)`,
  );
  Deno.exit(res.code || 1);
}
console.log(`compiled ${out}`);
