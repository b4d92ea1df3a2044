/** Tiny benchmark helpers: run a function for a time budget, report ops/s; print tables of ratios. */

/** Operations per second of `fn` over about `ms` milliseconds (after a short warm-up). */
export function opsPerSecond(fn: () => void, ms = 400): number {
  const warm = performance.now() + ms / 4;
  while (performance.now() < warm) fn();
  let n = 0;
  const t0 = performance.now();
  const end = t0 + ms;
  while (performance.now() < end) {
    for (let i = 0; i < 16; i++) fn();
    n += 16;
  }
  return n / ((performance.now() - t0) / 1000);
}

/** Median of numbers. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN;
}

/** The q-quantile (0..1) of numbers. */
export function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : NaN;
}

/** Format a number with thousands separators. */
export function fmt(n: number, digits = 0): string {
  return n.toLocaleString("en-US", {
    maximumFractionDigits: digits,
    minimumFractionDigits: digits,
  });
}

/** Print a Markdown table. */
export function printTable(title: string, header: string[], rows: (string | number)[][]): void {
  console.log(`\n### ${title}\n`);
  console.log(`| ${header.join(" | ")} |`);
  console.log(`|${header.map(() => "---").join("|")}|`);
  for (const r of rows) console.log(`| ${r.join(" | ")} |`);
}
