import { assert, assertEquals } from "../../support/assert.ts";
import { FakeClock } from "../../../lib/clock.ts";
import { fromHex } from "../../../lib/crypto/sodium.ts";
import type { Identity } from "../../../lib/identity/identity.ts";
import {
  forwardRevocationMessage,
  RevocationFlood,
  type RevocationFloodOptions,
} from "../../../lib/routing/revocation_flood.ts";
import { TrustData } from "../../../lib/trust/state.ts";
import { revocationMessage } from "../../../lib/wire/v09/control.ts";
import { nodeSigner } from "../../../lib/wire/v09/frame.ts";
import { CONTROL, vf } from "../wire/v09/fixtures.ts";
import { bytes, identity, pubB64 } from "./helpers.ts";

const NOW = 1736812800;
const self = identity("flood-self"), revoker = identity("flood-revoker");
const carrier = identity("flood-carrier"), target = identity("flood-target");
const stranger = identity("flood-stranger");

function view(): TrustData {
  const d = new TrustData();
  d.pin(revoker.nodeId, pubB64(revoker), 1);
  d.pin(carrier.nodeId, pubB64(carrier), 1);
  d.pin(target.nodeId, pubB64(target), 1);
  return d;
}

function revocation(by: Identity = revoker, over: { target?: string; ts?: number } = {}) {
  return revocationMessage(
    nodeSigner(by.secretKey),
    by.nodeId,
    over.target ?? target.nodeId,
    over.ts ?? NOW - 10,
    "key compromised",
  ).payload!;
}

function flood(d: TrustData = view(), opts: Partial<RevocationFloodOptions> = {}) {
  const clock = new FakeClock(NOW);
  return { f: new RevocationFlood({ selfId: self.nodeId, clock, view: d, ...opts }), clock, d };
}

Deno.test("revocation flood: applied and forwarded whether the revoker or a relay carries it", () => {
  for (const via of [revoker, carrier]) {
    const { f } = flood();
    const d = f.onRevocation(via.nodeId, revocation());
    assertEquals(d, {
      apply: true,
      advisory: false,
      forward: true,
      revocation: {
        revoker: revoker.nodeId,
        timestamp: NOW - 10,
        reason: "key compromised",
        timestampKind: "float",
      },
      target: target.nodeId,
      revoker: revoker.nodeId,
      timestamp: NOW - 10,
    });
  }
});

Deno.test("revocation flood: a replayed copy is refused and not forwarded again", () => {
  const { f } = flood();
  const p = revocation();
  assert(f.onRevocation(carrier.nodeId, p).apply);
  const again = f.onRevocation(revoker.nodeId, p);
  assertEquals([again.apply, again.forward, again.reason], [false, false, "duplicate"]);
  assert(f.hasSeen(target.nodeId, revoker.nodeId, NOW - 10));
});

Deno.test("revocation flood: stale, future, unpinned, untrusted and forged revocations stop here", () => {
  const refused = (
    d: ReturnType<RevocationFlood["onRevocation"]>,
  ) => [d.apply, d.forward, d.reason];
  const { f, d } = flood();
  assertEquals(refused(f.onRevocation(revoker.nodeId, revocation(revoker, { ts: NOW - 301 }))), [
    false,
    false,
    "stale",
  ]);
  assertEquals(
    f.onRevocation(revoker.nodeId, revocation(revoker, { ts: NOW + 301 })).reason,
    "future",
  );
  assertEquals(refused(f.onRevocation(stranger.nodeId, revocation(stranger))), [
    false,
    false,
    "unknown-revoker",
  ]);
  assertEquals(
    f.onRevocation(revoker.nodeId, revocation(revoker, { target: self.nodeId })).reason,
    "self-target",
  );
  // A forged copy (signature of another key) does not poison the dedup for the genuine one.
  const forged = JSON.parse(new TextDecoder().decode(revocation(carrier)));
  forged.revoker_node_id = revoker.nodeId;
  forged.from = revoker.nodeId;
  assertEquals(
    f.onRevocation(carrier.nodeId, bytes(JSON.stringify(forged))).reason,
    "bad-signature",
  );
  assert(f.onRevocation(carrier.nodeId, revocation()).apply);
  // A pinned revoker that is not trusted.
  d.setState(carrier.nodeId, "pending");
  assertEquals(
    f.onRevocation(carrier.nodeId, revocation(carrier, { target: revoker.nodeId })).reason,
    "sender-not-trusted",
  );
  assertEquals(f.onRevocation(carrier.nodeId, bytes("{")).reason, "malformed");
  assertEquals(f.onRevocation(carrier.nodeId, bytes('{"type":"REVOCATION"}')).reason, "malformed");
});

Deno.test("revocation flood: an already revoked target is forwarded once, not re-applied", () => {
  const { f, d } = flood();
  d.recordRevocation(target.nodeId, { revoker: "operator", timestamp: NOW - 100 });
  const first = f.onRevocation(carrier.nodeId, revocation());
  assertEquals([first.apply, first.forward, first.reason], [false, true, "already-revoked"]);
  assertEquals(f.onRevocation(revoker.nodeId, revocation()).forward, false);
});

Deno.test("revocation flood: cleared by an operator later → dropped; operator pins → advisory", () => {
  const { f, d } = flood();
  d.recordRevocation(target.nodeId, { revoker: revoker.nodeId, timestamp: NOW - 20 });
  d.clearRevocation(target.nodeId, NOW - 5);
  const cleared = f.onRevocation(carrier.nodeId, revocation());
  assertEquals([cleared.apply, cleared.forward, cleared.reason], [false, false, "cleared-later"]);

  const op = identity("flood-operator-pinned");
  const v = view();
  v.pin(op.nodeId, pubB64(op), 1, { pinnedVia: "operator" });
  const adv = flood(v).f.onRevocation(revoker.nodeId, revocation(revoker, { target: op.nodeId }));
  assertEquals([adv.apply, adv.advisory, adv.forward], [true, true, true]);
});

Deno.test("revocation flood: unverifiable revocations pass through only when enabled", () => {
  const { f, d } = flood(view(), { forwardUnverifiable: true });
  const p = revocation(stranger);
  const d1 = f.onRevocation(carrier.nodeId, p);
  assertEquals([d1.apply, d1.forward, d1.reason], [false, true, "unverifiable"]);
  assertEquals(f.onRevocation(carrier.nodeId, p).reason, "duplicate");
  assertEquals(
    f.onRevocation(carrier.nodeId, revocation(stranger, { ts: NOW - 400 })).reason,
    "stale",
  );
  d.setState(carrier.nodeId, "pending");
  assertEquals(
    f.onRevocation(carrier.nodeId, revocation(stranger, { ts: NOW - 1 })).reason,
    "carrier-not-trusted",
  );
});

Deno.test("revocation flood: our own revocation's echo is ignored; targets exclude the obvious", () => {
  const { f } = flood();
  f.noteOriginated(target.nodeId, revoker.nodeId, NOW - 9.3); // truncated like the wire timestamp
  assertEquals(f.onRevocation(carrier.nodeId, revocation()).reason, "duplicate");
  assertEquals(
    f.forwardTargets(
      [carrier.nodeId, target.nodeId, revoker.nodeId, self.nodeId, stranger.nodeId],
      carrier.nodeId,
      target.nodeId,
      revoker.nodeId,
    ),
    [stranger.nodeId],
  );
});

Deno.test("revocation flood: dedup entries are forgotten once the revocation would be stale", () => {
  const { f, clock } = flood();
  f.onRevocation(carrier.nodeId, revocation());
  clock.advance(292);
  assert(f.hasSeen(target.nodeId, revoker.nodeId, NOW - 10));
  f.onRevocation(carrier.nodeId, bytes("{}")); // any call prunes
  assert(!f.hasSeen(target.nodeId, revoker.nodeId, NOW - 10));
  assertEquals(f.onRevocation(carrier.nodeId, revocation()).reason, "stale");
});

Deno.test("revocation flood vectors: the reference's REVOCATION is accepted and forwarded verbatim", () => {
  const c = CONTROL.payloads.find((x) => x.name === "REVOCATION")!;
  const alice = CONTROL.identities.alice;
  const d = new TrustData();
  d.pin(alice.node_id, alice.ed25519_public_b64, 1);
  const clock = new FakeClock(vf(c.clock!));
  const f = new RevocationFlood({ selfId: CONTROL.identities.bob.node_id, clock, view: d });
  const payload = fromHex(c.payload_hex!);
  const r = f.onRevocation(alice.node_id, payload);
  assertEquals([r.apply, r.forward, r.target, r.timestamp], [
    true,
    true,
    (c.payload_json as Record<string, unknown>).target_node_id,
    1736812900,
  ]);
  const fwd = forwardRevocationMessage(payload);
  assertEquals([fwd.type, fwd.destination, fwd.ttl, fwd.payload], ["REVOCATION", "*", 3, payload]);
});

Deno.test("revocation flood: spreads through a meshed ring exactly once per node", () => {
  const names = ["n0", "n1", "n2", "n3", "n4", "n5"];
  const ids = names.map((n) => identity(`flood-${n}`));
  const victim = identity("flood-victim");
  const clock = new FakeClock(NOW);
  const adj = new Map<string, string[]>();
  const link = (a: Identity, b: Identity) => {
    adj.set(a.nodeId, [...(adj.get(a.nodeId) ?? []), b.nodeId]);
    adj.set(b.nodeId, [...(adj.get(b.nodeId) ?? []), a.nodeId]);
  };
  for (let i = 0; i < 6; i++) link(ids[i], ids[(i + 1) % 6]);
  link(ids[0], ids[3]);
  link(victim, ids[2]);
  const nodes = new Map(ids.map((id) => {
    const d = new TrustData();
    d.pin(ids[0].nodeId, pubB64(ids[0]), 1); // everyone pins the revoker n0
    d.pin(victim.nodeId, pubB64(victim), 1);
    return [id.nodeId, { d, f: new RevocationFlood({ selfId: id.nodeId, clock, view: d }) }];
  }));
  const revoker0 = ids[0];
  const payload = revocation(revoker0, { target: victim.nodeId });
  nodes.get(revoker0.nodeId)!.d.recordRevocation(victim.nodeId, {
    revoker: revoker0.nodeId,
    timestamp: NOW - 10,
  });
  nodes.get(revoker0.nodeId)!.f.noteOriginated(victim.nodeId, revoker0.nodeId, NOW - 10);
  const queue: [string, string][] = adj.get(revoker0.nodeId)!
    .filter((n) => n !== victim.nodeId).map((n) => [revoker0.nodeId, n]);
  let delivered = 0, applied = 0;
  while (queue.length) {
    const [from, to] = queue.shift()!;
    delivered++;
    const node = nodes.get(to);
    if (!node) continue;
    const dec = node.f.onRevocation(from, payload);
    if (dec.apply) {
      applied++;
      node.d.recordRevocation(dec.target!, dec.revocation!);
    }
    if (dec.forward) {
      for (const n of node.f.forwardTargets(adj.get(to)!, from, dec.target, dec.revoker)) {
        queue.push([to, n]);
      }
    }
  }
  assertEquals(applied, 5);
  assert(ids.every((id) => nodes.get(id.nodeId)!.d.isRevoked(victim.nodeId)));
  assert(delivered <= 2 * 7, `${delivered} deliveries for 7 links`);
});
