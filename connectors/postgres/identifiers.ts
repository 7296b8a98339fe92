/** PostgreSQL identifiers in SQL text: the one quoter of this engine (source, target, verify). */

/** `name` as a quoted identifier: `"name"`, inner double quotes doubled. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** `schema.name` with both parts quoted. */
export function quoteTable(t: { schema: string; name: string }): string {
  return `${quoteIdent(t.schema)}.${quoteIdent(t.name)}`;
}
