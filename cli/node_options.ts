/**
 * What `ironmesh run` and `ironmesh mcp --own-node` share to start a node: checking the flags
 * both take (--name, --connect, --capability, --mesh-routing), the file flags, the mesh and
 * key-file passphrases, and opening keys.json (or creating it on the first run).
 */
import type { MeshOptions } from "../daemon/mesh.ts";
import { ExitCode, IronMeshError } from "../lib/errors.ts";
import { Identity } from "../lib/identity/identity.ts";
import {
  encodeKeyFile,
  generateIdentity,
  type KdfOptions,
  openKeyFile,
} from "../lib/identity/keyfile.ts";
import { keyFileExists, keysPath, readKeyFileAt, saveKeyFileAt } from "../lib/identity/keystore.ts";
import {
  AGENT_NAME_RE,
  CAPABILITY_RE,
  checkPassphraseStrength,
  PEER_ADDRESS_RE,
} from "../lib/node_inputs.ts";
import { usageError } from "./args.ts";
import type { Output } from "./output.ts";
import { getPassphrase, readPassphraseFile } from "./passphrase.ts";

/** Check --name (when given). */
export function checkName(name: string | undefined, cmd: string): void {
  if (name !== undefined && !AGENT_NAME_RE.test(name)) {
    throw usageError(
      `--name must be 1–63 characters of letters, digits, '.', '_' or '-', got '${name}'`,
      cmd,
    );
  }
}

/** Check one --connect address; returns it. */
export function checkAddress(a: string, cmd: string): string {
  if (!PEER_ADDRESS_RE.test(a)) {
    throw usageError(`--connect expects HOST:PORT (or ws[s]://HOST:PORT), got '${a}'`, cmd);
  }
  return a;
}

/** Check every --capability. */
export function checkCapabilities(caps: string[] | undefined, cmd: string): void {
  for (const c of caps ?? []) {
    if (!CAPABILITY_RE.test(c)) {
      throw usageError(`--capability expects NAMESPACE:NAME (e.g. llm:chat), got '${c}'`, cmd);
    }
  }
}

/** --mesh-routing (default relay). */
export function meshRoutingMode(value: string | undefined, cmd: string): MeshOptions["mode"] {
  const mode = value ?? "relay";
  if (!["relay", "passive", "off"].includes(mode)) {
    throw usageError(`--mesh-routing must be relay, passive or off, got '${mode}'`, cmd);
  }
  return mode as MeshOptions["mode"];
}

/** The text of the file a flag names; a missing file says which flag to fix. */
export function readFileFlag(path: string, flag: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (e) {
    throw new IronMeshError(
      "BAD_FILE",
      `${flag} ${path}: ${
        e instanceof Deno.errors.NotFound ? "no such file" : (e as Error).message
      }`,
      `check the path given to ${flag}`,
      ExitCode.NOT_FOUND,
    );
  }
}

/** The mesh passphrase (--passphrase-file, then the `getPassphrase` chain), checked for length. */
export async function meshPassphrase(file: string | undefined, out: Output): Promise<string> {
  const passphrase = (await getPassphrase({ file, purpose: "mesh passphrase", out }))!;
  checkPassphraseStrength(passphrase);
  return passphrase;
}

/** The key-file passphrase: --keys-passphrase-file, IRONMESH_KEYS_PASSPHRASE, else `mesh`. */
export function keysPassphrase(file: string | undefined, mesh: string): string {
  if (file) return readPassphraseFile(file, "--keys-passphrase-file", "key-file passphrase file");
  return Deno.env.get("IRONMESH_KEYS_PASSPHRASE") || mesh;
}

/** What `openOrCreateIdentity` needs besides the state dir. */
export interface IdentitySetup {
  /** --name: required on the first run; else it renames the identity for this run. */
  name: string | undefined;
  keysPass: string;
  kdf: KdfOptions;
  /** The hint when the first run has no --name. */
  firstRunHint: string;
  /** Told when a new identity was created and saved at `path`. */
  onCreated(id: Identity, path: string): void;
}

/** Open keys.json, or create it (with `name`) on the first run. */
export async function openOrCreateIdentity(stateDir: string, o: IdentitySetup): Promise<Identity> {
  const path = keysPath(stateDir);
  if (!(await keyFileExists(path))) {
    if (!o.name) {
      throw new IronMeshError(
        "NAME_REQUIRED",
        `no identity in ${stateDir} yet and no --name`,
        o.firstRunHint,
        ExitCode.USAGE,
      );
    }
    checkPassphraseStrength(o.keysPass);
    const id = generateIdentity(o.name);
    await saveKeyFileAt(stateDir, encodeKeyFile(id, { passphrase: o.keysPass, ...o.kdf }));
    o.onCreated(id, path);
    return id;
  }
  const kf = await readKeyFileAt(path);
  const id = openKeyFile(kf, kf.summary.encrypted ? o.keysPass : null, path, o.kdf);
  if (o.name && o.name !== id.name) return new Identity(id.seed, o.name, id.hkdfSalt);
  if (!id.name) {
    throw new IronMeshError(
      "NAME_REQUIRED",
      `the identity in ${path} has no name`,
      "pass --name NAME",
      ExitCode.USAGE,
    );
  }
  return id;
}
