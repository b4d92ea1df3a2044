// The dashboard's HTTP surface on an in-process node: the token on every data route (401 JSON
// without it or with a wrong one, whichever way it is sent), constant-time comparison by
// construction, the page's CSP and content types, 404/405 as JSON, request-body limits, query
// validation, the API's shapes, and the metrics-only listener.
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../../support/assert.ts";
import { addrOf, nextEvent, startNode, until } from "../../support/nodes.ts";
import { baseOf, call, obj, startDashboard } from "../../support/dashboard.ts";
import { MemoryNetwork } from "../../../daemon/transport/memory.ts";
import {
  newToken,
  presentedToken,
  TokenAuth,
  tokenDigestEqual,
  WS_PROTOCOL,
  WS_TOKEN_PREFIX,
} from "../../../daemon/dashboard/auth.ts";
import { isLoopback } from "../../../daemon/dashboard/server.ts";
import { staticPaths } from "../../../daemon/dashboard/static/assets.ts";
import { MAX_BODY_BYTES } from "../../../daemon/dashboard/api.ts";
import { Logger } from "../../../lib/log.ts";
import { directMeshView } from "../../../daemon/node.ts";

const PROTECTED = [
  "/api/state",
  "/api/mesh_stats",
  "/api/peers",
  "/api/routes",
  "/api/capabilities",
  "/api/audit",
  "/metrics",
  "/metrics?format=json",
  "/ws",
];

async function withDash(
  fn: (d: Awaited<ReturnType<typeof startDashboard>>) => Promise<void>,
  opts: Parameters<typeof startDashboard>[1] = {},
) {
  const node = await startNode("hub", { transport: new MemoryNetwork().transport() });
  const d = await startDashboard(node, opts);
  try {
    await fn(d);
  } finally {
    await d.close();
    await node.stop();
  }
}

Deno.test("auth: tokens are 43 base64url characters, fresh each time", () => {
  const a = newToken(), b = newToken();
  assertMatch(a, /^[A-Za-z0-9_-]{43}$/);
  assert(a !== b);
  assert(tokenDigestEqual(a, a));
  assert(!tokenDigestEqual(a, b));
  assert(!tokenDigestEqual(a, a.slice(0, 42)), "a prefix is not the token");
  assert(!tokenDigestEqual(a, a + "x"));
});

Deno.test("auth: the token is read from the header, the query or (on /ws) the subprotocol", () => {
  const u = (q = "") => new URL(`http://127.0.0.1/x${q}`);
  const req = (h: Record<string, string>) => new Request("http://127.0.0.1/x", { headers: h });
  assertEquals(presentedToken(req({ authorization: "Bearer abc" }), u()), {
    token: "abc",
    source: "header",
  });
  assertEquals(presentedToken(req({ authorization: "bearer   abc " }), u())?.token, "abc");
  assertEquals(presentedToken(req({ authorization: "Basic abc" }), u("?token=abc")), null);
  assertEquals(presentedToken(req({}), u("?token=q1")), { token: "q1", source: "query" });
  const ws = req({ "sec-websocket-protocol": `${WS_PROTOCOL}, ${WS_TOKEN_PREFIX}s1` });
  assertEquals(presentedToken(ws, u()), null, "the subprotocol counts only on /ws");
  assertEquals(presentedToken(ws, u(), { ws: true }), { token: "s1", source: "subprotocol" });
});

Deno.test("auth: every check goes through the constant-time digest comparison", () => {
  // By construction: TokenAuth compares only through `equal`, which by default hashes both
  // sides to 32 bytes and calls node:crypto's timingSafeEqual.
  const src = Deno.readTextFileSync(new URL("../../../daemon/dashboard/auth.ts", import.meta.url));
  assertStringIncludes(src, 'import { timingSafeEqual } from "node:crypto";');
  assertStringIncludes(
    src,
    "return timingSafeEqual(sha256(utf8(expected)), sha256(utf8(presented)));",
  );
  assert(!/#token\s*[!=]==|[!=]==\s*this\.#token/.test(src), "no == on the token");
  const token = newToken();
  const calls: [string, string][] = [];
  const auth = new TokenAuth(token, (a, b) => {
    calls.push([a, b]);
    return tokenDigestEqual(a, b);
  });
  const url = new URL("http://127.0.0.1/api/state");
  const r = (t: string) => new Request(url, { headers: { authorization: `Bearer ${t}` } });
  assert(auth.check(r(token), url));
  assert(!auth.check(r("wrong"), url));
  assert(!auth.check(r(token.slice(0, 10)), url));
  assertEquals(calls.length, 3);
  // An absent token or one over the length cap is refused without comparing.
  assert(!auth.check(new Request(url), url));
  assert(!auth.check(r("x".repeat(600)), url));
  assertEquals(calls.length, 3);
});

Deno.test("http: every data route without a token or with a wrong one is 401 JSON", async () => {
  const seen: string[] = [];
  await withDash(async (d) => {
    for (const path of PROTECTED) {
      for (
        const [how, init] of [
          ["no token", { token: null }],
          ["wrong header", { token: newToken() }],
          ["malformed header", { token: null, headers: { authorization: `Token ${d.token}` } }],
        ] as const
      ) {
        const r = await call(d, path, init);
        assertEquals(r.status, 401, `${how} ${path}`);
        assertStringIncludes(r.headers.get("content-type") ?? "", "application/json");
        assertEquals(obj(r.body).error, "401 Unauthorized - token required");
        assertEquals(r.headers.get("www-authenticate"), 'Bearer realm="ironmesh"');
      }
      const sep = path.includes("?") ? "&" : "?";
      const q = await call(d, `${path}${sep}token=${newToken()}`, { token: null });
      assertEquals(q.status, 401, `wrong ?token= ${path}`);
    }
    const post = await call(d, "/api/action", {
      method: "POST",
      token: null,
      headers: { "content-type": "application/json" },
      body: '{"action":"refresh"}',
    });
    assertEquals(post.status, 401);
    // A WebSocket with a wrong subprotocol token never opens.
    const ws = new WebSocket(`ws://127.0.0.1:${d.port}/ws`, [
      WS_PROTOCOL,
      WS_TOKEN_PREFIX + newToken(),
    ]);
    const outcome = await new Promise<string>((r) => {
      ws.onopen = () => r("open");
      ws.onerror = () => r("error");
    });
    assertEquals(outcome, "error");
    // With the token, each way works.
    assertEquals((await call(d, "/api/state")).status, 200);
    assertEquals((await call(d, `/api/state?token=${d.token}`, { token: null })).status, 200);
  }, { tokenEqual: (a, b) => (seen.push(b), tokenDigestEqual(a, b)) });
  // Wrong header and wrong ?token= on each route, the WebSocket, and the two good requests:
  // every presented token went through tokenEqual (absent or malformed ones never reach it).
  assertEquals(seen.length, PROTECTED.length * 2 + 3);
});

Deno.test("http: the page and its files: no token needed, CSP, correct content types, no data", async () => {
  await withDash(async (d) => {
    const types: Record<string, string> = {
      "/": "text/html; charset=utf-8",
      "/index.html": "text/html; charset=utf-8",
      "/app.js": "text/javascript; charset=utf-8",
      "/style.css": "text/css; charset=utf-8",
      "/favicon.svg": "image/svg+xml",
      "/manifest.json": "application/manifest+json; charset=utf-8",
    };
    for (const path of staticPaths()) {
      const r = await fetch(baseOf(d) + path);
      await r.body?.cancel();
      assertEquals(r.status, 200, path);
      if (types[path]) assertEquals(r.headers.get("content-type"), types[path], path);
      const csp = r.headers.get("content-security-policy") ?? "";
      for (
        const rule of [
          "default-src 'none'",
          "script-src 'self'",
          "style-src 'self'",
          "connect-src 'self'",
          "frame-ancestors 'none'",
          "base-uri 'none'",
        ]
      ) assertStringIncludes(csp, rule, path);
      assertEquals(r.headers.get("x-content-type-options"), "nosniff");
      assertEquals(r.headers.get("referrer-policy"), "no-referrer");
    }
    const html = await (await fetch(`${baseOf(d)}/?token=${d.token}`)).text();
    assert(!html.includes(d.token), "the page never echoes the token");
    assert(!/<script>|\sstyle=|https?:\/\/(?!www\.w3\.org)/.test(html), "no inline or remote code");
    assert(!html.includes(d.token.slice(0, 8)));
    const js = await (await fetch(`${baseOf(d)}/app.js`)).text();
    new Function(js); // parses as plain JavaScript (types stripped)
    assert(!/innerHTML|eval\(/.test(js), "the page builds DOM with textContent only");
    // A HEAD has the headers and no body.
    const head = await fetch(baseOf(d) + "/", { method: "HEAD" });
    assertEquals(head.status, 200);
    assertEquals(await head.text(), "");
  });
});

Deno.test("http: unknown paths are 404 JSON, wrong methods 405 JSON", async () => {
  await withDash(async (d) => {
    for (const path of ["/nope", "/api/nope", "/api", "/.env", "/metrics/x"]) {
      const r = await call(d, path);
      assertEquals(r.status, 404, path);
      assertEquals(obj(r.body).error, "404 Not Found");
    }
    const del = await call(d, "/api/state", { method: "DELETE" });
    assertEquals(del.status, 405);
    assertEquals(del.headers.get("allow"), "GET, HEAD");
    assertEquals((await call(d, "/api/action")).status, 405);
    assertEquals((await call(d, "/", { method: "POST", body: "x" })).status, 405);
    assertEquals((await call(d, "/ws")).status, 400, "/ws without an upgrade");
    const half = await call(d, "/ws", { headers: { upgrade: "websocket", connection: "Upgrade" } });
    assertEquals(half.status, 400, "an upgrade without a key");
    assertEquals(obj(half.body).code, "BAD_UPGRADE");
  });
});

Deno.test("http: request bodies must be JSON objects within the size limit", async () => {
  await withDash(async (d) => {
    const post = (body: BodyInit, type = "application/json", extra: Record<string, string> = {}) =>
      call(d, "/api/action", {
        method: "POST",
        headers: { "content-type": type, ...extra },
        body,
      });
    let r = await post("action=refresh", "application/x-www-form-urlencoded");
    assertEquals(r.status, 415);
    assertEquals(obj(r.body).code, "BAD_CONTENT_TYPE");
    r = await post("{not json");
    assertEquals(r.status, 400);
    assertEquals(obj(r.body).code, "BAD_JSON");
    r = await post("[1,2]");
    assertEquals(r.status, 400);
    r = await post("[".repeat(100) + "]".repeat(100));
    assertEquals(r.status, 400, "nesting beyond 64 is refused");
    r = await post(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]));
    assertEquals(r.status, 400);
    // Too large: by Content-Length, and streamed without one.
    const big = JSON.stringify({ action: "refresh", pad: "x".repeat(MAX_BODY_BYTES) });
    r = await post(big);
    assertEquals(r.status, 413);
    assertEquals(obj(r.body).code, "BODY_TOO_LARGE");
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        const chunk = new TextEncoder().encode("x".repeat(65536));
        for (let i = 0; i < 20; i++) c.enqueue(chunk);
        c.close();
      },
    });
    r = await post(stream);
    assertEquals(r.status, 413);
    // A good body works, and unknown actions are a clear 400.
    r = await post('{"action":"list_pending_trust"}');
    assertEquals(r.status, 200);
    assertEquals(obj(r.body).type, "pending_trust_list");
    r = await post('{"action":"launch_missiles"}');
    assertEquals(r.status, 400);
    assertEquals(obj(r.body).error, "Unknown action: launch_missiles");
    r = await post('{"action":"refresh"}', "application/json", { origin: "http://evil.test" });
    assertEquals(r.status, 403);
  });
});

Deno.test("http: query parameters are validated", async () => {
  await withDash(async (d) => {
    for (
      const q of [
        "/api/audit?limit=0",
        "/api/audit?limit=abc",
        "/api/audit?limit=1001",
        "/api/audit?since=yesterday",
        "/api/audit?event=BAD-NAME",
        "/api/audit?limit=1&limit=2",
        "/api/audit?color=red",
        "/api/state?x=1",
        "/metrics?format=xml",
      ]
    ) {
      const r = await call(d, q);
      assertEquals(r.status, 400, q);
      const b = obj(r.body);
      assert(typeof b.error === "string" && b.error.length > 0, q);
      assertEquals(b.code, "BAD_QUERY", q);
    }
  });
});

Deno.test("http: API shapes — state, mesh_stats, peers, routes, capabilities, audit", async () => {
  const net = new MemoryNetwork();
  const hub = await startNode("hub", { transport: net.transport() });
  const peer = await startNode("spoke", { transport: net.transport() });
  // The dashboard shows whatever mesh view the node supplies; pin the direct-links view (what a
  // node without mesh routing supplies) so the shapes below do not depend on the router.
  hub.meshView = directMeshView(hub);
  const d = await startDashboard(hub);
  try {
    const up = nextEvent(hub, (e) => e.type === "peer-up");
    await peer.connect(addrOf(hub));
    await up;
    const got = nextEvent(peer, (e) => e.type === "message-in");
    await hub.send(peer.nodeId, new TextEncoder().encode("ping"));
    await got;
    await until(() => hub.store.queue.pendingCount(peer.nodeId) === 0, 3000, "ack");

    const state = obj((await call(d, "/api/state")).body);
    assertEquals(state.node_id, hub.nodeId);
    assertEquals(state.name, "hub");
    assertEquals(state.port, hub.listener!.port);
    assertEquals(state.routing_enabled, false);
    const peers = state.peers as Record<string, unknown>[];
    assertEquals(peers.length, 1);
    const p = peers[0];
    for (
      const k of [
        "node_id",
        "name",
        "address",
        "status",
        "uptime",
        "messages_sent",
        "messages_received",
        "verified",
        "pending_queue_size",
        "latency_ms",
        "last_seen",
        "fingerprint",
        "transport_type",
        "bytes_sent_total",
        "bytes_received_total",
        "session_rekey_count",
        "offline_since",
        "trust_gate_state",
      ]
    ) assert(k in p, `PeerState.${k}`);
    assertEquals(p.node_id, peer.nodeId);
    assertEquals(p.status, "online");
    assertEquals(p.transport_type, "memory");
    assertEquals(p.trust_gate_state, "trusted");
    assertEquals(p.messages_sent, 1);
    assert((p.bytes_sent_total as number) > 0);
    const history = state.history as Record<string, unknown>[];
    assert(history.some((h) => h.type === "peer_event" && h.event === "connected"));
    assert(history.some((h) => h.type === "message_event" && h.direction === "out"));
    assertEquals(state.capabilities, {});
    assertEquals(state.pending_trust, []);
    assertEquals(state.pending_cap, []);
    assertEquals(typeof obj(state.metrics).messages_sent_total, "number");

    const ms = obj((await call(d, "/api/mesh_stats")).body);
    assertEquals(ms.active_peers, 1);
    assertEquals(ms.total_peers, 1);
    assertEquals(Object.keys(obj(ms.message_lifetime)).sort(), [
      "count",
      "p50",
      "p90",
      "p99",
      "sum",
    ]);
    const mp = (ms.peers as Record<string, unknown>[])[0];
    assertEquals(mp.node_id, peer.nodeId);
    assertEquals(mp.online, true);
    assertEquals(mp.messages_sent, 1);
    assertEquals(ms.gate_enabled, false);

    const pl = obj((await call(d, "/api/peers")).body);
    assertEquals((pl.peers as unknown[]).length, 1);

    // Without mesh routing, the direct links are 1-hop routes.
    const routes = obj((await call(d, "/api/routes")).body);
    assertEquals(routes.routing_enabled, false);
    const r0 = (routes.routes as Record<string, unknown>[])[0];
    assertEquals(r0.destination, peer.nodeId);
    assertEquals(r0.next_hop, peer.nodeId);
    assertEquals(r0.cost, 1);
    assertEquals(r0.name, "spoke");
    const caps = obj((await call(d, "/api/capabilities")).body);
    assertEquals(caps, { routing_enabled: false, capabilities: {} });
    // The provider is the node's: a mesh view the router will supply shows through.
    hub.meshView = {
      routingEnabled: true,
      routes: () => [],
      capabilities: () => [{ capability: "llm:chat", nodeIds: [peer.nodeId] }],
    };
    assertEquals(obj((await call(d, "/api/capabilities")).body).capabilities, {
      "llm:chat": [peer.nodeId],
    });

    await hub.recordAudit("PEER_BLOCKED", { peer_id: "x" });
    const audit = obj((await call(d, "/api/audit?limit=2")).body);
    assertEquals(audit.count, 2);
    const entries = audit.entries as Record<string, unknown>[];
    assertEquals(entries.at(-1)!.event, "PEER_BLOCKED");
    const startup = obj((await call(d, "/api/audit?event=startup&since=1h")).body);
    assertEquals((startup.entries as Record<string, unknown>[]).map((e) => e.event), ["STARTUP"]);
    const future = obj((await call(d, `/api/audit?since=${Date.now() / 1000 + 3600}`)).body);
    assertEquals(future.count, 0);
  } finally {
    await d.close();
    await peer.stop();
    await hub.stop();
  }
});

Deno.test("http: metrics-only mode serves /metrics (with the token) and nothing else", async () => {
  await withDash(async (d) => {
    assertEquals(d.hostname, "127.0.0.1", "metrics mode ignores any other bind");
    const m = await call(d, "/metrics");
    assertEquals(m.status, 200);
    assertEquals(m.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    assertEquals((await call(d, "/metrics", { token: null })).status, 401);
    for (const path of ["/", "/app.js", "/api/state", "/ws"]) {
      assertEquals((await call(d, path)).status, 404, path);
    }
  }, { mode: "metrics", hostname: "0.0.0.0" });
});

Deno.test("http: only loopback binds go without the INSECURE BIND warning", async () => {
  for (const h of ["127.0.0.1", "127.1.2.3", "::1", "localhost"]) assert(isLoopback(h), h);
  for (const h of ["0.0.0.0", "::", "192.168.1.5", "10.0.0.1"]) assert(!isLoopback(h), h);
  // The default bind logs no warning and never logs the token.
  const lines: string[] = [];
  const log = new Logger("debug", "text", {}, (l) => lines.push(l));
  await withDash(async (d) => {
    await call(d, "/api/state", { token: null });
    await call(d, `/api/state?token=${newToken()}`, { token: null });
    assert(!lines.some((l) => l.includes("INSECURE")));
    assert(lines.some((l) => l.includes("without a valid token")), "refusals are logged");
    assert(!lines.some((l) => l.includes(d.token)), "the token is never logged");
    assert(!lines.some((l) => l.includes("token=")), "URLs are never logged");
  }, { log });
});
