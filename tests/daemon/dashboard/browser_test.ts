// The dashboard in a real browser (Debian's Chromium via playwright-core): the page loads with
// the token and drops it from the address bar, a peer appears live, the send form reaches the
// other node, a pending peer is promoted with the keyboard alone and its held message is
// delivered, the layout fits a phone, and nothing is logged to the console as an error.
// Nodes run in process over real WebSockets on 127.0.0.1.
import { assert, assertEquals, assertMatch } from "../../support/assert.ts";
import { addrOf, nextEvent, startNode, until } from "../../support/nodes.ts";
import { runDaemon, startDashboard } from "../../support/dashboard.ts";
import { launchChromium, testOutputDir } from "../../support/browser.ts";
import { tempDir } from "../../support/cli.ts";
import { RUN_FLAGS } from "../../../scripts/build/permissions.ts";

const dec = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("browser: live peers, send form, keyboard promotion, token hygiene, phone layout", async () => {
  const atlas = await startNode("atlas", {
    trust: { mode: "tofu", requireMessagePromotion: true },
  });
  const bob = await startNode("bob", { dial: { allowPlaintextWs: true } });
  const dash = await startDashboard(atlas);
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.goto(dash.url);
    // The page loads with the token, then keeps it out of the address bar.
    await page.locator("#conn[data-state='live']").waitFor({ timeout: 10_000 });
    assert(!page.url().includes("token"), `token still in the URL: ${page.url()}`);
    assertEquals(await page.locator("#node-name").textContent(), "atlas");
    assertEquals(await page.locator("#node-id").textContent(), atlas.nodeId);

    // A peer that connects now appears in the peer table, live.
    await bob.connect(addrOf(atlas));
    const row = page.locator(`#peers tbody tr[data-node="${bob.nodeId}"]`);
    await row.waitFor({ timeout: 5000 });
    assert((await row.textContent())!.includes("bob"));

    // bob is pending on atlas (the gate is on): what bob sends is held.
    const held = nextEvent(atlas, (e) => e.type === "message-in" && e.disposition === "held");
    await bob.send(atlas.nodeId, new TextEncoder().encode("hello from bob, please let me in"));
    await held;
    const promote = page.locator(
      `#pending-trust button[data-action="promote"][data-node="${bob.nodeId}"]`,
    );
    await promote.waitFor({ timeout: 5000 });

    // The send form reaches bob.
    const got = nextEvent(bob, (e) => e.type === "message-in");
    await page.locator("#send-peer").selectOption(bob.nodeId);
    await page.locator("#send-text").fill("hi bob, from the dashboard");
    await page.locator("#send-button").click();
    const ev = await got;
    assert(ev.type === "message-in");
    assertEquals(dec(ev.payload), "hi bob, from the dashboard");
    await page.locator("#send-status[data-kind='ok']").waitFor({ timeout: 5000 });
    assertMatch(
      (await page.locator("#send-status").textContent())!,
      /^Sent to bob \((sent|queued), id [0-9a-f]{8}\)\.$/,
    );
    const inbox = bob.store.history.query({ direction: "inbound", limit: 10 });
    assert(inbox.some((m) => dec(m.payload) === "hi bob, from the dashboard"), "in bob's inbox");

    const out = await testOutputDir();
    await page.screenshot({ path: `${out}dashboard-desktop.png`, fullPage: true });

    // Promote bob with the keyboard only: Tab to the button, press Enter.
    await page.locator("body").focus();
    let focused = false;
    for (let i = 0; i < 80 && !focused; i++) {
      await page.keyboard.press("Tab");
      focused = await page.evaluate(
        `document.activeElement?.dataset.action === "promote" &&
          document.activeElement?.dataset.node === ${JSON.stringify(bob.nodeId)}`,
      ) as boolean;
    }
    assert(focused, "the Promote button is reachable with Tab");
    const released = nextEvent(
      atlas,
      (e) => e.type === "message-in" && e.disposition === "delivered" && e.from === bob.nodeId,
    );
    await page.keyboard.press("Enter");
    const rel = await released;
    assert(rel.type === "message-in");
    assertEquals(dec(rel.payload), "hello from bob, please let me in");
    await until(() => atlas.trust.trustState(bob.nodeId) === "trusted", 5000, "bob trusted");
    await promote.waitFor({ state: "detached", timeout: 5000 });
    await page.locator("#notice").filter({ hasText: "Promoted" }).waitFor({ timeout: 5000 });
    await page.locator("#feed li", { hasText: "hello from bob, please let me in" }).waitFor({
      timeout: 5000,
    });
    // The keyboard user is not dropped on <body> when the button's row goes away.
    assert(
      await page.evaluate(`document.activeElement?.id === "pt-h"`),
      "focus moves to the panel heading",
    );

    // A reload keeps working without the token in the URL (it stays in this tab only).
    await page.reload();
    await page.locator("#conn[data-state='live']").waitFor({ timeout: 10_000 });
    assert(!page.url().includes("token"));

    // Phone width: no horizontal overflow (screenshots go to test-output/).
    await page.setViewportSize({ width: 375, height: 812 });
    await page.locator(`#peers tbody tr[data-node="${bob.nodeId}"]`).waitFor();
    // (Page-side code is passed as text: these tests type-check without the DOM lib.)
    const overflow = await page.evaluate(`({
      doc: document.documentElement.scrollWidth - document.documentElement.clientWidth,
      body: document.body.scrollWidth - document.body.clientWidth,
    })`);
    assertEquals(overflow, { doc: 0, body: 0 }, "no horizontal overflow at 375 px");
    await page.screenshot({ path: `${out}dashboard-phone.png`, fullPage: true });
    assertEquals(browser.errors, [], "no console errors");
  } finally {
    await browser.close();
    await dash.close();
    await bob.stop();
    await atlas.stop();
  }
});

Deno.test("browser: the one-file bundle serves a working dashboard", async () => {
  await using tmp = await tempDir();
  const out = `${tmp.path}/ironmesh.js`;
  const root = new URL("../../../", import.meta.url).pathname;
  const b = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "scripts/build/bundle.ts", out],
    cwd: root,
    stdout: "null",
    stderr: "piped",
  }).output();
  assertEquals(b.code, 0, new TextDecoder().decode(b.stderr));
  const empty = `${tmp.path}/empty`;
  await Deno.mkdir(empty);
  const daemon = await runDaemon(out, RUN_FLAGS, `${tmp.path}/s`, ["--name", "bundled", "--gui"], {
    cwd: empty,
  });
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.goto(String(daemon.info.dashboard_url));
    await page.locator("#conn[data-state='live']").waitFor({ timeout: 10_000 });
    assertEquals(await page.locator("#node-name").textContent(), "bundled");
    assertEquals(await page.locator("#node-id").textContent(), daemon.info.node_id);
    await page.locator("#audit li", { hasText: "STARTUP" }).waitFor({ timeout: 5000 });
    assert(!page.url().includes("token"));
    assertEquals(browser.errors, [], "no console errors");
  } finally {
    await browser.close();
    assertEquals(await daemon.stop(), 0);
  }
});
