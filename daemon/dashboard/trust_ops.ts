/**
 * The dashboard's trust actions run the daemon's own `trust.*` control methods
 * (daemon/trust_control.ts) in process, so a promote from the page does exactly what
 * `ironmesh trust set-state <id> trusted` does against the running daemon: the same
 * StoreTrustBackend change under the same locks, the same audit events, and the same live
 * consequences (held messages released, blocked peers' messages dropped, links closed).
 */
import type { ControlContext, ControlHandler, ControlServer } from "../control.ts";
import type { MeshNode } from "../node.ts";
import { registerTrustMethods } from "../trust_control.ts";
import type { TrustOpResult } from "../../lib/trust/backend.ts";

/** The trust methods of one node, callable in process. */
export class TrustOps {
  readonly #handlers = new Map<string, ControlHandler>();
  readonly #abort = new AbortController();

  constructor(node: MeshNode) {
    // registerTrustMethods only calls `handle`; collect the handlers instead of serving them.
    const collector = {
      handle: (method: string, fn: ControlHandler) => {
        this.#handlers.set(method, fn);
        return collector;
      },
    };
    registerTrustMethods(collector as unknown as ControlServer, node);
  }

  async #call(method: string, params: Record<string, unknown>): Promise<TrustOpResult> {
    const fn = this.#handlers.get(method);
    if (!fn) throw new Error(`trust method ${method} is missing`);
    const ctx: ControlContext = { method, clientId: 0, signal: this.#abort.signal };
    return await fn(params, ctx) as TrustOpResult;
  }

  /** `trust set-state <id> <state>`. */
  setState(id: string, state: "trusted" | "blocked"): Promise<TrustOpResult> {
    return this.#call("trust.setState", { id, state });
  }

  /** `trust cap-promote <id>`. */
  capPromote(id: string): Promise<TrustOpResult> {
    return this.#call("trust.capPromote", { id });
  }

  /** `trust cap-reject <id> [--block]`. */
  capReject(id: string, block: boolean): Promise<TrustOpResult> {
    return this.#call("trust.capReject", { id, block });
  }
}
