// The control socket through a real Unix socket in a temp state dir: calls, multiplexing,
// errors, protocol abuse, streams and their cancellation, permissions, stale and live
// sockets, the client cap, shutdown.
import { join } from "node:path";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../support/assert.ts";
import { waitFor } from "../support/wait.ts";
import { ExitCode, IronMeshError } from "../../lib/errors.ts";
import { Logger } from "../../lib/log.ts";
import {
  type ControlContext,
  ControlServer,
  type ControlServerOptions,
  controlSocketPath,
  MAX_CLIENTS,
  MAX_LINE_BYTES,
  optionalBool,
  optionalInt,
  readLines,
  requireString,
  writeAll,
} from "../../daemon/control.ts";
import { ControlClient, isDaemonRunning } from "../../daemon/control_client.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll `cond` every 5 ms; fail after `ms`. */
async function until(cond: () => boolean, what: string, ms = 3_000): Promise<void> {
  await waitFor(cond, what, ms, { intervalMs: 5 });
}

/** A temp state dir (0700), a server on it with an `echo` method, and a captured log. */
async function setup(opts: ControlServerOptions = {}) {
  const dir = await Deno.makeTempDir({ prefix: "imctl" });
  const logs: string[] = [];
  const server = new ControlServer(dir, {
    log: new Logger("info", "text", {}, (l) => logs.push(l)),
    ...opts,
  });
  server.handle("echo", (params) => params);
  const clients: { close(): unknown }[] = [];
  return {
    dir,
    server,
    logs,
    /** A client closed by cleanup(). */
    async client(): Promise<ControlClient> {
      const c = await ControlClient.connect(dir);
      clients.push(c);
      return c;
    },
    async raw(): Promise<RawConn> {
      const c = await RawConn.open(dir);
      clients.push(c);
      return c;
    },
    async cleanup() {
      for (const c of clients) await c.close();
      await server.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** A bare socket speaking lines, to test the wire itself. */
class RawConn {
  #lines: AsyncGenerator<string>;
  #pending: Promise<IteratorResult<string>> | null = null;
  #closed = false;

  constructor(readonly conn: Deno.UnixConn) {
    this.#lines = readLines(conn, 64 * MAX_LINE_BYTES);
  }

  static async open(dir: string): Promise<RawConn> {
    return new RawConn(await Deno.connect({ transport: "unix", path: controlSocketPath(dir) }));
  }

  send(msg: unknown): Promise<void> {
    const line = typeof msg === "string" ? msg : JSON.stringify(msg);
    return writeAll(this.conn, new TextEncoder().encode(line + "\n"));
  }

  /**
   * The next line parsed, or null once the server closed. (A server that closes with our
   * bytes still unread makes Linux report ECONNRESET after its last line instead of EOF.)
   */
  async recv(ms = 3_000): Promise<Record<string, unknown> | null> {
    this.#pending ??= this.#lines.next().catch((e) => {
      if (e instanceof Deno.errors.ConnectionReset) return { done: true, value: undefined };
      throw e;
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const r = await Promise.race([
      this.#pending,
      new Promise<"timeout">((res) => timer = setTimeout(() => res("timeout"), ms)),
    ]);
    clearTimeout(timer);
    if (r === "timeout") throw new Error(`no line within ${ms} ms`);
    this.#pending = null;
    return r.done ? null : JSON.parse(r.value);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.conn.close();
    } catch { /* already closed by the server */ }
    await this.#pending?.catch(() => {});
  }
}

/**
 * Leave a socket file at `path` that nobody listens on, as a daemon killed with SIGKILL does.
 * (Deno unlinks a listener's path on close, so bind elsewhere and move the socket first.)
 */
async function staleSocket(path: string): Promise<void> {
  const l = Deno.listen({ transport: "unix", path: path + ".tmp" });
  await Deno.rename(path + ".tmp", path);
  l.close();
}

/** An infinite stream of ticks that records how it ended. */
function ticker(state: { finished: boolean }, ctx: ControlContext, everyMs = 5) {
  return (async function* () {
    try {
      for (let i = 0;; i++) {
        yield i;
        await sleep(everyMs);
        if (ctx.signal.aborted) return;
      }
    } finally {
      state.finished = true;
    }
  })();
}

Deno.test("a call returns the handler's result; params and context reach the handler", async () => {
  const t = await setup();
  try {
    let seen: ControlContext | undefined;
    t.server.handle("status", (params, ctx) => {
      seen = ctx;
      return { node: "alice", peers: 2, asked: params.verbose ?? false };
    });
    t.server.handle("nothing", () => undefined);
    t.server.handle("later", async () => {
      await sleep(5);
      return [1, "two", null];
    });
    await t.server.start();
    const c = await t.client();
    assertEquals(await c.call("status", { verbose: true }), {
      node: "alice",
      peers: 2,
      asked: true,
    });
    assertEquals(seen?.method, "status");
    assertEquals(seen?.signal.aborted, false);
    assertEquals(await c.call("nothing"), null);
    assertEquals(await c.call("later"), [1, "two", null]);
    assertEquals(await c.call("echo", { s: "héllo ✓\nnext" }), { s: "héllo ✓\nnext" });
  } finally {
    await t.cleanup();
  }
});

Deno.test("concurrent calls on one connection are answered by id, as each finishes", async () => {
  const t = await setup();
  try {
    // Each call waits for the test to open its gate: all three must be in flight at once.
    const gates = new Map<string, () => void>();
    t.server.handle("gate", (p) => {
      const v = requireString(p, "v");
      return new Promise((resolve) => gates.set(v, () => resolve(v)));
    });
    t.server.handle("sleep", async (p) => {
      await sleep(optionalInt(p, "ms") ?? 0);
      return p.v;
    });
    await t.server.start();
    const c = await t.client();
    const order: unknown[] = [];
    const calls = ["a", "b", "c"].map((v) =>
      c.call("gate", { v }).then((r) => {
        order.push(r);
        return r;
      })
    );
    await until(() => gates.size === 3, "three calls in flight on one connection");
    for (const v of ["b", "c", "a"]) {
      gates.get(v)!();
      await until(() => order.at(-1) === v, `the answer to ${v}`);
    }
    assertEquals(await Promise.all(calls), ["a", "b", "c"]);
    assertEquals(order, ["b", "c", "a"]);

    // On the wire: string and number ids, answers in completion order.
    const raw = await t.raw();
    await raw.send({ id: "slow", method: "sleep", params: { v: 1, ms: 100 } });
    await raw.send({ id: 7, method: "sleep", params: { v: 2, ms: 0 } });
    assertEquals(await raw.recv(), { id: 7, result: 2 });
    assertEquals(await raw.recv(), { id: "slow", result: 1 });
  } finally {
    await t.cleanup();
  }
});

Deno.test("errors round-trip with code, message, hint and exit code", async () => {
  const t = await setup();
  try {
    t.server.handle("trust.revoke", () => {
      throw new IronMeshError(
        "PEER_UNKNOWN",
        "no peer named 'bob'",
        "list peers with 'ironmesh trust list'",
        ExitCode.NOT_FOUND,
      );
    });
    t.server.handle("crash", () => Promise.reject(new Error("disk on fire")));
    t.server.handle("send", (p) => ({ to: requireString(p, "to"), wait: optionalBool(p, "wait") }));
    t.server.handle("big", () => ({ n: 1n }));
    await t.server.start();
    const c = await t.client();

    const e = await assertRejects(() => c.call("trust.revoke", { peer: "bob" }), IronMeshError);
    const err = e as IronMeshError;
    assertEquals(
      [err.code, err.message, err.hint, err.exitCode],
      ["PEER_UNKNOWN", "no peer named 'bob'", "list peers with 'ironmesh trust list'", 7],
    );

    const crash = await assertRejects(() => c.call("crash"), IronMeshError) as IronMeshError;
    assertEquals(crash.code, "INTERNAL");
    assertStringIncludes(crash.message, "disk on fire");
    assertEquals(crash.hint, "see the daemon log");
    assert(t.logs.some((l) => l.includes("disk on fire")), "the crash is logged");

    const bad = await assertRejects(() => c.call("send", { to: 5 }), IronMeshError);
    assertEquals((bad as IronMeshError).code, "BAD_PARAMS");
    assertStringIncludes(bad.message, "params.to must be a string");
    assertEquals((bad as IronMeshError).exitCode, ExitCode.BAD_INPUT);
    assertEquals(await c.call("send", { to: "bob", wait: null }), { to: "bob" });

    const big = await assertRejects(() => c.call("big"), IronMeshError) as IronMeshError;
    assertEquals(big.code, "INTERNAL");
    assertEquals(await c.call("echo", { still: "fine" }), { still: "fine" });
  } finally {
    await t.cleanup();
  }
});

Deno.test("an unknown method is UNKNOWN_METHOD with a hint naming the known ones", async () => {
  const t = await setup();
  try {
    t.server.handle("status", () => ({}));
    await t.server.start();
    const c = await t.client();
    const e = await assertRejects(() => c.call("statsu"), IronMeshError) as IronMeshError;
    assertEquals(e.code, "UNKNOWN_METHOD");
    assertStringIncludes(e.message, "'statsu'");
    assertStringIncludes(e.hint, "known: echo, status");
    assertStringIncludes(e.hint, "different versions");
    assertEquals(e.exitCode, ExitCode.UNSUPPORTED);
  } finally {
    await t.cleanup();
  }
});

Deno.test("malformed requests get BAD_REQUEST and the connection stays usable", async () => {
  const t = await setup();
  try {
    await t.server.start();
    const raw = await t.raw();
    const code = (
      m: Record<string, unknown> | null,
    ) => [m?.id, (m?.error as Record<string, unknown>)?.code];
    await raw.send("this is not json");
    const first = await raw.recv();
    assertEquals(code(first), [null, "BAD_REQUEST"]);
    assertStringIncludes(
      String((first?.error as Record<string, unknown>).message),
      "not valid JSON",
    );
    await raw.send("[1, 2]");
    assertEquals(code(await raw.recv()), [null, "BAD_REQUEST"]);
    await raw.send({ id: true, method: "echo" });
    assertEquals(code(await raw.recv()), [null, "BAD_REQUEST"]);
    await raw.send({ id: 3 });
    assertEquals(code(await raw.recv()), [3, "BAD_REQUEST"]);
    await raw.send({ id: 4, method: "echo", params: [1] });
    assertEquals(code(await raw.recv()), [4, "BAD_REQUEST"]);
    await raw.send("");
    await raw.send({ id: 5, method: "echo", params: { ok: 1 } });
    assertEquals(await raw.recv(), { id: 5, result: { ok: 1 } });
    await raw.send(`{"id":6,"method":"echo"}\r`); // CRLF line endings are fine
    assertEquals(await raw.recv(), { id: 6, result: {} });
  } finally {
    await t.cleanup();
  }
});

Deno.test("a line over 1 MiB gets REQUEST_TOO_LARGE and the connection is closed", async () => {
  const t = await setup();
  try {
    await t.server.start();
    const raw = await t.raw();
    // The server answers before the line ends, so this write may fail half-way.
    const writing = raw.send(
      `{"id":1,"method":"echo","params":{"s":"${"x".repeat(MAX_LINE_BYTES)}"}}`,
    )
      .catch(() => {});
    const m = await raw.recv();
    assertEquals(m?.id, null);
    assertEquals((m?.error as Record<string, unknown>).code, "REQUEST_TOO_LARGE");
    assertEquals(await raw.recv(), null);
    await writing;
    await until(() => t.server.clientCount === 0, "the client to be dropped");

    // The client refuses locally, without losing its connection.
    const c = await t.client();
    const e = await assertRejects(
      () => c.call("echo", { s: "x".repeat(MAX_LINE_BYTES) }),
      IronMeshError,
    );
    assertEquals((e as IronMeshError).code, "REQUEST_TOO_LARGE");
    assertEquals(await c.call("echo", { s: "small" }), { s: "small" });
  } finally {
    await t.cleanup();
  }
});

Deno.test("the line limit is exact: maxLineBytes passes, one more byte does not", async () => {
  const t = await setup({ maxLineBytes: 1000 });
  try {
    await t.server.start();
    const line = (n: number) => {
      const head = '{"id":1,"method":"echo","params":{"s":"';
      return head + "y".repeat(n - head.length - 3) + '"}}';
    };
    assertEquals(line(1000).length, 1000);
    const raw = await t.raw();
    await raw.send(line(1000));
    assertEquals(((await raw.recv())?.result as Record<string, string>).s.length, 1000 - 42);
    await raw.send(line(1001));
    assertEquals(((await raw.recv())?.error as Record<string, unknown>).code, "REQUEST_TOO_LARGE");
    assertEquals(await raw.recv(), null);
  } finally {
    await t.cleanup();
  }
});

Deno.test("a stream sends its values as events, then end", async () => {
  const t = await setup();
  try {
    t.server.handle("count", async function* (p) {
      for (let i = 1; i <= (optionalInt(p, "to") ?? 3); i++) yield { n: i };
    });
    // An async handler may validate first and then return the iterable.
    t.server.handle("checked", async (p) => {
      const to = optionalInt(p, "to", { min: 0, max: 10 }) ?? 2;
      await sleep(1);
      return (async function* () {
        for (let i = 0; i < to; i++) yield i;
      })();
    });
    await t.server.start();
    const c = await t.client();
    const got: unknown[] = [];
    for await (const ev of c.stream("count", { to: 4 })) got.push(ev);
    assertEquals(got, [{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }]);
    assertEquals(await Array.fromAsync(c.stream("checked")), [0, 1]);
    const e = await assertRejects(() => Array.fromAsync(c.stream("checked", { to: 11 })));
    assertEquals((e as IronMeshError).code, "BAD_PARAMS");

    const raw = await t.raw();
    await raw.send({ id: 9, method: "count", params: { to: 2 } });
    assertEquals(await raw.recv(), { id: 9, event: { n: 1 } });
    assertEquals(await raw.recv(), { id: 9, event: { n: 2 } });
    assertEquals(await raw.recv(), { id: 9, end: true });
  } finally {
    await t.cleanup();
  }
});

Deno.test("a stream that fails mid-way ends with the error", async () => {
  const t = await setup();
  try {
    t.server.handle("flaky", async function* () {
      yield 1;
      throw new IronMeshError("STORE_CORRUPT", "inbox is damaged", "run 'ironmesh doctor'");
    });
    await t.server.start();
    const c = await t.client();
    const got: unknown[] = [];
    const e = await assertRejects(async () => {
      for await (const ev of c.stream("flaky")) got.push(ev);
    }, IronMeshError);
    assertEquals(got, [1]);
    assertEquals([(e as IronMeshError).code, (e as IronMeshError).hint], [
      "STORE_CORRUPT",
      "run 'ironmesh doctor'",
    ]);
  } finally {
    await t.cleanup();
  }
});

Deno.test("breaking out of a stream cancels it: the server iterable's return() runs", async () => {
  const t = await setup();
  try {
    // A hand-made iterable whose third next() never settles: only cancel can stop it.
    let returned = 0;
    let signal: AbortSignal | undefined;
    t.server.handle("follow", (_p, ctx) => {
      signal = ctx.signal;
      let i = 0;
      return {
        [Symbol.asyncIterator]: () => ({
          next: () =>
            i < 2 ? Promise.resolve({ value: i++, done: false }) : new Promise<never>(() => {}),
          return: () => {
            returned++;
            return Promise.resolve({ value: undefined, done: true as const });
          },
        }),
      };
    });
    const gen = { finished: false };
    t.server.handle("ticks", (_p, ctx) => ticker(gen, ctx));
    await t.server.start();
    const c = await t.client();

    const got: unknown[] = [];
    for await (const ev of c.stream("follow")) {
      got.push(ev);
      if (got.length === 2) break;
    }
    assertEquals(got, [0, 1]);
    await until(() => returned === 1, "return() on the server iterable");
    assert(signal?.aborted, "the handler's signal is aborted on cancel");

    for await (const ev of c.stream("ticks")) if (ev === 3) break;
    await until(() => gen.finished, "the generator's finally block");

    // On the wire, a cancel is acknowledged with end.
    const raw = await t.raw();
    await raw.send({ id: 1, method: "follow" });
    assertEquals(await raw.recv(), { id: 1, event: 0 });
    assertEquals(await raw.recv(), { id: 1, event: 1 });
    await raw.send({ id: 1, cancel: true });
    assertEquals(await raw.recv(), { id: 1, end: true });
    await until(() => returned === 2, "return() after a wire cancel");
    await raw.send({ id: 1, cancel: true }); // a late cancel is ignored
    assertEquals(await c.call("echo", { after: "cancel" }), { after: "cancel" });
  } finally {
    await t.cleanup();
  }
});

Deno.test("a client that disconnects mid-stream stops the server's iterable", async () => {
  const t = await setup();
  try {
    const gen = { finished: false };
    let signal: AbortSignal | undefined;
    t.server.handle("ticks", (_p, ctx) => {
      signal = ctx.signal;
      return ticker(gen, ctx);
    });
    await t.server.start();
    const raw = await RawConn.open(t.dir);
    await raw.send({ id: 1, method: "ticks" });
    assertEquals(await raw.recv(), { id: 1, event: 0 });
    await until(() => t.server.clientCount === 1, "the client to be counted");
    await raw.close();
    await until(() => gen.finished, "the stream to stop after the disconnect");
    assert(signal?.aborted, "the handler's signal is aborted on disconnect");
    await until(() => t.server.clientCount === 0, "the client slot to be freed");

    // Same through ControlClient.close() while a stream is open.
    const gen2 = { finished: false };
    t.server.handle("ticks2", (_p, ctx) => ticker(gen2, ctx));
    const c = await ControlClient.connect(t.dir);
    const it = c.stream("ticks2")[Symbol.asyncIterator]();
    assertEquals((await it.next()).value, 0);
    await c.close();
    await until(() => gen2.finished, "the stream to stop after close()");
    const e = await assertRejects(() => it.next(), IronMeshError);
    assertEquals((e as IronMeshError).code, "CONTROL_CLIENT_CLOSED");
  } finally {
    await t.cleanup();
  }
});

Deno.test("call() on a stream and stream() on a call are clear errors", async () => {
  const t = await setup();
  try {
    const gen = { finished: false };
    t.server.handle("ticks", (_p, ctx) => ticker(gen, ctx));
    await t.server.start();
    const c = await t.client();
    const e1 = await assertRejects(() => c.call("ticks"), IronMeshError);
    assertStringIncludes(e1.message, "streaming method");
    await until(() => gen.finished, "the mistaken stream to be cancelled");
    const e2 = await assertRejects(() => Array.fromAsync(c.stream("echo")), IronMeshError);
    assertStringIncludes(e2.message, "not a streaming method");
  } finally {
    await t.cleanup();
  }
});

Deno.test("a call that outlives its timeout is DAEMON_NOT_RESPONDING and cancelled", async () => {
  const t = await setup();
  try {
    let aborted = false;
    t.server.handle(
      "hang",
      (_p, ctx) =>
        new Promise((resolve) =>
          ctx.signal.addEventListener("abort", () => {
            aborted = true;
            resolve("too late");
          })
        ),
    );
    await t.server.start();
    const c = await t.client();
    const e = await assertRejects(() => c.call("hang", {}, { timeoutMs: 50 }), IronMeshError);
    assertEquals((e as IronMeshError).code, "DAEMON_NOT_RESPONDING");
    await until(() => aborted, "the daemon-side abort");
    assertEquals(await c.call("echo", { ok: true }), { ok: true });
  } finally {
    await t.cleanup();
  }
});

Deno.test("the socket is 0600, nothing is left behind, and close removes it", async () => {
  const t = await setup();
  try {
    await t.server.start();
    const info = await Deno.lstat(t.server.path);
    assert(info.isSocket, "control.sock is a socket");
    assertEquals((info.mode ?? 0) & 0o777, 0o600);
    const names = [];
    for await (const e of Deno.readDir(t.dir)) names.push(e.name);
    assertEquals(names, ["control.sock"]);
    assertEquals(t.logs, [], "a 0700 state dir draws no warning");
    await t.server.close();
    await assertRejects(() => Deno.lstat(t.server.path), Deno.errors.NotFound);
  } finally {
    await t.cleanup();
  }
});

Deno.test("state dir permissions: writable by others refused, readable warned", async () => {
  const t = await setup();
  try {
    for (const mode of [0o770, 0o707, 0o777]) {
      await Deno.chmod(t.dir, mode);
      const s = new ControlServer(t.dir, { log: new Logger("info", "text", {}, () => {}) });
      const e = await assertRejects(() => s.start(), IronMeshError) as IronMeshError;
      assertEquals([e.code, e.exitCode], ["CONTROL_INSECURE_DIR", ExitCode.PERMISSION]);
      assertStringIncludes(e.hint, `chmod 700 ${t.dir}`);
      await s.close();
    }
    for await (const _ of Deno.readDir(t.dir)) throw new Error("a refused start leaves no file");

    await Deno.chmod(t.dir, 0o755);
    await t.server.start();
    assert(t.logs.some((l) => l.includes("WARN") && l.includes("chmod 700")), t.logs.join("\n"));
    assertEquals(((await Deno.lstat(t.server.path)).mode ?? 0) & 0o777, 0o600);

    const missing = new ControlServer(join(t.dir, "nope"));
    const e = await assertRejects(() => missing.start(), IronMeshError);
    assertEquals((e as IronMeshError).code, "NOT_FOUND");
  } finally {
    await Deno.chmod(t.dir, 0o700);
    await t.cleanup();
  }
});

Deno.test("a stale socket file is replaced; a non-socket file is refused", async () => {
  const t = await setup();
  try {
    await staleSocket(t.server.path);
    assert((await Deno.lstat(t.server.path)).isSocket, "the stale socket exists");
    assertEquals(await isDaemonRunning(t.dir), false);
    await t.server.start();
    const c = await t.client();
    assertEquals(await c.call("echo", { fresh: 1 }), { fresh: 1 });
    await c.close();
    await t.server.close();

    await Deno.writeTextFile(t.server.path, "not a socket");
    const s = new ControlServer(t.dir);
    const e = await assertRejects(() => s.start(), IronMeshError) as IronMeshError;
    assertEquals([e.code, e.exitCode], ["CONTROL_SOCKET_IN_USE", ExitCode.EXISTS]);
    assertEquals(await Deno.readTextFile(t.server.path), "not a socket");
  } finally {
    await t.cleanup();
  }
});

Deno.test("a second server on a live socket is refused and the first keeps serving", async () => {
  const t = await setup();
  try {
    await t.server.start();
    const ino = (await Deno.lstat(t.server.path)).ino;
    const second = new ControlServer(t.dir);
    const e = await assertRejects(() => second.start(), IronMeshError) as IronMeshError;
    assertEquals([e.code, e.exitCode], ["CONTROL_SOCKET_IN_USE", ExitCode.LOCKED]);
    assertStringIncludes(e.hint, "--state-dir");
    await second.close();
    assertEquals((await Deno.lstat(t.server.path)).ino, ino);
    const c = await t.client();
    assertEquals(await c.call("echo", { first: "alive" }), { first: "alive" });
  } finally {
    await t.cleanup();
  }
});

Deno.test("with no daemon the client says DAEMON_NOT_RUNNING (exit code 14)", async () => {
  const t = await setup();
  try {
    const check = async () => {
      const e = await assertRejects(() => ControlClient.connect(t.dir), IronMeshError);
      const err = e as IronMeshError;
      assertEquals([err.code, err.exitCode], ["DAEMON_NOT_RUNNING", 14]);
      assertEquals(err.exitCode, ExitCode.DAEMON_NOT_RUNNING);
      assertStringIncludes(err.hint, "start it with 'ironmesh run'");
      assertEquals(await isDaemonRunning(t.dir), false);
    };
    await check(); // no socket file
    await staleSocket(t.server.path);
    await check(); // a stale one

    await t.server.start();
    assertEquals(await isDaemonRunning(t.dir), true);
    await t.server.close();
    await check(); // after a clean stop
  } finally {
    await t.cleanup();
  }
});

Deno.test("a too-long state dir path is a clear error on both sides", async () => {
  const t = await setup();
  try {
    const deep = join(t.dir, "d".repeat(110 - t.dir.length));
    await Deno.mkdir(deep, { mode: 0o700 });
    const s = new ControlServer(deep);
    const e = await assertRejects(() => s.start(), IronMeshError);
    assertEquals((e as IronMeshError).code, "CONTROL_PATH_TOO_LONG");
    const e2 = await assertRejects(() => ControlClient.connect(deep), IronMeshError);
    assertEquals((e2 as IronMeshError).code, "CONTROL_PATH_TOO_LONG");
  } finally {
    await t.cleanup();
  }
});

Deno.test(`at most ${MAX_CLIENTS} clients: the next is told CONTROL_BUSY`, async () => {
  const t = await setup();
  try {
    await t.server.start();
    const clients: ControlClient[] = [];
    for (let i = 0; i < MAX_CLIENTS; i++) clients.push(await t.client());
    await until(() => t.server.clientCount === MAX_CLIENTS, "all clients to be counted");
    const extra = await t.client();
    const e = await assertRejects(() => extra.call("echo"), IronMeshError) as IronMeshError;
    assertEquals(e.code, "CONTROL_BUSY");
    assertStringIncludes(e.message, `${MAX_CLIENTS}`);
    assertEquals(t.server.clientCount, MAX_CLIENTS);
    assertEquals(await clients[63].call("echo", { n: 63 }), { n: 63 });

    await clients[0].close();
    await until(() => t.server.clientCount === MAX_CLIENTS - 1, "a slot to free up");
    const late = await t.client();
    assertEquals(await late.call("echo", { late: true }), { late: true });
  } finally {
    await t.cleanup();
  }
});

Deno.test("closing the server ends open streams and calls with DAEMON_STOPPING", async () => {
  const t = await setup();
  try {
    const gen = { finished: false };
    t.server.handle("ticks", (_p, ctx) => ticker(gen, ctx));
    t.server.handle("forever", () => new Promise(() => {})); // ignores its signal
    await t.server.start();
    const c = await t.client();
    const it = c.stream("ticks")[Symbol.asyncIterator]();
    assertEquals((await it.next()).value, 0);
    const pending = c.call("forever", {}, { timeoutMs: Infinity });
    pending.catch(() => {});
    await sleep(20);

    const t0 = Date.now();
    await t.server.close();
    assert(Date.now() - t0 < 1_500, "close does not wait for a handler that never ends");
    const e = await assertRejects(() => pending, IronMeshError) as IronMeshError;
    assertEquals([e.code, e.hint], ["DAEMON_STOPPING", "start it again with 'ironmesh run'"]);
    const e2 = await assertRejects(async () => {
      while (!(await it.next()).done) { /* drain events sent before the stop */ }
    }, IronMeshError);
    assertEquals((e2 as IronMeshError).code, "DAEMON_STOPPING");
    await until(() => gen.finished, "the stream to stop");
    const e3 = await assertRejects(() => c.call("echo"), IronMeshError);
    assertEquals((e3 as IronMeshError).code, "DAEMON_DISCONNECTED");
    assertEquals(c.open, false);
  } finally {
    await t.cleanup();
  }
});

Deno.test("readLines splits across chunks and stops at the limit", async () => {
  const chunks = ["ab", "c\nde", "f\r\n\ng", "h"].map((s) => new TextEncoder().encode(s));
  const reader = (parts: Uint8Array[]) => ({
    read(p: Uint8Array) {
      const next = parts.shift();
      if (!next) return Promise.resolve(null);
      p.set(next);
      return Promise.resolve(next.length);
    },
  });
  assertEquals(await Array.fromAsync(readLines(reader(chunks), 10)), ["abc", "def", "", "gh"]);
  const long = [new TextEncoder().encode("12345\n123456")];
  const got: string[] = [];
  await assertRejects(async () => {
    for await (const l of readLines(reader(long), 5)) got.push(l);
  });
  assertEquals(got, ["12345"]);
});
