/**
 * `ironmesh backup --out FILE` and `ironmesh restore --in FILE [--force]`: the encrypted IMB1
 * backup of a node (keys.json, known_peers.json and the whole audit set), byte-compatible
 * with Python IronMesh's `ironmesh backup` / `ironmesh restore` (PROTOCOL-0.9 §11.7, §18.9).
 *
 * Restore checks everything before it writes anything: the backup decrypts, its members are
 * plain files with safe names matching the manifest, keys.json opens, the trust store's MAC
 * verifies and the audit chain verifies (from genesis, with its checkpoint). Then it writes
 * every file as a temp file first and renames them into place under the state-dir lock.
 */
import { join } from "node:path";
import {
  type AuditSetFile,
  type AuditSetResult,
  verifyAuditSet,
} from "../../lib/backup/audit_set.ts";
import { packBackup, unpackBackup } from "../../lib/backup/archive.ts";
import {
  ARCHIVE_NAMES,
  AUDIT_NAME,
  CHECKPOINT_NAME,
  KEYS_NAME,
  STATE_FILES,
  TRUST_NAME,
} from "../../lib/backup/contents.ts";
import { MAX_BACKUP_BYTES, parseImb1 } from "../../lib/backup/imb1.ts";
import { existingStateFiles, readStateFiles, writeRestore } from "../../lib/backup/state_io.ts";
import { auditKey } from "../../lib/crypto/kdf.ts";
import { ExitCode, IronMeshError } from "../../lib/errors.ts";
import { atomicWrite, ensureStateDir } from "../../lib/fs/atomic_write.ts";
import { lockStateDir } from "../../lib/fs/lock.ts";
import type { Identity } from "../../lib/identity/identity.ts";
import { openKeyFile, parseKeyFile } from "../../lib/identity/keyfile.ts";
import { fsError, pathExists } from "../../lib/identity/keystore.ts";
import { checkPassphraseStrength } from "../../lib/node_inputs.ts";
import { formatFingerprint } from "../../lib/identity/node_id.ts";
import { stateLockHolder } from "../../lib/state_files.ts";
import { decodeEnvelope, legacyMacKeyFor, trustKeys } from "../../lib/trust/envelope.ts";
import { VERSION } from "../../lib/version.ts";
import { isDaemonRunning } from "../../daemon/control_client.ts";
import { parseCommandArgs, usageError } from "../args.ts";
import type { Command } from "../command.ts";
import { makeContext } from "../context.ts";
import { fmtTime, positionalArgs } from "../format.ts";
import { kdfProgress, keyFilePassphrase } from "../identity_loader.ts";
import { color, type Output } from "../output.ts";
import { passphraseFromSources, type PassphraseSources, promptPassphrase } from "../passphrase.ts";
import { GLOBAL_HELP } from "../subcommand.ts";

const BACKUP_PASS_HELP =
  `  --backup-passphrase-file FILE  the backup passphrase (else IRONMESH_BACKUP_PASSPHRASE_FILE,
                                 IRONMESH_BACKUP_PASSPHRASE, or a no-echo prompt on a terminal;
                                 never argv). It is its own secret: the mesh and key-file
                                 passphrases are never used for it`;

const BACKUP_HELP = `ironmesh backup — write an encrypted backup of this node

Usage: ironmesh backup --out FILE [--force] [--backup-passphrase-file FILE]

Writes one IMB1 file (Argon2id + SecretBox over a tar.gz with a manifest), the format of
Python IronMesh's 'ironmesh backup', holding:
  keys.json          the identity (still encrypted with its own passphrase)
  known_peers.json   the trust store (pins, states, revocations)
  audit.log          the WHOLE live audit log, plus its archives audit.log.1–.5 and the
                     signed checkpoint audit.checkpoint, so a restored node verifies its
                     audit chain from genesis (Python keeps only the last 10,000 lines)
Every file that is missing is listed in the manifest as absent. Safe while the daemon runs:
the trust store and audit files are read under the same locks their writers take.
Not included: data.db (queued and past messages), routes.json, capabilities.json.

  --out FILE     where to write the backup (mode 0600); refuses an existing file
  --force        replace an existing --out file
${BACKUP_PASS_HELP}

The backup passphrase must be at least 12 characters; on a terminal it is asked twice.

Examples:
  ironmesh backup --out ~/ironmesh-$(date +%F).imb
  ironmesh backup --out /mnt/usb/lab-1.imb --backup-passphrase-file ~/.ironmesh-backup-pass
  IRONMESH_BACKUP_PASSPHRASE_FILE=~/.ironmesh-backup-pass ironmesh backup --out /backup/node.imb --force

${GLOBAL_HELP}`;

const RESTORE_HELP = `ironmesh restore — restore a node from an encrypted backup

Usage: ironmesh restore --in FILE [--force] [--dry-run] [--backup-passphrase-file FILE]
                        [--passphrase-file FILE]

Reads an IMB1 backup written by 'ironmesh backup' or by Python IronMesh, checks everything,
and only then writes keys.json, known_peers.json and the audit files into the state
directory (temp file + fsync + rename each, mode 0600, directory 0700).

Checked before anything is written:
  - the backup decrypts (wrong passphrase, a changed or truncated file: refused)
  - members are plain files with safe names (absolute paths, '..', links, devices: refused)
    and match the manifest's SHA-256 listing
  - keys.json opens with its key-file passphrase and matches the manifest's node id
  - the trust store's MAC verifies under that identity
  - the audit chain verifies from genesis across its archives and matches its checkpoint
    (a Python backup holds only the log's tail: it is verified from its first line and
    'audit verify' will report it; this is the reference's limitation)

  --in FILE       the backup file
  --force         replace existing state (the current keys.json, if different, is kept as
                  keys.json.bak; audit archives and checkpoint not in the backup are removed)
  --dry-run       check the backup completely, write nothing (a restore drill)
${BACKUP_PASS_HELP}
  --passphrase-file FILE         the key-file passphrase of the restored keys.json (else
                                 IRONMESH_KEYS_PASSPHRASE, IRONMESH_PASSPHRASE_FILE,
                                 IRONMESH_PASSPHRASE, or a prompt on a terminal)

Refused while a daemon runs on the state directory (stop it first). data.db, routes.json and
capabilities.json are left as they are.

Examples:
  ironmesh restore --in ~/ironmesh-2025-01-14.imb --state-dir ~/.ironmesh
  ironmesh restore --in node.imb --dry-run --state-dir /tmp/drill
  ironmesh restore --in node.imb --force --backup-passphrase-file ~/.ironmesh-backup-pass

${GLOBAL_HELP}`;

const BACKUP_SOURCES: PassphraseSources = {
  flag: "--backup-passphrase-file",
  fileEnv: "IRONMESH_BACKUP_PASSPHRASE_FILE",
  env: "IRONMESH_BACKUP_PASSPHRASE",
  label: "backup passphrase file",
};

/**
 * The backup passphrase: --backup-passphrase-file, IRONMESH_BACKUP_PASSPHRASE_FILE,
 * IRONMESH_BACKUP_PASSPHRASE (with a warning), a no-echo prompt on a terminal (asked twice
 * with `confirm`). Never the mesh or key-file passphrase.
 */
async function backupPassphrase(
  file: string | undefined,
  confirm: boolean,
  out: Output,
): Promise<string> {
  const given = passphraseFromSources(file, BACKUP_SOURCES, out);
  if (given !== undefined) return given;
  if (Deno.stdin.isTerminal()) {
    return await promptPassphrase(
      confirm ? "New backup passphrase: " : "Backup passphrase: ",
      confirm ? { repeat: "Repeat backup passphrase: ", what: "backup passphrases" } : undefined,
    );
  }
  throw new IronMeshError(
    "PASSPHRASE_REQUIRED",
    "a backup passphrase is required (no source found)",
    "pass --backup-passphrase-file FILE, or set IRONMESH_BACKUP_PASSPHRASE_FILE, or run on a terminal to be asked",
    ExitCode.BAD_PASSPHRASE,
  );
}

function bytes(n: number): string {
  return n < 10_000
    ? `${n} B`
    : n < 10_000_000
    ? `${(n / 1024).toFixed(1)} KiB`
    : `${(n / 1048576).toFixed(1)} MiB`;
}

async function backup(argv: string[]): Promise<number> {
  const cmd = "backup";
  const { values, positionals } = parseCommandArgs(argv, {
    out: { type: "string" },
    force: { type: "boolean" },
    "backup-passphrase-file": { type: "string" },
  }, cmd);
  if (values.help) return console.log(BACKUP_HELP), 0;
  positionalArgs(positionals, [], cmd);
  const ctx = makeContext(values, cmd);
  const out = values.out;
  if (!out) throw usageError("missing --out FILE", cmd);
  try {
    if (!(await Deno.stat(ctx.stateDir)).isDirectory) throw new Deno.errors.NotADirectory();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new IronMeshError(
        "NOT_FOUND",
        `state directory ${ctx.stateDir} does not exist`,
        "check --state-dir / IRONMESH_HOME: there is nothing to back up",
        ExitCode.NOT_FOUND,
      );
    }
    throw fsError(e, ctx.stateDir, "state directory");
  }
  const keysText = await Deno.readTextFile(join(ctx.stateDir, KEYS_NAME)).catch((e) => {
    if (e instanceof Deno.errors.NotFound) {
      throw new IronMeshError(
        "KEYS_NOT_FOUND",
        `no identity at ${join(ctx.stateDir, KEYS_NAME)}: nothing to back up`,
        "check --state-dir / IRONMESH_HOME",
        ExitCode.NOT_FOUND,
      );
    }
    throw fsError(e, join(ctx.stateDir, KEYS_NAME), "key file");
  });
  const kf = parseKeyFile(keysText, join(ctx.stateDir, KEYS_NAME));
  if (await pathExists(out, "file") && !values.force) {
    throw new IronMeshError(
      "BACKUP_EXISTS",
      `${out} already exists`,
      "choose another --out file, or pass --force to replace it",
      ExitCode.EXISTS,
    );
  }
  const passphrase = await backupPassphrase(values["backup-passphrase-file"], true, ctx.out);
  checkPassphraseStrength(passphrase);
  const files = await readStateFiles(
    ctx.stateDir,
    (what, why) =>
      ctx.out.warn(`read ${what} without its lock (${why}); stop the daemon for a consistent copy`),
  );
  // keys.json may have been replaced since it was parsed: take the node id from what is packed.
  const packedKeys = files.get(KEYS_NAME);
  if (!packedKeys) {
    throw new IronMeshError(
      "KEYS_NOT_FOUND",
      "keys.json disappeared during the backup",
      "run the backup again",
      ExitCode.NOT_FOUND,
    );
  }
  const nodeId = parseKeyFile(new TextDecoder().decode(packedKeys), KEYS_NAME).summary.nodeId;
  const createdAt = Date.now() / 1000;
  const sealed = await packBackup(
    { files, nodeId, createdAt, writer: `ironmesh ${VERSION}` },
    passphrase,
  );
  try {
    await atomicWrite(out, sealed, { mode: 0o600 });
  } catch (e) {
    throw fsError(e, out, "backup file");
  }
  const listing = STATE_FILES.map((name) => {
    const b = files.get(name) ?? null;
    return { name, present: b !== null, bytes: b?.length ?? 0 };
  });
  ctx.out.result({
    ok: true,
    out,
    bytes: sealed.length,
    node_id: nodeId,
    name: kf.summary.name,
    created_at: createdAt,
    files: listing,
  });
  ctx.out.line(
    `${color.green("✓")} backup of ${nodeId}${
      kf.summary.name ? ` (${kf.summary.name})` : ""
    } written to ${out} (${bytes(sealed.length)})`,
  );
  ctx.out.table(
    listing.filter((f) => f.present || !f.name.startsWith(`${AUDIT_NAME}.`)).map((f) => [
      f.name,
      f.present ? bytes(f.bytes) : color.dim("absent (listed as absent in the manifest)"),
    ]),
  );
  const archives = listing.filter((f) => f.present && f.name.startsWith(`${AUDIT_NAME}.`)).length;
  if (!archives) {
    ctx.out.line(color.dim("(no rotated audit archives audit.log.1–.5: listed as absent)"));
  }
  ctx.out.line(
    color.dim(
      `\nKeep the backup passphrase apart from the backup. Rehearse with: ironmesh restore --in ${out} --dry-run`,
    ),
  );
  return 0;
}

interface Verified {
  id: Identity;
  audit: AuditSetResult | null;
  trust: { peers: number; format: string } | null;
}

async function restore(argv: string[]): Promise<number> {
  const cmd = "restore";
  const { values, positionals } = parseCommandArgs(argv, {
    in: { type: "string" },
    force: { type: "boolean" },
    "dry-run": { type: "boolean" },
    "backup-passphrase-file": { type: "string" },
    "passphrase-file": { type: "string" },
  }, cmd);
  if (values.help) return console.log(RESTORE_HELP), 0;
  positionalArgs(positionals, [], cmd);
  const ctx = makeContext(values, cmd);
  const file = values.in;
  if (!file) throw usageError("missing --in FILE", cmd);
  const dryRun = values["dry-run"] === true;
  const force = values.force === true;

  // 1. Cheap refusals first: the file, existing state, a running daemon.
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new IronMeshError(
        "NOT_FOUND",
        `backup file ${file} does not exist`,
        "check the path given to --in",
        ExitCode.NOT_FOUND,
      );
    }
    throw fsError(e, file, "backup file");
  }
  if (!info.isFile || info.size > MAX_BACKUP_BYTES) {
    throw new IronMeshError(
      "BACKUP_NOT_IMB1",
      `${file} is ${info.isFile ? `too large (${info.size} bytes)` : "not a regular file"}`,
      "pass the file written by 'ironmesh backup'",
      ExitCode.BAD_INPUT,
    );
  }
  let raw: Uint8Array;
  try {
    raw = await Deno.readFile(file);
  } catch (e) {
    throw fsError(e, file, "backup file");
  }
  parseImb1(raw, file);
  const stateDirExists = await pathExists(ctx.stateDir, "file");
  if (stateDirExists) {
    const existing = await existingStateFiles(ctx.stateDir);
    if (existing.length && !force && !dryRun) {
      throw new IronMeshError(
        "STATE_EXISTS",
        `${ctx.stateDir} already holds a node (${existing.join(", ")})`,
        "restore into an empty --state-dir, or pass --force to replace it (a different keys.json is kept as keys.json.bak)",
        ExitCode.EXISTS,
      );
    }
    if (!dryRun) {
      const answers = await isDaemonRunning(ctx.stateDir).catch((e) =>
        // A socket path too long to bind cannot have a daemon behind it; anything else
        // (a stuck daemon, a permission problem) is treated as a daemon being there.
        !(e instanceof IronMeshError && e.code === "CONTROL_PATH_TOO_LONG")
      );
      refuseRunningDaemon(ctx.stateDir, answers);
    }
  }

  // 2. Decrypt and check the archive.
  const passphrase = await backupPassphrase(values["backup-passphrase-file"], false, ctx.out);
  if (!ctx.out.json && Deno.stderr.isTerminal()) {
    console.error(color.dim("… deriving the backup key with Argon2id (about a second)"));
  }
  const contents = await unpackBackup(raw, passphrase, file);
  const m = contents.manifest;
  if (contents.ignored.length) {
    ctx.out.warn(
      `ignored unknown member(s) in the backup: ${
        contents.ignored.map((n) => JSON.stringify(n)).join(", ")
      }`,
    );
  }
  const keysBytes = contents.files.get(KEYS_NAME);
  if (!keysBytes) {
    throw new IronMeshError(
      "BACKUP_NO_KEYS",
      `${file} holds no keys.json (its manifest says keys: ${m.includes.keys})`,
      "this backup cannot restore a node identity; use a backup made where keys.json existed",
      ExitCode.BAD_INPUT,
    );
  }
  const keysLabel = `keys.json in ${file}`;
  let keysText: string;
  try {
    keysText = new TextDecoder("utf-8", { fatal: true }).decode(keysBytes);
  } catch {
    throw new IronMeshError(
      "KEYS_MALFORMED",
      `${keysLabel} is not UTF-8`,
      "use another copy of the backup",
      ExitCode.BAD_KEYFILE,
    );
  }
  const kf = parseKeyFile(keysText, keysLabel);
  if (m.nodeId !== null && m.nodeId !== kf.summary.nodeId) {
    throw new IronMeshError(
      "BACKUP_TAMPERED",
      `the manifest names node ${m.nodeId} but keys.json is node ${kf.summary.nodeId}`,
      "do not restore this file: it was assembled from different nodes; use another copy",
      ExitCode.TAMPERED,
    );
  }

  // 3. Open the identity and verify the trust store and the audit set with it.
  const keyPass = kf.summary.encrypted
    ? (await keyFilePassphrase(ctx.out, { passphraseFile: values["passphrase-file"] }))!
    : null;
  const id = openKeyFile(kf, keyPass, keysLabel, kdfProgress(ctx.out));
  let v: Verified;
  try {
    v = verifyContents(id, contents.files, m.auditComplete, file);
  } catch (e) {
    id.wipe();
    throw e;
  }
  const audit = v.audit;
  if (audit?.mode === "anchor") {
    ctx.out.warn(
      `the backup holds only the audit log's last ${audit.entries} lines (a Python IronMesh backup): ` +
        `verified from the anchor at ${
          fmtTime(audit.anchor?.timestamp)
        }; 'ironmesh audit verify' cannot check it from genesis`,
    );
  }
  const restoredNames = STATE_FILES.filter((n) => contents.files.has(n));
  const summary = {
    ok: true,
    in: file,
    state_dir: ctx.stateDir,
    dry_run: dryRun,
    node_id: id.nodeId,
    name: id.name,
    fingerprint: formatFingerprint(id.nodeId),
    backup_created_at: m.createdAt,
    writer: m.writer ?? "python-ironmesh",
    files: restoredNames.map((n) => ({ name: n, bytes: contents.files.get(n)!.length })),
    trust: v.trust,
    audit: audit
      ? {
        mode: audit.mode,
        entries: audit.entries,
        checkpoint: audit.checkpoint,
        message: audit.message,
      }
      : null,
    removed: [] as string[],
    kept_old_keys: null as string | null,
  };
  id.wipe();

  if (dryRun) {
    ctx.out.result(summary);
    ctx.out.line(
      `${color.green("✓")} ${file} checks out: node ${summary.node_id}${
        summary.name ? ` (${summary.name})` : ""
      } — nothing written (--dry-run)`,
    );
    printRestoreTable(ctx.out, summary);
    return 0;
  }

  // 4. Write: state dir 0700, the lock (refuses a daemon that started meanwhile), staged files.
  try {
    await ensureStateDir(ctx.stateDir);
    const mode = (await Deno.stat(ctx.stateDir)).mode;
    if (mode !== null && (mode & 0o077) !== 0) {
      await Deno.chmod(ctx.stateDir, 0o700);
      ctx.out.warn(`${ctx.stateDir} was mode ${(mode & 0o777).toString(8)}; set to 0700`);
    }
  } catch (e) {
    throw fsError(e, ctx.stateDir, "state directory");
  }
  const lock = lockStateDir(ctx.stateDir, "restore");
  try {
    const existing = await existingStateFiles(ctx.stateDir);
    if (existing.length && !force) {
      throw new IronMeshError(
        "STATE_EXISTS",
        `${ctx.stateDir} already holds a node (${existing.join(", ")})`,
        "restore into an empty --state-dir, or pass --force to replace it",
        ExitCode.EXISTS,
      );
    }
    const w = await writeRestore(ctx.stateDir, contents.files);
    summary.removed = w.removed;
    summary.kept_old_keys = w.keptOldKeys;
  } finally {
    lock.release();
  }
  ctx.out.result(summary);
  ctx.out.line(
    `${color.green("✓")} restored node ${summary.node_id}${
      summary.name ? ` (${summary.name})` : ""
    } from ${file} into ${ctx.stateDir}`,
  );
  printRestoreTable(ctx.out, summary);
  if (summary.kept_old_keys) {
    ctx.out.line(`  the previous keys.json was kept as ${summary.kept_old_keys}`);
  }
  if (summary.removed.length) {
    ctx.out.line(`  removed (not in the backup): ${summary.removed.join(", ")}`);
  }
  ctx.out.line(
    color.dim(
      `\nNext: ironmesh audit verify --archives --state-dir ${ctx.stateDir}; then ironmesh run`,
    ),
  );
  return 0;
}

function printRestoreTable(
  out: Output,
  s: {
    files: { name: string; bytes: number }[];
    trust: { peers: number; format: string } | null;
    audit: { message: string } | null;
  },
): void {
  out.table(s.files.map((f) => {
    let note = bytes(f.bytes);
    if (f.name === TRUST_NAME && s.trust) {
      note += ` — MAC ok, ${s.trust.peers} peer(s) (${s.trust.format})`;
    }
    if (f.name === AUDIT_NAME && s.audit) note += ` — ${s.audit.message}`;
    if (f.name === KEYS_NAME) note += " — opens";
    return [f.name, note];
  }));
}

function refuseRunningDaemon(stateDir: string, socketAnswers: boolean): void {
  const holder = stateLockHolder(stateDir);
  if (holder || socketAnswers) {
    const pid = holder?.pid;
    throw new IronMeshError(
      "DAEMON_RUNNING",
      `a daemon is running on ${stateDir}${
        pid ? ` (pid ${pid}${holder?.purpose ? `, ${holder.purpose}` : ""})` : ""
      }`,
      `stop it first${pid ? ` (kill ${pid})` : ""}, then run the restore again`,
      ExitCode.LOCKED,
    );
  }
}

/** Verify the trust store and the audit set of a backup with its identity; throws when bad. */
function verifyContents(
  id: Identity,
  files: Map<string, Uint8Array>,
  auditComplete: boolean,
  file: string,
): Verified {
  let trust: Verified["trust"] = null;
  const trustBytes = files.get(TRUST_NAME);
  if (trustBytes) {
    let text: string | null = null;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(trustBytes);
    } catch { /* reported below */ }
    const home = Deno.env.get("HOME");
    const res = text === null ? { ok: false as const, reason: "not UTF-8" } : decodeEnvelope(
      text,
      trustKeys(id.seed),
      home ? { legacyMacKey: legacyMacKeyFor(home) } : {},
    );
    if (!res.ok) {
      throw new IronMeshError(
        "BACKUP_TRUST_INVALID",
        `known_peers.json in ${file} does not verify under this identity (${res.reason})`,
        "do not restore this file: the trust store was changed or belongs to another node; use another copy",
        ExitCode.TAMPERED,
      );
    }
    trust = { peers: Object.keys(res.plain.peers).length, format: res.format };
  }
  const auditFiles: AuditSetFile[] = [...ARCHIVE_NAMES, AUDIT_NAME]
    .filter((n) => files.has(n))
    .map((n) => ({ name: n, bytes: files.get(n)! }));
  const cpBytes = files.get(CHECKPOINT_NAME);
  if (!auditFiles.length) {
    if (cpBytes) {
      throw new IronMeshError(
        "BACKUP_AUDIT_INVALID",
        `${file} holds an audit checkpoint but no audit log`,
        "do not restore this file: the audit log was removed from it; use another copy",
        ExitCode.TAMPERED,
      );
    }
    return { id, audit: null, trust };
  }
  if (!files.has(AUDIT_NAME)) {
    throw new IronMeshError(
      "BACKUP_AUDIT_INVALID",
      `${file} holds audit archives but no live audit.log`,
      "do not restore this file: use another copy",
      ExitCode.TAMPERED,
    );
  }
  const key = auditKey(id.seed);
  const audit = verifyAuditSet(
    auditFiles,
    cpBytes ? new TextDecoder().decode(cpBytes) : null,
    key,
    { publicKey: id.publicKey, allowAnchor: !auditComplete },
  );
  if (!audit.ok) {
    throw new IronMeshError(
      "BACKUP_AUDIT_INVALID",
      `the audit log in ${file} does not verify: ${audit.message}`,
      "do not restore this file over a working node: its audit trail was changed; keep it for investigation and use another copy",
      ExitCode.TAMPERED,
    );
  }
  return { id, audit, trust };
}

export const backupCommand: Command = {
  name: "backup",
  summary: "write an encrypted backup of keys, trust store and the whole audit log",
  help: BACKUP_HELP,
  run: backup,
};

export const restoreCommand: Command = {
  name: "restore",
  summary: "restore a node from a backup (checks everything before writing)",
  help: RESTORE_HELP,
  run: restore,
};
