/**
 * A table named in a config: `schema.table`, where either part may be double-quoted to hold dots, spaces or capitals
 * as written (`"sales data"."q1.2024"`; a double quote inside is doubled). Unquoted parts are taken as written
 * (case-sensitive, no dots or spaces).
 */
export interface QualifiedName {
  schema: string;
  name: string;
}

const PART = String.raw`(?:"((?:[^"]|"")+)"|([^".\s]+))`;
const QUALIFIED = new RegExp(`^${PART}\\.${PART}$`);

export const TABLE_NAME_HELP =
  'expected schema.table, e.g. public.accounts; quote a part with a dot or a space: "my schema"."a.b"';

export function parseQualifiedName(text: string): QualifiedName | undefined {
  const m = QUALIFIED.exec(text);
  if (!m) return undefined;
  const part = (quoted: string | undefined, bare: string | undefined) => quoted?.replaceAll('""', '"') ?? bare!;
  return { schema: part(m[1], m[2]), name: part(m[3], m[4]) };
}
