/** Commands that act on the running daemon reach it through the control socket. */
import { ControlClient } from "../daemon/control_client.ts";
import type { Context } from "./context.ts";

/** Connect to the daemon of `ctx.stateDir`, run `fn`, close. Throws DAEMON_NOT_RUNNING with a hint. */
export async function withDaemon<T>(
  ctx: Context,
  fn: (c: ControlClient) => Promise<T>,
): Promise<T> {
  const c = await ControlClient.connect(ctx.stateDir);
  try {
    return await fn(c);
  } finally {
    await c.close();
  }
}
