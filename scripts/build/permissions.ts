/** The least-privilege permission flags the shipped program runs with (bundle instructions, compile). */
export const ENV_NAMES = [
  "HOME",
  "IRONMESH_HOME",
  "IRONMESH_PASSPHRASE",
  "IRONMESH_PASSPHRASE_FILE",
  "IRONMESH_KEYS_PASSPHRASE",
  "IRONMESH_BACKUP_PASSPHRASE",
  "IRONMESH_BACKUP_PASSPHRASE_FILE",
  "NO_COLOR",
];

/** Flags for `deno run` / `deno compile`: never -A. */
export const RUN_FLAGS = [
  "--allow-read",
  "--allow-write",
  `--allow-env=${ENV_NAMES.join(",")}`,
  "--allow-net",
  "--allow-sys=hostname,networkInterfaces,homedir,uid",
];
