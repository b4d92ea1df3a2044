/**
 * What `ironmesh run` starts next to the node on port + 1 (PROTOCOL-0.9 §14, §15):
 *
 * - with `--gui`: the dashboard (page, API, `/metrics`, `/ws`) on `--gui-bind` (127.0.0.1);
 * - without it: a metrics-only listener on 127.0.0.1 (unless `--no-metrics`).
 *
 * Both require the per-start token. Besides the startup URL, the token is written to
 * `<state dir>/dashboard.token` (0600, removed at shutdown) so a local Prometheus can scrape
 * with `authorization: {credentials_file: …}` — the state directory already holds the
 * daemon's keys and its owner-only control socket, so this opens nothing new.
 */
import { join } from "node:path";
import { ExitCode, IronMeshError } from "../../lib/errors.ts";
import { atomicWrite } from "../../lib/fs/atomic_write.ts";
import type { Logger } from "../../lib/log.ts";
import type { MeshNode } from "../node.ts";
import { DashboardServer } from "./server.ts";

/** File (in the state directory) holding the current token. */
export const TOKEN_FILE = "dashboard.token";

/** Options from `ironmesh run`'s flags. */
export interface OperatorOptions {
  /** `--gui`. */
  gui: boolean;
  /** `--gui-bind` (default 127.0.0.1). */
  guiBind?: string;
  /** `--port` as given: the listener uses port + 1 (0 → any free port). */
  port: number;
  /** `--no-metrics` (without `--gui`: no listener at all). */
  metrics?: boolean;
  stateDir: string;
  strictTls?: boolean;
  log: Logger;
}

/** What was started. */
export interface OperatorSurface {
  server: DashboardServer | null;
  tokenFile: string | null;
  /** Dashboard URL with the token (only with --gui). */
  dashboardUrl: string | null;
  /** Metrics URL (without the token). */
  metricsUrl: string | null;
  close(): Promise<void>;
}

/** The listener's port for `--port`. */
export function dashboardPort(port: number): number {
  if (port === 0) return 0;
  if (port >= 65535) {
    throw new IronMeshError(
      "BAD_PORT",
      `the dashboard and metrics use --port + 1, and ${port} + 1 is not a port`,
      "pick a --port below 65535 (or --no-metrics without --gui)",
      ExitCode.USAGE,
    );
  }
  return port + 1;
}

/** Start the dashboard or the metrics listener for a running node. */
export async function startOperatorSurface(
  node: MeshNode,
  o: OperatorOptions,
): Promise<OperatorSurface> {
  const none: OperatorSurface = {
    server: null,
    tokenFile: null,
    dashboardUrl: null,
    metricsUrl: null,
    close: () => Promise.resolve(),
  };
  if (!o.gui && o.metrics === false) return none;
  const port = dashboardPort(o.port);
  let server: DashboardServer;
  try {
    server = await DashboardServer.start({
      node,
      mode: o.gui ? "gui" : "metrics",
      hostname: o.gui ? (o.guiBind ?? "127.0.0.1") : "127.0.0.1",
      port,
      strictTls: o.strictTls,
      log: o.log,
    });
  } catch (e) {
    if (o.gui) throw e;
    o.log.warn("metrics listener is off: its port is not free", {
      port,
      error: e instanceof IronMeshError ? e.message : String(e),
    });
    return none;
  }
  let tokenFile: string | null = join(o.stateDir, TOKEN_FILE);
  try {
    await atomicWrite(tokenFile, server.token + "\n", { mode: 0o600 });
  } catch (e) {
    o.log.warn("cannot write the dashboard token file", { path: tokenFile, error: String(e) });
    tokenFile = null;
  }
  return {
    server,
    tokenFile,
    dashboardUrl: o.gui ? server.url : null,
    metricsUrl: server.metricsUrl,
    async close() {
      await server.close();
      if (tokenFile) await Deno.remove(tokenFile).catch(() => {});
    },
  };
}
