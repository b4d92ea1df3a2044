/** Polling until a condition holds, for tests that wait on nodes, daemons or processes. */

/** Options of `waitFor`. */
export interface WaitOptions {
  /** How often `what` is asked (default 100 ms). */
  intervalMs?: number;
  /** What to add to the timeout error (the nodes' state, their logs). */
  detail?: () => string | Promise<string>;
}

/** Poll `what` until it holds; after `ms` fail with `label` (and the `detail`). */
export async function waitFor(
  what: () => Promise<boolean> | boolean,
  label: string,
  ms = 20_000,
  opts: WaitOptions = {},
): Promise<void> {
  const t0 = Date.now();
  while (!(await what())) {
    if (Date.now() - t0 > ms) {
      const detail = opts.detail ? `\n${await opts.detail()}` : "";
      throw new Error(`timed out after ${ms} ms: ${label}${detail}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 100));
  }
}
