/**
 * Permission checks of the state directory and its files, on stat results (no I/O):
 * the directory must be 0700 (no group/other bits) and owned by the user; every regular
 * file in it 0600-or-stricter and owned by the user.
 */
import { type CheckResult, fail, pass } from "./report.ts";

/** What the checks need from `Deno.lstat`. */
export interface StatInfo {
  name: string;
  kind: "file" | "directory" | "symlink" | "other";
  /** Permission bits (`mode & 0o777`), or null when the platform has none. */
  mode: number | null;
  uid: number | null;
}

/** `StatInfo` from a Deno.FileInfo. */
export function statInfo(name: string, info: Deno.FileInfo): StatInfo {
  return {
    name,
    kind: info.isSymlink
      ? "symlink"
      : info.isFile
      ? "file"
      : info.isDirectory
      ? "directory"
      : "other",
    mode: info.mode === null ? null : info.mode & 0o777,
    uid: info.uid,
  };
}

/** Octal mode text like `0700`. */
export function octal(mode: number): string {
  return mode.toString(8).padStart(4, "0");
}

/** The state directory itself (`dir` = its path, `info` null when it does not exist). */
export function checkStateDir(dir: string, info: StatInfo | null, uid: number | null): CheckResult {
  const id = "state-dir", title = "state directory";
  if (!info) {
    return fail(
      id,
      title,
      `${dir} does not exist`,
      "create this node: 'ironmesh keys generate --name NAME' (or 'ironmesh restore --in FILE'), " +
        "or point --state-dir / IRONMESH_HOME at the right directory",
    );
  }
  if (info.kind !== "directory") {
    return fail(id, title, `${dir} is not a directory`, "point --state-dir at a directory");
  }
  const problems: string[] = [];
  const fixes: string[] = [];
  if (info.mode !== null && (info.mode & 0o077) !== 0) {
    problems.push(`mode ${octal(info.mode)} lets other users in`);
    fixes.push(`chmod 700 ${dir}`);
  }
  if (uid !== null && info.uid !== null && info.uid !== uid) {
    problems.push(`owned by uid ${info.uid}, not you (uid ${uid})`);
    fixes.push(`chown -R $(id -u):$(id -g) ${dir} (or run ironmesh as its owner)`);
  }
  if (problems.length) return fail(id, title, `${dir}: ${problems.join("; ")}`, fixes.join("; "));
  const m = info.mode === null ? "" : `mode ${octal(info.mode)}`;
  const o = uid === null ? "owner not checked" : "owned by you";
  return pass(id, title, `${dir} (${[m, o].filter(Boolean).join(", ")})`);
}

/** Every regular file in the state directory. Symlinks are reported, not followed. */
export function checkStateFiles(dir: string, entries: StatInfo[], uid: number | null): CheckResult {
  const id = "file-modes", title = "file permissions";
  const files = entries.filter((e) => e.kind === "file");
  const open = files.filter((e) => e.mode !== null && (e.mode & 0o077) !== 0);
  const foreign = uid === null ? [] : files.filter((e) => e.uid !== null && e.uid !== uid);
  const links = entries.filter((e) => e.kind === "symlink");
  const path = (e: StatInfo) => `${dir}/${e.name}`;
  if (open.length || foreign.length) {
    const problems: string[] = [];
    const fixes: string[] = [];
    if (open.length) {
      problems.push(
        `readable or writable by others: ${
          open.map((e) => `${e.name} (${octal(e.mode!)})`).join(", ")
        }`,
      );
      fixes.push(`chmod 600 ${open.map(path).join(" ")}`);
    }
    if (foreign.length) {
      problems.push(
        `not owned by you: ${foreign.map((e) => `${e.name} (uid ${e.uid})`).join(", ")}`,
      );
      fixes.push(`chown $(id -u):$(id -g) ${foreign.map(path).join(" ")}`);
    }
    return fail(id, title, problems.join("; "), fixes.join("; "));
  }
  const note = links.length ? `; symlinks not checked: ${links.map((e) => e.name).join(", ")}` : "";
  return pass(
    id,
    title,
    files.length
      ? `${files.length} file(s), all 0600 or stricter${uid === null ? "" : " and yours"}${note}`
      : `no files yet${note}`,
  );
}
