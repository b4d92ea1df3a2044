/**
 * Which trust backend a command uses: with a daemon running on the state directory, its
 * control socket (changes take effect live, no passphrase needed: the daemon holds the
 * keys); otherwise the files, opened with this node's identity.
 */
import type { ControlClient } from "../daemon/control_client.ts";
import { ControlClient as Client, isDaemonRunning } from "../daemon/control_client.ts";
import type {
  PinRequest,
  TrustBackend,
  TrustConflictInfo,
  TrustOpResult,
  TrustSnapshot,
} from "../lib/trust/backend.ts";
import { assertNoDaemon, openFileTrustBackend } from "../lib/trust/backend.ts";
import type { TrustState } from "../lib/trust/records.ts";
import type { ResolvedPeer } from "../lib/trust/resolve.ts";
import type { Context } from "./context.ts";
import { loadIdentity } from "./identity_loader.ts";

/** Trust through a running daemon's control socket. */
export class DaemonTrustBackend implements TrustBackend {
  readonly kind = "daemon" as const;
  constructor(readonly client: ControlClient) {}

  snapshot(): Promise<TrustSnapshot> {
    return this.client.call("trust.snapshot");
  }
  conflicts(): Promise<TrustConflictInfo[]> {
    return this.client.call("trust.conflicts");
  }
  resolve(id: string): Promise<ResolvedPeer> {
    return this.client.call("trust.resolve", { id });
  }
  setState(id: string, state: TrustState): Promise<TrustOpResult> {
    return this.client.call("trust.setState", { id, state });
  }
  pin(nodeId: string, pubkeyB64: string, opts: PinRequest = {}): Promise<TrustOpResult> {
    return this.client.call("trust.pin", { node_id: nodeId, pubkey: pubkeyB64, ...opts });
  }
  revoke(id: string, reason?: string): Promise<TrustOpResult> {
    return this.client.call("trust.revoke", { id, reason });
  }
  clearRevocation(id: string): Promise<TrustOpResult> {
    return this.client.call("trust.clearRevocation", { id });
  }
  forget(id: string): Promise<TrustOpResult> {
    return this.client.call("trust.forget", { id });
  }
  capPromote(id: string): Promise<TrustOpResult> {
    return this.client.call("trust.capPromote", { id });
  }
  capPromoteAll(): Promise<TrustOpResult> {
    return this.client.call("trust.capPromoteAll");
  }
  capReject(id: string, opts: { block?: boolean } = {}): Promise<TrustOpResult> {
    return this.client.call("trust.capReject", { id, block: opts.block ?? false });
  }
  close(): void {
    this.client.close().catch(() => {});
  }
}

/** Run `fn` with the daemon's backend when one runs, else with the files (asks for the passphrase). */
export async function withTrustBackend<T>(
  ctx: Context,
  passphraseFile: string | undefined,
  mutating: boolean,
  fn: (b: TrustBackend) => Promise<T>,
): Promise<T> {
  if (await isDaemonRunning(ctx.stateDir).catch(() => false)) {
    const b = new DaemonTrustBackend(await Client.connect(ctx.stateDir));
    try {
      return await fn(b);
    } finally {
      b.close();
    }
  }
  if (mutating) assertNoDaemon(ctx.stateDir);
  const { id } = await loadIdentity(ctx, { passphraseFile });
  try {
    const b = await openFileTrustBackend(ctx.stateDir, id);
    try {
      return await fn(b);
    } finally {
      b.close();
    }
  } finally {
    id.wipe();
  }
}
