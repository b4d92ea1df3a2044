// `ironmesh mcp` as a subprocess, driven by the MCP SDK's own client over stdio, against real
// daemons on 127.0.0.1 (and, with --own-node, a node inside the MCP server).
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../support/assert.ts";
import { CLI_MAIN, taskPermissionFlags, tempDir } from "../support/cli.ts";
import { call } from "../support/control.ts";
import { waitFor } from "../support/wait.ts";
import { type Daemon, passFile, startDaemon } from "../support/daemon.ts";
import { ControlClient } from "../../daemon/control_client.ts";
import type { InboxEntry } from "../../daemon/control_api.ts";
import type { PeerStatus } from "../../daemon/node.ts";
import { encodeRpcError, encodeRpcRequest, encodeRpcResponse, parseRpc } from "../../sdk/rpc.ts";

const TOOLS = [
  "ironmesh_list_peers",
  "ironmesh_send_message",
  "ironmesh_request_service",
  "ironmesh_reply_to_request",
  "ironmesh_discover_capabilities",
  "ironmesh_advertise_capability",
  "ironmesh_withdraw_capability",
  "ironmesh_list_messages",
  "ironmesh_get_mesh_stats",
  "ironmesh_trust_list",
  "ironmesh_trust_peer",
  "ironmesh_block_peer",
  "ironmesh_get_audit_log",
];

/** An MCP client connected to `ironmesh mcp <args>` (a child process it started). */
interface McpSession {
  client: Client;
  pid: number | null;
  stderr(): string;
  /** Call a tool; the parsed JSON of its text, or `{error}` for a tool error. */
  tool(name: string, args?: Record<string, unknown>): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

async function startMcp(args: string[]): Promise<McpSession> {
  const transport = new StdioClientTransport({
    command: Deno.execPath(),
    args: ["run", "--quiet", ...taskPermissionFlags(), CLI_MAIN, "mcp", ...args],
    env: { NO_COLOR: "1", HOME: "/nonexistent-home" },
    stderr: "pipe",
  });
  let err = "";
  transport.stderr?.on("data", (c: Uint8Array) => err += new TextDecoder().decode(c));
  const client = new Client({ name: "ironmesh-test", version: "1.0.0" });
  await client.connect(transport, { timeout: 30_000 });
  return {
    client,
    pid: transport.pid,
    stderr: () => err,
    async tool(name, a = {}) {
      const r = await client.callTool({ name, arguments: a }, undefined, { timeout: 60_000 });
      const text = (r.content as { type: string; text: string }[])[0].text;
      return r.isError ? { error: text } : JSON.parse(text);
    },
    close: () => client.close(),
  };
}

const utf8 = new TextEncoder();
const text = (b: Uint8Array) => new TextDecoder().decode(b);

/**
 * A service on a daemon, speaking the SDK's envelope (sdk/rpc.ts) through the daemon's control
 * socket: answers every request with `echo: <body>`, or with an error for the body "fail".
 */
function echoResponder(d: Daemon): () => Promise<void> {
  let client: ControlClient | null = null;
  const running = (async () => {
    client = await ControlClient.connect(d.stateDir);
    try {
      for await (const m of client.stream<InboxEntry>("inbox.follow", {})) {
        const rpc = parseRpc(m.type, utf8.encode(m.text ?? ""));
        if (rpc?.kind !== "request") continue;
        const body = text(rpc.body.bytes);
        const reply = body === "fail"
          ? encodeRpcError(rpc.id, "BAD_INPUT", "cannot do that")
          : encodeRpcResponse(rpc.id, `echo: ${body}`);
        await client.call("send", { to: m.from, text: text(reply), type: "RESP" });
      }
    } catch { /* closed by stop() */ }
  })();
  return async () => {
    await client?.close();
    await running;
  };
}

Deno.test("mcp: attached to a daemon, an MCP client lists the tools and uses the mesh end to end", async () => {
  await using dir = await tempDir();
  const alpha = await startDaemon("alpha", `${dir.path}/a`, ["--require-message-promotion"]);
  const others: Daemon[] = [];
  let mcp: McpSession | null = null;
  let stopResponder = async () => {};
  try {
    const connect = ["--connect", `127.0.0.1:${alpha.port}`];
    others.push(
      ...await Promise.all([
        startDaemon("beta", `${dir.path}/b`, [...connect, "--capability", "svc:echo"]),
        startDaemon("gamma", `${dir.path}/g`, connect),
      ]),
    );
    const [beta, gamma] = others;
    await waitFor(
      async () =>
        (await call<PeerStatus[]>(alpha.stateDir, "peers")).filter((p) => p.online).length === 2,
      "alpha sees beta and gamma",
    );
    mcp = await startMcp(["--state-dir", alpha.stateDir]);

    // The tools and their schemas.
    const tools = (await mcp.client.listTools()).tools as {
      name: string;
      description?: string;
      inputSchema: { type: string; properties?: Record<string, unknown> };
    }[];
    assertEquals(tools.map((t) => t.name).sort(), [...TOOLS].sort());
    for (const t of tools) {
      assertEquals(t.inputSchema.type, "object", t.name);
      assert((t.description ?? "").length > 60, `${t.name} has a description for the model`);
    }
    const send = tools.find((t) => t.name === "ironmesh_send_message")!;
    for (const p of ["target", "capability", "payload", "priority", "wait_for_delivery"]) {
      assert(p in (send.inputSchema.properties ?? {}), `send_message takes ${p}`);
    }
    const promote = tools.find((t) => t.name === "ironmesh_trust_peer")!;
    assert("confirm" in (promote.inputSchema.properties ?? {}), "trust_peer takes confirm");

    // Peers, with their trust state on alpha (new peers are pending: promotion is required).
    const peers = await mcp.tool("ironmesh_list_peers", { online_only: true });
    const rows = peers.peers as { node_id: string; name: string; trust_state: string }[];
    assertEquals(rows.map((p) => p.name).sort(), ["beta", "gamma"]);
    assert(rows.every((p) => p.trust_state === "pending"), JSON.stringify(rows));

    // Send: the message lands in beta's inbox.
    const sent = await mcp.tool("ironmesh_send_message", {
      target: "beta",
      payload: "hello from the model",
      wait_for_delivery: true,
      timeout_s: 15,
    });
    assertEquals(sent.ok, true, JSON.stringify(sent));
    assertEquals(sent.to, beta.nodeId);
    assertEquals(sent.status, "delivered");
    const inbox = await call<InboxEntry[]>(beta.stateDir, "inbox");
    assertEquals(inbox.map((m) => [m.from, m.text]), [[alpha.nodeId, "hello from the model"]]);

    // Promotion needs confirm: true; without it nothing changes.
    const refused = await mcp.tool("ironmesh_trust_peer", { peer: "beta" });
    assertStringIncludes(String(refused.error), "confirm: true");
    let trust = await mcp.tool("ironmesh_trust_list", { state: "pending" });
    assertEquals(trust.count, 2);
    const promoted = await mcp.tool("ironmesh_trust_peer", { peer: "beta", confirm: true });
    assertEquals([promoted.ok, promoted.old_state, promoted.trust_state], [
      true,
      "pending",
      "trusted",
    ]);
    const blockRefused = await mcp.tool("ironmesh_block_peer", { peer: "gamma", confirm: false });
    assertStringIncludes(String(blockRefused.error), "confirm: true");
    const blocked = await mcp.tool("ironmesh_block_peer", { peer: "gamma", confirm: true });
    assertEquals(blocked.trust_state, "blocked");
    const notPending = await mcp.tool("ironmesh_block_peer", { peer: "beta", confirm: true });
    assertStringIncludes(String(notPending.error), "trusted, not pending");
    trust = await mcp.tool("ironmesh_trust_list", {});
    const states = Object.fromEntries(
      (trust.peers as { names: string[]; trust_state: string }[]).map((
        p,
      ) => [p.names[0], p.trust_state]),
    );
    assertEquals(states, { beta: "trusted", gamma: "blocked" });

    // Request/response: beta answers REQ envelopes; by name and by capability.
    stopResponder = echoResponder(beta);
    const reply = await mcp.tool("ironmesh_request_service", {
      target: "beta",
      body: "ping",
      timeout_s: 20,
    });
    assertEquals(reply.ok, true, JSON.stringify(reply));
    assertEquals(reply.response, "echo: ping");
    assertEquals(reply.from, beta.nodeId);
    await waitFor(
      async () =>
        ((await mcp!.tool("ironmesh_discover_capabilities", { pattern: "svc:*" }))
          .capabilities as unknown[]).length === 1,
      "alpha learns beta's svc:echo",
    );
    const byCap = await mcp.tool("ironmesh_request_service", {
      capability: "svc:echo",
      body: { n: 1 },
      timeout_s: 20,
    });
    assertEquals([byCap.response, byCap.from], ['echo: {"n":1}', beta.nodeId]);
    const failed = await mcp.tool("ironmesh_request_service", { target: "beta", body: "fail" });
    assertStringIncludes(String(failed.error), "beta answered with an error: BAD_INPUT");

    // The MCP side serves a request: it reads it, then answers with ironmesh_reply_to_request.
    await call(beta.stateDir, "send", {
      to: "alpha",
      text: text(encodeRpcRequest("req-1", { q: "status?" })),
      type: "REQ",
    });
    let request: { from: string; rpc: { kind: string; correlation_id: string; body: unknown } };
    await waitFor(async () => {
      const l = await mcp!.tool("ironmesh_list_messages", { from: "beta" });
      request = (l.messages as (typeof request)[]).find((m) => m.rpc?.kind === "request")!;
      return request !== undefined;
    }, "alpha receives beta's request");
    assertEquals([request!.rpc.correlation_id, request!.rpc.body], ["req-1", { q: "status?" }]);
    const answered = await mcp.tool("ironmesh_reply_to_request", {
      target: request!.from,
      correlation_id: "req-1",
      body: "all good",
    });
    assertEquals(answered.ok, true, JSON.stringify(answered));
    await waitFor(async () => {
      const got = await call<InboxEntry[]>(beta.stateDir, "inbox", { from: "alpha" });
      return got.some((m) => {
        const rpc = m.type === "RESP" ? parseRpc(m.type, utf8.encode(m.text ?? "")) : null;
        return rpc?.kind === "response" && rpc.id === "req-1" &&
          text(rpc.body.bytes) === "all good";
      });
    }, "beta gets the answer");

    // A request nobody answers times out with a tool error that says so.
    const silent = await mcp.tool("ironmesh_request_service", {
      target: gamma.nodeId,
      body: "anyone?",
      timeout_s: 1,
    });
    assertMatch(String(silent.error), /no reply from [0-9a-f]+ within 1 s/);

    // Received messages, with a wait for a new one (nothing newer than `since` yet).
    const before = await mcp.tool("ironmesh_list_messages", { from: "beta" });
    const waiting = mcp.tool("ironmesh_list_messages", {
      from: "beta",
      since: before.next_since,
      wait_s: 15,
    });
    await new Promise((r) => setTimeout(r, 300));
    await call(beta.stateDir, "send", { to: "alpha", text: "news from beta" });
    const got = await waiting;
    assertEquals((got.messages as { text: string }[]).map((m) => m.text), ["news from beta"]);
    const none = await mcp.tool("ironmesh_list_messages", { since: got.next_since, wait_s: 0.2 });
    assertEquals(none.count, 0);
    const recent = await mcp.tool("ironmesh_list_messages", { since: "10m", limit: 50 });
    const all = recent.messages as { text: string; type: string; rpc?: { kind: string } }[];
    assert(all.some((m) => m.text === "news from beta"), JSON.stringify(all));
    assert(all.some((m) => m.type === "RESP" && m.rpc?.kind === "response"), "replies listed");

    // Advertise / withdraw a capability: beta sees it come and go.
    const adv = await mcp.tool("ironmesh_advertise_capability", { capability: "llm:test" });
    assertEquals([adv.ok, adv.own_capabilities], [true, ["llm:test"]]);
    const badCap = await mcp.tool("ironmesh_advertise_capability", { capability: "no colon" });
    assertStringIncludes(String(badCap.error), "NAMESPACE:NAME");
    await waitFor(
      async () =>
        (await call<{ capabilities: { node_id: string }[] }>(beta.stateDir, "caps", {
          pattern: "llm:test",
        })).capabilities.some((c) => c.node_id === alpha.nodeId),
      "beta learns alpha's llm:test",
    );
    const wd = await mcp.tool("ironmesh_withdraw_capability", { capability: "llm:test" });
    assertEquals([wd.changed, wd.own_capabilities], [true, []]);

    // Stats and the audit log.
    const stats = await mcp.tool("ironmesh_get_mesh_stats");
    const node = stats.node as Record<string, unknown>;
    assertEquals([node.node_id, node.name, node.mcp_mode], [alpha.nodeId, "alpha", "attach"]);
    assertEquals((stats.peers as Record<string, number>).online, 2);
    const audit = await mcp.tool("ironmesh_get_audit_log", { limit: 100 });
    const events = (audit.entries as { event: string }[]).map((e) => e.event);
    assert(events.length > 0, "audit entries");
    assert(events.some((e) => e.startsWith("PEER_")), events.join());
    const filtered = await mcp.tool("ironmesh_get_audit_log", { events: ["no_such_event"] });
    assertEquals(filtered.count, 0);

    // Bad arguments are tool errors the model can act on, not crashes.
    const both = await mcp.tool("ironmesh_send_message", {
      target: "beta",
      capability: "svc:*",
      payload: "x",
    });
    assertStringIncludes(String(both.error), "exactly one of target or capability");
    const unknown = await mcp.tool("ironmesh_send_message", { target: "nobody", payload: "x" });
    assertMatch(String(unknown.error), /^error: /);
  } finally {
    await stopResponder();
    await mcp?.close();
    for (const d of others) await d.stop();
    await alpha.stop();
  }
});

Deno.test("mcp: --own-node runs a node in the MCP server; the CLI reaches it meanwhile", async () => {
  await using dir = await tempDir();
  const beta = await startDaemon("beta", `${dir.path}/b`);
  const own = `${dir.path}/own`;
  await Deno.mkdir(own, { mode: 0o700 });
  const pf = await passFile(own);
  let mcp: McpSession | null = null;
  try {
    mcp = await startMcp([
      "--own-node",
      "--name",
      "desk",
      "--port",
      "0",
      "--bind",
      "127.0.0.1",
      "--connect",
      `127.0.0.1:${beta.port}`,
      "--allow-plaintext-ws",
      "--passphrase-file",
      pf,
      "--state-dir",
      own,
    ]);
    await waitFor(async () => {
      const p = await mcp!.tool("ironmesh_list_peers", { online_only: true });
      return (p.peers as { name: string }[]).some((x) => x.name === "beta");
    }, "own node connects to beta");
    const stats = await mcp.tool("ironmesh_get_mesh_stats");
    const node = stats.node as Record<string, unknown>;
    assertEquals([node.name, node.mcp_mode], ["desk", "own-node"]);
    // The control socket of the own node serves the CLI's methods too.
    const status = await call<{ node_id: string }>(own, "status");
    assertEquals(status.node_id, node.node_id);
    const sent = await mcp.tool("ironmesh_send_message", {
      target: "beta",
      payload: "from the own node",
      wait_for_delivery: true,
    });
    assertEquals(sent.status, "delivered", JSON.stringify(sent));
    assertEquals((await call<InboxEntry[]>(beta.stateDir, "inbox")).map((m) => m.text), [
      "from the own node",
    ]);
    await mcp.close();
    mcp = null;
    // Closing the client stops the node: its socket is gone and the state dir is free.
    await waitFor(
      async () => {
        try {
          await Deno.lstat(`${own}/control.sock`);
          return false;
        } catch {
          return true;
        }
      },
      "control socket removed",
      10_000,
    );
  } finally {
    await mcp?.close();
    await beta.stop();
  }
});

Deno.test("mcp: without a running daemon it exits 14 with a one-line error and a hint, stdout empty", async () => {
  await using dir = await tempDir();
  await Deno.chmod(dir.path, 0o700);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", ...taskPermissionFlags(), CLI_MAIN, "mcp", "--state-dir", dir.path],
    env: { NO_COLOR: "1", HOME: "/nonexistent-home" },
    clearEnv: true,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  await child.stdin.close();
  const out = await child.output();
  clearTimeout(timer);
  const stderr = new TextDecoder().decode(out.stderr);
  assertEquals(out.code, 14, stderr);
  assertEquals(new TextDecoder().decode(out.stdout), "");
  assertMatch(stderr, /^error: no ironmesh daemon is running on .* — start one with 'ironmesh run/);
  assertStringIncludes(stderr, "--own-node");
  assertEquals(stderr.trim().split("\n").length, 1);
});

Deno.test("mcp: --list-tools, and flags that need --own-node are refused", async () => {
  const run = async (args: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", ...taskPermissionFlags(), CLI_MAIN, "mcp", ...args],
      env: { NO_COLOR: "1", HOME: "/nonexistent-home" },
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  };
  const list = await run(["--list-tools"]);
  assertEquals(list.code, 0, list.stderr);
  assertEquals(list.stdout.trim().split("\n").map((l) => l.split(/\s+/)[0]), TOOLS);
  const bad = await run(["--name", "x"]);
  assertEquals(bad.code, 2);
  assertStringIncludes(bad.stderr, "--name goes with --own-node");
});

Deno.test("mcp: stdout carries only JSON-RPC, and the server exits 0 when stdin closes", async () => {
  await using dir = await tempDir();
  const alpha = await startDaemon("alpha", `${dir.path}/a`);
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        ...taskPermissionFlags(),
        CLI_MAIN,
        "mcp",
        "--log-level",
        "debug",
        "--state-dir",
        alpha.stateDir,
      ],
      env: { NO_COLOR: "1", HOME: "/nonexistent-home" },
      clearEnv: true,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    const w = child.stdin.getWriter();
    const lines = [
      {
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: {
          protocolVersion: "2025-06-18",
          capabilities: {},
          clientInfo: { name: "raw", version: "1" },
        },
      },
      { jsonrpc: "2.0", method: "notifications/initialized" },
      { jsonrpc: "2.0", id: 2, method: "tools/list" },
      {
        jsonrpc: "2.0",
        id: 3,
        method: "tools/call",
        params: { name: "ironmesh_get_mesh_stats", arguments: {} },
      },
    ];
    for (const l of lines) await w.write(new TextEncoder().encode(JSON.stringify(l) + "\n"));
    // Close stdin once the last answer is out.
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let out = "";
    while (!/"id":3/.test(out)) {
      const r = await reader.read();
      if (r.done) break;
      out += r.value;
    }
    await w.close();
    for (let r = await reader.read(); !r.done; r = await reader.read()) out += r.value;
    const status = await child.status;
    clearTimeout(timer);
    const stderr = new TextDecoder().decode(
      (await new Response(child.stderr).arrayBuffer()) as ArrayBuffer,
    );
    assertEquals(status.code, 0, stderr);
    const msgs = out.trim().split("\n").map((l) => JSON.parse(l));
    assert(msgs.every((m) => m.jsonrpc === "2.0"), out);
    assertEquals(msgs.map((m) => m.id), [1, 2, 3]);
    assertEquals(msgs[0].result.serverInfo.name, "ironmesh");
    assertStringIncludes(msgs[0].result.instructions, "untrusted data");
    const stats = JSON.parse(msgs[2].result.content[0].text);
    assertEquals(stats.node.node_id, alpha.nodeId);
    assertStringIncludes(stderr, "MCP server ready on stdio");
  } finally {
    await alpha.stop();
  }
});
