/** `ironmesh demo` — placeholder until the wire protocol lands (issue 3). */
import { ExitCode, IronMeshError } from "../../lib/errors.ts";
import type { Command } from "../command.ts";

export const demoCommand: Command = {
  name: "demo",
  summary: "10-second smoke test: two agents on 127.0.0.1, handshake, encrypted ping",
  help: "ironmesh demo — not built yet (the wire protocol comes next)",
  run() {
    throw new IronMeshError(
      "NOT_BUILT",
      "ironmesh demo is not built yet",
      "the wire protocol is in progress; 'ironmesh keys' works today",
      ExitCode.FAILURE,
    );
  },
};
