// examples/llm_bridge.ts against a fake Ollama endpoint served by the test on 127.0.0.1: the
// bridge process advertises llm:generate and answers requests (string and {prompt, model}),
// plain messages, and endpoint failures (as LLM_HTTP_ERROR); its --ask mode, as a second
// process, finds the bridge by capability and prints the answer.
import { assertEquals, assertRejects } from "../support/assert.ts";
import { Agent, IronMeshError } from "../../mod.ts";
import { exampleDir, ExampleProc, PASS } from "./_proc.ts";

interface Generate {
  model: string;
  prompt: string;
  stream: boolean;
}

Deno.test("examples/llm_bridge.ts: prompts over the mesh are answered by an Ollama-compatible endpoint", async () => {
  const { dir, passFile } = await exampleDir("llm");
  const seen: Generate[] = [];
  const ollama = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    if (req.method !== "POST" || url.pathname !== "/api/generate") {
      return new Response("not found", { status: 404 });
    }
    const body = await req.json() as Generate;
    seen.push(body);
    if (body.prompt.includes("fail")) return new Response("model exploded", { status: 500 });
    return Response.json({
      model: body.model,
      response: `[${body.model}] ${body.prompt.toUpperCase()}`,
      done: true,
    });
  });
  const procs: ExampleProc[] = [];
  let client: Agent | null = null;
  try {
    const bridge = new ExampleProc("bridge", "llm_bridge.ts", [
      "--name",
      "llm-bridge",
      "--state-dir",
      `${dir}/bridge`,
      "--ollama-url",
      `http://127.0.0.1:${ollama.addr.port}/`,
      "--model",
      "fake-model",
    ], { dir, passFile, extraEnvNames: ["OLLAMA_URL", "OLLAMA_HOST", "OLLAMA_MODEL"] });
    procs.push(bridge);
    const [, addr] = await bridge.waitFor(/^ready llm-bridge [0-9a-f]{32} (\S+)$/);
    await bridge.waitFor(
      new RegExp(
        `^bridging llm:generate → http://127\\.0\\.0\\.1:${ollama.addr.port} \\(model fake-model\\)$`,
      ),
    );

    // The --ask mode, as its own process, alongside an in-process SDK client.
    const asker = new ExampleProc("asker", "llm_bridge.ts", [
      "--name",
      "asker",
      "--state-dir",
      `${dir}/asker`,
      "--connect",
      addr,
      "--ask",
      "why is the sky blue?",
    ], { dir, passFile });
    procs.push(asker);

    client = await Agent.start({
      name: "client",
      passphrase: PASS,
      stateDir: `${dir}/client`,
      port: 0,
      connect: [addr],
      plaintextKeys: true,
      logLevel: "silent",
    });
    const [llm] = await client.waitForCapability("llm:*", { timeoutMs: 20_000 });
    assertEquals([llm.capability, llm.name], ["llm:generate", "llm-bridge"]);

    const r1 = await client.requestCapability("llm:*", "hello there");
    assertEquals(r1.data, "[fake-model] HELLO THERE");
    const r2 = await client.request("llm-bridge", { prompt: "two", model: "tiny:1b" });
    assertEquals(r2.data, { model: "tiny:1b", response: "[tiny:1b] TWO" });
    const e = await assertRejects(
      () => client!.request("llm-bridge", "please fail"),
      IronMeshError,
      "answered 500: model exploded",
    );
    assertEquals((e as IronMeshError).code, "LLM_HTTP_ERROR");
    // A plain message gets its answer as a plain message.
    const reply = (async () => {
      for await (const m of client!.messages()) return m.text;
    })();
    await client.send("llm-bridge", "a plain prompt");
    assertEquals(await reply, "[fake-model] A PLAIN PROMPT");

    assertEquals(await asker.exit(60_000), 0, asker.dump());
    await asker.waitFor(/^asking llm-bridge \(llm:generate\)$/);
    assertEquals(asker.all(/^answer: /), ["answer: [fake-model] WHY IS THE SKY BLUE?"]);

    // The endpoint saw exactly the Ollama generate calls, non-streaming.
    assertEquals(
      seen.map((g) => [g.model, g.prompt, g.stream]).sort(),
      [
        ["fake-model", "a plain prompt", false],
        ["fake-model", "hello there", false],
        ["fake-model", "please fail", false],
        ["fake-model", "why is the sky blue?", false],
        ["tiny:1b", "two", false],
      ],
    );
    assertEquals(bridge.all(/^answered /).length, 4);
    assertEquals(bridge.all(/^failed client: LLM_HTTP_ERROR$/).length, 1);

    bridge.kill("SIGTERM");
    assertEquals(await bridge.exit(), 0, bridge.dump());
  } finally {
    await client?.close();
    for (const p of procs) p.kill("SIGKILL");
    for (const p of procs) await p.exit();
    await ollama.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
