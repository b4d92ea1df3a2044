/** The pure judging of `ironmesh doctor`: permissions, mDNS possibility, port, clock, trust, audit. */
import { checkClock } from "../../../lib/doctor/clock.ts";
import {
  checkMdns,
  checkPort,
  IFF_MULTICAST,
  IFF_UP,
  parseIfaceFlags,
  parseProcNetRoute,
  routeCovers,
} from "../../../lib/doctor/network.ts";
import { checkStateDir, checkStateFiles, type StatInfo } from "../../../lib/doctor/perms.ts";
import { summarize } from "../../../lib/doctor/report.ts";
import { checkAudit, checkTrust } from "../../../lib/doctor/state.ts";
import type { VerifyResult } from "../../../lib/audit/verify.ts";
import { assert, assertEquals, assertStringIncludes } from "../../support/assert.ts";

const dir = (mode: number, uid = 1000): StatInfo => ({ name: "/s", kind: "directory", mode, uid });
const file = (name: string, mode: number, uid = 1000): StatInfo => ({
  name,
  kind: "file",
  mode,
  uid,
});

Deno.test("doctor perms: 0700 and yours passes; 0755, another owner, missing fail with fixes", () => {
  assertEquals(checkStateDir("/s", dir(0o700), 1000).status, "pass");
  const open = checkStateDir("/s", dir(0o755), 1000);
  assertEquals(open.status, "fail");
  assertStringIncludes(open.fix!, "chmod 700 /s");
  const foreign = checkStateDir("/s", dir(0o700, 0), 1000);
  assertEquals(foreign.status, "fail");
  assertStringIncludes(foreign.fix!, "chown");
  const missing = checkStateDir("/s", null, 1000);
  assertEquals(missing.status, "fail");
  assertStringIncludes(missing.fix!, "ironmesh keys generate");
  assertEquals(checkStateDir("/s", dir(0o755), null).status, "fail"); // uid unknown: mode still checked
  assertEquals(checkStateDir("/s", dir(0o700, 0), null).status, "pass"); // owner not checkable
});

Deno.test("doctor perms: every file must be 0600 or stricter and yours", () => {
  assertEquals(
    checkStateFiles("/s", [file("keys.json", 0o600), file("x", 0o400)], 1000).status,
    "pass",
  );
  const r = checkStateFiles(
    "/s",
    [file("keys.json", 0o600), file("known_peers.json", 0o644)],
    1000,
  );
  assertEquals(r.status, "fail");
  assertStringIncludes(r.detail, "known_peers.json (0644)");
  assertEquals(r.fix, "chmod 600 /s/known_peers.json");
  const o = checkStateFiles("/s", [file("audit.log", 0o600, 0)], 1000);
  assertEquals(o.status, "fail");
  assertStringIncludes(o.fix!, "chown");
  const link: StatInfo = { name: "keys.json", kind: "symlink", mode: 0o777, uid: 1000 };
  assertStringIncludes(checkStateFiles("/s", [link], 1000).detail, "symlinks not checked");
});

const ROUTES = `Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
`;

Deno.test("doctor mDNS: /proc/net/route parsing and route coverage of 224.0.0.251", () => {
  const r = parseProcNetRoute(ROUTES);
  assertEquals(r.map((x) => [x.iface, x.destination, x.mask]), [
    ["eth0", "0.0.0.0", "0.0.0.0"],
    ["eth0", "192.0.2.0", "255.255.255.0"],
  ]);
  assert(routeCovers(r[0], "224.0.0.251"));
  assert(!routeCovers(r[1], "224.0.0.251"));
  const mcast = parseProcNetRoute(
    "h\nwlan0\t000000E0\t00000000\t0001\t0\t0\t0\t000000F0\t0\t0\t0\n",
  );
  assertEquals([mcast[0].destination, mcast[0].mask], ["224.0.0.0", "240.0.0.0"]);
  assert(routeCovers(mcast[0], "224.0.0.251"));
  assertEquals(parseIfaceFlags("0x1003\n"), 0x1003);
  assertEquals(parseIfaceFlags("junk"), null);
});

Deno.test("doctor mDNS: needs an up, multicast IPv4 interface and a route; never fails silently", () => {
  const eth = { name: "eth0", family: "IPv4" as const, address: "192.0.2.2" };
  const lo = { name: "lo", family: "IPv4" as const, address: "127.0.0.1" };
  const routes = parseProcNetRoute(ROUTES);
  const up = new Map([["eth0", IFF_UP | IFF_MULTICAST]]);
  assertEquals(checkMdns({ interfaces: [lo, eth], routes, ifaceFlags: up }).status, "pass");
  const onlyLo = checkMdns({ interfaces: [lo], routes, ifaceFlags: null });
  assertEquals(onlyLo.status, "fail");
  assertStringIncludes(onlyLo.fix!, "--no-mdns");
  const noMcast = checkMdns({ interfaces: [eth], routes, ifaceFlags: new Map([["eth0", IFF_UP]]) });
  assertEquals(noMcast.status, "fail");
  const noRoute = checkMdns({ interfaces: [eth], routes: [routes[1]], ifaceFlags: up });
  assertEquals(noRoute.status, "fail");
  assertStringIncludes(noRoute.fix!, "ip route add 224.0.0.0/4 dev eth0");
  const unknown = checkMdns({ interfaces: [eth], routes: null, ifaceFlags: null });
  assertEquals(unknown.status, "pass");
  assertStringIncludes(unknown.detail, "not checked");
  assertEquals(
    checkMdns({ interfaces: [], routes: null, ifaceFlags: null, disabled: true }).status,
    "skip",
  );
  const v6only = checkMdns({
    interfaces: [{ name: "eth0", family: "IPv6", address: "fd00::2" }],
    routes: null,
    ifaceFlags: null,
  });
  assertEquals(v6only.status, "fail");
});

Deno.test("doctor port: free, ours, in use, privileged", () => {
  assertEquals(checkPort("0.0.0.0", 8765, { kind: "free" }).status, "pass");
  assertEquals(
    checkPort("0.0.0.0", 8765, { kind: "ours", pid: 42, listen: "0.0.0.0:8765" }).status,
    "pass",
  );
  const used = checkPort("127.0.0.1", 9, { kind: "in-use" });
  assertEquals(used.status, "fail");
  assertStringIncludes(used.fix!, "--port N");
  assertStringIncludes(checkPort("0.0.0.0", 80, { kind: "denied", message: "x" }).fix!, "≥ 1024");
});

Deno.test("doctor clock: plausible year, not behind the newest audit entry", () => {
  const now = Date.UTC(2025, 0, 14) / 1000;
  assertEquals(checkClock(now, now - 10).status, "pass");
  assertEquals(checkClock(now, now + 3).status, "pass"); // within the tolerance
  const behind = checkClock(now, now + 3600);
  assertEquals(behind.status, "fail");
  assertStringIncludes(behind.detail, "3600 s behind");
  assertStringIncludes(behind.fix!, "NTP");
  assertEquals(checkClock(Date.UTC(2001, 0, 1) / 1000, null).status, "fail");
  assertEquals(checkClock(Date.UTC(2150, 0, 1) / 1000, null).status, "fail");
});

Deno.test("doctor trust: missing is fine, a MAC failure fails, unauthenticated v1 fails", () => {
  assertEquals(checkTrust("/s/known_peers.json", null).status, "pass");
  const bad = checkTrust("/s/known_peers.json", { ok: false, failure: "mac", reason: "bad MAC" });
  assertEquals(bad.status, "fail");
  assertStringIncludes(bad.fix!, "move it aside");
  const plain = { peers: { a: {} }, revoked: {}, extras: {} };
  assertEquals(checkTrust("/p", { ok: true, format: "v2", plain }).status, "pass");
  assertEquals(checkTrust("/p", { ok: true, format: "v1-unauthenticated", plain }).status, "fail");
});

function vr(over: Partial<VerifyResult>): VerifyResult {
  return {
    ok: true,
    entries: 3,
    firstBadLine: null,
    reason: null,
    message: "3 entries verified",
    headHmac: "0".repeat(64),
    files: [{ path: "a", firstLine: 1, lines: 3, firstHmac: null, lastHmac: null, bytes: 1 }],
    tornLines: [],
    checkpoint: { status: "ok", path: "c", problems: [], signed: true, entryCount: 3 },
    ...over,
  };
}

Deno.test("doctor audit: chain and checkpoint are judged apart", () => {
  const [c1, k1] = checkAudit("/s/audit.log", vr({}));
  assertEquals([c1.status, k1.status], ["pass", "pass"]);
  const [c2, k2] = checkAudit(
    "/s/audit.log",
    vr({ ok: false, reason: "hmac-mismatch", firstBadLine: 2 }),
  );
  assertEquals([c2.status, k2.status], ["fail", "skip"]);
  const cut = vr({
    ok: false,
    reason: "truncated",
    message: "audit.log has 2 lines but the checkpoint recorded 3: truncated",
    checkpoint: { status: "truncated", path: "c", problems: ["x"], signed: true },
  });
  const [c3, k3] = checkAudit("/s/audit.log", cut);
  assertEquals([c3.status, k3.status], ["pass", "fail"]);
  assertStringIncludes(k3.detail, "cut from the end");
  const [, k4] = checkAudit(
    "/s/audit.log",
    vr({ checkpoint: { status: "missing", path: "c", problems: [], signed: false } }),
  );
  assertEquals(k4.status, "skip");
  const [c5, k5] = checkAudit("/s/audit.log", null);
  assertEquals([c5.status, k5.status], ["pass", "skip"]);
  assertEquals(summarize([c3, k3, k4]), { ok: false, passed: 1, failed: 1, skipped: 1 });
  assertEquals(summarize([c1, k4]).ok, true);
});
