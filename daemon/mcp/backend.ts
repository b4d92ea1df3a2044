/**
 * How `ironmesh mcp` reaches the node it serves: always through a control socket
 * (`<stateDir>/control.sock`), either a running daemon's (attach mode) or the one the MCP
 * server opened for its own node (own-node mode). One shared connection carries the plain
 * calls and is re-opened when it drops (a restarted daemon); waits that hold a stream (a
 * request waiting for its reply, a message wait) get a connection of their own, closed when
 * they end, which also ends the stream on the daemon.
 */
import { ExitCode, IronMeshError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/log.ts";
import { type CallOptions, ControlClient } from "../control_client.ts";

/** Where the node runs. */
export type McpMode = "attach" | "own-node";

/** The MCP server's way to its node. */
export class MeshBackend {
  #shared: ControlClient | null = null;
  #connecting: Promise<ControlClient> | null = null;
  readonly #dedicated = new Set<ControlClient>();
  #closed = false;

  private constructor(
    readonly stateDir: string,
    readonly mode: McpMode,
    readonly log: Logger,
  ) {}

  /**
   * Connect to the control socket of `stateDir` once, so a missing daemon is reported at
   * startup: DAEMON_NOT_RUNNING (exit 14) with a hint naming both ways to fix it.
   */
  static async open(stateDir: string, mode: McpMode, log: Logger): Promise<MeshBackend> {
    const b = new MeshBackend(stateDir, mode, log);
    try {
      b.#shared = await ControlClient.connect(stateDir);
    } catch (e) {
      throw mode === "attach" ? notRunningForMcp(e, stateDir) : e;
    }
    return b;
  }

  /** Call a control method on the shared connection (re-opened if it dropped). */
  async call<T>(
    method: string,
    params: Record<string, unknown> = {},
    opts: CallOptions = {},
  ): Promise<T> {
    const c = await this.#client();
    return await c.call<T>(method, params, opts);
  }

  /**
   * Run `fn` with a connection of its own (for a wait that holds a stream); the connection is
   * closed when `fn` ends, which cancels its streams on the daemon.
   */
  async withDedicated<T>(fn: (c: ControlClient) => Promise<T>): Promise<T> {
    this.#checkOpen();
    let c: ControlClient;
    try {
      c = await ControlClient.connect(this.stateDir);
    } catch (e) {
      throw this.mode === "attach" ? notRunningForMcp(e, this.stateDir) : e;
    }
    this.#dedicated.add(c);
    try {
      this.#checkOpen();
      return await fn(c);
    } finally {
      this.#dedicated.delete(c);
      await c.close().catch(() => {});
    }
  }

  /** Close every connection. */
  async close(): Promise<void> {
    this.#closed = true;
    const all = [...this.#dedicated];
    if (this.#shared) all.push(this.#shared);
    this.#shared = null;
    await Promise.all(all.map((c) => c.close().catch(() => {})));
  }

  #checkOpen(): void {
    if (this.#closed) {
      throw new IronMeshError(
        "MCP_CLOSING",
        "the MCP server is shutting down",
        "",
        ExitCode.FAILURE,
      );
    }
  }

  async #client(): Promise<ControlClient> {
    this.#checkOpen();
    if (this.#shared?.open) return this.#shared;
    this.#connecting ??= (async () => {
      const old = this.#shared;
      this.#shared = null;
      await old?.close().catch(() => {});
      this.log.info("reconnecting to the node's control socket", { state_dir: this.stateDir });
      try {
        const c = await ControlClient.connect(this.stateDir);
        if (this.#closed) {
          await c.close();
          this.#checkOpen();
        }
        this.#shared = c;
        return c;
      } catch (e) {
        throw this.mode === "attach" ? notRunningForMcp(e, this.stateDir) : e;
      }
    })().finally(() => this.#connecting = null);
    return await this.#connecting;
  }
}

/** DAEMON_NOT_RUNNING with a hint for `ironmesh mcp`; other errors unchanged. */
export function notRunningForMcp(e: unknown, stateDir: string): unknown {
  if (!(e instanceof IronMeshError) || e.code !== "DAEMON_NOT_RUNNING") return e;
  return new IronMeshError(
    e.code,
    `no ironmesh daemon is running on ${stateDir} for the MCP server to attach to`,
    `start one with 'ironmesh run --state-dir ${stateDir}', or let the MCP server run its own ` +
      "node: 'ironmesh mcp --own-node --name NAME'",
    e.exitCode,
  );
}
