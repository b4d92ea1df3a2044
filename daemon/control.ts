/**
 * The local control socket (ARCHITECTURE.md idea 8): `<stateDir>/control.sock`, a Unix
 * socket only its owner can use, speaking newline-delimited JSON. The daemon registers
 * methods with `handle()`; the CLI talks to it with `ControlClient` (control_client.ts).
 *
 * Wire format, one JSON object per line (UTF-8, at most `maxLineBytes` per line):
 *   request   {"id": 1, "method": "status", "params": {...}}     params optional, an object
 *   cancel    {"id": 1, "cancel": true}                          stops a stream
 *   result    {"id": 1, "result": ...}
 *   error     {"id": 1, "error": {"code", "message", "hint", "exitCode"}}
 *   event     {"id": 1, "event": ...}                            zero or more, then end or error
 *   end       {"id": 1, "end": true}
 * Requests on one connection run concurrently; answers carry the request's id. An error
 * that belongs to no request (bad JSON, line too long, server full) has `"id": null`.
 *
 * Permissions: the socket is bound inside a fresh 0700 directory, chmod 0600, then renamed
 * into place, so it is never connectable by another user, even for an instant. A state
 * directory that others can write (or that another user owns) is refused, since whoever
 * can write it can swap the socket; one others can merely read or enter only draws a
 * warning, as the socket itself stays 0600.
 */
import { join } from "node:path";
import { ExitCode, type ExitCodeValue, IronMeshError } from "../lib/errors.ts";
import { fsError } from "../lib/identity/keystore.ts";
import { Logger } from "../lib/log.ts";

/** Name of the control socket inside a state directory. */
export const CONTROL_SOCKET_NAME = "control.sock";
/** Longest request line the server accepts (bytes, without the newline). */
export const MAX_LINE_BYTES = 1_048_576;
/** Most clients connected at once; the next one is told CONTROL_BUSY and closed. */
export const MAX_CLIENTS = 64;

/** A request id: a number or a string chosen by the client, unique among its open requests. */
export type RequestId = number | string;

/** An error as it travels: the fields of an IronMeshError. */
export interface WireError {
  code: string;
  message: string;
  hint: string;
  exitCode: number;
}

/** One line from server to client. */
export type ControlResponse =
  | { id: RequestId; result: unknown }
  | { id: RequestId | null; error: WireError }
  | { id: RequestId; event: unknown }
  | { id: RequestId; end: true };

/** What a handler gets besides its params. */
export interface ControlContext {
  /** The method called. */
  readonly method: string;
  /** Which connection asked (for logs). */
  readonly clientId: number;
  /** Aborted when the client cancels or disconnects, or the server closes. */
  readonly signal: AbortSignal;
}

/**
 * A method: returns a result (or a promise of one), or an AsyncIterable whose values are
 * sent as events. Throw an IronMeshError to answer with its code, message and hint.
 */
export type ControlHandler = (params: Record<string, unknown>, ctx: ControlContext) => unknown;

/** Options of a ControlServer. */
export interface ControlServerOptions {
  /** Where warnings and handler crashes go (default: stderr at info level). */
  log?: Logger;
  maxClients?: number;
  maxLineBytes?: number;
}

/** Path of the control socket of a state directory. */
export function controlSocketPath(stateDir: string): string {
  return join(stateDir, CONTROL_SOCKET_NAME);
}

// sun_path holds 108 bytes on Linux and 104 on macOS, NUL included.
const MAX_SOCKET_PATH_BYTES = Deno.build.os === "darwin" ? 103 : 107;

/** Throw CONTROL_PATH_TOO_LONG when the kernel cannot bind or connect to `path`. */
export function checkSocketPathLength(path: string): void {
  const bytes = new TextEncoder().encode(path).length;
  if (bytes <= MAX_SOCKET_PATH_BYTES) return;
  throw new IronMeshError(
    "CONTROL_PATH_TOO_LONG",
    `control socket path ${path} is ${bytes} bytes; Unix sockets allow ${MAX_SOCKET_PATH_BYTES}`,
    "use a shorter --state-dir (or a relative one)",
    ExitCode.USAGE,
  );
}

/**
 * Connect to the control socket at `path`. No socket, or one nobody listens on, is
 * DAEMON_NOT_RUNNING; a socket that does not accept within `timeoutMs` is DAEMON_NOT_RESPONDING.
 */
export async function dialControlSocket(path: string, timeoutMs = 5_000): Promise<Deno.UnixConn> {
  checkSocketPathLength(path);
  const dial = Deno.connect({ transport: "unix", path });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<null>((resolve) =>
    timer = setTimeout(() => resolve(null), timeoutMs)
  );
  try {
    const conn = await Promise.race([dial, timeout]);
    if (conn) return conn;
    dial.then((c) => c.close(), () => {});
    throw notResponding(`the daemon did not accept a connection on ${path} within ${timeoutMs} ms`);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.ConnectionRefused) {
      throw new IronMeshError(
        "DAEMON_NOT_RUNNING",
        `no ironmesh daemon is running (nothing listens on ${path})`,
        "start it with 'ironmesh run' (same --state-dir), or run the command without a daemon",
        ExitCode.DAEMON_NOT_RUNNING,
      );
    }
    if (e instanceof Deno.errors.PermissionDenied) {
      throw new IronMeshError(
        "PERMISSION",
        `cannot connect to ${path}: permission denied`,
        "run the command as the user that runs the daemon",
        ExitCode.PERMISSION,
      );
    }
    throw e instanceof IronMeshError ? e : fsError(e, path, "control socket");
  } finally {
    clearTimeout(timer);
  }
}

/** DAEMON_NOT_RESPONDING with `message`. */
export function notResponding(message: string): IronMeshError {
  return new IronMeshError(
    "DAEMON_NOT_RESPONDING",
    message,
    "the daemon may be stuck: check its log, or restart it",
    ExitCode.FAILURE,
  );
}

/** The wire form of an error. */
export function toWireError(e: IronMeshError): WireError {
  return { code: e.code, message: e.message, hint: e.hint, exitCode: e.exitCode };
}

/** Rebuild an IronMeshError from its wire form (defensive: the other side may be anything). */
export function fromWireError(w: unknown): IronMeshError {
  const o = (typeof w === "object" && w !== null ? w : {}) as Record<string, unknown>;
  const str = (v: unknown, d: string) => typeof v === "string" ? v : d;
  const known = (Object.values(ExitCode) as number[]).includes(o.exitCode as number);
  return new IronMeshError(
    str(o.code, "INTERNAL"),
    str(o.message, "the daemon sent a malformed error"),
    str(o.hint, ""),
    known ? o.exitCode as ExitCodeValue : ExitCode.FAILURE,
  );
}

/** A line longer than the limit arrived. */
export class LineTooLong extends Error {
  constructor(readonly maxBytes: number) {
    super(`line longer than ${maxBytes} bytes`);
    this.name = "LineTooLong";
  }
}

/**
 * Lines from a byte stream, without their "\n" (a trailing "\r" is dropped too). Throws
 * LineTooLong as soon as a line passes `maxBytes`, without buffering the rest of it.
 */
export async function* readLines(
  r: { read(p: Uint8Array): Promise<number | null> },
  maxBytes: number,
): AsyncGenerator<string> {
  const buf = new Uint8Array(64 * 1024);
  const decoder = new TextDecoder();
  let parts: Uint8Array[] = [];
  let size = 0;
  const take = (last: Uint8Array): string => {
    let bytes = last;
    if (parts.length) {
      bytes = new Uint8Array(size + last.length);
      let at = 0;
      for (const p of parts) {
        bytes.set(p, at);
        at += p.length;
      }
      bytes.set(last, at);
    }
    parts = [];
    size = 0;
    const line = decoder.decode(bytes);
    return line.endsWith("\r") ? line.slice(0, -1) : line;
  };
  while (true) {
    const n = await r.read(buf);
    if (n === null) {
      if (size) yield take(new Uint8Array());
      return;
    }
    const chunk = buf.subarray(0, n);
    let start = 0;
    for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, start)) {
      if (size + nl - start > maxBytes) throw new LineTooLong(maxBytes);
      const line = take(chunk.subarray(start, nl));
      start = nl + 1;
      yield line;
    }
    if (size + n - start > maxBytes) throw new LineTooLong(maxBytes);
    if (start < n) {
      parts.push(chunk.slice(start));
      size += n - start;
    }
  }
}

/** Write all of `bytes`. */
export async function writeAll(
  w: { write(p: Uint8Array): Promise<number> },
  bytes: Uint8Array,
): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await w.write(bytes.subarray(at));
}

/** Encode one message as a line (throws on values JSON cannot carry, like BigInt). */
export function encodeLine(msg: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(msg) + "\n");
}

/** True for a plain JSON object (not null, not an array). */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

// ---- params helpers for handlers ----------------------------------------------------------

function badParam(name: string, want: string): IronMeshError {
  return new IronMeshError(
    "BAD_PARAMS",
    `params.${name} must be ${want}`,
    "a bug in the caller, or the CLI and the daemon are different versions",
    ExitCode.BAD_INPUT,
  );
}

/** `params[name]` as a string, or BAD_PARAMS. */
export function requireString(params: Record<string, unknown>, name: string): string {
  const v = params[name];
  if (typeof v !== "string") throw badParam(name, "a string");
  return v;
}

/** `params[name]` as a string when present (null counts as absent), else BAD_PARAMS. */
export function optionalString(params: Record<string, unknown>, name: string): string | undefined {
  return params[name] == null ? undefined : requireString(params, name);
}

/** `params[name]` as a safe integer within [min, max], or BAD_PARAMS. */
export function requireInt(
  params: Record<string, unknown>,
  name: string,
  { min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER } = {},
): number {
  const v = params[name];
  if (!Number.isSafeInteger(v) || (v as number) < min || (v as number) > max) {
    throw badParam(name, `an integer from ${min} to ${max}`);
  }
  return v as number;
}

/** Like requireInt, but absent (or null) gives undefined. */
export function optionalInt(
  params: Record<string, unknown>,
  name: string,
  range: { min?: number; max?: number } = {},
): number | undefined {
  return params[name] == null ? undefined : requireInt(params, name, range);
}

/** `params[name]` as a boolean when present (null counts as absent), else BAD_PARAMS. */
export function optionalBool(params: Record<string, unknown>, name: string): boolean | undefined {
  const v = params[name];
  if (v == null) return undefined;
  if (typeof v !== "boolean") throw badParam(name, "true or false");
  return v;
}

// ---- the server ---------------------------------------------------------------------------

type StopReason = "cancel" | "disconnect" | "stopping";

/** One request being served. */
interface InFlight {
  readonly method: string;
  done: boolean;
  reason?: StopReason;
  readonly abort: AbortController;
}

/** One connected client: its open requests and a serialized writer. */
class ClientConn {
  readonly inflight = new Map<RequestId, InFlight>();
  readonly tasks = new Set<Promise<void>>();
  #writes: Promise<void> = Promise.resolve();
  #open = true; // false once a write failed or close() ran
  #closed = false;

  constructor(readonly id: number, readonly conn: Deno.UnixConn) {}

  /** Queue a line; throws only when `msg` cannot be encoded. A gone client is ignored. */
  send(msg: ControlResponse): Promise<void> {
    const bytes = encodeLine(msg);
    this.#writes = this.#writes
      .then(() => this.#open ? writeAll(this.conn, bytes) : undefined)
      .catch(() => void (this.#open = false));
    return this.#writes;
  }

  /** Resolves when queued lines are written (or the client is gone). */
  flushed(): Promise<void> {
    return this.#writes;
  }

  /** Close the connection (idempotent); queued lines not yet written are dropped. */
  close(): void {
    this.#open = false;
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.conn.close();
    } catch { /* already closed */ }
  }
}

const ABORTED = Symbol("aborted");

/** `it.next()`, or ABORTED as soon as `signal` fires (the pending next() is left behind). */
function nextOrAbort<T>(
  it: AsyncIterator<T>,
  signal: AbortSignal,
): Promise<IteratorResult<T> | typeof ABORTED> {
  if (signal.aborted) return Promise.resolve(ABORTED);
  return new Promise((resolve, reject) => {
    const onAbort = () => resolve(ABORTED);
    signal.addEventListener("abort", onAbort, { once: true });
    it.next().then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

function isAsyncIterable(v: unknown): v is AsyncIterable<unknown> {
  return typeof v === "object" && v !== null && Symbol.asyncIterator in v;
}

/** Resolve after `p` settles or `ms` pass, whichever is first. */
async function within(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([p.catch(() => {}), new Promise((r) => timer = setTimeout(r, ms))]);
  clearTimeout(timer);
}

function protocolError(
  code: string,
  message: string,
  hint: string,
  exit: ExitCodeValue = ExitCode.BAD_INPUT,
): WireError {
  return toWireError(new IronMeshError(code, message, hint, exit));
}

/** Serves registered methods on `<stateDir>/control.sock`. */
export class ControlServer {
  readonly path: string;
  readonly #handlers = new Map<string, ControlHandler>();
  readonly #clients = new Set<ClientConn>();
  readonly #serving = new Set<Promise<void>>();
  readonly #log: Logger;
  readonly #maxClients: number;
  readonly #maxLineBytes: number;
  #listener: Deno.UnixListener | null = null;
  #accepting: Promise<void> = Promise.resolve();
  #ino: number | null = null;
  #nextClientId = 1;
  #closed = false;
  readonly #closing = Promise.withResolvers<void>();

  constructor(readonly stateDir: string, opts: ControlServerOptions = {}) {
    this.path = controlSocketPath(stateDir);
    this.#log = (opts.log ?? new Logger()).child({ component: "control" });
    this.#maxClients = opts.maxClients ?? MAX_CLIENTS;
    this.#maxLineBytes = opts.maxLineBytes ?? MAX_LINE_BYTES;
  }

  /** Register `method` (before or after start); registering a name twice is a bug and throws. */
  handle(method: string, handler: ControlHandler): this {
    if (this.#handlers.has(method)) throw new Error(`control method '${method}' registered twice`);
    this.#handlers.set(method, handler);
    return this;
  }

  /** Clients connected now. */
  get clientCount(): number {
    return this.#clients.size;
  }

  /**
   * Check the state dir, replace a stale socket, bind and start accepting. Throws
   * CONTROL_SOCKET_IN_USE when a live server answers on the socket, CONTROL_INSECURE_DIR
   * when others can write the state dir, CONTROL_PATH_TOO_LONG for an over-long path.
   */
  async start(): Promise<void> {
    if (this.#listener || this.#closed) throw new Error("a control server starts once");
    checkSocketPathLength(this.path);
    const dir = await this.#checkStateDir();
    await refuseLiveSocket(this.path);
    // Same length as "control.sock", so the length check above covers the staging path.
    const staging = join(this.stateDir, `.ctl${randomHex(3)}`);
    await Deno.mkdir(staging, { mode: 0o700 });
    let listener: Deno.UnixListener | null = null;
    try {
      await Deno.chmod(staging, 0o700); // mkdir's mode passes through the umask
      if (dir.uid !== null && (await Deno.lstat(staging)).uid !== dir.uid) {
        throw new IronMeshError(
          "CONTROL_INSECURE_DIR",
          `state directory ${this.stateDir} belongs to another user (uid ${dir.uid})`,
          "run the daemon as the directory's owner, or use a --state-dir of your own",
          ExitCode.PERMISSION,
        );
      }
      const stagedPath = join(staging, "s");
      listener = Deno.listen({ transport: "unix", path: stagedPath });
      await Deno.chmod(stagedPath, 0o600);
      await Deno.rename(stagedPath, this.path); // atomically replaces a stale socket
      this.#ino = (await Deno.lstat(this.path)).ino;
    } catch (e) {
      listener?.close();
      throw e instanceof IronMeshError ? e : fsError(e, this.path, "control socket");
    } finally {
      await Deno.remove(staging, { recursive: true }).catch(() => {});
    }
    this.#listener = listener;
    this.#accepting = this.#acceptLoop(listener);
  }

  /**
   * Stop: open requests get DAEMON_STOPPING, clients are disconnected, the socket file is
   * removed (if it is still ours). Handlers that ignore their signal are not waited for.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing.resolve();
    try {
      this.#listener?.close(); // Deno unlinks the bound (staging) path; control.sock is ours to remove
    } catch { /* already closed */ }
    await this.#accepting;
    for (const c of this.#clients) this.#stopAll(c, "stopping");
    await Promise.all([...this.#clients].map((c) => within(c.flushed(), 1_000)));
    for (const c of this.#clients) c.close();
    await Promise.all(this.#serving);
    if (this.#ino !== null) {
      try {
        if ((await Deno.lstat(this.path)).ino === this.#ino) await Deno.remove(this.path);
      } catch { /* already gone */ }
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #checkStateDir(): Promise<Deno.FileInfo> {
    let st: Deno.FileInfo;
    try {
      st = await Deno.stat(this.stateDir);
    } catch (e) {
      throw fsError(e, this.stateDir, "state directory");
    }
    if (!st.isDirectory) {
      throw new IronMeshError(
        "PERMISSION",
        `state directory ${this.stateDir} is not a directory`,
        "point --state-dir at a directory",
        ExitCode.PERMISSION,
      );
    }
    const mode = st.mode === null ? 0 : st.mode & 0o777;
    const octal = mode.toString(8).padStart(3, "0");
    if (mode & 0o022) {
      throw new IronMeshError(
        "CONTROL_INSECURE_DIR",
        `state directory ${this.stateDir} is writable by other users (mode ${octal}), ` +
          "so they could replace the control socket",
        `chmod 700 ${this.stateDir}`,
        ExitCode.PERMISSION,
      );
    }
    if (mode & 0o055) {
      this.#log.warn("state directory is readable by other users; the control socket stays 0600", {
        dir: this.stateDir,
        mode: octal,
        hint: `chmod 700 ${this.stateDir}`,
      });
    }
    return st;
  }

  async #acceptLoop(listener: Deno.UnixListener): Promise<void> {
    try {
      for await (const conn of listener) {
        const c = new ClientConn(this.#nextClientId++, conn);
        if (this.#clients.size >= this.#maxClients) {
          this.#refuseBusy(c);
          continue;
        }
        this.#clients.add(c);
        const serving = this.#serve(c).finally(() => {
          this.#clients.delete(c);
          this.#serving.delete(serving);
        });
        this.#serving.add(serving);
      }
    } catch (e) {
      if (!this.#closed) this.#log.error("control socket stopped accepting", { error: String(e) });
    }
  }

  #refuseBusy(c: ClientConn): void {
    const error = protocolError(
      "CONTROL_BUSY",
      `the daemon already serves ${this.#maxClients} control clients`,
      "close other ironmesh commands (e.g. a forgotten --follow) and retry",
      ExitCode.FAILURE,
    );
    const done = c.send({ id: null, error }).then(() => c.close());
    this.#serving.add(done);
    done.finally(() => this.#serving.delete(done));
  }

  async #serve(c: ClientConn): Promise<void> {
    try {
      for await (const line of readLines(c.conn, this.#maxLineBytes)) this.#onLine(c, line);
    } catch (e) {
      if (e instanceof LineTooLong) {
        c.send({
          id: null,
          error: protocolError(
            "REQUEST_TOO_LARGE",
            `a control request line is longer than ${this.#maxLineBytes} bytes`,
            "send less per request (large payloads: pass a file path instead)",
          ),
        });
      } // anything else: the client went away
    }
    // The client is gone (or half-closed): stop its streams, let quick handlers answer.
    this.#stopAll(c, "disconnect");
    await within(Promise.race([Promise.all(c.tasks), this.#closing.promise]), 2_000);
    await within(c.flushed(), 1_000);
    c.close();
  }

  #stopAll(c: ClientConn, reason: StopReason): void {
    for (const [id, req] of c.inflight) {
      if (reason === "stopping") {
        this.#finish(c, id, req, {
          id,
          error: protocolError(
            "DAEMON_STOPPING",
            "the daemon is shutting down",
            "start it again with 'ironmesh run'",
            ExitCode.FAILURE,
          ),
        });
      }
      req.reason ??= reason;
      req.abort.abort(new DOMException(`control request stopped: ${reason}`, "AbortError"));
    }
  }

  #onLine(c: ClientConn, line: string): void {
    if (!line.trim()) return;
    const bad = (id: RequestId | null, message: string) =>
      void c.send({
        id,
        error: protocolError(
          "BAD_REQUEST",
          message,
          'send {"id": 1, "method": "...", "params": {}}',
        ),
      });
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      return bad(null, "control request is not valid JSON");
    }
    if (!isRecord(msg)) return bad(null, "control request must be a JSON object");
    const id = msg.id;
    if (typeof id !== "string" && !(typeof id === "number" && Number.isFinite(id))) {
      return bad(null, "control request needs an id (a number or a string)");
    }
    if (msg.cancel === true) {
      const req = c.inflight.get(id);
      if (req && !req.done) {
        req.reason ??= "cancel";
        req.abort.abort(new DOMException("control request cancelled", "AbortError"));
      }
      return; // unknown id: the request already ended
    }
    if (typeof msg.method !== "string") return bad(id, "control request needs a method (a string)");
    if (msg.params != null && !isRecord(msg.params)) {
      return bad(id, "control request params must be a JSON object");
    }
    if (c.inflight.has(id)) return bad(id, `request id ${JSON.stringify(id)} is already in use`);
    const method = msg.method;
    const handler = this.#handlers.get(method);
    if (!handler) {
      const known = [...this.#handlers.keys()].sort().join(", ") || "none";
      return void c.send({
        id,
        error: protocolError(
          "UNKNOWN_METHOD",
          `the daemon has no control method '${method}'`,
          `known: ${known}; the CLI and the running daemon may be different versions ` +
            "(restart the daemon after upgrading)",
          ExitCode.UNSUPPORTED,
        ),
      });
    }
    const req: InFlight = { method, done: false, abort: new AbortController() };
    c.inflight.set(id, req);
    const params = (msg.params ?? {}) as Record<string, unknown>;
    const task = this.#run(c, id, req, handler, params, method);
    c.tasks.add(task);
    task.finally(() => c.tasks.delete(task));
  }

  async #run(
    c: ClientConn,
    id: RequestId,
    req: InFlight,
    handler: ControlHandler,
    params: Record<string, unknown>,
    method: string,
  ): Promise<void> {
    let out: unknown;
    try {
      out = await handler(params, { method, clientId: c.id, signal: req.abort.signal });
    } catch (e) {
      return this.#finish(c, id, req, { id, error: this.#errorOf(e, method) });
    }
    if (isAsyncIterable(out)) await this.#pump(c, id, req, out, method);
    else this.#finish(c, id, req, { id, result: out ?? null });
  }

  /** Send a stream's values as events until it ends, fails, or the request is stopped. */
  async #pump(
    c: ClientConn,
    id: RequestId,
    req: InFlight,
    iterable: AsyncIterable<unknown>,
    method: string,
  ): Promise<void> {
    let it: AsyncIterator<unknown> | undefined;
    let exhausted = false;
    try {
      it = iterable[Symbol.asyncIterator]();
      while (!req.done) {
        let step: IteratorResult<unknown> | typeof ABORTED;
        try {
          step = await nextOrAbort(it, req.abort.signal);
        } catch (e) {
          exhausted = true; // an iterator that threw is finished
          throw e;
        }
        if (step === ABORTED || req.done) break;
        if (step.done) {
          exhausted = true;
          break;
        }
        await c.send({ id, event: step.value ?? null });
      }
      this.#finish(c, id, req, { id, end: true });
    } catch (e) {
      this.#finish(c, id, req, { id, error: this.#errorOf(e, method) });
    } finally {
      // Not awaited: an async generator runs return() only after its pending next() settles.
      if (it && !exhausted) {
        try {
          it.return?.()?.catch(() => {});
        } catch { /* a broken iterator */ }
      }
    }
  }

  /** Send the request's last line (once). */
  #finish(c: ClientConn, id: RequestId, req: InFlight, line: ControlResponse): void {
    if (req.done) return;
    req.done = true;
    c.inflight.delete(id);
    try {
      c.send(line);
    } catch (e) { // a result JSON cannot carry (BigInt, a cycle)
      c.send({ id, error: this.#errorOf(e, req.method) });
    }
  }

  #errorOf(e: unknown, method: string): WireError {
    if (e instanceof IronMeshError) return toWireError(e);
    this.#log.error("control method failed", { method, error: String((e as Error)?.stack ?? e) });
    return protocolError(
      "INTERNAL",
      `internal error in '${method}': ${(e as Error)?.message ?? String(e)}`,
      "see the daemon log",
      ExitCode.FAILURE,
    );
  }
}

/** Throw CONTROL_SOCKET_IN_USE when a live server answers on `path`; a dead socket is fine. */
async function refuseLiveSocket(path: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw fsError(e, path, "control socket");
  }
  if (info.isSocket === false) {
    throw new IronMeshError(
      "CONTROL_SOCKET_IN_USE",
      `${path} exists and is not a socket`,
      "move it away: ironmesh keeps its control socket there",
      ExitCode.EXISTS,
    );
  }
  try {
    (await dialControlSocket(path, 1_000)).close();
  } catch (e) {
    if (e instanceof IronMeshError && e.code === "DAEMON_NOT_RUNNING") return; // stale
    if (!(e instanceof IronMeshError && e.code === "DAEMON_NOT_RESPONDING")) throw e;
  }
  throw new IronMeshError(
    "CONTROL_SOCKET_IN_USE",
    `another ironmesh daemon is serving ${path}`,
    "stop it first, or use another --state-dir",
    ExitCode.LOCKED,
  );
}

function randomHex(bytes: number): string {
  return [...crypto.getRandomValues(new Uint8Array(bytes))]
    .map((b) => b.toString(16).padStart(2, "0"))
    .join("");
}
