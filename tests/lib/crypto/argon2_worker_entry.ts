// Worker entry for argon2_isolated_test.ts (the program's entry does the same in cli/main.ts).
import { inWorker, serveArgon2 } from "../../../lib/crypto/argon2_isolated.ts";
if (inWorker()) serveArgon2();
