// The dashboard in a real browser (Debian's Chromium via playwright-core) against real
// `ironmesh run --gui` processes on 127.0.0.1 (no mDNS): atlas serves the dashboard and holds
// messages of new peers (--require-message-promotion); bob and carol dial it. bob is trusted by
// the operator beforehand (over the control socket, as `ironmesh trust set-state` does); carol
// stays pending. The page loads from the startup URL (token) and drops the token from the
// address bar, shows both peers online, the send form reaches bob's daemon, carol's held
// message is delivered to atlas once she is promoted with a click, /metrics counters move, a
// screenshot lands in test-output/, and the console stays free of errors.
import { assert, assertEquals, assertMatch } from "../../support/assert.ts";
import { tempDir } from "../../support/cli.ts";
import { call } from "../../support/control.ts";
import { waitFor } from "../../support/wait.ts";
import { type Daemon, startDaemon } from "../../support/daemon.ts";
import { checkExposition, metricValue, type ParsedFamily } from "../../support/dashboard.ts";
import { launchChromium, type TestBrowser, testOutputDir } from "../../support/browser.ts";
import type { InboxEntry } from "../../../daemon/control_api.ts";
import type { PeerStatus } from "../../../daemon/node.ts";

/** A control-socket call that waits at most 10 s for the daemon's answer. */
const ctl = <T>(d: Daemon, method: string, params: Record<string, unknown> = {}) =>
  call<T>(d, method, params, { timeoutMs: 10_000 });

const inboxTexts = async (d: Daemon) =>
  (await ctl<InboxEntry[]>(d, "inbox")).map((m) => `${m.from}:${m.text}`);

/** GET /metrics with the token from the daemon's token file, checked and parsed. */
async function scrape(d: Daemon): Promise<ParsedFamily[]> {
  const token = (await Deno.readTextFile(String(d.info.token_file))).trim();
  const r = await fetch(String(d.info.metrics_url), {
    headers: { authorization: `Bearer ${token}` },
  });
  const text = await r.text();
  assertEquals(r.status, 200, text);
  return checkExposition(text);
}

Deno.test("browser: dashboard of a real daemon — peers online, send form, click promotion, metrics", async () => {
  await using dir = await tempDir();
  const daemons: Daemon[] = [];
  let browser: TestBrowser | null = null;
  let passed = false;
  try {
    const atlas = await startDaemon("atlas", `${dir.path}/atlas`, [
      "--gui",
      "--require-message-promotion",
    ]);
    daemons.push(atlas);
    const url = String(atlas.info.dashboard_url);
    assertMatch(url, /^http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]+$/);
    assertMatch(String(atlas.info.metrics_url), /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const bare = await fetch(String(atlas.info.metrics_url));
    assertEquals(bare.status, 401, "no token, no metrics");
    await bare.body?.cancel();
    const dial = ["--connect", `127.0.0.1:${atlas.port}`];
    const started = await Promise.allSettled([
      startDaemon("bob", `${dir.path}/bob`, dial),
      startDaemon("carol", `${dir.path}/carol`, dial),
    ]);
    for (const s of started) if (s.status === "fulfilled") daemons.push(s.value);
    for (const s of started) if (s.status === "rejected") throw s.reason;
    const [, bob, carol] = daemons;

    // Both links are up (atlas pins both as pending); the operator trusts bob beforehand.
    await waitFor(async () => {
      const peers = await ctl<PeerStatus[]>(atlas, "peers");
      return [bob, carol].every((d) => peers.some((p) => p.nodeId === d.nodeId && p.online));
    }, "atlas sees bob and carol online");
    await ctl(atlas, "trust.setState", { id: bob.nodeId, state: "trusted" });
    // Audit-derived counters follow the audit log (polled each second): start from a scrape
    // that already counts bob's promotion.
    let before: ParsedFamily[] = [];
    await waitFor(async () => {
      before = await scrape(atlas);
      return metricValue(before, "ironmesh_peer_promoted_total") === 1;
    }, "bob's promotion counted in /metrics");

    browser = await launchChromium();
    const page = await browser.newPage();
    await page.goto(url);
    // The page loads with the token, then keeps it out of the address bar.
    await page.locator("#conn[data-state='live']").waitFor({ timeout: 10_000 });
    assert(!page.url().includes("token"), `token still in the URL: ${page.url()}`);
    assertEquals(await page.locator("#node-name").textContent(), "atlas");
    assertEquals(await page.locator("#node-id").textContent(), atlas.nodeId);

    // Both peers are listed online, with their trust state.
    const row = (d: Daemon) => page.locator(`#peers tbody tr[data-node="${d.nodeId}"]`);
    for (const d of [bob, carol]) {
      await row(d).locator(".dot.on").waitFor({ timeout: 10_000 });
      assert((await row(d).textContent())!.includes(d.name), `${d.name}'s row names it`);
    }
    await row(bob).locator(".badge.trusted").waitFor({ timeout: 5000 });
    await row(carol).locator(".badge.pending").waitFor({ timeout: 5000 });
    assertEquals(await page.locator("#peers-count").textContent(), "(2/2)");

    // The send form reaches bob's daemon (checked over bob's control socket).
    const toBob = "hi bob, from atlas's dashboard";
    await page.locator("#send-peer").selectOption(bob.nodeId);
    await page.locator("#send-text").fill(toBob);
    await page.locator("#send-button").click();
    await page.locator("#send-status[data-kind='ok']").waitFor({ timeout: 5000 });
    assertMatch(
      (await page.locator("#send-status").textContent())!,
      /^Sent to bob \((sent|queued), id [0-9a-f]{8}\)\.$/,
    );
    await waitFor(
      async () => (await inboxTexts(bob)).includes(`${atlas.nodeId}:${toBob}`),
      "bob's daemon has the message",
    );
    // bob's ACK comes back: the feed marks the message delivered.
    await page.locator("#feed li[data-dir='out']", { hasText: toBob }).locator(
      ".badge.delivered",
    ).waitFor({ timeout: 10_000 });

    // carol is pending: what her daemon sends is held on atlas.
    const fromCarol = "hello atlas, carol here — please let me in";
    await ctl(carol, "send", { to: atlas.nodeId, text: fromCarol });
    const promote = page.locator(
      `#pending-trust button[data-action="promote"][data-node="${carol.nodeId}"]`,
    );
    await page.locator(`#pending-trust li[data-node="${carol.nodeId}"]`, {
      hasText: "1 held message",
    }).waitFor({ timeout: 10_000 });
    const status = await ctl<{ pending_trust: { node_id: string; count: number }[] }>(
      atlas,
      "status",
    );
    assertEquals(status.pending_trust, [{ node_id: carol.nodeId, count: 1 }]);
    assert(
      !(await inboxTexts(atlas)).some((t) => t.endsWith(fromCarol)),
      "held, not in atlas's inbox",
    );
    const out = await testOutputDir();
    const shot = `${out}dashboard-daemons.png`;
    await page.screenshot({ path: shot, fullPage: true });

    // One click promotes carol; her held message reaches atlas's inbox and the live feed.
    await promote.click();
    await page.locator("#notice").filter({
      hasText: "Promoted carol; 1 held message(s) delivered.",
    }).waitFor({ timeout: 10_000 });
    await promote.waitFor({ state: "detached", timeout: 5000 });
    await waitFor(
      async () => (await inboxTexts(atlas)).includes(`${carol.nodeId}:${fromCarol}`),
      "carol's released message is in atlas's inbox",
    );
    await page.locator("#feed li[data-dir='in']", { hasText: fromCarol }).waitFor({
      timeout: 5000,
    });
    await row(carol).locator(".badge.trusted").waitFor({ timeout: 5000 });
    assertEquals(
      (await ctl<{ pending_trust: unknown[] }>(atlas, "status")).pending_trust,
      [],
    );

    // The counters moved with the traffic (audit-derived ones within a poll interval).
    let after: ParsedFamily[] = [];
    const moved = (name: string) =>
      (metricValue(after, name) ?? NaN) - (metricValue(before, name) ?? NaN);
    await waitFor(async () => {
      after = await scrape(atlas);
      return moved("ironmesh_peer_promoted_total") >= 1;
    }, "carol's promotion counted in /metrics");
    assert(moved("ironmesh_messages_sent_total") >= 1, "messages_sent_total moved");
    assert(moved("ironmesh_messages_delivered_total") >= 1, "messages_delivered_total moved");
    assert(moved("ironmesh_messages_received_total") >= 1, "messages_received_total moved");
    assertEquals(moved("ironmesh_ext_messages_held_total"), 1);
    assertEquals(moved("ironmesh_peer_promoted_total"), 1);
    assert(moved("ironmesh_bytes_sent_total") > 0, "bytes_sent_total moved");
    assert(moved("ironmesh_bytes_received_total") > 0, "bytes_received_total moved");
    assertEquals(metricValue(after, "ironmesh_active_peers"), 2);
    assertEquals(metricValue(after, "ironmesh_ext_pending_trust_peers"), 0);
    for (const d of [bob, carol]) {
      assertEquals(metricValue(after, "ironmesh_peer_online", { peer: d.nodeId }), 1);
    }

    await page.screenshot({ path: `${out}dashboard-daemons-after.png`, fullPage: true });
    const png = await Deno.readFile(shot);
    assertEquals([...png.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47], "a PNG screenshot");
    assertEquals(browser.errors, [], "no console errors");
    passed = true;
  } finally {
    await browser?.close();
    const codes = await Promise.all(daemons.reverse().map((d) => d.stop()));
    // (Only after a pass: a failure above is the error worth reporting.)
    if (passed) assertEquals(codes, codes.map(() => 0), "daemons exit cleanly");
  }
});
