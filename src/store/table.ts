import type Database from "better-sqlite3";
import type { StoreError } from "./error.js";

/** A part of the attestation store's file: its tables, and errors mapped as the store maps them. */
export abstract class StoreTable {
  constructor(
    protected readonly db: Database.Database,
    private readonly wrap: (e: unknown) => StoreError,
  ) {}

  /** Run one statement (or several in the caller's transaction); SQLite errors become StoreErrors. */
  protected run<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      throw this.wrap(e);
    }
  }
}
