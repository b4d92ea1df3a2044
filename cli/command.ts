/** The shape of a subcommand module under cli/commands/. */
import type { Context } from "./context.ts";

/** A subcommand: its help text and its entry point. */
export interface Command {
  name: string;
  /** One line for the command list. */
  summary: string;
  /** Full --help text (usage, flags, examples). */
  help: string;
  /** Run with the arguments after the command name; returns the exit code. */
  run(argv: string[]): Promise<number>;
}

/** Re-export for command modules. */
export type { Context };
