/** What every data.db table module shares: the connection, cached statements, transactions. */
import type { DatabaseSync, SQLInputValue, StatementSync } from "node:sqlite";
import type { Clock } from "../clock.ts";
import type { PayloadCipher } from "./storage_key.ts";

/** A row as node:sqlite returns it. */
export type Row = Record<string, unknown>;

/** Shared handle passed to the queue, history, peers and cleanup modules. */
export class StoreContext {
  readonly db: DatabaseSync;
  readonly cipher: PayloadCipher;
  readonly clock: Clock;
  #stmts = new Map<string, StatementSync>();

  /** Wrap an open connection. */
  constructor(db: DatabaseSync, cipher: PayloadCipher, clock: Clock) {
    this.db = db;
    this.cipher = cipher;
    this.clock = clock;
  }

  /** A prepared statement, compiled once per SQL text. */
  stmt(sql: string): StatementSync {
    let s = this.#stmts.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.#stmts.set(sql, s);
    }
    return s;
  }

  /** First row of a cached statement, or undefined. */
  get(sql: string, ...params: SQLInputValue[]): Row | undefined {
    return this.stmt(sql).get(...params) as Row | undefined;
  }

  /** All rows of a cached statement. */
  all(sql: string, ...params: SQLInputValue[]): Row[] {
    return this.stmt(sql).all(...params) as Row[];
  }

  /** Run a cached statement; returns the number of changed rows. */
  run(sql: string, ...params: SQLInputValue[]): number {
    return Number(this.stmt(sql).run(...params).changes);
  }

  /**
   * Run `fn` in one `BEGIN IMMEDIATE … COMMIT` (rolled back if it throws). Nested calls
   * join the outer transaction. `fn` must be synchronous, so nothing interleaves with it.
   */
  tx<T>(fn: () => T): T {
    if (this.db.isTransaction) return fn();
    this.db.exec("BEGIN IMMEDIATE");
    try {
      const result = fn();
      if (result instanceof Promise) throw new TypeError("StoreContext.tx: fn must be synchronous");
      this.db.exec("COMMIT");
      return result;
    } catch (e) {
      // Also after a failed COMMIT (e.g. disk full): never leave a half-open transaction.
      if (this.db.isTransaction) this.db.exec("ROLLBACK");
      throw e;
    }
  }

  /** Forget the cached statements (before closing the connection). */
  clear(): void {
    this.#stmts.clear();
  }
}

/** A column value as a number (REAL/INTEGER), or null. */
export function num(v: unknown): number | null {
  if (v === null || v === undefined) return null;
  return Number(v);
}

/** A column value as a string, or null. */
export function str(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  return String(v);
}
