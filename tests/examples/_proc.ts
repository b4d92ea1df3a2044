// Running an example as its own process, with exactly the least-privilege flags its header
// documents (from the repository root), a temp state dir and the passphrase in a file.
import { fileURLToPath } from "node:url";
import { join } from "node:path";

/** The repository root (examples run from there, as documented). */
export const REPO = fileURLToPath(new URL("../../", import.meta.url));
/** The mesh passphrase of the example tests. */
export const PASS = "a-mesh-passphrase-for-example-tests";

/** A temp dir holding the passphrase file and the agents' state dirs. */
export async function exampleDir(prefix: string): Promise<{ dir: string; passFile: string }> {
  const dir = await Deno.makeTempDir({ prefix: `ironmesh-${prefix}-` });
  const passFile = join(dir, "pass");
  await Deno.writeTextFile(passFile, `${PASS}\n`, { mode: 0o600 });
  return { dir, passFile };
}

async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buf = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buf += chunk;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      yield buf.slice(0, i);
      buf = buf.slice(i + 1);
    }
  }
  if (buf) yield buf;
}

/** A running example. */
export class ExampleProc {
  readonly lines: string[] = [];
  stderr = "";
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #readers: Promise<unknown>;
  #wake: (() => void) | null = null;
  #stdinClosed = false;
  #status: Deno.CommandStatus | null = null;

  /** `deno run <flags> examples/<script> <args>` with cwd = the repository root. */
  constructor(
    readonly label: string,
    script: string,
    args: string[],
    o: { dir: string; passFile: string; extraEnvNames?: string[] },
  ) {
    const envNames = ["HOME", "IRONMESH_PASSPHRASE", "IRONMESH_PASSPHRASE_FILE"];
    this.#child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--no-prompt",
        "--allow-net=127.0.0.1",
        `--allow-read=.,${o.dir}`,
        `--allow-write=${o.dir}`,
        `--allow-env=${[...envNames, ...(o.extraEnvNames ?? [])].join(",")}`,
        `examples/${script}`,
        ...args,
      ],
      cwd: REPO,
      env: { IRONMESH_PASSPHRASE_FILE: o.passFile, NO_COLOR: "1" },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const child = this.#child;
    this.#stdin = child.stdin.getWriter();
    const out = (async () => {
      for await (const l of lines(child.stdout)) {
        this.lines.push(l);
        this.#wake?.();
      }
    })();
    const err = (async () => {
      for await (const l of lines(child.stderr)) this.stderr += `${l}\n`;
    })();
    this.#readers = Promise.all([out, err]);
  }

  /** The first stdout line matching `re` (waiting for it up to `ms`). */
  async waitFor(re: RegExp, ms = 30_000): Promise<RegExpMatchArray> {
    const t0 = Date.now();
    while (true) {
      for (const l of this.lines) {
        const m = l.match(re);
        if (m) return m;
      }
      const left = ms - (Date.now() - t0);
      if (left <= 0 || this.#status) {
        throw new Error(
          `${this.label}: no line matching ${re} ${
            this.#status ? "before it exited" : `in ${ms} ms`
          }\n` +
            `stdout:\n${this.lines.join("\n")}\nstderr:\n${this.stderr}`,
        );
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((r) => {
        this.#wake = r;
        timer = setTimeout(r, Math.min(left, 100));
      });
      clearTimeout(timer);
      this.#wake = null;
    }
  }

  /** Every stdout line matching `re`. */
  all(re: RegExp): string[] {
    return this.lines.filter((l) => re.test(l));
  }

  /** Write one line to its stdin. */
  async write(line: string): Promise<void> {
    await this.#stdin.write(new TextEncoder().encode(`${line}\n`));
  }

  /** Close its stdin (end of input). */
  async closeStdin(): Promise<void> {
    if (this.#stdinClosed) return;
    this.#stdinClosed = true;
    await this.#stdin.close().catch(() => {});
  }

  /** Send a signal (ignored when it already exited). */
  kill(signal: Deno.Signal = "SIGTERM"): void {
    try {
      this.#child.kill(signal);
    } catch { /* already exited */ }
  }

  /** Wait for it to exit (killing it after `ms`); returns the exit code. */
  async exit(ms = 30_000): Promise<number> {
    const timer = setTimeout(() => this.kill("SIGKILL"), ms);
    try {
      await this.closeStdin();
      this.#status = await this.#child.status;
      await this.#readers;
      return this.#status.code;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Diagnostics for a failed assertion. */
  dump(): string {
    return `--- ${this.label} stdout:\n${
      this.lines.join("\n")
    }\n--- ${this.label} stderr:\n${this.stderr}`;
  }
}
