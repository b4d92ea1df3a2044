/** Test assertions (JSR's @std/assert is unreachable here, so these wrap node:assert). */
import assert from "node:assert";

/** Deep strict equality. */
export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  assert.deepStrictEqual(actual, expected, msg);
}

/** Deep strict inequality. */
export function assertNotEquals<T>(actual: T, expected: T, msg?: string): void {
  assert.notDeepStrictEqual(actual, expected, msg);
}

/** Truthiness. */
export function assert_(cond: unknown, msg?: string): asserts cond {
  assert.ok(cond, msg);
}
export { assert_ as assert };

/** `fn` throws; optionally an instance of `cls` whose message includes `includes`. Returns the error. */
export function assertThrows(
  fn: () => unknown,
  // deno-lint-ignore no-explicit-any
  cls?: new (...args: any[]) => Error,
  includes?: string,
): Error {
  try {
    fn();
  } catch (e) {
    if (cls && !(e instanceof cls)) {
      throw new assert.AssertionError({ message: `expected ${cls.name}, got ${e}` });
    }
    if (includes && !String((e as Error).message).includes(includes)) {
      throw new assert.AssertionError({
        message: `expected message to include "${includes}", got "${(e as Error).message}"`,
      });
    }
    return e as Error;
  }
  throw new assert.AssertionError({ message: "expected function to throw" });
}

/** Async version of assertThrows. */
export async function assertRejects(
  fn: () => Promise<unknown>,
  // deno-lint-ignore no-explicit-any
  cls?: new (...args: any[]) => Error,
  includes?: string,
): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    if (cls && !(e instanceof cls)) {
      throw new assert.AssertionError({ message: `expected ${cls.name}, got ${e}` });
    }
    if (includes && !String((e as Error).message).includes(includes)) {
      throw new assert.AssertionError({
        message: `expected message to include "${includes}", got "${(e as Error).message}"`,
      });
    }
    return e as Error;
  }
  throw new assert.AssertionError({ message: "expected promise to reject" });
}

/** `haystack` contains `needle`. */
export function assertStringIncludes(haystack: string, needle: string, msg?: string): void {
  assert.ok(
    haystack.includes(needle),
    msg ?? `expected ${JSON.stringify(haystack)} to include ${JSON.stringify(needle)}`,
  );
}

/** `pattern` matches `s`. */
export function assertMatch(s: string, pattern: RegExp, msg?: string): void {
  assert.match(s, pattern, msg);
}
