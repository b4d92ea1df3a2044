/** Talking to a running daemon (or any node serving its control socket) from a test. */
import { ControlClient } from "../../daemon/control_client.ts";

/** One control-socket call to the node on `target` (a state dir, or anything with one). */
export async function call<T>(
  target: string | { stateDir: string },
  method: string,
  params: Record<string, unknown> = {},
  opts?: { timeoutMs?: number },
): Promise<T> {
  const c = await ControlClient.connect(typeof target === "string" ? target : target.stateDir);
  try {
    return await c.call<T>(method, params, opts);
  } finally {
    await c.close();
  }
}
