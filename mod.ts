/**
 * The ironmesh SDK: run an agent of a local-first, end-to-end encrypted mesh inside a Deno
 * program. An `Agent` is a full node (identity, TOFU trust, audit log, durable message queue,
 * mesh routing, capabilities) speaking `ironmesh/0.9`, so it talks to `ironmesh run` daemons and
 * Python IronMesh nodes alike.
 *
 * Import it by path (`import { Agent } from "./mod.ts"`) or by URL from the repository
 * (`import { Agent } from "https://raw.githubusercontent.com/<owner>/<repo>/<ref>/mod.ts"`).
 *
 * @example
 * ```ts
 * import { Agent } from "./mod.ts";
 *
 * const agent = await Agent.start({
 *   name: "alice",
 *   passphraseFile: "/home/me/.ironmesh-pass", // the mesh passphrase, ≥ 12 characters
 *   stateDir: "/home/me/.ironmesh-alice",     // identity is created here on first use
 *   port: 9001,                                // listens on 127.0.0.1 by default
 *   connect: ["127.0.0.1:9002"],
 *   capabilities: ["demo:echo"],
 * });
 * agent.onMessage((from, text) => console.log(`${from.name}: ${text}`));
 * agent.onRequest((_from, payload) => ({ echo: payload }));
 * await agent.waitForPeer("bob");
 * await agent.send("bob", "hello bob", { waitForDelivery: true });
 * const reply = await agent.request("bob", { n: 7 }, { timeoutMs: 5000 });
 * console.log(reply.data);
 * await agent.close();
 * ```
 *
 * Payloads: strings travel as UTF-8, `Uint8Array`s as is, other values as JSON text. Requests
 * and responses use `REQ`/`RESP` frames with a small JSON envelope (see `sdk/rpc.ts`):
 * `{"ironmesh_rpc":1,"id":"<uuid>","enc":"text"|"json"|"base64","body":…}`. Errors are
 * `IronMeshError`s with a stable `code` and a `hint`.
 *
 * @module
 */
export {
  Agent,
  type AgentLogLevel,
  type AgentOptions,
  type CapabilityInfo,
  type MdnsOptions,
  type MessageHandler,
  type MessagePriority,
  type PeerEvent,
  type PeerInfo,
  type RequestHandler,
  type RequestOptions,
  type SendOptions,
  type SendResult,
  type Strategy,
  type Target,
  type TrustMode,
} from "./sdk/agent.ts";
export {
  AgentMessage,
  type MessageInit,
  type Payload,
  type PayloadEncoding,
  type Sender,
} from "./sdk/payload.ts";
export { RPC_VERSION } from "./sdk/rpc.ts";
export { ExitCode, type ExitCodeValue, IronMeshError } from "./lib/errors.ts";
