/**
 * The CLI's side of the control socket (wire format in control.ts): one connection,
 * many concurrent calls and streams told apart by id. Errors come back as the
 * IronMeshError the daemon threw, so the CLI prints and exits as if it ran locally.
 */
import { ExitCode, IronMeshError } from "../lib/errors.ts";
import {
  controlSocketPath,
  dialControlSocket,
  encodeLine,
  fromWireError,
  isRecord,
  LineTooLong,
  MAX_LINE_BYTES,
  notResponding,
  readLines,
  writeAll,
} from "./control.ts";

/** Default wait for the connection to be accepted. */
export const CONNECT_TIMEOUT_MS = 5_000;
/** Default wait for a call's answer. */
export const CALL_TIMEOUT_MS = 30_000;
/** Longest answer line the client reads (an event may carry a whole 1 MiB message, escaped). */
export const MAX_RESPONSE_BYTES = 16 * 1_048_576;

/** Options of `ControlClient.connect`. */
export interface ConnectOptions {
  timeoutMs?: number;
  /** Requests longer than this fail locally with REQUEST_TOO_LARGE (the server's limit). */
  maxRequestBytes?: number;
}

/** Options of one call. */
export interface CallOptions {
  /** How long to wait for the answer; `Infinity` waits forever. */
  timeoutMs?: number;
}

/** Where the reader hands the lines of one request. */
interface Waiting {
  deliver(msg: Record<string, unknown>): void;
  fail(e: IronMeshError): void;
}

/** Lines of one stream, queued until the consumer pulls them. */
class Mailbox {
  #items: Record<string, unknown>[] = [];
  #error: IronMeshError | null = null;
  #wake: (() => void) | null = null;

  push(msg: Record<string, unknown>): void {
    this.#items.push(msg);
    this.#wake?.();
  }

  fail(e: IronMeshError): void {
    this.#error ??= e;
    this.#wake?.();
  }

  /** The next line; queued lines come before a failure. */
  async next(): Promise<Record<string, unknown>> {
    while (!this.#items.length && !this.#error) {
      await new Promise<void>((r) => this.#wake = r);
      this.#wake = null;
    }
    const msg = this.#items.shift();
    if (msg) return msg;
    throw this.#error;
  }
}

function badResponse(message: string, hint = "the CLI and the daemon may be different versions") {
  return new IronMeshError("BAD_RESPONSE", message, hint, ExitCode.FAILURE);
}

/** A connection to a running daemon's control socket. */
export class ControlClient {
  readonly #conn: Deno.UnixConn;
  readonly #maxRequestBytes: number;
  readonly #waiting = new Map<number, Waiting>();
  readonly #reading: Promise<void>;
  #writes: Promise<void> = Promise.resolve();
  #nextId = 1;
  #closed = false;
  #closedByUs = false;
  /** Why the connection ended, when the server said so (CONTROL_BUSY, REQUEST_TOO_LARGE…). */
  #serverError: IronMeshError | null = null;

  private constructor(conn: Deno.UnixConn, readonly path: string, opts: ConnectOptions) {
    this.#conn = conn;
    this.#maxRequestBytes = opts.maxRequestBytes ?? MAX_LINE_BYTES;
    this.#reading = this.#readLoop();
  }

  /**
   * Connect to the daemon of `stateDir`. Throws DAEMON_NOT_RUNNING (exit code 14) when
   * no daemon listens there, DAEMON_NOT_RESPONDING when it does not accept in time.
   */
  static async connect(stateDir: string, opts: ConnectOptions = {}): Promise<ControlClient> {
    const path = controlSocketPath(stateDir);
    const conn = await dialControlSocket(path, opts.timeoutMs ?? CONNECT_TIMEOUT_MS);
    return new ControlClient(conn, path, opts);
  }

  /** False once the connection ended (closed by either side). */
  get open(): boolean {
    return !this.#closed;
  }

  /**
   * Call `method` and return its result. Throws the daemon's IronMeshError (same code,
   * message, hint, exit code), DAEMON_NOT_RESPONDING after `timeoutMs` (the request is
   * then cancelled), or DAEMON_DISCONNECTED when the connection drops.
   */
  call<T = unknown>(
    method: string,
    params: Record<string, unknown> = {},
    opts: CallOptions = {},
  ): Promise<T> {
    const id = this.#nextId++;
    const timeoutMs = opts.timeoutMs ?? CALL_TIMEOUT_MS;
    return new Promise<T>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const settle = () => {
        clearTimeout(timer);
        this.#waiting.delete(id);
      };
      const fail = (e: IronMeshError) => {
        settle();
        reject(e);
      };
      this.#waiting.set(id, {
        deliver: (msg) => {
          if ("result" in msg) {
            settle();
            resolve(msg.result as T);
          } else if ("error" in msg) {
            fail(fromWireError(msg.error));
          } else {
            this.#cancel(id);
            fail(badResponse(`'${method}' is a streaming method`, "use stream() for it"));
          }
        },
        fail,
      });
      if (Number.isFinite(timeoutMs)) {
        timer = setTimeout(() => {
          this.#cancel(id);
          fail(notResponding(`the daemon did not answer '${method}' within ${timeoutMs} ms`));
        }, timeoutMs);
      }
      this.#send({ id, method, params }).catch(fail);
    });
  }

  /**
   * Stream the events of `method`. The request is sent on the first `next()`; leaving the
   * loop early (break, return, throw) cancels it on the daemon. Ends when the daemon ends
   * the stream; throws its error, or DAEMON_DISCONNECTED / DAEMON_STOPPING.
   */
  async *stream<T = unknown>(
    method: string,
    params: Record<string, unknown> = {},
  ): AsyncGenerator<T, void, undefined> {
    const id = this.#nextId++;
    const box = new Mailbox();
    this.#waiting.set(id, { deliver: (m) => box.push(m), fail: (e) => box.fail(e) });
    let live = false; // the daemon may still send events for this id
    try {
      await this.#send({ id, method, params });
      live = true;
      while (true) {
        const msg = await box.next();
        if ("event" in msg) {
          yield msg.event as T;
          continue;
        }
        live = false;
        if ("end" in msg) return;
        if ("error" in msg) throw fromWireError(msg.error);
        throw badResponse(`'${method}' is not a streaming method`, "use call() for it");
      }
    } finally {
      this.#waiting.delete(id);
      if (live) this.#cancel(id);
    }
  }

  /** Close the connection; open calls and streams fail with CONTROL_CLIENT_CLOSED. */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closedByUs = true;
      try {
        this.#conn.close();
      } catch { /* already closed */ }
    }
    await this.#reading;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #cancel(id: number): void {
    if (!this.#closed) this.#send({ id, cancel: true }).catch(() => {});
  }

  /** Queue one request line; rejects with the reason the connection ended, if it did. */
  #send(msg: Record<string, unknown>): Promise<void> {
    if (this.#closed) return Promise.reject(this.#endError());
    let bytes: Uint8Array;
    try {
      bytes = encodeLine(msg);
    } catch (e) {
      return Promise.reject(
        new IronMeshError(
          "BAD_REQUEST",
          `cannot encode the control request: ${(e as Error).message}`,
          "params must be plain JSON values",
          ExitCode.BAD_INPUT,
        ),
      );
    }
    if (bytes.length - 1 > this.#maxRequestBytes) {
      return Promise.reject(
        new IronMeshError(
          "REQUEST_TOO_LARGE",
          `control request is ${
            bytes.length - 1
          } bytes; the daemon accepts ${this.#maxRequestBytes}`,
          "send less per request (large payloads: pass a file path instead)",
          ExitCode.BAD_INPUT,
        ),
      );
    }
    const write = this.#writes.then(() => writeAll(this.#conn, bytes));
    this.#writes = write.catch(() => {});
    // A failed write means the connection dropped; the reader knows why.
    return write.catch(async () => {
      await this.#reading;
      throw this.#endError();
    });
  }

  #endError(): IronMeshError {
    if (this.#closedByUs) {
      return new IronMeshError(
        "CONTROL_CLIENT_CLOSED",
        "the control connection was closed",
        "",
        ExitCode.FAILURE,
      );
    }
    return this.#serverError ?? new IronMeshError(
      "DAEMON_DISCONNECTED",
      "the daemon closed the control connection",
      "it may have stopped: check with 'ironmesh status'",
      ExitCode.FAILURE,
    );
  }

  async #readLoop(): Promise<void> {
    try {
      for await (const line of readLines(this.#conn, MAX_RESPONSE_BYTES)) {
        let msg: unknown;
        try {
          msg = JSON.parse(line);
        } catch {
          this.#serverError = badResponse("the daemon sent a line that is not JSON");
          break;
        }
        if (!isRecord(msg)) continue;
        if (typeof msg.id === "number") this.#waiting.get(msg.id)?.deliver(msg);
        else if (msg.id === null && "error" in msg) this.#serverError = fromWireError(msg.error);
      }
    } catch (e) {
      if (e instanceof LineTooLong) {
        this.#serverError = badResponse(`the daemon sent a line longer than ${e.maxBytes} bytes`);
      } // anything else: the connection dropped
    }
    this.#closed = true;
    try {
      this.#conn.close();
    } catch { /* already closed */ }
    const err = this.#endError();
    for (const w of [...this.#waiting.values()]) w.fail(err);
    this.#waiting.clear();
  }
}

/**
 * True when a daemon accepts connections on the control socket of `stateDir`, false when
 * none listens; other failures (permission, a stuck daemon) throw their IronMeshError.
 */
export async function isDaemonRunning(
  stateDir: string,
  opts: { timeoutMs?: number } = {},
): Promise<boolean> {
  try {
    (await dialControlSocket(controlSocketPath(stateDir), opts.timeoutMs ?? 1_000)).close();
    return true;
  } catch (e) {
    if (e instanceof IronMeshError && e.code === "DAEMON_NOT_RUNNING") return false;
    throw e;
  }
}
