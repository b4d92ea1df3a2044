/** Shared helpers for the audit tests (not a test file). */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { auditKey } from "../../../lib/crypto/kdf.ts";
import {
  fromHex,
  signDetached,
  signKeyPairFromSeed,
  toHex,
  utf8,
} from "../../../lib/crypto/sodium.ts";
import type { CheckpointSigner } from "../../../lib/audit/checkpoint.ts";
import { loadVector } from "../../support/vectors.ts";

/** The parts of audit.expected.json the tests read. */
export interface AuditExpected {
  owner: { ed25519_seed_hex: string; ed25519_public_hex: string; node_id: string };
  hmac_key_hex: string;
  genesis: string;
  main_log: {
    entry_count: number;
    final_hmac: string;
    lines: {
      line: number;
      event: string;
      prev_hmac: string;
      hmac: string;
      timestamp_repr: string;
      entry_data_text: string;
    }[];
  };
  tampered: {
    file: string;
    change: string;
    verify_result: { ok: boolean; entries_checked: number; first_bad_line: number | null };
  }[];
  rotated: {
    max_bytes: number;
    entries_written: number;
    files_oldest_first: Record<
      string,
      {
        entries: number;
        bytes: number;
        first_event: string;
        first_details: Record<string, unknown>;
        last_hmac: string;
        verify_single_file: [boolean, number, number | null];
      }
    >;
    verify_chain_across_archives: { ok: boolean; entries_checked: number };
    tampered_copy: {
      verify_chain_across_archives: {
        ok: boolean;
        entries_checked: number;
        first_bad_line_global: number;
      };
    };
  };
  signed_export: { signed_text_sha256: string; signer_public_hex: string };
}

/** The audit vectors' expectations. */
export const EXPECTED = loadVector<AuditExpected>("audit", "audit.expected.json");
/** Alice's audit key from the vectors. */
export const VECTOR_KEY = fromHex(EXPECTED.hmac_key_hex);

/** A test identity seed and its audit key. */
export const SEED = new Uint8Array(32).map((_, i) => (i * 7 + 3) & 0xff);
/** Audit key of `SEED`. */
export const KEY = auditKey(SEED);
/** SEED as hex (for child processes). */
export const KEY_HEX = toHex(KEY);
/** SEED as hex. */
export const SEED_HEX = toHex(SEED);

/** An Ed25519 checkpoint/export signer from a seed. */
export function signerFor(seed: Uint8Array = SEED): CheckpointSigner {
  const kp = signKeyPairFromSeed(seed);
  return {
    publicKey: kp.publicKey,
    sign: (m: Uint8Array, c?: Uint8Array) => signDetached(m, kp.secretKey, c),
  };
}

/** Run `fn` in a fresh temporary directory that is removed afterwards. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T> | T): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "ironmesh-audit-test-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Non-empty lines of a text file. */
export function readLines(path: string): string[] {
  return Deno.readTextFileSync(path).split("\n").filter((l) => l.length > 0);
}

/** Write lines (each followed by "\n"). */
export function writeLines(path: string, lines: string[]): void {
  Deno.writeFileSync(path, utf8(lines.map((l) => l + "\n").join("")));
}

const REPO = fileURLToPath(new URL("../../../", import.meta.url));
const WRITER = join(REPO, "tests/lib/audit/writer_child.ts");

/** Configuration of a writer child process (see writer_child.ts). */
export interface WriterConfig {
  path: string;
  count: number;
  tag: string;
  maxBytes?: number;
  checkpoint?: boolean;
  seedHex?: string;
}

/** Spawn a writer child process (stdout piped). */
export function spawnWriter(cfg: WriterConfig): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--config",
      join(REPO, "deno.json"),
      WRITER,
      JSON.stringify({ keyHex: KEY_HEX, ...cfg }),
    ],
    cwd: REPO,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
}

/** Read a child's stdout until a line starting with `prefix` appears (returns the reader). */
export async function waitForLine(
  child: Deno.ChildProcess,
  prefix: string,
): Promise<ReadableStreamDefaultReader<Uint8Array>> {
  const reader = child.stdout.getReader();
  const dec = new TextDecoder();
  let text = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`child exited before printing "${prefix}": ${text}`);
    text += dec.decode(value, { stream: true });
    if (text.split("\n").some((l) => l.startsWith(prefix))) return reader;
  }
}
