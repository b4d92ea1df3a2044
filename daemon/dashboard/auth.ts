/**
 * The dashboard's bearer token: 32 random bytes (43 base64url characters, as the reference's
 * `secrets.token_urlsafe(32)`), new at every start, never logged. A request carries it as
 * `Authorization: Bearer <token>`, as `?token=<token>`, or (WebSocket only, so a browser need
 * not put it in a URL) as the subprotocol `ironmesh.bearer.<token>`.
 *
 * Comparison is constant-time by construction: both sides are hashed to 32-byte SHA-256
 * digests (so neither the length nor any prefix of the token shapes the timing) and the
 * digests are compared with `node:crypto`'s `timingSafeEqual`.
 */
import { timingSafeEqual } from "node:crypto";
import { sha256, toB64Url, utf8 } from "../../lib/crypto/sodium.ts";

/** Subprotocol the page offers (and the server selects) on `/ws`. */
export const WS_PROTOCOL = "ironmesh.v1";
/** Prefix of the subprotocol that carries the token on `/ws`. */
export const WS_TOKEN_PREFIX = "ironmesh.bearer.";
/** Longest token accepted for comparison (anything longer is refused before hashing). */
export const MAX_TOKEN_CHARS = 512;

/** A fresh token: 32 bytes from the system CSPRNG, base64url without padding (43 chars). */
export function newToken(): string {
  return toB64Url(crypto.getRandomValues(new Uint8Array(32)));
}

/** Constant-time equality of two tokens (SHA-256 of each, then `timingSafeEqual`). */
export function tokenDigestEqual(expected: string, presented: string): boolean {
  return timingSafeEqual(sha256(utf8(expected)), sha256(utf8(presented)));
}

/** Where a request's token came from (for tests and diagnostics; the value is never kept). */
export type TokenSource = "header" | "query" | "subprotocol";

/** The token a request presents, or null. A malformed Authorization header counts as none. */
export function presentedToken(
  req: Request,
  url: URL,
  opts: { ws?: boolean } = {},
): { token: string; source: TokenSource } | null {
  const auth = req.headers.get("authorization");
  if (auth !== null) {
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(auth);
    return m ? { token: m[1], source: "header" } : null;
  }
  const q = url.searchParams.get("token");
  if (q !== null) return { token: q, source: "query" };
  if (opts.ws) {
    const protos = (req.headers.get("sec-websocket-protocol") ?? "").split(",").map((p) =>
      p.trim()
    );
    const p = protos.find((x) => x.startsWith(WS_TOKEN_PREFIX));
    if (p) return { token: p.slice(WS_TOKEN_PREFIX.length), source: "subprotocol" };
  }
  return null;
}

/** Checks requests against one token. */
export class TokenAuth {
  readonly #token: string;
  readonly #equal: (expected: string, presented: string) => boolean;

  /** `equal` is injectable only so tests can observe that every check goes through it. */
  constructor(token: string, equal: (a: string, b: string) => boolean = tokenDigestEqual) {
    if (token.length < 32) throw new Error("dashboard token too short");
    this.#token = token;
    this.#equal = equal;
  }

  /** The token (for the startup URL and the token file only). */
  get token(): string {
    return this.#token;
  }

  /** True when `req` carries the token. */
  check(req: Request, url: URL, opts: { ws?: boolean } = {}): boolean {
    const p = presentedToken(req, url, opts);
    if (!p || p.token.length > MAX_TOKEN_CHARS) return false;
    return this.#equal(this.#token, p.token);
  }
}
