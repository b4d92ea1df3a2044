import { join } from "node:path";
import { assertEquals, assertThrows } from "../../support/assert.ts";
import { IronMeshError } from "../../../lib/errors.ts";
import {
  archivePath,
  checkpointPathFor,
  DEFAULT_MAX_BYTES,
  fileExists,
  lockPathFor,
  logFilesOldestFirst,
  MAX_ARCHIVES,
  readFileOrNull,
} from "../../../lib/audit/files.ts";
import { withTempDir } from "./helpers.ts";

Deno.test("names around a log: archives, the reference's .lock sentinel, the checkpoint", () => {
  assertEquals(archivePath("/s/audit.log", 3), "/s/audit.log.3");
  assertEquals(lockPathFor("/s/audit.log"), "/s/audit.log.lock");
  assertEquals(checkpointPathFor("/s/audit.log"), "/s/audit.checkpoint");
  assertEquals(checkpointPathFor("/s/events"), "/s/events.checkpoint");
  assertEquals([MAX_ARCHIVES, DEFAULT_MAX_BYTES], [5, 10_485_760]);
});

Deno.test("logFilesOldestFirst lists .5 … .1 then live, skipping missing ones", async () => {
  await withTempDir((dir) => {
    const p = join(dir, "audit.log");
    assertEquals(logFilesOldestFirst(p, true), []);
    for (const f of ["audit.log", "audit.log.1", "audit.log.3", "audit.log.6"]) {
      Deno.writeTextFileSync(join(dir, f), "");
    }
    assertEquals(logFilesOldestFirst(p, true), [`${p}.3`, `${p}.1`, p]);
    assertEquals(logFilesOldestFirst(p, false), [p]);
    assertEquals(fileExists(`${p}.2`), false);
    assertEquals(readFileOrNull(`${p}.2`), null);
    assertEquals(readFileOrNull(p)?.length, 0);
    Deno.mkdirSync(join(dir, "adir"));
    const e = assertThrows(() => readFileOrNull(join(dir, "adir")), IronMeshError) as IronMeshError;
    assertEquals(e.code, "AUDIT_UNREADABLE");
  });
});
