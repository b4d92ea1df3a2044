/**
 * Headless Chromium for dashboard tests: Debian's /usr/bin/chromium driven by
 * npm:playwright-core, with a fresh profile per launch. A missing Chromium is a test failure
 * (never a skip): CI installs it in .ci/run (`apt-get install -y chromium`).
 */
import fs from "node:fs";
import type { BrowserContext, Page } from "playwright-core";

/**
 * playwright-core probes `/proc/sys/fs/binfmt_misc/WSLInterop` when it loads; Deno refuses that
 * path without --allow-all (NotCapable), and the suite runs with narrower flags. A refused probe
 * means "not there" here, so playwright-core is imported only after `existsSync` says so.
 */
async function loadPlaywright(): Promise<typeof import("playwright-core")> {
  const exists = fs.existsSync;
  fs.existsSync = ((p: fs.PathLike) => {
    try {
      return exists(p);
    } catch (e) {
      if (e instanceof Deno.errors.NotCapable) return false;
      throw e;
    }
  }) as typeof fs.existsSync;
  return await import("playwright-core");
}

/** Debian's Chromium. */
export const CHROMIUM = "/usr/bin/chromium";

/** Flags for a quiet, offline, headless Chromium. */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** A launched browser with a fresh profile; `close()` removes the profile. */
export interface TestBrowser {
  context: BrowserContext;
  /** Console errors and page errors seen on any page so far. */
  errors: string[];
  newPage(): Promise<Page>;
  close(): Promise<void>;
}

/** Launch Chromium (throws with the install command when it is missing). */
export async function launchChromium(): Promise<TestBrowser> {
  try {
    await Deno.stat(CHROMIUM);
  } catch {
    throw new Error(
      `${CHROMIUM} is missing: install Debian's Chromium (apt-get install -y chromium); ` +
        ".ci/run does this on CI",
    );
  }
  const profile = await Deno.makeTempDir({ prefix: "ironmesh-chromium-" });
  // --user-data-dir is how Playwright passes the fresh profile (launchPersistentContext).
  const { chromium } = await loadPlaywright();
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 900 },
  });
  const errors: string[] = [];
  const watch = (p: Page) => {
    p.on("console", (m) => {
      if (m.type() === "error") errors.push(`console: ${m.text()}`);
    });
    p.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
  };
  context.on("page", watch);
  for (const p of context.pages()) watch(p);
  return {
    context,
    errors,
    newPage: () => context.newPage(),
    async close() {
      await context.close().catch(() => {});
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    },
  };
}

/** Where tests write screenshots (ignored by fmt/lint). */
export async function testOutputDir(): Promise<string> {
  const dir = new URL("../../test-output/", import.meta.url).pathname;
  await Deno.mkdir(dir, { recursive: true });
  return dir;
}
