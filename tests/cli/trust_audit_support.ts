/**
 * Shared fixtures for tests/cli/trust_test.ts and audit_test.ts (not a test file): state
 * directories holding alice's Python-written identity, trust store and audit log from
 * ../shared/vectors, snapshots proving a refused command changed nothing, in-process audit
 * writers with alice's keys, and a streaming CLI child for `audit tail --follow`.
 */
import { join } from "node:path";
import { AuditLog } from "../../lib/audit/log.ts";
import { auditKey } from "../../lib/crypto/kdf.ts";
import { fromHex, randomBytes, signKeyPairFromSeed, toB64 } from "../../lib/crypto/sodium.ts";
import { Identity } from "../../lib/identity/identity.ts";
import { nodeIdOf } from "../../lib/identity/node_id.ts";
import { CLI_MAIN, type CliResult, runCli, taskPermissionFlags } from "../support/cli.ts";
import { loadVector, vectorPath } from "../support/vectors.ts";

/** Parsed JSON output, read loosely by the tests. */
// deno-lint-ignore no-explicit-any
export type Json = any;

/** The key-file passphrase of the vectors. */
export const PASS = "correct-horse-battery-staple-42";

/** The parts of trust.expected.json these tests read. */
export interface TrustExpected {
  owner: { ed25519_seed_hex: string; node_id: string };
  inner: {
    peers: Record<string, Record<string, unknown>>;
    revoked: Record<string, Record<string, unknown>>;
  };
  peer_names: Record<string, string>;
  trust_state_by_reference: Record<string, string>;
}

/** The parts of audit.expected.json these tests read. */
export interface AuditExpected {
  main_log: {
    entry_count: number;
    final_hmac: string;
    lines: { line: number; event: string; hmac: string; timestamp_repr: string }[];
  };
  tampered: {
    file: string;
    change: string;
    verify_result: { ok: boolean; entries_checked: number; first_bad_line: number | null };
  }[];
  rotated: {
    verify_chain_across_archives: { ok: boolean; entries_checked: number };
    tampered_copy: {
      verify_chain_across_archives: {
        ok: boolean;
        entries_checked: number;
        first_bad_line_global: number;
      };
    };
  };
}

/** trust.expected.json. */
export const TRUST = loadVector<TrustExpected>("trust", "trust.expected.json");
/** audit.expected.json. */
export const AUDIT = loadVector<AuditExpected>("audit", "audit.expected.json");
/** Alice's identity seed (owner of every trust and audit vector). */
export const ALICE_SEED = fromHex(TRUST.owner.ed25519_seed_hex);
/** Alice's node id. */
export const ALICE_ID = TRUST.owner.node_id;
/** Node id by vector peer name (bob, carol, …). */
export const ID_OF: Record<string, string> = Object.fromEntries(
  Object.entries(TRUST.peer_names).map(([id, name]) => [name, id]),
);

/** What to put in a state directory. */
export interface StateSpec {
  /** keys.json: alice's plaintext v3 file (fast, default) or her Argon2id-encrypted one. */
  keys?: "plaintext" | "encrypted" | null;
  /** A file of vectors/trust/ to install as known_peers.json. */
  trust?: string;
  /** A file of vectors/audit/ (or a path relative to it) to install as audit.log. */
  audit?: string;
}

/** Create `<dir>/<name>` (0700) holding the requested vector files (0600, writable copies). */
export async function makeState(dir: string, name: string, spec: StateSpec = {}): Promise<string> {
  const state = join(dir, name);
  await Deno.mkdir(state, { recursive: true, mode: 0o700 });
  const copy = async (from: string, to: string) => {
    await Deno.writeFile(join(state, to), await Deno.readFile(from), { mode: 0o600 });
    await Deno.chmod(join(state, to), 0o600);
  };
  const keys = spec.keys === undefined ? "plaintext" : spec.keys;
  if (keys) {
    await copy(
      vectorPath("keys", keys === "plaintext" ? "keys.plaintext.json" : "keys.json"),
      "keys.json",
    );
  }
  if (spec.trust) await copy(vectorPath("trust", spec.trust), "known_peers.json");
  if (spec.audit) await copy(vectorPath("audit", spec.audit), "audit.log");
  return state;
}

/** Write a passphrase file (0600) and return its path. */
export async function passFile(dir: string, value = PASS): Promise<string> {
  const p = join(dir, `pass-${crypto.randomUUID()}.txt`);
  await Deno.writeTextFile(p, value + "\n", { mode: 0o600 });
  return p;
}

/**
 * Every file of a directory (name → bytes as latin1 text), to prove a refused command changed
 * nothing. Lock sentinels (`*.lock`) are left out: taking a lock creates its empty sentinel.
 */
export async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const dec = new TextDecoder("latin1");
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && !e.name.endsWith(".lock")) {
        out[e.name] = dec.decode(await Deno.readFile(join(dir, e.name)));
      }
    }
  } catch { /* missing dir = empty */ }
  return out;
}

/** Run the CLI against `state` (appends --state-dir). */
export function cli(state: string, args: string[], env?: Record<string, string>) {
  return runCli([...args, "--state-dir", state], env ? { env } : {});
}

/** Run with --json and parse stdout (fails the test with stderr when it is not JSON). */
export async function cliJson(
  state: string,
  args: string[],
  env?: Record<string, string>,
): Promise<{ r: CliResult; j: Json }> {
  const r = await cli(state, [...args, "--json"], env);
  let j;
  try {
    j = JSON.parse(r.stdout);
  } catch {
    throw new Error(`not JSON (exit ${r.code}): ${r.stdout}\nstderr: ${r.stderr}`);
  }
  return { r, j };
}

/** Alice's identity (the owner of the vectors' trust store and audit log). */
export function aliceIdentity(): Identity {
  return new Identity(ALICE_SEED, "alice", null);
}

/** An audit writer for `<state>/audit.log` with alice's key (signing checkpoints unless told). */
export function aliceAuditLog(
  state: string,
  opts: { signed?: boolean; checkpoint?: boolean } = {},
): AuditLog {
  const id = aliceIdentity();
  return new AuditLog(join(state, "audit.log"), {
    key: auditKey(ALICE_SEED),
    ...(opts.signed === false ? {} : { signer: id }),
    checkpoint: opts.checkpoint ?? true,
  });
}

/** A fresh random peer: node id and canonical b64 public key. */
export function freshPeer(): { nodeId: string; b64: string } {
  const kp = signKeyPairFromSeed(randomBytes(32));
  return { nodeId: nodeIdOf(kp.publicKey), b64: toB64(kp.publicKey) };
}

/** Non-empty lines of the state's audit.log, parsed. */
export async function auditEntries(state: string): Promise<Json[]> {
  const text = await Deno.readTextFile(join(state, "audit.log")).catch(() => "");
  return text.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
}

/** A CLI child whose stdout is read line by line (for --follow). */
export class StreamingCli {
  readonly child: Deno.ChildProcess;
  readonly lines: string[] = [];
  #stderr = "";
  #done: Promise<void>;

  constructor(args: string[]) {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", ...taskPermissionFlags(), CLI_MAIN, ...args],
      env: { NO_COLOR: "1", HOME: "/nonexistent-home" },
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.child = child;
    const dec = new TextDecoder();
    const out = (async () => {
      let buf = "";
      for await (const chunk of child.stdout) {
        buf += dec.decode(chunk, { stream: true });
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          this.lines.push(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
        }
      }
    })();
    const err = (async () => {
      for await (const chunk of child.stderr) this.#stderr += dec.decode(chunk);
    })();
    this.#done = Promise.all([out, err]).then(() => {});
  }

  get stderr(): string {
    return this.#stderr;
  }

  /** Wait until a stdout line satisfies `pred` (or fail after `ms`). */
  async waitFor(pred: (line: string) => boolean, ms: number): Promise<string> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      const hit = this.lines.find(pred);
      if (hit !== undefined) return hit;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(
      `timed out after ${ms} ms; stdout: ${this.lines.join("\n")}; stderr: ${this.#stderr}`,
    );
  }

  /** Kill the child by its own handle and wait for it and its pipes. */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<Deno.CommandStatus> {
    try {
      this.child.kill(signal);
    } catch { /* already exited */ }
    const status = await this.child.status;
    await this.#done;
    return status;
  }
}
