/**
 * `ironmesh mcp --own-node`: the MCP server runs a node itself instead of attaching to a
 * daemon. The node serves the same control socket in its state directory as `ironmesh run`
 * (same methods), so the MCP tools reach it exactly as they reach a daemon, and the CLI
 * (`ironmesh status`, `send`, `trust`, …) works against it while the MCP server runs.
 */
import { withIsolatedArgon2 } from "../../lib/crypto/argon2_isolated.ts";
import { ExitCode, IronMeshError } from "../../lib/errors.ts";
import type { Identity } from "../../lib/identity/identity.ts";
import type { Logger } from "../../lib/log.ts";
import type { ControlServer } from "../control.ts";
import { serveControl } from "../control_api.ts";
import { isDaemonRunning } from "../control_client.ts";
import { MeshNode, type NodeOptions } from "../node.ts";

/** What `startOwnNode` needs: the node's options, with the identity opened lazily. */
export interface OwnNodeOptions extends Omit<NodeOptions, "identity" | "log"> {
  /** Opens (or creates) the identity; runs with Argon2id isolated in a worker. */
  identity: () => Promise<Identity>;
  log: Logger;
  /** The program's main module, for the Argon2id worker (default Deno.mainModule). */
  entry?: string;
}

/** A node started by the MCP server, with its control socket. */
export interface OwnNode {
  node: MeshNode;
  control: ControlServer;
  /** GOODBYE to peers, close the socket, flush, release the state dir. */
  stop(): Promise<void>;
}

/** Start the node and its control socket. Refuses when a daemon already runs on the state dir. */
export async function startOwnNode(o: OwnNodeOptions): Promise<OwnNode> {
  if (await isDaemonRunning(o.stateDir)) {
    throw new IronMeshError(
      "DAEMON_RUNNING",
      `an ironmesh daemon already runs on ${o.stateDir}`,
      `attach to it instead: 'ironmesh mcp --state-dir ${o.stateDir}' (without --own-node)`,
      ExitCode.LOCKED,
    );
  }
  const { identity, entry, ...rest } = o;
  const node = await withIsolatedArgon2(
    entry ?? Deno.mainModule,
    async () => await MeshNode.start({ ...rest, identity: await identity() }),
  );
  const control = await serveControl(node, o.stateDir, o.log);
  return {
    node,
    control,
    async stop() {
      await control.close();
      await node.stop();
    },
  };
}
