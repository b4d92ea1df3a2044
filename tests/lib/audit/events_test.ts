import { assert, assertEquals } from "../../support/assert.ts";
import { AUDIT_EVENTS, EVENT_LOG_ROTATED, isKnownEvent } from "../../../lib/audit/events.ts";
import { EXPECTED } from "./helpers.ts";

Deno.test("event list: the reference's 46 names, unique; every vector event is known", () => {
  assertEquals(AUDIT_EVENTS.length, 46);
  assertEquals(new Set(AUDIT_EVENTS).size, 46);
  for (const l of EXPECTED.main_log.lines) assert(isKnownEvent(l.event), l.event);
  assert(isKnownEvent(EVENT_LOG_ROTATED));
  assert(isKnownEvent("GLOBAL_RATE_CAP_CONFIGURED"));
  assert(!isKnownEvent("NOT_AN_EVENT"));
  assert(!isKnownEvent("startup"));
});
