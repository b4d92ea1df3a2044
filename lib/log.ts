/** A small leveled logger writing one line per record to stderr, as text or JSON. Never pass secrets. */

/** Log levels, least to most severe. */
export type LogLevel = "debug" | "info" | "warn" | "error";
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Valid values for --log-level. */
export const LOG_LEVELS = Object.keys(ORDER) as LogLevel[];

/** True when `s` names a log level. */
export function isLogLevel(s: string): s is LogLevel {
  return s in ORDER;
}

/** A logger; `child` adds fixed fields. */
export class Logger {
  constructor(
    readonly level: LogLevel = "info",
    readonly format: "text" | "json" = "text",
    readonly fields: Record<string, unknown> = {},
    readonly sink: (line: string) => void = (line) => console.error(line),
  ) {}

  /** A logger with extra fixed fields. */
  child(fields: Record<string, unknown>): Logger {
    return new Logger(this.level, this.format, { ...this.fields, ...fields }, this.sink);
  }

  /** True when records at `level` are written. */
  enabled(level: LogLevel): boolean {
    return ORDER[level] >= ORDER[this.level];
  }

  log(level: LogLevel, msg: string, fields: Record<string, unknown> = {}): void {
    if (!this.enabled(level)) return;
    const all = { ...this.fields, ...fields };
    if (this.format === "json") {
      this.sink(JSON.stringify({ ts: new Date().toISOString(), level, msg, ...all }));
    } else {
      const extra = Object.entries(all).map(([k, v]) =>
        `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`
      );
      this.sink(
        `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${msg}${
          extra.length ? " " + extra.join(" ") : ""
        }`,
      );
    }
  }
  debug(msg: string, fields?: Record<string, unknown>): void {
    this.log("debug", msg, fields);
  }
  info(msg: string, fields?: Record<string, unknown>): void {
    this.log("info", msg, fields);
  }
  warn(msg: string, fields?: Record<string, unknown>): void {
    this.log("warn", msg, fields);
  }
  error(msg: string, fields?: Record<string, unknown>): void {
    this.log("error", msg, fields);
  }
}
