/** Runs the real CLI as a subprocess with the same permission flags the `ironmesh` task uses. */
import { fileURLToPath } from "node:url";

/** Path of cli/main.ts. */
export const CLI_MAIN = fileURLToPath(new URL("../../cli/main.ts", import.meta.url));

/** The least-privilege flags of the `ironmesh` task in deno.json (kept in sync by cli_permissions_test). */
export function taskPermissionFlags(): string[] {
  const cfg = JSON.parse(
    Deno.readTextFileSync(fileURLToPath(new URL("../../deno.json", import.meta.url))),
  );
  const task: string = cfg.tasks.ironmesh;
  return task.split(/\s+/).filter((a) => a.startsWith("--allow-") || a.startsWith("--deny-"));
}

/** Result of a CLI run. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options for `runCli`. */
export interface RunOptions {
  env?: Record<string, string>;
  stdin?: string;
  cwd?: string;
  timeoutMs?: number;
}

/** Run `ironmesh <args>` and collect its output. HOME points at an empty temp dir unless given. */
export async function runCli(args: string[], opts: RunOptions = {}): Promise<CliResult> {
  const env: Record<string, string> = {
    NO_COLOR: "1",
    HOME: opts.env?.HOME ?? "/nonexistent-home",
    ...opts.env,
  };
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", ...taskPermissionFlags(), CLI_MAIN, ...args],
    env,
    clearEnv: true,
    cwd: opts.cwd,
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  });
  const child = cmd.spawn();
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
  }
  const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 60_000);
  const out = await child.output();
  clearTimeout(timer);
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** A fresh temp directory, removed by the returned cleanup. */
export async function tempDir(
  prefix = "ironmesh-test-",
): Promise<{ path: string; [Symbol.asyncDispose](): Promise<void> }> {
  const path = await Deno.makeTempDir({ prefix });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }).catch(() => {}),
  };
}
