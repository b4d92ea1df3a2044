/** `ironmesh keys generate | info | fingerprint` — the node identity (keys.json). */
import { ExitCode, IronMeshError } from "../../lib/errors.ts";
import { encodeKeyFile, generateIdentity } from "../../lib/identity/keyfile.ts";
import {
  keyFileExists,
  keysPath,
  readKeyFileAt,
  saveKeyFileAt,
} from "../../lib/identity/keystore.ts";
import { formatFingerprint } from "../../lib/identity/node_id.ts";
import { lockStateDir } from "../../lib/fs/lock.ts";
import { ensureStateDir } from "../../lib/fs/atomic_write.ts";
import { toB64 } from "../../lib/crypto/sodium.ts";
import { parseCommandArgs, usageError } from "../args.ts";
import type { Command } from "../command.ts";
import { makeContext } from "../context.ts";
import { checkPassphraseStrength } from "../../lib/node_inputs.ts";
import { getPassphrase } from "../passphrase.ts";
import { GLOBAL_HELP, splitSubcommand } from "../subcommand.ts";
import { color } from "../output.ts";
import { kdfProgress, loadIdentity } from "../identity_loader.ts";
import { fsError } from "../../lib/identity/keystore.ts";

const HELP = `ironmesh keys — create and inspect this node's identity (keys.json)

Usage:
  ironmesh keys generate [--name NAME] [--force] [--passphrase-file FILE]
  ironmesh keys info [--passphrase-file FILE]
  ironmesh keys fingerprint

Subcommands:
  generate      create a new Ed25519 identity, encrypted with your passphrase
                (Argon2id + SecretBox, byte-compatible with Python IronMesh)
  info          open keys.json and show name, node id, public keys, format and
                file permissions (checks that the passphrase opens it)
  fingerprint   print the node id and fingerprint (no passphrase needed)

Passphrase sources, in order: --passphrase-file, IRONMESH_PASSPHRASE_FILE,
IRONMESH_PASSPHRASE (readable by your other processes: a warning is printed),
a no-echo prompt on a terminal. Never on the command line. At least 12 characters.

Examples:
  ironmesh keys generate --name lab-gpu-1 --passphrase-file ~/.ironmesh-pass
  ironmesh keys info --passphrase-file ~/.ironmesh-pass
  ironmesh keys fingerprint --json

${GLOBAL_HELP}`;

const SUB_HELP: Record<string, string> = {
  generate: `ironmesh keys generate — create a new node identity

Usage: ironmesh keys generate [--name NAME] [--force] [--passphrase-file FILE]

  --name NAME             agent name stored in keys.json (default: empty; 'run --name' sets the live name)
  --force                 replace an existing identity (the old file is kept as keys.json.bak)
  --passphrase-file FILE  read the passphrase from FILE (else IRONMESH_PASSPHRASE_FILE,
                          IRONMESH_PASSPHRASE, or a prompt asked twice on a terminal)

Examples:
  ironmesh keys generate --name lab-gpu-1
  IRONMESH_PASSPHRASE_FILE=~/.ironmesh-pass ironmesh keys generate --state-dir /srv/ironmesh

${GLOBAL_HELP}`,
  info: `ironmesh keys info — open keys.json and show the identity

Usage: ironmesh keys info [--passphrase-file FILE]

Decrypts keys.json (so a wrong passphrase or a damaged file is reported) and shows
name, node id, fingerprint, public keys, format and file permissions.

Examples:
  ironmesh keys info --passphrase-file ~/.ironmesh-pass
  ironmesh keys info --json --state-dir /srv/ironmesh

${GLOBAL_HELP}`,
  fingerprint: `ironmesh keys fingerprint — print this node's id (no passphrase needed)

Usage: ironmesh keys fingerprint

Examples:
  ironmesh keys fingerprint
  ironmesh keys fingerprint --json

${GLOBAL_HELP}`,
};

async function fileMode(path: string): Promise<number | null> {
  try {
    return ((await Deno.stat(path)).mode ?? 0) & 0o777;
  } catch {
    return null;
  }
}

async function generate(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, {
    name: { type: "string" },
    force: { type: "boolean" },
    "passphrase-file": { type: "string" },
  }, "keys generate");
  if (values.help) return console.log(SUB_HELP.generate), 0;
  if (positionals.length) {
    throw usageError(`unexpected argument '${positionals[0]}'`, "keys generate");
  }
  const ctx = makeContext(values, "keys generate");
  const path = keysPath(ctx.stateDir);
  const refuseExisting = async () => {
    if (await keyFileExists(path) && !values.force) {
      throw new IronMeshError(
        "KEYS_EXIST",
        `an identity already exists at ${path}`,
        "keep it (it is this node's identity), or pass --force to replace it (the old file is kept as keys.json.bak)",
        ExitCode.EXISTS,
      );
    }
  };
  // Check everything before creating anything, so a refused run leaves no trace.
  await refuseExisting();
  const passphrase = await getPassphrase({
    file: values["passphrase-file"],
    confirm: true,
    purpose: "new key-file passphrase",
    out: ctx.out,
  });
  checkPassphraseStrength(passphrase!);
  try {
    await ensureStateDir(ctx.stateDir);
  } catch (e) {
    throw fsError(e, ctx.stateDir, "state directory");
  }
  const lock = lockStateDir(ctx.stateDir, "keys generate");
  try {
    await refuseExisting();
    const id = generateIdentity(values.name ?? "");
    const text = encodeKeyFile(id, { passphrase, ...kdfProgress(ctx.out) });
    if (await keyFileExists(path)) await Deno.copyFile(path, `${path}.bak`);
    await saveKeyFileAt(ctx.stateDir, text);
    const info = {
      ok: true,
      path,
      name: id.name,
      node_id: id.nodeId,
      fingerprint: formatFingerprint(id.nodeId),
      ed25519_public: toB64(id.publicKey),
      x25519_public: toB64(id.e2e.publicKey),
      format: "master-seed-v1",
    };
    id.wipe();
    ctx.out.result(info);
    ctx.out.line(`${color.green("✓")} new identity written to ${path}`);
    ctx.out.table([
      ["node id", info.node_id],
      ["fingerprint", info.fingerprint],
      ["ed25519 public", info.ed25519_public],
      ["x25519 public", info.x25519_public],
    ]);
    ctx.out.line(
      `\nKeep the passphrase safe: without it this identity cannot be opened. Next: 'ironmesh keys info'.`,
    );
    return 0;
  } finally {
    lock.release();
  }
}

async function info(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    argv,
    { "passphrase-file": { type: "string" } },
    "keys info",
  );
  if (values.help) return console.log(SUB_HELP.info), 0;
  if (positionals.length) throw usageError(`unexpected argument '${positionals[0]}'`, "keys info");
  const ctx = makeContext(values, "keys info");
  const { id, keyFile: kf, path } = await loadIdentity(ctx, {
    passphraseFile: values["passphrase-file"],
  });
  const mode = await fileMode(path);
  const tooOpen = mode !== null && (mode & 0o077) !== 0;
  const result = {
    ok: true,
    path,
    name: id.name,
    node_id: id.nodeId,
    fingerprint: formatFingerprint(id.nodeId),
    ed25519_public: toB64(id.publicKey),
    x25519_public: toB64(id.e2e.publicKey),
    x25519_kind: id.e2e.kind,
    format: kf.summary.format,
    version: kf.summary.version,
    encrypted: kf.summary.encrypted,
    mode: mode === null ? null : mode.toString(8).padStart(4, "0"),
    mode_ok: !tooOpen,
  };
  id.wipe();
  ctx.out.result(result);
  ctx.out.table([
    ["name", result.name || color.dim("(none)")],
    ["node id", result.node_id],
    ["fingerprint", result.fingerprint],
    ["ed25519 public", result.ed25519_public],
    ["x25519 public", `${result.x25519_public} (${result.x25519_kind})`],
    [
      "format",
      `${result.format} (version ${result.version}), ${
        result.encrypted ? "encrypted" : "PLAINTEXT"
      }`,
    ],
    ["file", `${path} mode ${result.mode}`],
  ]);
  if (tooOpen) {
    ctx.out.warn(`${path} is readable by others (mode ${result.mode}) — run: chmod 600 ${path}`);
  }
  if (!kf.summary.encrypted) {
    ctx.out.warn(
      `${path} holds the secret key in plaintext — re-create it with 'ironmesh keys generate --force' to encrypt it`,
    );
  }
  if (kf.summary.version < 3) {
    ctx.out.warn(
      `legacy v${kf.summary.version} key file: 'ironmesh run' migrates it to master-seed-v1 (same node id)`,
    );
  }
  return 0;
}

async function fingerprint(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, {}, "keys fingerprint");
  if (values.help) return console.log(SUB_HELP.fingerprint), 0;
  if (positionals.length) {
    throw usageError(`unexpected argument '${positionals[0]}'`, "keys fingerprint");
  }
  const ctx = makeContext(values, "keys fingerprint");
  const kf = await readKeyFileAt(keysPath(ctx.stateDir));
  const result = {
    ok: true,
    node_id: kf.summary.nodeId,
    fingerprint: formatFingerprint(kf.summary.nodeId),
    ed25519_public: kf.summary.ed25519PublicB64,
    name: kf.summary.name,
  };
  ctx.out.result(result);
  ctx.out.line(`${result.node_id}  ${color.dim(result.fingerprint)}`);
  return 0;
}

const SUBS: Record<string, (argv: string[]) => Promise<number>> = { generate, info, fingerprint };

export const keysCommand: Command = {
  name: "keys",
  summary: "create and inspect this node's identity (keys.json)",
  help: HELP,
  run(argv) {
    const { sub, rest } = splitSubcommand(argv, ["--name", "--passphrase-file"]);
    if (!sub) {
      if (rest.includes("--help") || rest.includes("-h")) {
        return Promise.resolve((console.log(HELP), 0));
      }
      throw usageError("missing subcommand: generate, info or fingerprint", "keys");
    }
    const fn = SUBS[sub];
    if (!fn) throw usageError(`unknown subcommand 'keys ${sub}'`, "keys");
    return fn(rest);
  },
};
