// `/metrics`: valid Prometheus text exposition (a real parser plus the format's structural
// rules), the reference's names, counters that move when messages flow, per-peer series with
// bounded and escaped labels, and the JSON form.
import { assert, assertEquals } from "../../support/assert.ts";
import { addrOf, nextEvent, startNode, until } from "../../support/nodes.ts";
import {
  call,
  checkExposition,
  metricValue,
  obj,
  startDashboard,
} from "../../support/dashboard.ts";
import { MemoryNetwork } from "../../../daemon/transport/memory.ts";
import {
  escapeLabel,
  formatValue,
  labelText,
  MetricsCollector,
  renderPrometheus,
} from "../../../daemon/dashboard/metrics.ts";
import { generateIdentity } from "../../../lib/identity/keyfile.ts";
import { toB64 } from "../../../lib/crypto/sodium.ts";
import { directMeshView } from "../../../daemon/node.ts";

const enc = (s: string) => new TextEncoder().encode(s);

/** Reference metric names (PROTOCOL-0.9 §15) that we report. */
const REFERENCE_NAMES = [
  "ironmesh_uptime_seconds",
  "ironmesh_messages_sent_total",
  "ironmesh_messages_received_total",
  "ironmesh_messages_delivered_total",
  "ironmesh_bytes_sent_total",
  "ironmesh_bytes_received_total",
  "ironmesh_handshake_successes_total",
  "ironmesh_handshake_failures_total",
  "ironmesh_connections_total",
  "ironmesh_active_peers",
  "ironmesh_total_peers",
  "ironmesh_routes_known",
  "ironmesh_capabilities_known",
  "ironmesh_capability_remote_nodes",
  "ironmesh_avg_rtt_ms",
  "ironmesh_session_rekeys_total",
  "ironmesh_peer_cap_set_changed_total",
  "ironmesh_peer_cap_baseline_total",
  "ironmesh_peer_cap_accepted_total",
  "ironmesh_peer_cap_binding_partial_total",
  "ironmesh_msg_replay_cross_transport_total",
  "ironmesh_peer_revoked_local_total",
  "ironmesh_peer_state_changed_total",
  "ironmesh_peer_promoted_total",
  "ironmesh_peer_blocked_total",
  "ironmesh_trust_store_version",
  "ironmesh_strict_tls_enabled",
  "ironmesh_peer_online",
  "ironmesh_peer_rtt_ms",
  "ironmesh_peer_bytes_sent_total",
  "ironmesh_peer_bytes_received_total",
  "ironmesh_message_lifetime_seconds",
];

Deno.test("metrics: valid exposition with the reference's names; counters move as messages flow", async () => {
  const net = new MemoryNetwork();
  const hub = await startNode("hub", { transport: net.transport() });
  const bob = await startNode("bob", { transport: net.transport() });
  hub.meshView = directMeshView(hub); // routes = the direct links, whatever the router does
  const d = await startDashboard(hub, { strictTls: true });
  try {
    const before = checkExposition((await call(d, "/metrics")).text);
    const names = before.map((f) => f.name);
    for (const n of REFERENCE_NAMES) assert(names.includes(n), `missing ${n}`);
    for (const n of names) {
      assert(
        REFERENCE_NAMES.includes(n) || n.startsWith("ironmesh_ext_"),
        `${n}: our own metrics are ironmesh_ext_*`,
      );
    }
    assertEquals(metricValue(before, "ironmesh_messages_sent_total"), 0);
    assertEquals(metricValue(before, "ironmesh_strict_tls_enabled"), 1);
    assertEquals(metricValue(before, "ironmesh_trust_store_version"), 0, "no trust file yet");
    assertEquals(before.find((f) => f.name === "ironmesh_peer_online")!.metrics, []);

    await bob.connect(addrOf(hub));
    await until(() => hub.peers.get(bob.nodeId) !== undefined, 2000, "link");
    for (let i = 0; i < 5; i++) await hub.send(bob.nodeId, enc(`m${i}`));
    for (let i = 0; i < 3; i++) await bob.send(hub.nodeId, enc(`r${i}`));
    await until(() => d.metrics.counters.messagesReceived === 3, 3000, "3 received");
    await until(() => d.metrics.counters.messagesDelivered === 5, 3000, "5 acknowledged");
    await hub.peers.get(bob.nodeId)!.ping(2000);

    const text = (await call(d, "/metrics")).text;
    const after = checkExposition(text);
    assertEquals(metricValue(after, "ironmesh_messages_sent_total"), 5);
    assertEquals(metricValue(after, "ironmesh_messages_received_total"), 3);
    assertEquals(metricValue(after, "ironmesh_messages_delivered_total"), 5);
    assertEquals(metricValue(after, "ironmesh_handshake_successes_total"), 1);
    assertEquals(metricValue(after, "ironmesh_connections_total"), 1);
    assertEquals(metricValue(after, "ironmesh_active_peers"), 1);
    assertEquals(metricValue(after, "ironmesh_total_peers"), 1);
    assertEquals(metricValue(after, "ironmesh_routes_known"), 1, "the direct link");
    assertEquals(metricValue(after, "ironmesh_trust_store_version"), 2);
    assert(metricValue(after, "ironmesh_bytes_sent_total")! > 0);
    assert(metricValue(after, "ironmesh_bytes_received_total")! > 0);
    assert(metricValue(after, "ironmesh_avg_rtt_ms")! > 0);
    const labels = { peer: bob.nodeId, name: "bob" };
    assertEquals(metricValue(after, "ironmesh_peer_online", labels), 1);
    assert(metricValue(after, "ironmesh_peer_rtt_ms", labels)! > 0);
    assert(metricValue(after, "ironmesh_peer_bytes_sent_total", labels)! > 0);
    const lt = after.find((f) => f.name === "ironmesh_message_lifetime_seconds")!;
    assertEquals(lt.type, "SUMMARY");
    assertEquals(Number(lt.metrics[0].count), 3);
    assertEquals(Object.keys(lt.metrics[0].quantiles!).sort(), ["0.5", "0.9", "0.99"]);
    // Values print as Python floats, as the reference does.
    assert(text.includes("\nironmesh_messages_sent_total 5.0\n"), "5.0, not 5");

    // Bytes survive the link going down; the peer stays listed, offline.
    const sentBefore = metricValue(after, "ironmesh_bytes_sent_total")!;
    await bob.stop();
    await until(() => hub.peers.get(bob.nodeId) === undefined, 2000, "link down");
    const down = checkExposition((await call(d, "/metrics")).text);
    assertEquals(metricValue(down, "ironmesh_bytes_sent_total"), sentBefore);
    assertEquals(metricValue(down, "ironmesh_peer_online", labels), 0);
    assertEquals(metricValue(down, "ironmesh_active_peers"), 0);

    // The JSON form.
    const j = obj((await call(d, "/metrics?format=json")).body);
    assertEquals(j.messages_sent_total, 5);
    assertEquals(j.gate_enabled, false);
    assertEquals(obj(j.message_lifetime_seconds).count, 3);
    const jp = (j.peers as Record<string, unknown>[])[0];
    assertEquals([jp.node_id, jp.name, jp.online], [bob.nodeId, "bob", 0]);
    assertEquals(
      (await call(d, "/metrics?format=prometheus")).headers.get("content-type"),
      "text/plain; version=0.0.4; charset=utf-8",
    );
  } finally {
    await d.close();
    await hub.stop();
  }
});

Deno.test("metrics: failed handshakes count; audit events from any process are mirrored", async () => {
  const net = new MemoryNetwork();
  const hub = await startNode("hub", { transport: net.transport() });
  const eve = await startNode("eve", {
    transport: net.transport(),
    passphrase: "not-the-mesh-passphrase",
  });
  const d = await startDashboard(hub);
  try {
    const failed = nextEvent(hub, (e) => e.type === "handshake-failed");
    await eve.connect(addrOf(hub)).catch(() => {});
    await failed;
    // An entry appended to audit.log by anyone (e.g. `ironmesh trust` via the control socket).
    await hub.recordAudit("PEER_STATE_CHANGED", { peer_id: "x", actor: "cli" });
    await hub.recordAudit("PEER_CAP_ACCEPTED", { peer: "x" });
    await until(
      () => d.metrics.audit.get("ironmesh_peer_cap_accepted_total") === 1,
      3000,
      "mirrored",
    );
    const f = checkExposition((await call(d, "/metrics")).text);
    assertEquals(metricValue(f, "ironmesh_handshake_failures_total"), 1);
    assertEquals(metricValue(f, "ironmesh_handshake_successes_total"), 0);
    assertEquals(metricValue(f, "ironmesh_peer_state_changed_total"), 1);
    assertEquals(metricValue(f, "ironmesh_peer_cap_accepted_total"), 1);
    assertEquals(metricValue(f, "ironmesh_peer_promoted_total"), 0);
  } finally {
    await d.close();
    await eve.stop();
    await hub.stop();
  }
});

Deno.test("metrics: per-peer series are capped and their labels are safe", async () => {
  const hub = await startNode("hub", { transport: new MemoryNetwork().transport() });
  const m = new MetricsCollector(hub, { maxPeerSeries: 3, sampleMs: 0 });
  try {
    for (let i = 0; i < 5; i++) {
      const id = generateIdentity(`p${i}`);
      await hub.trust.pin(id.nodeId, toB64(id.publicKey), { name: `p${i}` });
    }
    const fams = checkExposition(m.prometheus());
    assertEquals(fams.find((f) => f.name === "ironmesh_peer_online")!.metrics.length, 3);
    assertEquals(metricValue(fams, "ironmesh_ext_peer_series_omitted"), 2);
    assertEquals(metricValue(fams, "ironmesh_total_peers"), 5);
  } finally {
    m.close();
    await hub.stop();
  }
  // Hostile names: control characters dropped, 64 characters at most, quotes escaped.
  assertEquals(labelText('a"b\\c\nd\u0007e'), 'a"b\\cde');
  assertEquals([...labelText("é".repeat(100))].length, 64);
  assertEquals(escapeLabel('a"b\\c\nd'), 'a\\"b\\\\c\\nd');
  const text = renderPrometheus([{
    name: "ironmesh_peer_online",
    type: "gauge",
    help: "help with a \\ backslash\nand a newline",
    samples: [{ labels: { peer: "x", name: labelText('evil"} 1\nfake_metric 9') }, value: 1 }],
  }]);
  const parsed = checkExposition(text);
  assertEquals(parsed.length, 1);
  assertEquals(parsed[0].metrics[0].labels!.name, 'evil"} 1fake_metric 9');
  assertEquals(formatValue(NaN), "NaN");
  assertEquals(formatValue(2), "2.0");
  assertEquals(formatValue(1e20), "1e+20");
});
