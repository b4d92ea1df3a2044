/** A throw-away self-signed certificate for 127.0.0.1 (CA:FALSE, with SAN), made with openssl. */
import { join } from "node:path";

/** PEM cert and key. */
export interface TestCert {
  cert: string;
  key: string;
  certPath: string;
  keyPath: string;
}

/** Create a self-signed EC certificate for 127.0.0.1/localhost in `dir`. */
export async function makeTestCert(dir: string): Promise<TestCert> {
  const certPath = join(dir, "cert.pem"), keyPath = join(dir, "key.pem");
  const out = await new Deno.Command("openssl", {
    args: [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      keyPath,
      "-out",
      certPath,
      "-days",
      "2",
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
      "-addext",
      "basicConstraints=critical,CA:FALSE",
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`openssl failed: ${new TextDecoder().decode(out.stderr)}`);
  return {
    cert: await Deno.readTextFile(certPath),
    key: await Deno.readTextFile(keyPath),
    certPath,
    keyPath,
  };
}
