import type Database from "better-sqlite3";
import type { StoreError } from "./error.js";

const cache = new WeakMap<Database.Database, Map<string, Database.Statement>>();

/** A statement prepared once per connection: preparing costs more than running it. */
export function prepared(db: Database.Database, sql: string): Database.Statement {
  let statements = cache.get(db);
  if (!statements) {
    statements = new Map();
    cache.set(db, statements);
  }
  let s = statements.get(sql);
  if (!s) {
    s = db.prepare(sql);
    statements.set(sql, s);
  }
  return s;
}

/** A part of the attestation store's file: its tables, and errors mapped as the store maps them. */
export abstract class StoreTable {
  constructor(
    protected readonly db: Database.Database,
    private readonly wrap: (e: unknown) => StoreError,
  ) {}

  protected stmt(sql: string): Database.Statement {
    return prepared(this.db, sql);
  }

  /** Run one statement (or several in the caller's transaction); SQLite errors become StoreErrors. */
  protected run<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      throw this.wrap(e);
    }
  }
}
