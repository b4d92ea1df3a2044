/**
 * The page's files, compiled into the program: HTML and CSS are string modules, and app.js is
 * the source text of `dashboardApp` (already plain JavaScript: Deno strips the types when it
 * runs from source, `deno bundle` when it builds dist/ironmesh.js). No file is read at run
 * time, so the one-file bundle serves the same page.
 */
import { dashboardApp } from "./app.ts";
import { FAVICON_SVG, INDEX_HTML, MANIFEST_JSON } from "./index.ts";
import { STYLE_CSS } from "./style.ts";

/** A static file. */
export interface Asset {
  type: string;
  body: string;
}

/** The page script: the function's own source, called once. */
export const APP_JS = `"use strict";\n(${dashboardApp.toString()})();\n`;

const HTML: Asset = { type: "text/html; charset=utf-8", body: INDEX_HTML };

const ASSETS: ReadonlyMap<string, Asset> = new Map([
  ["/", HTML],
  ["/index.html", HTML],
  ["/app.js", { type: "text/javascript; charset=utf-8", body: APP_JS }],
  ["/style.css", { type: "text/css; charset=utf-8", body: STYLE_CSS }],
  ["/favicon.svg", { type: "image/svg+xml", body: FAVICON_SVG }],
  ["/favicon.ico", { type: "image/svg+xml", body: FAVICON_SVG }],
  ["/manifest.json", { type: "application/manifest+json; charset=utf-8", body: MANIFEST_JSON }],
]);

/** The static file at `path`, if any. */
export function staticAsset(path: string): Asset | undefined {
  return ASSETS.get(path);
}

/** Every static path (tests). */
export function staticPaths(): string[] {
  return [...ASSETS.keys()];
}
