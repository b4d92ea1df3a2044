/**
 * The rules for what an operator gives a node, shared by the CLI (`ironmesh run`, `mcp
 * --own-node`, `keys`, `backup`) and the SDK (`Agent.start`): agent names, capabilities, peer
 * addresses, and passphrases (their minimum length, and how a passphrase file is read).
 */
import { ExitCode, IronMeshError } from "./errors.ts";

/** An agent name: 1–63 letters, digits, '.', '_' or '-'. */
export const AGENT_NAME_RE = /^[A-Za-z0-9._-]{1,63}$/;

/** A capability as a node offers it: NAMESPACE:NAME (the name may hold '*'). */
export const CAPABILITY_RE = /^[A-Za-z0-9._-]+:[A-Za-z0-9._*-]+$/;

/** A static peer: HOST:PORT, [IPv6]:PORT, or ws[s]://HOST:PORT. */
export const PEER_ADDRESS_RE = /^(wss?:\/\/)?(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}\/?$/;

/** The reference's minimum passphrase length. */
export const MIN_PASSPHRASE_LENGTH = 12;

/** Check the minimum length; the error names the fix. */
export function checkPassphraseStrength(p: string): void {
  if (p.length < MIN_PASSPHRASE_LENGTH) {
    throw new IronMeshError(
      "PASSPHRASE_TOO_SHORT",
      `Passphrase too short (${p.length} chars). Minimum ${MIN_PASSPHRASE_LENGTH} characters required`,
      "choose a longer passphrase (a random one: `openssl rand -base64 24`)",
      ExitCode.BAD_PASSPHRASE,
    );
  }
}

/** Strip a passphrase file's text the reference's way: leading/trailing "\n", then "\r". */
export function stripPassphraseFile(s: string): string {
  return s.replace(/^\n+|\n+$/g, "").replace(/^\r+|\r+$/g, "");
}
