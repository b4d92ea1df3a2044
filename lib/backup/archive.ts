/**
 * Packing state files into an IMB1 backup and unpacking one, in memory (no file I/O):
 * manifest + tar + gzip + Argon2id/SecretBox. See imb1.ts for the container and
 * contents.ts for what the archive holds.
 */
import type { Argon2Params } from "../crypto/sodium.ts";
import { ExitCode, IronMeshError } from "../errors.ts";
import {
  type BackupContents,
  buildManifest,
  checkEntries,
  MANIFEST_NAME,
  STATE_FILES,
} from "./contents.ts";
import { gunzip, gzip, openBackup, sealBackup, type SealOptions } from "./imb1.ts";
import { readTar, TarError, type TarFileInput, writeTar } from "./tar.ts";

/** What to pack. */
export interface PackInput {
  /** State file name → bytes, or null when the file is absent (listed as absent). */
  files: Map<string, Uint8Array | null>;
  nodeId: string | null;
  /** Seconds since the epoch (a Python float in the manifest). */
  createdAt: number;
  /** "ironmesh <version>". */
  writer: string;
}

/** The unencrypted tar of a backup: manifest first, then the present state files in order. */
export function packTar(input: PackInput): Uint8Array {
  const manifest = new TextEncoder().encode(buildManifest(input));
  const mtime = Math.floor(input.createdAt);
  const members: TarFileInput[] = [{ name: MANIFEST_NAME, data: manifest, mtime }];
  for (const name of STATE_FILES) {
    const data = input.files.get(name) ?? null;
    if (data !== null) members.push({ name, data, mtime });
  }
  return writeTar(members);
}

/** Pack and encrypt: the bytes of an IMB1 file. */
export async function packBackup(
  input: PackInput,
  passphrase: string,
  opts: SealOptions = {},
): Promise<Uint8Array> {
  return sealBackup(await gzip(packTar(input)), passphrase, opts);
}

/** Read the tar inside a decrypted backup and check its members (see `checkEntries`). */
export async function unpackTarGz(tarGz: Uint8Array): Promise<BackupContents> {
  const tar = await gunzip(tarGz);
  let entries;
  try {
    entries = readTar(tar);
  } catch (e) {
    if (!(e instanceof TarError)) throw e;
    throw new IronMeshError(
      "BACKUP_CORRUPT",
      `the decrypted backup is not a valid tar archive: ${e.message}`,
      "the backup was written by a faulty tool; use another copy",
      ExitCode.BAD_INPUT,
    );
  }
  return checkEntries(entries);
}

/** Decrypt, inflate and check an IMB1 file. */
export async function unpackBackup(
  bytes: Uint8Array,
  passphrase: string,
  file = "backup",
  kdf?: Argon2Params,
): Promise<BackupContents> {
  return await unpackTarGz(openBackup(bytes, passphrase, file, kdf));
}
