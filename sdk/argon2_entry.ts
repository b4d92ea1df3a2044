/**
 * Worker entry of the SDK's Argon2id isolation: `Agent.start` runs key derivation
 * (keys.json, data.db) in a throw-away worker started from this module, so libsodium's
 * 256 MiB Argon2id memory never stays in the application's process
 * (see lib/crypto/argon2_isolated.ts). Importing it outside a worker does nothing.
 */
import { inWorker, serveArgon2 } from "../lib/crypto/argon2_isolated.ts";

if (inWorker()) serveArgon2();
