/**
 * Python `fnmatch.fnmatchcase` (the reference's capability lookup, PROTOCOL-0.9 §9.1): `*` any
 * run, `?` one character, `[…]` a set with ranges, `[!…]` its complement; case-sensitive; no
 * escape character (a backslash is literal); an unclosed `[` is literal. Characters are Unicode
 * code points (an astral character is one `?`), the whole string must match, and `*` spans
 * newlines — as the reference's `(?s:…)\Z` regex does. Sets follow CPython's `translate`: a `]`
 * right after `[` or `[!` is a member, a `-` first or last is literal, and a reversed range
 * (`z-a`) is removed together with its endpoints.
 */

type Token =
  | { k: "star" }
  | { k: "any" }
  | { k: "lit"; cp: number }
  | { k: "set"; negate: boolean; members: Set<number>; ranges: [number, number][] };

const STAR = 0x2a, QUESTION = 0x3f, OPEN = 0x5b, CLOSE = 0x5d, BANG = 0x21, DASH = 0x2d;

function codePoints(s: string): number[] {
  return Array.from(s, (c) => c.codePointAt(0)!);
}

/** CPython's handling of the text between `[` and `]` (including a leading `!`). */
function parseSet(stuff: number[]): Token {
  let chunks: number[][];
  if (!stuff.includes(DASH)) {
    chunks = [stuff];
  } else {
    chunks = [];
    let i = 0;
    let k = stuff[0] === BANG ? 2 : 1;
    for (;;) {
      k = stuff.indexOf(DASH, k);
      if (k < 0) break;
      chunks.push(stuff.slice(i, k));
      i = k + 1;
      k = k + 3;
    }
    const last = stuff.slice(i);
    if (last.length) chunks.push(last);
    else chunks[chunks.length - 1] = [...chunks[chunks.length - 1], DASH];
    // CPython then deletes each reversed range with its two endpoints; a reversed range below
    // simply matches nothing, which is the same set.
  }
  // Chunks are joined by range dashes: last char of one chunk – first char of the next.
  const members = new Set<number>();
  const ranges: [number, number][] = [];
  const negate = chunks[0]?.[0] === BANG;
  if (negate) chunks[0] = chunks[0].slice(1);
  for (let j = 0; j < chunks.length; j++) {
    const c = chunks[j];
    let from = 0, to = c.length;
    if (j > 0) from = 1; // c[0] ended the previous range
    if (j < chunks.length - 1) {
      to = c.length - 1; // c[last] starts the next range
      ranges.push([c[c.length - 1], chunks[j + 1][0]]);
    }
    for (let x = from; x < to; x++) members.add(c[x]);
  }
  return { k: "set", negate, members, ranges };
}

function tokenize(pattern: string): Token[] {
  const p = codePoints(pattern);
  const out: Token[] = [];
  let i = 0;
  while (i < p.length) {
    const c = p[i++];
    if (c === STAR) {
      if (out[out.length - 1]?.k !== "star") out.push({ k: "star" });
    } else if (c === QUESTION) {
      out.push({ k: "any" });
    } else if (c === OPEN) {
      let j = i;
      if (j < p.length && p[j] === BANG) j++;
      if (j < p.length && p[j] === CLOSE) j++;
      while (j < p.length && p[j] !== CLOSE) j++;
      if (j >= p.length) {
        out.push({ k: "lit", cp: OPEN });
      } else {
        out.push(parseSet(p.slice(i, j)));
        i = j + 1;
      }
    } else {
      out.push({ k: "lit", cp: c });
    }
  }
  return out;
}

function matchOne(t: Token, cp: number): boolean {
  switch (t.k) {
    case "any":
      return true;
    case "lit":
      return t.cp === cp;
    case "set": {
      const inSet = t.members.has(cp) || t.ranges.some(([lo, hi]) => lo <= cp && cp <= hi);
      return inSet !== t.negate;
    }
    default:
      return false;
  }
}

function run(tokens: Token[], s: number[]): boolean {
  let ti = 0, si = 0, starTi = -1, starSi = 0;
  while (si < s.length) {
    const t = tokens[ti];
    if (t !== undefined && t.k !== "star" && matchOne(t, s[si])) {
      ti++;
      si++;
    } else if (t?.k === "star") {
      starTi = ti++;
      starSi = si;
    } else if (starTi >= 0) {
      ti = starTi + 1;
      si = ++starSi;
    } else {
      return false;
    }
  }
  while (tokens[ti]?.k === "star") ti++;
  return ti === tokens.length;
}

/** Compile a pattern once; the returned function tests strings against it. */
export function compileGlob(pattern: string): (s: string) => boolean {
  const tokens = tokenize(pattern);
  return (s) => run(tokens, codePoints(s));
}

/** `fnmatch.fnmatchcase(name, pattern)`. */
export function fnmatchCase(name: string, pattern: string): boolean {
  return compileGlob(pattern)(name);
}
