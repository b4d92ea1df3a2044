/**
 * `ironmesh trust …` — who is in this node's mesh: the pinned peers of known_peers.json, their
 * states, revocations, name bindings and capability changes. Works on the state files
 * directly through a `TrustBackend` (cli/trust_backend.ts); every change is audited with
 * `actor: "cli"`.
 */
import { ExitCode, IronMeshError } from "../../lib/errors.ts";
import { formatFingerprint } from "../../lib/identity/node_id.ts";
import { capabilityDiff } from "../../lib/trust/capability_binding.ts";
import {
  decodeStoredKey,
  type PeerRecord,
  requireTrustState,
  type RevocationRecord,
  TRUST_STATES,
  type TrustState,
} from "../../lib/trust/records.ts";
import { nodeIdOf } from "../../lib/identity/node_id.ts";
import { parseCommandArgs, usageError } from "../args.ts";
import type { Command } from "../command.ts";
import { type Context, makeContext } from "../context.ts";
import { columns, fmtTime, isoTime, positionalArgs, safeText } from "../format.ts";
import { DaemonTrustBackend, withTrustBackend } from "../trust_backend.ts";
import { color } from "../output.ts";
import { GLOBAL_HELP, splitSubcommand } from "../subcommand.ts";
import {
  type TrustBackend,
  type TrustConflictInfo,
  type TrustOpResult,
  type TrustSnapshot,
} from "../../lib/trust/backend.ts";

const PASS_HELP = `  --passphrase-file FILE  key-file passphrase (else IRONMESH_PASSPHRASE_FILE,
                          IRONMESH_PASSPHRASE, or a prompt on a terminal; never argv)`;

const ID_HELP = `<id> is a node id, a unique node-id prefix (4+ hex characters), a bound name or a
unique name prefix.`;

const HELP = `ironmesh trust — pinned peers, their trust states, revocations and capability changes

Usage:
  ironmesh trust list [--show-caps] [--state S]
  ironmesh trust set-state <id> <state>
  ironmesh trust pin <node-id> <pubkey-b64> [--name N] [--state S]
  ironmesh trust revoke <id> [--reason R] [--broadcast]
  ironmesh trust clear-revocation <id>
  ironmesh trust forget <id>
  ironmesh trust list-revoked
  ironmesh trust cap-status
  ironmesh trust cap-diff <id>
  ironmesh trust cap-promote <id> | --all
  ironmesh trust cap-reject <id> [--block]
  ironmesh trust verify

Subcommands:
  list              pinned peers with state, names and last contact; revocations; unresolved
                    name conflicts (TOFU_MISMATCH) with both fingerprints side by side
  set-state         set a peer's state: ${TRUST_STATES.join(", ")}
  pin               pin a peer's public key by hand (operator pin), optionally binding a name
  revoke            revoke a peer locally: its pin is dropped and it is refused from now on
  clear-revocation  undo a revocation (the peer is pinned again on next contact)
  forget            delete a pin and release its names (re-pinned on next contact)
  list-revoked      revocations (local and received) and advisory revocations
  cap-status        capability baselines and pending capability changes of every peer
  cap-diff          what a pending capability change adds and removes
  cap-promote       accept a pending capability set (pending-cap-change → trusted)
  cap-reject        drop a pending capability set (--block also blocks the peer)
  verify            check known_peers.json: MAC, decryption, pins

${ID_HELP}
The trust store is encrypted with keys derived from this node's identity, so every
subcommand opens keys.json (passphrase: --passphrase-file, IRONMESH_PASSPHRASE_FILE,
IRONMESH_PASSPHRASE or a prompt; never argv). Changes are refused while a daemon holds the
state directory; stop it first. Each change is written to audit.log with actor "cli".

Examples:
  ironmesh trust list
  ironmesh trust set-state bob blocked
  ironmesh trust cap-diff frank && ironmesh trust cap-promote frank
  ironmesh trust revoke a5f1 --reason "laptop stolen"
  ironmesh trust list --json --state pending

${GLOBAL_HELP}`;

const SUB_HELP: Record<string, string> = {
  list: `ironmesh trust list — pinned peers, revocations and unresolved conflicts

Usage: ironmesh trust list [--show-caps] [--state S] [--passphrase-file FILE]

  --show-caps   add each peer's capability set and any pending capability change
  --state S     only peers in state S (${TRUST_STATES.join(", ")})
${PASS_HELP}

A name conflict (TOFU_MISMATCH) is a known name presented by another key: the newcomer is
refused until you act. Both fingerprints are shown side by side; compare them with the
peer's operator ('ironmesh keys fingerprint' on that machine).

Examples:
  ironmesh trust list
  ironmesh trust list --show-caps --state pending-cap-change
  ironmesh trust list --json | jq '.peers[] | select(.trust_state == "pending")'

${GLOBAL_HELP}`,
  "set-state": `ironmesh trust set-state — set a pinned peer's trust state

Usage: ironmesh trust set-state <id> <state> [--passphrase-file FILE]

  <state>   trusted | pending | blocked | pending-cap-change
            trusted   its messages are delivered
            pending   its messages wait in the pending-trust queue (with
                      --require-message-promotion), else are delivered
            blocked   authenticated but its messages are dropped
${PASS_HELP}

${ID_HELP} Audited as PEER_PROMOTED (→ trusted), PEER_BLOCKED (→ blocked) or
PEER_STATE_CHANGED.

Examples:
  ironmesh trust set-state carol trusted
  ironmesh trust set-state 2c34 blocked --json

${GLOBAL_HELP}`,
  pin: `ironmesh trust pin — pin a peer's public key by hand

Usage: ironmesh trust pin <node-id> <pubkey-b64> [--name N] [--state S] [--passphrase-file FILE]

  <node-id>     the peer's full 32-hex node id
  <pubkey-b64>  its Ed25519 public key, padded base64 (ed25519_public in 'keys info');
                it must hash to <node-id>
  --name N      bind name N to this node (taking it from any other node: this is how a
                name conflict is resolved in favour of a new key)
  --state S     initial state (default trusted)
${PASS_HELP}

Replaces an existing pin of the same node. Audited as TOFU_NEW_PEER (pinned_via operator).

Examples:
  ironmesh trust pin a5f14a936d289f5d15e90fcaff39a373 qnDafBMEuTR+7nXO99ZNdGgfKE1NEAjitB8XmWwMwRc=
  ironmesh trust pin c30a763f125a8774f2e15364e115d8d9 <key> --name bob --state pending

${GLOBAL_HELP}`,
  revoke: `ironmesh trust revoke — revoke a peer on this node

Usage: ironmesh trust revoke <id> [--reason R] [--broadcast] [--passphrase-file FILE]

  --reason R    why (kept in the trust store and the audit log)
  --broadcast   also send a signed REVOCATION to every peer (needs the running daemon); it
                spreads through the mesh, and every node that pins this node applies it once
${PASS_HELP}

The pin is dropped and the node is refused at the handshake (HS_REVOKED) until
'trust clear-revocation'. Its names stay bound to it, so no other key can take them.
${ID_HELP} A full node id that was never pinned (an impostor's, from 'trust list') can
be revoked too. Audited as PEER_REVOKED_LOCAL.

Examples:
  ironmesh trust revoke mallory --reason "key compromised"
  ironmesh trust revoke c30a763f --json
  ironmesh trust revoke mallory --reason "laptop stolen" --broadcast

${GLOBAL_HELP}`,
  "clear-revocation": `ironmesh trust clear-revocation — undo a revocation

Usage: ironmesh trust clear-revocation <id> [--passphrase-file FILE]

${PASS_HELP}

The node is pinned afresh on its next contact; a revocation message issued before this
moment is ignored if it is replayed. Audited as PEER_STATE_CHANGED (clear-revocation).

Examples:
  ironmesh trust list-revoked
  ironmesh trust clear-revocation c30a

${GLOBAL_HELP}`,
  forget: `ironmesh trust forget — delete a pin and release its names

Usage: ironmesh trust forget <id> [--passphrase-file FILE]

${PASS_HELP}

The peer is pinned again (with whatever key it presents) on its next contact. Use it when
a peer legitimately changed its key, or to free a name held by an old key.
${ID_HELP} Audited as PEER_STATE_CHANGED (forgotten).

Examples:
  ironmesh trust forget bob
  ironmesh trust forget a5f14a93 --json

${GLOBAL_HELP}`,
  "list-revoked": `ironmesh trust list-revoked — revocations

Usage: ironmesh trust list-revoked [--passphrase-file FILE]

Lists revoked nodes (revoked here or by a trusted peer's signed REVOCATION) and advisory
revocations waiting for an operator (received for peers you pinned by hand or invite).

Examples:
  ironmesh trust list-revoked
  ironmesh trust list-revoked --json

${GLOBAL_HELP}`,
  "cap-status": `ironmesh trust cap-status — capability baselines and pending changes

Usage: ironmesh trust cap-status [--passphrase-file FILE]

The first capability set a peer announces is its baseline. A different set later demotes a
trusted peer to pending-cap-change and holds its messages until you run cap-promote or
cap-reject.

Examples:
  ironmesh trust cap-status
  ironmesh trust cap-status --json

${GLOBAL_HELP}`,
  "cap-diff": `ironmesh trust cap-diff — what a pending capability change adds and removes

Usage: ironmesh trust cap-diff <id> [--passphrase-file FILE]

${ID_HELP}

Examples:
  ironmesh trust cap-diff frank
  ironmesh trust cap-diff 3c3d --json

${GLOBAL_HELP}`,
  "cap-promote": `ironmesh trust cap-promote — accept a pending capability set

Usage: ironmesh trust cap-promote <id> | --all [--passphrase-file FILE]

  --all   accept every pending capability change (in one change of the trust store)
${PASS_HELP}

The pending set becomes the baseline and a pending-cap-change peer becomes trusted again
(messages held meanwhile stay in the pending-trust queue for the daemon to release).
Audited as PEER_CAP_ACCEPTED.

Examples:
  ironmesh trust cap-promote frank
  ironmesh trust cap-promote --all --json

${GLOBAL_HELP}`,
  "cap-reject": `ironmesh trust cap-reject — drop a pending capability set

Usage: ironmesh trust cap-reject <id> [--block] [--passphrase-file FILE]

  --block   also block the peer (its messages are dropped from now on)
${PASS_HELP}

Without --block a pending-cap-change peer returns to trusted with its old baseline.
Audited as PEER_STATE_CHANGED (cap-reject) or PEER_BLOCKED.

Examples:
  ironmesh trust cap-reject frank
  ironmesh trust cap-reject frank --block

${GLOBAL_HELP}`,
  verify: `ironmesh trust verify — check the trust store

Usage: ironmesh trust verify [--passphrase-file FILE]

Checks known_peers.json: its MAC, that it decrypts under this identity, and that every
pinned key hashes to its node id. Exit 0 when intact (also when there is no store yet),
10 when not (the store is then read-only: nothing can change it until it is moved aside).

Examples:
  ironmesh trust verify
  ironmesh trust verify --json

${GLOBAL_HELP}`,
};

const PASS_OPT = { "passphrase-file": { type: "string" } } as const;

function peerLabel(nodeId: string, names: string[]): string {
  return names.length ? `${names.map(safeText).join(", ")} (${nodeId})` : nodeId;
}

function readOnlyError(snap: TrustSnapshot): IronMeshError {
  return new IronMeshError(
    "TRUST_STORE_READ_ONLY",
    `trust store ${snap.location} failed its integrity check and is read-only: ${
      snap.readOnly!.reason
    }`,
    "keep a copy as evidence and find out who changed it; then move it aside to start " +
      "fresh (peers are pinned again on next contact)",
    ExitCode.TAMPERED,
  );
}

/** A snapshot for the read-only commands: a tampered store is an error, loudly. */
async function intactSnapshot(b: TrustBackend): Promise<TrustSnapshot> {
  const snap = await b.snapshot();
  if (snap.readOnly) throw readOnlyError(snap);
  return snap;
}

/** Backend for one subcommand: the running daemon's (live), else the files. */
const withBackend = withTrustBackend;

function peerJson(p: PeerRecord, showCaps: boolean, snap: TrustSnapshot) {
  const adv = snap.advisory.find((a) => a.nodeId === p.nodeId);
  const out: Record<string, unknown> = {
    node_id: p.nodeId,
    fingerprint: formatFingerprint(p.nodeId),
    names: p.names,
    trust_state: p.trustState,
    pinned_via: p.pinnedVia ?? null,
    pubkey: p.pubkey,
    first_seen: p.firstSeen ?? null,
    last_seen: p.lastSeen ?? null,
    cap_change_pending: p.capabilityHashPending !== undefined,
    advisory_revocation: adv ? revocationJson(adv) : null,
  };
  if (showCaps) out.capabilities = capsJson(p);
  return out;
}

function capsJson(p: PeerRecord) {
  const pending = p.capabilitySetPending ?? null;
  const diff = pending ? capabilityDiff(p.capabilitySet ?? [], pending) : null;
  return {
    capability_hash: p.capabilityHash ?? null,
    capability_set: p.capabilitySet ?? null,
    capability_hash_pending: p.capabilityHashPending ?? null,
    capability_set_pending: pending,
    added: diff?.added ?? [],
    removed: diff?.removed ?? [],
    cap_first_observed: p.capFirstObserved ?? null,
    cap_accepted_at: p.capAcceptedAt ?? null,
    cap_rejected_at: p.capRejectedAt ?? null,
  };
}

function revocationJson(r: RevocationRecord) {
  return {
    node_id: r.nodeId,
    revoker: r.revoker,
    timestamp: r.timestamp,
    time: isoTime(r.timestamp),
    reason: r.reason,
  };
}

function conflictJson(c: TrustConflictInfo) {
  return {
    kind: c.kind,
    name: c.name ?? null,
    pinned_node_id: c.pinnedNodeId,
    pinned_fingerprint: c.pinnedFingerprint,
    presented_fingerprint: c.presentedFingerprint,
    attempts: c.attempts,
    last_seen: c.lastSeen,
  };
}

function fp(nodeIdOrText: string): string {
  return /^[0-9a-f]{32}$/.test(nodeIdOrText) ? formatFingerprint(nodeIdOrText) : nodeIdOrText;
}

function capsCell(p: PeerRecord): string {
  if (!p.capabilitySet) return "-";
  return p.capabilitySet.length ? p.capabilitySet.map(safeText).join(",") : "(none)";
}

function pendingCell(p: PeerRecord): string {
  if (!p.capabilitySetPending) return "-";
  const d = capabilityDiff(p.capabilitySet ?? [], p.capabilitySetPending);
  const parts = [
    ...d.added.map((a) => `+${safeText(a)}`),
    ...d.removed.map((r) => `-${safeText(r)}`),
  ];
  return parts.length ? parts.join(" ") : "(same set)";
}

async function list(argv: string[]): Promise<number> {
  const cmd = "trust list";
  const { values, positionals } = parseCommandArgs(argv, {
    ...PASS_OPT,
    "show-caps": { type: "boolean" },
    state: { type: "string" },
  }, cmd);
  if (values.help) return console.log(SUB_HELP.list), 0;
  positionalArgs(positionals, [], cmd);
  const ctx = makeContext(values, cmd);
  const stateFilter = values.state === undefined ? null : requireTrustState(values.state);
  const showCaps = values["show-caps"] === true;
  return await withBackend(ctx, values["passphrase-file"], false, async (b) => {
    const snap = await intactSnapshot(b);
    let conflicts: TrustConflictInfo[] = [];
    let conflictWarning: string | null = null;
    try {
      conflicts = await b.conflicts();
    } catch (e) {
      conflictWarning = `name conflicts not shown: ${
        e instanceof IronMeshError ? e.oneLine() : (e as Error).message
      }`;
    }
    const peers = snap.peers.filter((p) => stateFilter === null || p.trustState === stateFilter);
    const revoked = stateFilter === null || stateFilter === "blocked" ? snap.revoked : [];
    ctx.out.result({
      ok: true,
      path: snap.location,
      format: snap.format,
      own_node_id: snap.ownNodeId,
      state_filter: stateFilter,
      peers: peers.map((p) => peerJson(p, showCaps, snap)),
      revoked: revoked.map(revocationJson),
      conflicts: conflicts.map(conflictJson),
    });
    if (conflictWarning) ctx.out.warn(conflictWarning);
    if (snap.format === "missing") {
      ctx.out.line(`no trust store yet at ${snap.location}: no peer has been pinned`);
    } else {
      ctx.out.line(
        color.bold(
          `${peers.length} pinned peer${peers.length === 1 ? "" : "s"}${
            stateFilter ? ` in state ${stateFilter}` : ""
          }`,
        ) + color.dim(` (${snap.location}, ${snap.format})`),
      );
    }
    if (peers.length) {
      const header = ["NODE ID", "NAMES", "STATE", "VIA", "LAST SEEN"];
      if (showCaps) header.push("CAPABILITIES", "PENDING CHANGE");
      const rows = peers.map((p) => {
        const r = [
          p.nodeId,
          p.names.length ? p.names.map(safeText).join(",") : "-",
          p.trustState,
          p.pinnedVia ? safeText(p.pinnedVia) : "-",
          fmtTime(p.lastSeen),
        ];
        if (showCaps) r.push(capsCell(p), pendingCell(p));
        return r;
      });
      for (const l of columns(header, rows)) ctx.out.line(l);
    }
    if (revoked.length) {
      ctx.out.line();
      ctx.out.line(color.bold(`${revoked.length} revoked`));
      const rows = revoked.map((r) => [
        r.nodeId,
        r.revoker === snap.ownNodeId ? "this node" : safeText(r.revoker),
        fmtTime(r.timestamp),
        r.reason ? safeText(r.reason) : "-",
      ]);
      for (const l of columns(["NODE ID", "REVOKED BY", "WHEN", "REASON"], rows)) {
        ctx.out.line(l);
      }
    }
    if (conflicts.length) {
      ctx.out.line();
      ctx.out.line(
        color.red(color.bold(`${conflicts.length} unresolved conflict(s) (TOFU_MISMATCH)`)) +
          " — the presenting node is refused until you act:",
      );
      const rows = conflicts.map((c) => [
        c.kind === "name" ? safeText(c.name ?? "") : `(key of ${c.pinnedNodeId})`,
        fp(c.pinnedFingerprint),
        fp(c.presentedFingerprint),
        c.attempts ? `${c.attempts}× last ${fmtTime(c.lastSeen)}` : "-",
      ]);
      for (
        const l of columns(["NAME", "PINNED FINGERPRINT", "PRESENTED FINGERPRINT", "SEEN"], rows)
      ) ctx.out.line(l);
      ctx.out.line(
        color.dim(
          "Compare both fingerprints with the peer's operator ('ironmesh keys fingerprint'). If " +
            "the name really moved to a new key: 'ironmesh trust forget <name>' (or 'ironmesh " +
            "trust pin <new-id> <key> --name <name>'); otherwise treat it as impersonation.",
        ),
      );
    }
    return 0;
  });
}

/** Print a change's result (text and --json) and return the exit code. */
function reportChange(
  ctx: Context,
  snapNames: (id: string) => string[],
  verb: string,
  r: TrustOpResult,
): number {
  const id = r.nodeIds[0] ?? null;
  ctx.out.result({
    ok: true,
    changed: r.changed,
    node_id: id,
    node_ids: r.nodeIds,
    names: id ? snapNames(id) : [],
    matched_by: r.resolved?.via ?? null,
    old_state: r.oldState ?? null,
    new_state: r.newState ?? null,
    events: r.events.map((e) => ({ event: e.event, details: e.details })),
    audit_log: r.auditLog,
  });
  for (const w of r.warnings) ctx.out.warn(w);
  if (!r.changed) {
    ctx.out.line(
      id
        ? `${color.dim("=")} ${
          peerLabel(id, snapNames(id))
        } is already ${r.newState}: nothing changed`
        : `${color.dim("=")} no pending capability changes: nothing changed`,
    );
    return 0;
  }
  const states = r.oldState !== undefined && r.newState !== undefined
    ? ` (${r.oldState} → ${r.newState})`
    : "";
  const who = r.nodeIds.map((n) => peerLabel(n, snapNames(n))).join(", ");
  ctx.out.line(`${color.green("✓")} ${verb} ${who}${states}`);
  if (r.auditLog) {
    ctx.out.line(
      color.dim(`  audit: ${r.events.map((e) => e.event).join(", ")} written to ${r.auditLog}`),
    );
  }
  return 0;
}

/** Run a change and report it. Bad input that needs no passphrase fails before anything opens. */
async function change(
  argv: string[],
  sub: string,
  extra: Parameters<typeof parseCommandArgs>[1],
  args: string[],
  verb: string,
  run: (
    b: TrustBackend,
    positionals: string[],
    values: Record<string, string | boolean | undefined>,
  ) => Promise<TrustOpResult>,
): Promise<number> {
  const cmd = `trust ${sub}`;
  const { values, positionals } = parseCommandArgs(argv, { ...PASS_OPT, ...extra }, cmd);
  if (values.help) return console.log(SUB_HELP[sub]), 0;
  const ctx = makeContext(values, cmd);
  const vals = values as Record<string, string | boolean | undefined>;
  const all = sub === "cap-promote" && vals.all === true;
  if (all && positionals.length) throw usageError("give either <id> or --all, not both", cmd);
  const pos = positionalArgs(positionals, all ? [] : args, cmd);
  for (const p of pos) if (!p.trim()) throw usageError("empty argument", cmd);
  if (sub === "set-state") requireTrustState(pos[1]);
  if (typeof vals.state === "string") requireTrustState(vals.state);
  const passphraseFile = typeof vals["passphrase-file"] === "string"
    ? vals["passphrase-file"]
    : undefined;
  return await withBackend(ctx, passphraseFile, true, async (b) => {
    const before = await b.snapshot();
    const r = await run(b, pos, vals);
    const after = await b.snapshot();
    // A forget releases the names: fall back to the names held before the change.
    const namesIn = (s: TrustSnapshot, id: string) =>
      s.names.filter(([, o]) => o === id).map(([n]) => n);
    const namesOf = (id: string) => {
      const now = namesIn(after, id);
      return now.length ? now : namesIn(before, id);
    };
    return reportChange(ctx, namesOf, verb, r);
  });
}

const setState = (argv: string[]) =>
  change(
    argv,
    "set-state",
    {},
    ["id", "state"],
    "state of",
    (b, [id, state]) => b.setState(id, state as TrustState),
  );

const pin = (argv: string[]) =>
  change(
    argv,
    "pin",
    { name: { type: "string" }, state: { type: "string" } },
    ["node-id", "pubkey-b64"],
    "pinned",
    (b, [nodeId, key], v) =>
      b.pin(nodeId, key, {
        ...(typeof v.name === "string" ? { name: v.name } : {}),
        ...(typeof v.state === "string" ? { state: v.state as TrustState } : {}),
      }),
  );

const revoke = (argv: string[]) =>
  change(
    argv,
    "revoke",
    { reason: { type: "string" }, broadcast: { type: "boolean" } },
    ["id"],
    "revoked",
    (b, [id], v) => {
      const reason = typeof v.reason === "string" ? v.reason : "";
      if (v.broadcast !== true) return b.revoke(id, reason);
      if (!(b instanceof DaemonTrustBackend)) {
        throw new IronMeshError(
          "NO_DAEMON",
          "--broadcast needs the running daemon (it sends the revocation to its peers)",
          "start 'ironmesh run' on this state directory, or revoke locally without --broadcast",
          ExitCode.USAGE,
        );
      }
      return b.client.call<TrustOpResult>("trust.revoke", { id, reason, broadcast: true });
    },
  );

const clearRevocation = (argv: string[]) =>
  change(
    argv,
    "clear-revocation",
    {},
    ["id"],
    "cleared the revocation of",
    (b, [id]) => b.clearRevocation(id),
  );

const forget = (argv: string[]) =>
  change(argv, "forget", {}, ["id"], "forgot", (b, [id]) => b.forget(id));

const capPromote = (argv: string[]) =>
  change(
    argv,
    "cap-promote",
    { all: { type: "boolean" } },
    ["id"],
    "accepted the capability change of",
    (b, pos, v) => v.all === true ? b.capPromoteAll() : b.capPromote(pos[0]),
  );

const capReject = (argv: string[]) =>
  change(
    argv,
    "cap-reject",
    { block: { type: "boolean" } },
    ["id"],
    "rejected the capability change of",
    (b, [id], v) => b.capReject(id, { block: v.block === true }),
  );

async function listRevoked(argv: string[]): Promise<number> {
  const cmd = "trust list-revoked";
  const { values, positionals } = parseCommandArgs(argv, PASS_OPT, cmd);
  if (values.help) return console.log(SUB_HELP["list-revoked"]), 0;
  positionalArgs(positionals, [], cmd);
  const ctx = makeContext(values, cmd);
  return await withBackend(ctx, values["passphrase-file"], false, async (b) => {
    const snap = await intactSnapshot(b);
    const namesOf = (id: string) => snap.names.filter(([, o]) => o === id).map(([n]) => n);
    ctx.out.result({
      ok: true,
      revoked: snap.revoked.map((r) => ({ ...revocationJson(r), names: namesOf(r.nodeId) })),
      advisory: snap.advisory.map((r) => ({ ...revocationJson(r), names: namesOf(r.nodeId) })),
    });
    if (!snap.revoked.length && !snap.advisory.length) {
      ctx.out.line("no revocations");
      return 0;
    }
    const row = (r: RevocationRecord) => [
      r.nodeId,
      namesOf(r.nodeId).map(safeText).join(",") || "-",
      r.revoker === snap.ownNodeId ? "this node" : safeText(r.revoker),
      fmtTime(r.timestamp),
      r.reason ? safeText(r.reason) : "-",
    ];
    const header = ["NODE ID", "NAMES", "REVOKED BY", "WHEN", "REASON"];
    if (snap.revoked.length) {
      ctx.out.line(color.bold(`${snap.revoked.length} revoked`));
      for (const l of columns(header, snap.revoked.map(row))) ctx.out.line(l);
    }
    if (snap.advisory.length) {
      if (snap.revoked.length) ctx.out.line();
      ctx.out.line(
        color.bold(`${snap.advisory.length} advisory revocation(s)`) +
          " awaiting an operator (the peers stay pinned until confirmed)",
      );
      for (const l of columns(header, snap.advisory.map(row))) ctx.out.line(l);
    }
    return 0;
  });
}

async function capStatus(argv: string[]): Promise<number> {
  const cmd = "trust cap-status";
  const { values, positionals } = parseCommandArgs(argv, PASS_OPT, cmd);
  if (values.help) return console.log(SUB_HELP["cap-status"]), 0;
  positionalArgs(positionals, [], cmd);
  const ctx = makeContext(values, cmd);
  return await withBackend(ctx, values["passphrase-file"], false, async (b) => {
    const snap = await intactSnapshot(b);
    const peers = snap.peers.filter((p) =>
      p.capabilityHash !== undefined || p.capabilityHashPending !== undefined
    );
    const pending = peers.filter((p) => p.capabilityHashPending !== undefined);
    ctx.out.result({
      ok: true,
      pending: pending.length,
      peers: peers.map((p) => ({
        node_id: p.nodeId,
        names: p.names,
        trust_state: p.trustState,
        ...capsJson(p),
      })),
    });
    if (!peers.length) {
      ctx.out.line("no peer has announced capabilities yet");
      return 0;
    }
    const rows = peers.map((p) => [
      peerLabel(p.nodeId, p.names),
      p.trustState,
      p.capabilityHash
        ? `${p.capabilityHash.slice(0, 12)}… (${p.capabilitySet?.length ?? 0})`
        : "-",
      p.capabilityHashPending
        ? `${p.capabilityHashPending.slice(0, 12)}… (${p.capabilitySetPending?.length ?? 0}): ${
          pendingCell(p)
        }`
        : "-",
    ]);
    for (const l of columns(["PEER", "STATE", "BASELINE", "PENDING CHANGE"], rows)) {
      ctx.out.line(l);
    }
    ctx.out.line();
    ctx.out.line(
      pending.length
        ? `${pending.length} pending change(s): review with 'ironmesh trust cap-diff <id>', then ` +
          "'trust cap-promote <id>' or 'trust cap-reject <id> [--block]'"
        : "no pending capability changes",
    );
    return 0;
  });
}

async function capDiff(argv: string[]): Promise<number> {
  const cmd = "trust cap-diff";
  const { values, positionals } = parseCommandArgs(argv, PASS_OPT, cmd);
  if (values.help) return console.log(SUB_HELP["cap-diff"]), 0;
  const [arg] = positionalArgs(positionals, ["id"], cmd);
  const ctx = makeContext(values, cmd);
  return await withBackend(ctx, values["passphrase-file"], false, async (b) => {
    const snap = await intactSnapshot(b);
    const r = await b.resolve(arg);
    const p = snap.peers.find((x) => x.nodeId === r.nodeId);
    if (!p) {
      throw new IronMeshError(
        "TRUST_UNKNOWN_PEER",
        `peer ${r.nodeId} is not pinned${
          snap.revoked.some((x) => x.nodeId === r.nodeId) ? " (it is revoked)" : ""
        }`,
        "run `ironmesh trust list` to see pinned peers",
        ExitCode.NOT_FOUND,
      );
    }
    const caps = capsJson(p);
    ctx.out.result({
      ok: true,
      node_id: p.nodeId,
      names: p.names,
      trust_state: p.trustState,
      pending: p.capabilityHashPending !== undefined,
      ...caps,
    });
    const who = peerLabel(p.nodeId, p.names);
    if (p.capabilityHashPending === undefined) {
      ctx.out.line(`${who}: no pending capability change (state ${p.trustState})`);
      ctx.out.line(`  baseline: ${capsCell(p)}`);
      return 0;
    }
    ctx.out.line(`${who}: pending capability change (state ${p.trustState})`);
    ctx.out.table([
      ["baseline", `${capsCell(p)}  ${color.dim(p.capabilityHash ?? "")}`],
      [
        "pending",
        `${(p.capabilitySetPending ?? []).map(safeText).join(",") || "(none)"}  ${
          color.dim(p.capabilityHashPending)
        }`,
      ],
    ]);
    for (const a of caps.added) ctx.out.line(color.green(`  + ${safeText(a)}`));
    for (const x of caps.removed) ctx.out.line(color.red(`  - ${safeText(x)}`));
    ctx.out.line(
      color.dim(
        `accept: ironmesh trust cap-promote ${p.nodeId.slice(0, 8)}   reject: ironmesh trust ` +
          `cap-reject ${p.nodeId.slice(0, 8)} [--block]`,
      ),
    );
    return 0;
  });
}

async function verify(argv: string[]): Promise<number> {
  const cmd = "trust verify";
  const { values, positionals } = parseCommandArgs(argv, PASS_OPT, cmd);
  if (values.help) return console.log(SUB_HELP.verify), 0;
  positionalArgs(positionals, [], cmd);
  const ctx = makeContext(values, cmd);
  return await withBackend(ctx, values["passphrase-file"], false, async (b) => {
    const snap = await b.snapshot();
    const problems: string[] = [];
    if (snap.readOnly) problems.push(snap.readOnly.reason);
    for (const p of snap.peers) {
      const key = decodeStoredKey(p.pubkey);
      if (!key || key.length !== 32 || nodeIdOf(key) !== p.nodeId) {
        problems.push(`the pinned key of ${p.nodeId} does not hash to its node id`);
      }
    }
    const known = new Set([
      ...snap.peers.map((p) => p.nodeId),
      ...snap.revoked.map((r) => r.nodeId),
    ]);
    const strayNames = snap.names.filter(([, id]) => !known.has(id)).map(([n]) => n);
    let mode: string | null = null;
    try {
      const m = (await Deno.stat(snap.location)).mode;
      if (m !== null) mode = (m & 0o777).toString(8).padStart(4, "0");
    } catch { /* missing */ }
    const ok = problems.length === 0;
    ctx.out.result({
      ok,
      path: snap.location,
      format: snap.format,
      read_only: snap.readOnly !== null,
      failure: snap.readOnly?.failure ?? null,
      problems,
      peers: snap.peers.length,
      revoked: snap.revoked.length,
      names: snap.names.length,
      needs_migration: snap.needsMigration,
      mode,
    });
    if (!ok) {
      const head = snap.readOnly
        ? `trust store ${snap.location} failed its integrity check and is read-only: ${problems[0]}`
        : `trust store ${snap.location}: ${problems[0]}`;
      const more = problems.length > 1 ? ` (and ${problems.length - 1} more problem(s))` : "";
      console.error(
        `error: ${head}${more} — keep a copy as evidence, then move it aside to start fresh ` +
          "(peers are pinned again on next contact)",
      );
      return ExitCode.TAMPERED;
    }
    if (snap.format === "missing") {
      ctx.out.line(`${color.green("✓")} no trust store yet at ${snap.location} (nothing to check)`);
      return 0;
    }
    ctx.out.line(
      `${
        color.green("✓")
      } ${snap.location}: ${snap.format} envelope intact — ${snap.peers.length} ` +
        `peer(s), ${snap.revoked.length} revocation(s), ${snap.names.length} name binding(s)`,
    );
    if (snap.needsMigration) {
      ctx.out.warn("legacy v1 file: the next trust change rewrites it as an encrypted v2 envelope");
    }
    if (strayNames.length) {
      ctx.out.warn(
        `names bound to nodes that are neither pinned nor revoked: ${
          strayNames.map(safeText).join(", ")
        }`,
      );
    }
    if (mode !== null && (parseInt(mode, 8) & 0o077) !== 0) {
      ctx.out.warn(
        `${snap.location} is readable by others (mode ${mode}) — run: chmod 600 ${snap.location}`,
      );
    }
    return 0;
  });
}

const SUBS: Record<string, (argv: string[]) => Promise<number>> = {
  list,
  "set-state": setState,
  pin,
  revoke,
  "clear-revocation": clearRevocation,
  forget,
  "list-revoked": listRevoked,
  "cap-status": capStatus,
  "cap-diff": capDiff,
  "cap-promote": capPromote,
  "cap-reject": capReject,
  verify,
};

export const trustCommand: Command = {
  name: "trust",
  summary: "pinned peers, trust states, revocations, capability changes",
  help: HELP,
  run(argv) {
    const { sub, rest } = splitSubcommand(argv, [
      "--passphrase-file",
      "--state",
      "--reason",
      "--name",
    ]);
    if (!sub) {
      if (rest.includes("--help") || rest.includes("-h")) {
        return Promise.resolve((console.log(HELP), 0));
      }
      throw usageError(`missing subcommand: ${Object.keys(SUBS).join(", ")}`, "trust");
    }
    const fn = SUBS[sub];
    if (!fn) throw usageError(`unknown subcommand 'trust ${sub}'`, "trust");
    return fn(rest);
  },
};
