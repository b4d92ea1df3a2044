import { assert, assertEquals } from "../../support/assert.ts";
import { FakeClock } from "../../../lib/clock.ts";
import { AuthFailureLimiter, ConnectionAdmission } from "../../../lib/wire/auth_limiter.ts";
import { admissionRefusal, ServerHandshake } from "../../../lib/wire/v09/handshake_server.ts";
import { proofText } from "../../../lib/wire/v09/handshake_stage1.ts";
import { type Failed, wireTexts } from "../../../lib/wire/v09/handshake_types.ts";
import { ClientHandshake } from "../../../lib/wire/v09/handshake_client.ts";
import {
  acceptAll,
  ALICE,
  BOB,
  localIdentity,
  PASSPHRASE,
  pump,
} from "./v09/handshake_fixtures.ts";

Deno.test("3 failures within 5 min block an address for 5 min after the last; others unaffected", () => {
  const clock = new FakeClock();
  const l = new AuthFailureLimiter({ clock });
  assertEquals(l.recordFailure("203.0.113.9"), 1);
  clock.advance(100);
  assertEquals(l.recordFailure("203.0.113.9"), 2);
  assert(!l.isBlocked("203.0.113.9"));
  clock.advance(100);
  assertEquals(l.recordFailure("203.0.113.9"), 3);
  assert(l.isBlocked("203.0.113.9"));
  assert(!l.isBlocked("203.0.113.10"));
  assert(!l.isBlocked("2001:db8::1"));
  // The first failure (t=0) leaves the 300 s window at t=300: 2 remain, unblocked.
  clock.advance(99.9);
  assert(l.isBlocked("203.0.113.9"));
  clock.advance(0.1);
  assertEquals(l.failureCount("203.0.113.9"), 2);
  assert(!l.isBlocked("203.0.113.9"));
});

Deno.test("a burst of 3 failures blocks for exactly 300 s", () => {
  const clock = new FakeClock();
  const l = new AuthFailureLimiter({ clock });
  for (let i = 0; i < 3; i++) l.recordFailure("198.51.100.4");
  clock.advance(299.999);
  assert(l.isBlocked("198.51.100.4"));
  clock.advance(0.001);
  assert(!l.isBlocked("198.51.100.4"));
  assertEquals(l.failureCount("198.51.100.4"), 0);
});

Deno.test("failures spread wider than the window never block", () => {
  const clock = new FakeClock();
  const l = new AuthFailureLimiter({ clock });
  for (let i = 0; i < 10; i++) {
    l.recordFailure("192.0.2.1");
    assert(!l.isBlocked("192.0.2.1"), `failure ${i}`);
    clock.advance(151);
  }
});

Deno.test("a success clears the address's history", () => {
  const clock = new FakeClock();
  const l = new AuthFailureLimiter({ clock });
  for (let i = 0; i < 3; i++) l.recordFailure("192.0.2.50");
  assert(l.isBlocked("192.0.2.50"));
  assertEquals(l.clear("192.0.2.50"), true);
  assert(!l.isBlocked("192.0.2.50"));
  assertEquals(l.clear("192.0.2.50"), false);
  assertEquals(l.recordFailure("192.0.2.50"), 1);
});

Deno.test("tracked addresses are capped, dropping the stalest first", () => {
  const clock = new FakeClock();
  const l = new AuthFailureLimiter({ clock, maxAddresses: 2 });
  for (let i = 0; i < 3; i++) l.recordFailure("a");
  l.recordFailure("b");
  l.recordFailure("c");
  assertEquals(l.failureCount("a"), 0);
  assertEquals(l.failureCount("b"), 1);
  assertEquals(l.failureCount("c"), 1);
});

Deno.test("admission order: global bucket, per-IP bucket, then the auth block", () => {
  const clock = new FakeClock();
  const auth = new AuthFailureLimiter({ clock });
  const a = new ConnectionAdmission({ clock, authLimiter: auth });
  for (let i = 0; i < 5; i++) assertEquals(a.check("10.0.0.1"), "ok");
  assertEquals(a.check("10.0.0.1"), "ip-rate");
  for (let i = 0; i < 4; i++) assertEquals(a.check(`10.0.1.${i}`), "ok");
  assertEquals(a.check("10.0.2.1"), "global-rate");
  clock.advance(60);
  for (let i = 0; i < 3; i++) auth.recordFailure("10.0.0.1");
  assertEquals(a.check("10.0.0.1"), "auth-blocked");
  assertEquals(a.check("10.0.0.2"), "ok");
});

/** One inbound connection from `ip` through admission and our server; returns the server's outcome. */
function connect(
  ip: string,
  passphrase: string,
  admission: ConnectionAdmission,
  auth: AuthFailureLimiter,
  clock: FakeClock,
): { refusal?: string; outcome?: string } {
  const verdict = admission.check(ip);
  const refusal = admissionRefusal(verdict);
  if (refusal) return { refusal: refusal.text };
  const server = new ServerHandshake({
    identity: localIdentity(ALICE),
    passphrase: PASSPHRASE,
    tofu: acceptAll(),
    clock,
    address: ip,
  });
  const client = new ClientHandshake({
    identity: localIdentity(BOB),
    passphrase,
    tofu: acceptAll(),
    clock,
  });
  const r = pump(client, server);
  if (r.server?.kind === "failed" && (r.server as Failed).authFailure) auth.recordFailure(ip);
  if (r.server?.kind === "established") auth.clear(ip);
  return { outcome: r.server?.kind === "failed" ? (r.server as Failed).code : r.server?.kind };
}

Deno.test("C-HS-07: 3 wrong passphrases from one IP → that IP refused for 5 min; others unaffected", () => {
  const clock = new FakeClock();
  const auth = new AuthFailureLimiter({ clock });
  const admission = new ConnectionAdmission({ clock, authLimiter: auth });
  const evil = "203.0.113.66", good = "203.0.113.77";
  for (let i = 0; i < 3; i++) {
    assertEquals(
      connect(evil, "wrong-passphrase-123", admission, auth, clock).outcome,
      "HS_WRONG_PASSPHRASE",
    );
    clock.advance(5);
  }
  const blocked = connect(evil, PASSPHRASE, admission, auth, clock);
  assertEquals(
    blocked.refusal,
    '{"type": "PASSPHRASE_REJECTED", "error": "Too many authentication failures. Try again later."}',
  );
  assertEquals(connect(good, PASSPHRASE, admission, auth, clock).outcome, "established");
  // Failures at t = 0, 5, 10 s: blocked until the first leaves the 300 s window.
  clock.advance(284);
  assertEquals(connect(evil, PASSPHRASE, admission, auth, clock).refusal !== undefined, true);
  clock.advance(1);
  assertEquals(connect(evil, PASSPHRASE, admission, auth, clock).outcome, "established");
  assertEquals(auth.failureCount(evil), 0);
});

Deno.test("a successful handshake clears earlier failures of the address", () => {
  const clock = new FakeClock();
  const auth = new AuthFailureLimiter({ clock });
  const admission = new ConnectionAdmission({ clock, authLimiter: auth });
  const ip = "192.0.2.99";
  for (let i = 0; i < 2; i++) connect(ip, "typo-passphrase-000", admission, auth, clock);
  assertEquals(auth.failureCount(ip), 2);
  assertEquals(connect(ip, PASSPHRASE, admission, auth, clock).outcome, "established");
  assertEquals(auth.failureCount(ip), 0);
  clock.advance(10);
  connect(ip, "typo-passphrase-000", admission, auth, clock);
  assert(!auth.isBlocked(ip), "one failure after a success does not block");
});

Deno.test("the server flags only proof failures as auth failures", () => {
  const clock = new FakeClock();
  const s = new ServerHandshake({
    identity: localIdentity(ALICE),
    passphrase: PASSPHRASE,
    tofu: acceptAll(),
    clock,
  });
  s.start();
  const step = s.receive(proofText(BOB.node_id, "00".repeat(32)));
  assertEquals((step.outcome as Failed).authFailure, true);
  assertEquals(wireTexts(step).length, 1);
  const s2 = new ServerHandshake({
    identity: localIdentity(ALICE),
    passphrase: PASSPHRASE,
    tofu: acceptAll(),
    clock,
  });
  s2.start();
  assertEquals((s2.receive("junk").outcome as Failed).authFailure, undefined);
});
