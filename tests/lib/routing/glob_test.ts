import { assertEquals } from "../../support/assert.ts";
import { compileGlob, fnmatchCase } from "../../../lib/routing/glob.ts";

/** [name, pattern, Python 3.11 fnmatch.fnmatchcase(name, pattern)], recorded from CPython. */
const CASES: [string, string, boolean][] = [
  ["llm:llama3", "llm:*", true],
  ["llm:", "llm:*", true],
  ["LLM:x", "llm:*", false],
  ["xllm:x", "llm:*", false],
  ["tool:web-search", "tool:*", true],
  ["a", "?", true],
  ["ab", "?", false],
  ["", "", true],
  ["", "*", true],
  ["🚀", "?", true],
  ["a🚀b", "a?b", true],
  ["a\nb", "a*b", true],
  ["a\nb", "a?b", true],
  ["[", "[", true],
  ["[abc", "[abc", true],
  ["x", "[abc", false],
  ["]", "[]]", true],
  ["a", "[]]", false],
  ["!", "[!]]", true],
  ["]", "[!]]", false],
  ["b", "[a-c]", true],
  ["d", "[a-c]", false],
  ["-", "[a-]", true],
  ["a", "[a-]", true],
  ["-", "[-a]", true],
  ["b", "[z-a]", false],
  ["z", "[z-a]", false],
  ["a", "[z-a]", false],
  ["a", "[!z-a]", true],
  ["\\", "[\\]", true],
  ["a\\b", "a\\b", true],
  ["b", "[a-c-e]", true],
  ["-", "[a-c-e]", true],
  ["d", "[a-c-e]", false],
  ["e", "[a-c-e]", true],
  ["!", "[!a]", true],
  ["a", "[!a]", false],
  ["^", "[^a]", true],
  ["a", "[^a]", true],
  ["b", "[^a]", false],
  ["llm:gpt-4", "llm:*-?", true],
  ["llm:gpt-44", "llm:*-?", false],
  ["abcabc", "*abc", true],
  ["abcab", "*abc*", true],
  ["aaa", "a*a*a", true],
  ["aa", "a*a*a", false],
  ["x.y", "*.*", true],
  ["xy", "*.*", false],
  ["é", "[à-ê]", true],
  ["ë", "[à-ê]", false],
  ["😀", "[😀-😂]", true],
  ["😃", "[😀-😂]", false],
  ["-", "[!-]", false],
  ["a", "[!-]", true],
  ["b", "[a-b-c]", true],
  ["-", "[a-b-c]", true],
  ["c", "[a-b-c]", true],
  ["x", "[x-a-z]", false],
  ["q", "[x-a-z]", false],
  ["-", "[x-a-z]", true],
  ["a", "[x-a-z]", false],
  ["z", "[x-a-z]", true],
  ["&", "[&&]", true],
  ["|", "[a||b]", true],
  ["~", "[~]", true],
];

Deno.test("glob: matches exactly as Python's fnmatch.fnmatchcase on 65 recorded cases", () => {
  for (const [name, pattern, expected] of CASES) {
    assertEquals(
      fnmatchCase(name, pattern),
      expected,
      `fnmatchcase(${JSON.stringify(name)}, ${JSON.stringify(pattern)})`,
    );
  }
});

Deno.test("glob: a compiled pattern is reusable and has no exponential backtracking", () => {
  const m = compileGlob("*a*a*a*a*b");
  assertEquals(m("a".repeat(2000)), false);
  assertEquals(m("a".repeat(2000) + "b"), true);
  assertEquals(m("aaab"), false);
});
