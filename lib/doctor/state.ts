/**
 * The identity-dependent checks of `ironmesh doctor`, on data already read: the trust store's
 * MAC (decoded with the identity's keys, without taking its lock or latching anything) and the
 * audit verification result split into "chain" and "checkpoint".
 */
import type { VerifyResult } from "../audit/verify.ts";
import { type DecodeResult } from "../trust/envelope.ts";
import { type CheckResult, fail, pass, skip } from "./report.ts";

/** known_peers.json as decoded with this node's keys (`null` = no file). */
export function checkTrust(path: string, decoded: DecodeResult | null): CheckResult {
  const id = "trust-store", title = "trust store MAC";
  if (decoded === null) {
    return pass(id, title, `${path} does not exist yet (created when the first peer is pinned)`);
  }
  if (!decoded.ok) {
    return fail(
      id,
      title,
      `${path} fails its integrity check (${decoded.failure}: ${decoded.reason}); the daemon loads it empty and read-only`,
      `keep a copy for investigation, then move it aside ('mv ${path} ${path}.bad') and re-pin peers, ` +
        "or restore it from a backup ('ironmesh restore --in FILE --force'); a file from another node's identity never verifies here",
    );
  }
  const peers = Object.keys(decoded.plain.peers).length;
  const revoked = Object.keys(decoded.plain.revoked).length;
  const counts = `${peers} peer(s), ${revoked} revocation(s)`;
  switch (decoded.format) {
    case "v2":
      return pass(id, title, `MAC ok, encrypted (v2): ${counts}`);
    case "v1":
      return pass(
        id,
        title,
        `MAC ok, legacy plaintext v1 (rewritten as v2 on the next change): ${counts}`,
      );
    case "v1-legacy-key":
      return pass(
        id,
        title,
        `MAC ok under the legacy home-directory key (rewritten on the next load): ${counts}`,
      );
    default:
      return fail(
        id,
        title,
        `${path} has no MAC at all (legacy unauthenticated file): anyone who can write it can add pins`,
        "check its pins with 'ironmesh trust list', then make any change (e.g. 'ironmesh trust set-state <id> <state>'): the store is rewritten as MACed v2",
      );
  }
}

const AUDIT_FIX_TAMPERED = (path: string) =>
  `keep the evidence ('cp -p ${path}* /somewhere/safe/'), compare with your last 'ironmesh audit export'; ` +
  `to start a fresh chain move audit.log* and audit.checkpoint aside, or restore them from a backup ('ironmesh restore --in FILE --force')`;

/** The audit checks from `verifyLog(…, {archives: true})` (null = no log files at all). */
export function checkAudit(path: string, res: VerifyResult | null): [CheckResult, CheckResult] {
  const cId = "audit-chain", cTitle = "audit chain";
  const kId = "audit-checkpoint", kTitle = "audit checkpoint";
  if (res === null) {
    return [
      pass(cId, cTitle, `${path} does not exist yet (the daemon starts it)`),
      skip(kId, kTitle, "no audit log yet"),
    ];
  }
  const files = res.files.length;
  const chainBroken = !res.ok && res.reason !== "truncated" && res.reason !== "checkpoint-invalid";
  if (chainBroken) {
    return [
      fail(
        cId,
        cTitle,
        `${res.message} (reason ${res.reason}, first bad line ${
          res.firstBadLine ?? "?"
        }, across ${files} file(s))`,
        AUDIT_FIX_TAMPERED(path),
      ),
      skip(kId, kTitle, "not compared: the chain itself is broken"),
    ];
  }
  const torn = res.tornLines.length ? `; ${res.tornLines.length} torn line(s) tolerated` : "";
  const chain = pass(
    cId,
    cTitle,
    `${res.entries} entries verified from genesis across ${files} file(s)${torn}`,
  );
  const cp = res.checkpoint;
  if (!res.ok) {
    return [
      chain,
      fail(
        kId,
        kTitle,
        res.reason === "truncated"
          ? `entries were cut from the end of the log: ${res.message}`
          : `the checkpoint is invalid: ${cp.problems[0] ?? res.message}`,
        AUDIT_FIX_TAMPERED(path),
      ),
    ];
  }
  switch (cp.status) {
    case "ok":
      return [
        chain,
        pass(
          kId,
          kTitle,
          `matches (${cp.entryCount} entries pinned${cp.signed ? ", signed" : ""})`,
        ),
      ];
    case "stale":
      return [chain, pass(kId, kTitle, "older than every kept archive (nothing left to compare)")];
    case "missing":
      return [
        chain,
        skip(
          kId,
          kTitle,
          "no audit.checkpoint yet (Python IronMesh writes none): entries cut from the end would go unnoticed",
          "'ironmesh run' writes one with its first audit entry",
        ),
      ];
    default:
      return [chain, skip(kId, kTitle, `not compared (${cp.status})`)];
  }
}
