/** No-echo passphrase prompt on a terminal (stdin in raw mode; nothing is echoed or logged). */
import { ExitCode, IronMeshError } from "../lib/errors.ts";

/** Read one line from the TTY without echo. Ctrl-C aborts with exit 130. */
export async function promptHidden(question: string): Promise<string> {
  const enc = new TextEncoder();
  await Deno.stderr.write(enc.encode(question));
  Deno.stdin.setRaw(true);
  const bytes: number[] = [];
  const buf = new Uint8Array(64);
  try {
    outer: for (;;) {
      const n = await Deno.stdin.read(buf);
      if (n === null) break;
      for (const b of buf.subarray(0, n)) {
        if (b === 0x0d || b === 0x0a) break outer;
        if (b === 0x03) {
          throw new IronMeshError("INTERRUPTED", "interrupted", "", ExitCode.FAILURE);
        }
        if (b === 0x7f || b === 0x08) bytes.pop();
        else if (b === 0x15) bytes.length = 0; // Ctrl-U clears the line
        else bytes.push(b);
      }
    }
  } finally {
    Deno.stdin.setRaw(false);
    await Deno.stderr.write(enc.encode("\n"));
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}
