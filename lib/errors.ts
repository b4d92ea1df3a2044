/** Errors that carry a stable code, a message and a hint an operator can act on. */

/** Exit codes the CLI uses; stable so scripts can rely on them. */
export const ExitCode = {
  OK: 0,
  FAILURE: 1,
  USAGE: 2,
  WRONG_PASSPHRASE: 3,
  BAD_KEYFILE: 4,
  LOCKED: 5,
  EXISTS: 6,
  NOT_FOUND: 7,
  PERMISSION: 8,
  BAD_PASSPHRASE: 9,
  TAMPERED: 10,
  NETWORK: 11,
  UNSUPPORTED: 12,
  BAD_INPUT: 13,
  /** No daemon listens on the state dir's control socket. */
  DAEMON_NOT_RUNNING: 14,
} as const;

export type ExitCodeValue = typeof ExitCode[keyof typeof ExitCode];

/** An error with a stable code, a one-line message and a hint saying what to do. */
export class IronMeshError extends Error {
  readonly code: string;
  readonly hint: string;
  readonly exitCode: ExitCodeValue;

  constructor(
    code: string,
    message: string,
    hint = "",
    exitCode: ExitCodeValue = ExitCode.FAILURE,
  ) {
    super(message);
    this.name = "IronMeshError";
    this.code = code;
    this.hint = hint;
    this.exitCode = exitCode;
  }

  /** The one line the CLI prints: `<message> — <hint>`. */
  oneLine(): string {
    return this.hint ? `${this.message} — ${this.hint}` : this.message;
  }
}

/** A key that libsodium refuses (small-order point, wrong length, not on the curve). */
export class InvalidKeyError extends IronMeshError {
  constructor(message: string) {
    super("CRYPTO_INVALID_KEY", message, "the peer sent an invalid or small-order key");
    this.name = "InvalidKeyError";
  }
}
