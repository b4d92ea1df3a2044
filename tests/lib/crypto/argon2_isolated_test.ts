// Argon2id offloaded to a throw-away worker gives the same bytes as in-process libsodium,
// restores in-process derivation afterwards, and falls back when the worker cannot start.
import { assert, assertEquals } from "../../support/assert.ts";
import { withIsolatedArgon2 } from "../../../lib/crypto/argon2_isolated.ts";
import { argon2id, hasArgon2Provider, setArgon2Provider } from "../../../lib/crypto/sodium.ts";

const PARAMS = { opsLimit: 2, memLimit: 8 * 1024 * 1024 };
const pw = new TextEncoder().encode("correct horse battery staple");
const salt = new Uint8Array(16).fill(7);
const entry = new URL("./argon2_worker_entry.ts", import.meta.url).href;

Deno.test("isolated Argon2id: same bytes as in-process, computed in the worker", async () => {
  const local = argon2id(pw, salt, PARAMS, 32);
  const viaWorker = await withIsolatedArgon2(entry, () => {
    assert(hasArgon2Provider(), "the worker provider is installed inside the block");
    return Promise.resolve(argon2id(pw, salt, PARAMS, 32));
  });
  assertEquals(viaWorker, local);
  assert(!hasArgon2Provider(), "removed afterwards");
  assertEquals(argon2id(pw, salt, PARAMS, 32), local);
});

Deno.test("isolated Argon2id: the provider is used while the block runs and removed after", async () => {
  let seen = 0;
  await withIsolatedArgon2(entry, () => {
    // A provider is installed: replacing it here shows argon2id consults it.
    setArgon2Provider(() => {
      seen++;
      return new Uint8Array(32).fill(1);
    });
    assertEquals(argon2id(pw, salt, PARAMS, 32), new Uint8Array(32).fill(1));
    return Promise.resolve();
  });
  assertEquals(seen, 1);
  assert(argon2id(pw, salt, PARAMS, 32).some((b) => b !== 1), "provider removed afterwards");
});

Deno.test("isolated Argon2id: a worker that cannot start falls back to in-process", async () => {
  const local = argon2id(pw, salt, PARAMS, 32);
  const out = await withIsolatedArgon2(
    new URL("./does_not_exist.ts", import.meta.url).href,
    () => Promise.resolve(argon2id(pw, salt, PARAMS, 32)),
  );
  assertEquals(out, local);
});
