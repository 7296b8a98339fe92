/** PostgreSQL string literals in SQL text: the one literal quoter of this engine (snapshot reads, target DDL). */

/**
 * `value` as an escape-string literal (`E'...'`), read the same whatever standard_conforming_strings says. Untyped,
 * like a text bind parameter: the server infers the type from where it stands.
 */
export function quoteLiteral(value: string): string {
  return `E'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}
