/**
 * examples/llm_bridge.ts — answers prompts from the mesh through an Ollama-compatible HTTP
 * endpoint (`POST /api/generate {model, prompt, stream: false}` → `{response}`), and asks one.
 *
 * The bridge advertises `llm:generate`. A request whose payload is a string gets the answer
 * as a string; `{ prompt, model? }` gets `{ model, response }`. A plain message gets the answer
 * back as a plain message (so `ironmesh send llm-bridge "…"` works from the CLI too).
 * Failures come back as request errors: `LLM_UNREACHABLE`, `LLM_HTTP_ERROR`, `LLM_TIMEOUT`,
 * `LLM_BAD_RESPONSE`, `BAD_PROMPT`.
 *
 * Run from the repository root (Ollama on its default port; prompts stay on this machine):
 *
 * ```sh
 * mkdir -p .ironmesh-examples && umask 077 && openssl rand -base64 24 > .ironmesh-examples/pass
 * export IRONMESH_PASSPHRASE_FILE=.ironmesh-examples/pass
 * FLAGS="--allow-net=127.0.0.1 --allow-read=. --allow-write=.ironmesh-examples \
 *   --allow-env=HOME,IRONMESH_PASSPHRASE,IRONMESH_PASSPHRASE_FILE,OLLAMA_URL,OLLAMA_HOST,OLLAMA_MODEL"
 * deno run $FLAGS examples/llm_bridge.ts --name llm-bridge --port 9300 --model llama3.2
 * deno run $FLAGS examples/llm_bridge.ts --name asker --connect 127.0.0.1:9300 \
 *   --ask "Why is the sky blue? One sentence."
 * ```
 *
 * Least privilege: the network only on 127.0.0.1 (the mesh, and the endpoint — widen
 * --allow-net to its host if it runs elsewhere); reading the repository (the SDK's own files
 * for the Argon2id worker, and the state dir); writing only the examples' state directory;
 * the passphrase and Ollama variables and HOME.
 *
 * Flags: --name NAME (required), --port N (default 0), --bind ADDR (default 127.0.0.1),
 * --connect HOST:PORT (repeatable), --state-dir DIR (default .ironmesh-examples/NAME),
 * --passphrase-file FILE. Bridge: --ollama-url URL (else OLLAMA_URL, else OLLAMA_HOST, else
 * http://127.0.0.1:11434), --model NAME (else OLLAMA_MODEL, else llama3.2), --capability CAP
 * (repeatable, default llm:generate), --llm-timeout-ms N (default 120000). Ask: --ask PROMPT,
 * --pattern GLOB (default llm:*), --timeout-ms N (default 130000).
 */
import { parseArgs } from "node:util";
import { Agent, IronMeshError } from "../mod.ts";

const USAGE = "usage: llm_bridge.ts --name NAME [--port N] [--connect HOST:PORT]... " +
  "[--ollama-url URL] [--model NAME] [--capability CAP]... | --ask PROMPT [--pattern GLOB]";

/** Default endpoint (Ollama's). */
export const DEFAULT_OLLAMA_URL = "http://127.0.0.1:11434";

function env(name: string): string | undefined {
  try {
    if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") {
      return undefined;
    }
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined;
  }
}

function describe(e: unknown): string {
  return e instanceof IronMeshError ? `${e.code}: ${e.message} — ${e.hint}` : String(e);
}

/** The endpoint base URL from a flag, OLLAMA_URL or OLLAMA_HOST (`host:port` accepted). */
export function endpointUrl(flag: string | undefined): string {
  const raw = flag ?? env("OLLAMA_URL") ?? env("OLLAMA_HOST") ?? DEFAULT_OLLAMA_URL;
  const withScheme = /^https?:\/\//.test(raw) ? raw : `http://${raw}`;
  return withScheme.replace(/\/+$/, "");
}

/** One completion: POST {url}/api/generate {model, prompt, stream: false} → response text. */
export async function generate(
  url: string,
  model: string,
  prompt: string,
  timeoutMs: number,
): Promise<string> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  try {
    let res: Response;
    try {
      res = await fetch(`${url}/api/generate`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model, prompt, stream: false }),
        signal: ac.signal,
      });
    } catch (e) {
      if (ac.signal.aborted) {
        throw new IronMeshError(
          "LLM_TIMEOUT",
          `${url} did not answer within ${timeoutMs / 1000} s`,
          "raise --llm-timeout-ms or use a smaller model",
        );
      }
      throw new IronMeshError(
        "LLM_UNREACHABLE",
        `cannot reach ${url}: ${(e as Error).message}`,
        "is the endpoint running (ollama serve)? pass --ollama-url, and allow its host in --allow-net",
      );
    }
    const text = await res.text();
    if (!res.ok) {
      throw new IronMeshError(
        "LLM_HTTP_ERROR",
        `${url}/api/generate answered ${res.status}: ${text.slice(0, 200)}`,
        res.status === 404
          ? `is the model pulled? (ollama pull ${model})`
          : "see the endpoint's log",
      );
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
    const response = (body as { response?: unknown } | null)?.response;
    if (typeof response !== "string") {
      throw new IronMeshError(
        "LLM_BAD_RESPONSE",
        `${url}/api/generate did not return {"response": "…"}`,
        "point --ollama-url at an Ollama-compatible endpoint",
      );
    }
    return response;
  } finally {
    clearTimeout(timer);
  }
}

function promptOf(payload: unknown): { prompt: string; model?: string } {
  if (typeof payload === "string") return { prompt: payload };
  const p = payload as { prompt?: unknown; model?: unknown } | null;
  if (p && typeof p.prompt === "string") {
    return { prompt: p.prompt, ...(typeof p.model === "string" ? { model: p.model } : {}) };
  }
  throw new IronMeshError("BAD_PROMPT", "a prompt is a string or { prompt, model? }", "");
}

async function bridge(agent: Agent, url: string, model: string, timeoutMs: number) {
  const answer = async (from: string, prompt: string, m: string) => {
    const t0 = performance.now();
    try {
      const response = await generate(url, m, prompt, timeoutMs);
      const ms = Math.round(performance.now() - t0);
      console.log(
        `answered ${from}: ${prompt.length} chars → ${response.length} chars in ${ms} ms`,
      );
      return response;
    } catch (e) {
      console.log(`failed ${from}: ${e instanceof IronMeshError ? e.code : String(e)}`);
      throw e;
    }
  };
  agent.onRequest(async (from, payload) => {
    const p = promptOf(payload);
    const response = await answer(from.name, p.prompt, p.model ?? model);
    return typeof payload === "string" ? response : { model: p.model ?? model, response };
  });
  agent.onMessage(async (from, payload) => {
    if (typeof payload !== "string") return;
    const reply = await answer(from.name, payload, model).catch((e) => `error: ${describe(e)}`);
    await agent.send(from, reply);
  });
  console.log(`bridging ${agent.capabilities.join(", ")} → ${url} (model ${model})`);
  await new Promise<void>((resolve) => {
    const sigs: Deno.Signal[] = ["SIGINT", "SIGTERM"];
    const h = () => {
      for (const s of sigs) Deno.removeSignalListener(s, h);
      resolve();
    };
    for (const s of sigs) Deno.addSignalListener(s, h);
  });
  return 0;
}

async function ask(agent: Agent, prompt: string, pattern: string, timeoutMs: number) {
  const [llm] = await agent.waitForCapability(pattern, { timeoutMs: 30_000 });
  console.log(`asking ${llm.name} (${llm.capability})`);
  const reply = await agent.requestCapability(pattern, prompt, { timeoutMs });
  console.log(`answer: ${reply.text}`);
  return 0;
}

/** Run the bridge or ask one question; resolves with the exit code. */
export async function main(args: string[]): Promise<number> {
  let f;
  try {
    f = parseArgs({
      args,
      options: {
        name: { type: "string" },
        port: { type: "string", default: "0" },
        bind: { type: "string", default: "127.0.0.1" },
        connect: { type: "string", multiple: true, default: [] },
        "state-dir": { type: "string" },
        "passphrase-file": { type: "string" },
        "ollama-url": { type: "string" },
        model: { type: "string" },
        capability: { type: "string", multiple: true },
        "llm-timeout-ms": { type: "string", default: "120000" },
        ask: { type: "string" },
        pattern: { type: "string", default: "llm:*" },
        "timeout-ms": { type: "string", default: "130000" },
      },
    }).values;
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (!f.name) {
    console.error(USAGE);
    return 2;
  }
  const asking = f.ask !== undefined;
  let agent: Agent;
  try {
    agent = await Agent.start({
      name: f.name,
      port: Number(f.port),
      bind: f.bind,
      connect: f.connect,
      stateDir: f["state-dir"] ?? `.ironmesh-examples/${f.name}`,
      passphraseFile: f["passphrase-file"],
      capabilities: asking ? [] : f.capability ?? ["llm:generate"],
    });
  } catch (e) {
    console.error(`error: ${describe(e)}`);
    return 1;
  }
  console.log(`ready ${agent.name} ${agent.id} ${agent.address}`);
  try {
    return asking ? await ask(agent, f.ask!, f.pattern, Number(f["timeout-ms"])) : await bridge(
      agent,
      endpointUrl(f["ollama-url"]),
      f.model ?? env("OLLAMA_MODEL") ?? "llama3.2",
      Number(f["llm-timeout-ms"]),
    );
  } catch (e) {
    console.error(`error: ${describe(e)}`);
    return 1;
  } finally {
    await agent.close();
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
