import { describe, expect, it } from 'vitest';
import { parseQualifiedName } from './table-name.ts';

describe('table names in a config', () => {
  it('schema.table, with quoted parts for dots, spaces and quotes', () => {
    expect(parseQualifiedName('public.accounts')).toEqual({ schema: 'public', name: 'accounts' });
    expect(parseQualifiedName('"sales data"."q1.2024"')).toEqual({ schema: 'sales data', name: 'q1.2024' });
    expect(parseQualifiedName('public."say ""hi"""')).toEqual({ schema: 'public', name: 'say "hi"' });
    expect(parseQualifiedName('Public.Accounts')).toEqual({ schema: 'Public', name: 'Accounts' });
  });

  it('refuses what is not one schema and one table', () => {
    for (const bad of ['accounts', 'a.b.c', 'my schema.t', 'public.', '"unclosed.t', '""."t"']) {
      expect(parseQualifiedName(bad), bad).toBeUndefined();
    }
  });
});
