/** What crash_child.ts writes, so crash_test.ts can check it byte for byte. */
import { utf8 } from "../../../lib/crypto/sodium.ts";

/** The peer a crash round queues for. */
export function crashPeer(round: string | number): string {
  return `crash-peer-${round}`;
}

/** The ~1 KiB payload of a message id. */
export function crashPayload(id: string): Uint8Array {
  return utf8(`payload of ${id}:` + "x".repeat(1000));
}
