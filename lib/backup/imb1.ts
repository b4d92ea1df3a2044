/**
 * The IMB1 backup container (PROTOCOL-0.9 §11.7), byte-compatible with Python IronMesh:
 *
 *   "IMB1" ‖ 0x01 ‖ salt(16) ‖ SecretBox(key, tar.gz)      SecretBox = nonce(24) ‖ tag(16) ‖ ct
 *   key = Argon2id MODERATE (opslimit 3, 256 MiB) of the UTF-8 backup passphrase and the salt
 *
 * plus gzip helpers on the built-in CompressionStream, with a cap on the decompressed size.
 * Pure: no file or network I/O.
 */
import {
  ARGON2_MODERATE,
  argon2id,
  type Argon2Params,
  concatBytes,
  randomBytes,
  secretBoxOpen,
  secretBoxSeal,
  utf8,
  wipe,
} from "../crypto/sodium.ts";
import { ExitCode, IronMeshError } from "../errors.ts";

/** The file magic. */
export const IMB1_MAGIC = utf8("IMB1");
/** The only container version. */
export const IMB1_VERSION = 1;
/** Argon2id salt length. */
export const IMB1_SALT_LEN = 16;
/** Bytes before the SecretBox. */
export const IMB1_HEADER_LEN = 4 + 1 + IMB1_SALT_LEN;
/** Smallest possible file: header, nonce, tag. */
export const IMB1_MIN_LEN = IMB1_HEADER_LEN + 24 + 16;
/** Largest backup file we read (a full audit set is at most ~60 MiB before compression). */
export const MAX_BACKUP_BYTES = 512 * 1024 * 1024;
/** Largest tar we inflate (a gzip bomb is refused past this). */
export const MAX_TAR_BYTES = 512 * 1024 * 1024;

/** The reference's message for a backup that does not decrypt. */
export const DECRYPT_FAILED_MESSAGE = "Decryption failed — wrong passphrase?";

/** Options of `sealBackup` (fixed values only for tests and vectors). */
export interface SealOptions {
  salt?: Uint8Array;
  nonce?: Uint8Array;
  kdf?: Argon2Params;
}

/** The Argon2id key for a backup passphrase and salt. Wipe it after use. */
export function backupKey(passphrase: string, salt: Uint8Array, kdf = ARGON2_MODERATE): Uint8Array {
  const pw = utf8(passphrase);
  try {
    return argon2id(pw, salt, kdf);
  } finally {
    wipe(pw);
  }
}

/** Encrypt a tar.gz into an IMB1 file. */
export function sealBackup(
  tarGz: Uint8Array,
  passphrase: string,
  opts: SealOptions = {},
): Uint8Array {
  const salt = opts.salt ?? randomBytes(IMB1_SALT_LEN);
  const key = backupKey(passphrase, salt, opts.kdf);
  try {
    return concatBytes(
      IMB1_MAGIC,
      new Uint8Array([IMB1_VERSION]),
      salt,
      secretBoxSeal(tarGz, key, opts.nonce),
    );
  } finally {
    wipe(key);
  }
}

/** The parts of an IMB1 file. */
export interface Imb1Parts {
  salt: Uint8Array;
  boxed: Uint8Array;
}

/** Split an IMB1 file; throws when it is not one (or is cut short). */
export function parseImb1(bytes: Uint8Array, file = "backup"): Imb1Parts {
  const magic = bytes.subarray(0, 4);
  if (bytes.length < 4 || !magic.every((b, i) => b === IMB1_MAGIC[i])) {
    throw new IronMeshError(
      "BACKUP_NOT_IMB1",
      `${file} is not an IronMesh backup (no IMB1 magic)`,
      "pass the file written by 'ironmesh backup' (or Python IronMesh 'ironmesh backup')",
      ExitCode.BAD_INPUT,
    );
  }
  if (bytes.length < 5 || bytes[4] !== IMB1_VERSION) {
    throw new IronMeshError(
      "BACKUP_UNSUPPORTED_VERSION",
      `${file} has backup format version ${
        bytes[4] ?? "(missing)"
      }; this ironmesh reads version ${IMB1_VERSION}`,
      "restore it with the IronMesh version that wrote it",
      ExitCode.UNSUPPORTED,
    );
  }
  if (bytes.length < IMB1_MIN_LEN) {
    throw new IronMeshError(
      "BACKUP_TRUNCATED",
      `${file} is truncated (${bytes.length} bytes)`,
      "copy the backup again from where it was stored",
      ExitCode.BAD_INPUT,
    );
  }
  return { salt: bytes.slice(5, IMB1_HEADER_LEN), boxed: bytes.subarray(IMB1_HEADER_LEN) };
}

/** Decrypt an IMB1 file to its tar.gz; a wrong passphrase and a changed file fail alike. */
export function openBackup(
  bytes: Uint8Array,
  passphrase: string,
  file = "backup",
  kdf = ARGON2_MODERATE,
): Uint8Array {
  const { salt, boxed } = parseImb1(bytes, file);
  const key = backupKey(passphrase, salt, kdf);
  let plain: Uint8Array | null;
  try {
    plain = secretBoxOpen(boxed, key);
  } finally {
    wipe(key);
  }
  if (!plain) {
    throw new IronMeshError(
      "BACKUP_DECRYPT_FAILED",
      `${DECRYPT_FAILED_MESSAGE} (${file} does not decrypt: wrong backup passphrase, or the file was changed or truncated)`,
      "give the backup passphrase used for 'ironmesh backup' (--backup-passphrase-file, IRONMESH_BACKUP_PASSPHRASE_FILE or IRONMESH_BACKUP_PASSPHRASE); if it is right, the file is damaged: use another copy",
      ExitCode.WRONG_PASSPHRASE,
    );
  }
  return plain;
}

async function drain(
  stream: ReadableStream<Uint8Array>,
  max: number,
  what: string,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = stream.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > max) {
        await reader.cancel().catch(() => {});
        throw new IronMeshError(
          "BACKUP_TOO_LARGE",
          `the ${what} inflates past ${max} bytes`,
          "this is not a backup written by ironmesh",
          ExitCode.BAD_INPUT,
        );
      }
      chunks.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  return concatBytes(...chunks);
}

function streamOf(bytes: Uint8Array): ReadableStream<Uint8Array<ArrayBuffer>> {
  return new ReadableStream<Uint8Array<ArrayBuffer>>({
    start(c) {
      c.enqueue(new Uint8Array(bytes));
      c.close();
    },
  });
}

/** gzip `data` (the built-in CompressionStream). */
export function gzip(data: Uint8Array): Promise<Uint8Array> {
  return drain(streamOf(data).pipeThrough(new CompressionStream("gzip")), Infinity, "gzip output");
}

/** gunzip `data`, refusing more than `max` output bytes; a corrupt stream is BACKUP_CORRUPT. */
export async function gunzip(data: Uint8Array, max = MAX_TAR_BYTES): Promise<Uint8Array> {
  try {
    return await drain(streamOf(data).pipeThrough(new DecompressionStream("gzip")), max, "archive");
  } catch (e) {
    if (e instanceof IronMeshError) throw e;
    throw new IronMeshError(
      "BACKUP_CORRUPT",
      `the decrypted backup is not a valid tar.gz (${(e as Error).message})`,
      "the backup was written by a faulty tool; use another copy",
      ExitCode.BAD_INPUT,
    );
  }
}
