/**
 * Dashboard test helpers: a dashboard on an in-process node (127.0.0.1, any port), HTTP calls
 * with or without the token, a small WebSocket client that waits for matching pushes, and a
 * Prometheus exposition check with a real parser plus the format's structural rules.
 */
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import type { MeshNode } from "../../daemon/node.ts";
import { type DashboardOptions, DashboardServer } from "../../daemon/dashboard/server.ts";
import { WS_PROTOCOL, WS_TOKEN_PREFIX } from "../../daemon/dashboard/auth.ts";

/** Start a dashboard for `node` on 127.0.0.1 (fast audit polling for tests). */
export function startDashboard(
  node: MeshNode,
  opts: Partial<DashboardOptions> = {},
): Promise<DashboardServer> {
  return DashboardServer.start({
    node,
    hostname: "127.0.0.1",
    port: 0,
    auditPollMs: 50,
    statePushMs: 200,
    ...opts,
  });
}

/** `http://127.0.0.1:<port>`. */
export function baseOf(d: DashboardServer): string {
  return `http://127.0.0.1:${d.port}`;
}

/** GET (or another method) with the bearer token; returns status, headers and parsed body. */
export async function call(
  d: DashboardServer,
  path: string,
  init: RequestInit & { token?: string | null } = {},
): Promise<{ status: number; headers: Headers; body: unknown; text: string }> {
  const headers = new Headers(init.headers);
  const token = init.token === undefined ? d.token : init.token;
  if (token !== null && !headers.has("authorization")) {
    headers.set("authorization", `Bearer ${token}`);
  }
  const r = await fetch(baseOf(d) + path, { ...init, headers });
  const text = await r.text();
  let body: unknown = null;
  try {
    body = JSON.parse(text);
  } catch { /* not JSON */ }
  return { status: r.status, headers: r.headers, body, text };
}

/** A JSON object from an unknown value (throws when it is not one). */
export function obj(v: unknown): Record<string, unknown> {
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    throw new Error(`expected a JSON object, got ${JSON.stringify(v)?.slice(0, 200)}`);
  }
  return v as Record<string, unknown>;
}

/** A WebSocket client of `/ws` that buffers pushes and waits for matching ones. */
export class DashWs {
  readonly pushes: Record<string, unknown>[] = [];
  #waiters: {
    pred: (m: Record<string, unknown>) => boolean;
    resolve: (m: Record<string, unknown>) => void;
  }[] = [];
  #closed: Promise<CloseEvent>;
  #seq = 0;

  private constructor(readonly socket: WebSocket) {
    socket.onmessage = (ev) => {
      const m = JSON.parse(String(ev.data));
      this.pushes.push(m);
      this.#waiters = this.#waiters.filter((w) => {
        if (!w.pred(m)) return true;
        w.resolve(m);
        return false;
      });
    };
    this.#closed = new Promise((r) => socket.addEventListener("close", (e) => r(e)));
  }

  /** Connect with the token as a subprotocol (as the page does), or `?token=` with `query`. */
  static async open(
    d: DashboardServer,
    opts: { token?: string; query?: boolean } = {},
  ): Promise<DashWs> {
    const token = opts.token ?? d.token;
    const url = `ws://127.0.0.1:${d.port}/ws${opts.query ? `?token=${token}` : ""}`;
    const s = opts.query ? new WebSocket(url) : new WebSocket(url, [
      WS_PROTOCOL,
      WS_TOKEN_PREFIX + token,
    ]);
    const c = new DashWs(s);
    await new Promise<void>((resolve, reject) => {
      s.onopen = () => resolve();
      s.onerror = () => reject(new Error("WebSocket failed to open"));
    });
    return c;
  }

  /** The first push (already received or future) matching `pred`. */
  next(
    pred: (m: Record<string, unknown>) => boolean,
    ms = 5000,
    what = "a matching push",
  ): Promise<Record<string, unknown>> {
    const seen = this.pushes.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new Error(
            `no ${what} within ${ms} ms; got types: ${this.pushes.map((p) => p.type).join(",")}`,
          ),
        );
      }, ms);
      this.#waiters.push({
        pred,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      });
    });
  }

  /** Send an action and wait for its reply (matched by id). */
  request(msg: Record<string, unknown>, ms = 5000): Promise<Record<string, unknown>> {
    const id = `t${++this.#seq}`;
    const reply = this.next((m) => m.id === id, ms, `reply to ${String(msg.action)}`);
    this.socket.send(JSON.stringify({ ...msg, id }));
    return reply;
  }

  /** Close and wait for the close event. */
  async close(): Promise<void> {
    if (this.socket.readyState < WebSocket.CLOSING) this.socket.close();
    await this.#closed;
  }

  /** Resolves when the server closes the socket. */
  get closed(): Promise<CloseEvent> {
    return this.#closed;
  }
}

/** A parsed metric family (parse-prometheus-text-format's shape). */
export interface ParsedFamily {
  name: string;
  help: string;
  type: string;
  metrics: {
    value?: string;
    labels?: Record<string, string>;
    quantiles?: Record<string, string>;
    count?: string;
    sum?: string;
  }[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const VALUE = /^(?:[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|NaN|[+-]Inf)$/;

/**
 * Check `text` as Prometheus text exposition 0.0.4 and parse it: a real parser
 * (parse-prometheus-text-format, a port of Prometheus' own) plus the rules it is lenient
 * about — one HELP and TYPE per family, before its samples, families not interleaved, valid
 * names, labels and values, no duplicate series, counters named `_total`, trailing newline.
 */
export function checkExposition(text: string): ParsedFamily[] {
  if (!text.endsWith("\n")) throw new Error("exposition must end with a newline");
  const typed = new Map<string, string>();
  const helped = new Set<string>();
  const closed = new Set<string>();
  const series = new Set<string>();
  let current = "";
  for (const line of text.slice(0, -1).split("\n")) {
    if (line === "") throw new Error("empty line in exposition");
    const meta = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
    if (meta) {
      const [, kind, name, rest] = meta;
      if (!NAME.test(name)) throw new Error(`bad metric name ${name}`);
      if (closed.has(name)) throw new Error(`family ${name} is interleaved`);
      if (current !== name) {
        if (current) closed.add(current);
        current = name;
      }
      if (kind === "HELP") {
        if (helped.has(name)) throw new Error(`second HELP for ${name}`);
        helped.add(name);
      } else {
        if (typed.has(name)) throw new Error(`second TYPE for ${name}`);
        if (!["counter", "gauge", "summary", "histogram", "untyped"].includes(rest ?? "")) {
          throw new Error(`bad TYPE ${rest} for ${name}`);
        }
        if (rest === "counter" && !name.endsWith("_total")) {
          throw new Error(`counter ${name} should end in _total`);
        }
        typed.set(name, rest!);
      }
      continue;
    }
    if (line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`bad sample line: ${line}`);
    const [, name, , labels, value] = m;
    const family = typed.has(name) ? name : name.replace(/_(sum|count|bucket)$/, "");
    if (family !== current) throw new Error(`sample ${name} outside its family block`);
    if (!typed.has(family)) throw new Error(`sample ${name} before its TYPE`);
    if (!VALUE.test(value)) throw new Error(`bad value ${value} in ${line}`);
    if (labels !== undefined) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/y;
      let pos = 0;
      while (pos < labels.length) {
        re.lastIndex = pos;
        const lm = re.exec(labels);
        if (!lm || !LABEL.test(lm[1])) throw new Error(`bad labels in ${line}`);
        pos = re.lastIndex;
      }
    }
    const key = `${name}{${labels ?? ""}}`;
    if (series.has(key)) throw new Error(`duplicate series ${key}`);
    series.add(key);
  }
  return parsePrometheusTextFormat(text) as ParsedFamily[];
}

/** The value of a metric (first sample, or the one with `labels`) in parsed families. */
export function metricValue(
  fams: ParsedFamily[],
  name: string,
  labels?: Record<string, string>,
): number | undefined {
  const f = fams.find((x) => x.name === name);
  if (!f) return undefined;
  const s = labels
    ? f.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))
    : f.metrics[0];
  return s?.value === undefined ? undefined : Number(s.value);
}

/** A `ironmesh run --json` process and its startup object. */
export interface RunningDaemon {
  child: Deno.ChildProcess;
  info: Record<string, unknown>;
  stderr(): string;
  stop(): Promise<number>;
}

/**
 * Start `ironmesh run --json` from `entry` (cli/main.ts with the task's flags, or a bundle
 * with `flags`) on 127.0.0.1 without mDNS, and wait for its startup object.
 */
export async function runDaemon(
  entry: string,
  flags: string[],
  stateDir: string,
  args: string[],
  opts: { cwd?: string; timeoutMs?: number } = {},
): Promise<RunningDaemon> {
  await Deno.mkdir(stateDir, { recursive: true, mode: 0o700 });
  const pass = `${stateDir}/../${crypto.randomUUID()}.pass`;
  await Deno.writeTextFile(pass, "dashboard-daemon-test-passphrase\n", { mode: 0o600 });
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      ...flags,
      entry,
      "run",
      "--json",
      "--bind",
      "127.0.0.1",
      "--port",
      "0",
      "--no-mdns",
      "--allow-plaintext-ws",
      "--passphrase-file",
      pass,
      "--state-dir",
      stateDir,
      ...args,
    ],
    cwd: opts.cwd,
    env: { NO_COLOR: "1", HOME: "/nonexistent-home" },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let err = "";
  (async () => {
    const d = new TextDecoder();
    for await (const c of child.stderr) err += d.decode(c);
  })();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  let info: Record<string, unknown> | null = null;
  while (!info) {
    const r = await Promise.race([
      reader.read(),
      new Promise<null>((res) => setTimeout(() => res(null), Math.max(0, deadline - Date.now()))),
    ]);
    if (r === null || r.done) {
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
      await child.status;
      throw new Error(`daemon did not start: ${out}\n${err}`);
    }
    out += r.value;
    const m = /^\{\n[\s\S]*?\n\}$/m.exec(out);
    if (m) info = JSON.parse(m[0]);
  }
  (async () => {
    try {
      for (;;) if ((await reader.read()).done) break;
    } catch { /* closed */ }
  })();
  return {
    child,
    info,
    stderr: () => err,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      const code = (await child.status).code;
      await Deno.remove(pass).catch(() => {});
      return code;
    },
  };
}
