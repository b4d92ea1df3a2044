/**
 * Python float formatting. JavaScript cannot tell `1.0` from `1`, so fields the
 * reference writes as Python floats are wrapped in `PyFloat` (or formatted with
 * `pyFloatRepr`) and serialize exactly as Python's `float.__repr__`.
 */

/** A number that must be written as a Python float (`1.0`, `1e-05`, `1e+16`). */
export class PyFloat {
  constructor(readonly value: number) {}
  valueOf(): number {
    return this.value;
  }
  toJSON(): number {
    return this.value;
  }
}

/** Wrap a number so canonical JSON writes it as a Python float. */
export function pyFloat(value: number): PyFloat {
  return new PyFloat(value);
}

/** Python `repr(float(x))`: shortest round-trip digits, exponent when exp < -4 or >= 16. */
export function pyFloatRepr(x: number): string {
  if (!Number.isFinite(x)) throw new RangeError(`cannot serialize non-finite float ${x}`);
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const sign = x < 0 ? "-" : "";
  const [mant, expText] = Math.abs(x).toExponential().split("e");
  const exp = Number(expText);
  const digits = mant.replace(".", "");
  if (exp < -4 || exp >= 16) {
    const m = digits.length === 1 ? digits : `${digits[0]}.${digits.slice(1)}`;
    const e = Math.abs(exp);
    return `${sign}${m}e${exp < 0 ? "-" : "+"}${e < 10 ? "0" : ""}${e}`;
  }
  if (exp >= 0) {
    if (digits.length <= exp + 1) return `${sign}${digits}${"0".repeat(exp + 1 - digits.length)}.0`;
    return `${sign}${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
  }
  return `${sign}0.${"0".repeat(-exp - 1)}${digits}`;
}
