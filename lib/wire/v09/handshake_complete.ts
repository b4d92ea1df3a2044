/**
 * The common tail of both handshake roles once the peer's HELLO is verified
 * and the session key derived (PROTOCOL-0.9 §5.6): TOFU hook, version floor,
 * then Established. The session key is wiped on any refusal.
 */
import { wipe } from "../../crypto/sodium.ts";
import type { VerifiedHello } from "./hello.ts";
import {
  type HandshakeConfig,
  handshakeFailure,
  type HandshakeOutcome,
  isHandshakeFailureCode,
} from "./handshake_types.ts";
import { versionAtLeast } from "./version.ts";

/** Run TOFU and the floor check for a verified peer; returns the outcome. */
export function completeHandshake(
  cfg: HandshakeConfig,
  role: "server" | "client",
  hello: VerifiedHello,
  sessionKey: Uint8Array,
  floor: string,
): HandshakeOutcome {
  let decision;
  try {
    decision = cfg.tofu({
      nodeId: hello.nodeId,
      name: hello.name,
      identityPublic: hello.identityPublic,
      identityPublicB64: hello.identityPublicB64,
      protocolVersion: hello.peerVersion,
      address: cfg.address ?? "",
      role,
      inviteToken: hello.inviteToken,
    });
  } catch (e) {
    wipe(sessionKey);
    throw e;
  }
  if (!decision.ok) {
    wipe(sessionKey);
    const code = isHandshakeFailureCode(decision.code) ? decision.code : "HS_TOFU_MISMATCH";
    return handshakeFailure(code, decision.reason, { peerNodeId: hello.nodeId });
  }
  if (!versionAtLeast(hello.peerVersion, floor)) {
    wipe(sessionKey);
    return handshakeFailure(
      "HS_VERSION_TOO_OLD",
      `peer advertises ${hello.peerVersion}, below the minimum ${floor}`,
      { peerNodeId: hello.nodeId },
    );
  }
  return {
    kind: "established",
    sessionKey,
    peer: {
      nodeId: hello.nodeId,
      name: hello.name,
      identityPublicB64: hello.identityPublicB64,
      identityPublic: hello.identityPublic,
      protocolVersion: hello.peerVersion,
      helloScheme: hello.scheme,
      ephemeralPublic: hello.ephemeralPublic,
      x25519Public: hello.x25519Public,
      x25519BindingValid: hello.x25519Public !== null,
      x25519Advertised: hello.x25519Advertised,
      inviteToken: hello.inviteToken,
    },
  };
}
