/**
 * `deno task test`: runs the whole suite with `deno test` and ends with one plain
 * line `N passed, N failed` (CI does not read Deno's own summary line).
 * Extra arguments are passed to `deno test` (e.g. a file or `--filter`).
 */
const args = Deno.args.length ? Deno.args : ["tests/"];
const cmd = new Deno.Command(Deno.execPath(), {
  args: [
    "test",
    "--allow-read",
    "--allow-write",
    "--allow-run",
    "--allow-env",
    "--allow-net",
    "--allow-sys",
    "--parallel",
    ...args,
  ],
  env: { NO_COLOR: "1", DENO_JOBS: Deno.env.get("DENO_JOBS") ?? "2" },
  stdout: "piped",
  stderr: "inherit",
});
const child = cmd.spawn();
const decoder = new TextDecoder();
let tail = "";
for await (const chunk of child.stdout) {
  await Deno.stdout.write(chunk);
  tail = (tail + decoder.decode(chunk, { stream: true })).slice(-4096);
}
const status = await child.status;
const m = tail.match(/^(?:ok|FAILED) \| (\d+) passed.*?\| (\d+) failed/m);
const passed = m ? Number(m[1]) : 0;
const failed = m ? Number(m[2]) : status.success ? 0 : 1;
console.log(`${passed} passed, ${failed} failed`);
Deno.exit(status.success && failed === 0 ? 0 : 1);
