import { describe, expect, it } from 'vitest';
import { type ColumnDefaultFact, existingRowsValueAtAdd } from './column-defaults.ts';

function fact(over: Partial<ColumnDefaultFact>): ColumnDefaultFact {
  return { name: 'c', type: 'int', kind: 'int', nullable: true, columnDefault: '9', extra: '', ...over };
}

describe('existingRowsValueAtAdd: the default the ADD COLUMN declared wins over a catalog changed later', () => {
  it('a constant of an integer, decimal, string or quoted enum column', () => {
    expect(existingRowsValueAtAdd(fact({}), { kind: 'constant', text: '5', quoted: false }, 'mysql')).toEqual({
      value: '5',
    });
    expect(
      existingRowsValueAtAdd(
        fact({ type: 'decimal(6,2)', kind: 'decimal', columnDefault: '2.00' }),
        { kind: 'constant', text: '1.5', quoted: false },
        'mysql',
      ),
    ).toEqual({ value: '1.50' });
    expect(
      existingRowsValueAtAdd(
        fact({ type: 'varchar(5)', kind: 'text', columnDefault: "'y'" }),
        { kind: 'constant', text: 'x', quoted: true },
        'mariadb',
      ),
    ).toEqual({ value: 'x' });
  });

  it('NULL declared, or no default (NULL; NOT NULL: the implicit value)', () => {
    expect(existingRowsValueAtAdd(fact({}), { kind: 'null' }, 'mysql')).toEqual({ value: null });
    expect(existingRowsValueAtAdd(fact({}), { kind: 'none', notNull: false }, 'mysql')).toEqual({ value: null });
    expect(existingRowsValueAtAdd(fact({ nullable: false }), { kind: 'none', notNull: true }, 'mysql')).toEqual({
      value: '0',
    });
  });

  it('the catalog where the statement does not read unambiguously', () => {
    const catalog = { value: '9' };
    // The server rounds 1.555 to the scale: the catalog has it right.
    expect(
      existingRowsValueAtAdd(
        fact({ type: 'decimal(6,2)', kind: 'decimal', columnDefault: '1.56' }),
        { kind: 'constant', text: '1.555', quoted: false },
        'mysql',
      ),
    ).toEqual({ value: '1.56' });
    // An enum default given as an index; an expression.
    expect(
      existingRowsValueAtAdd(
        fact({ type: "enum('a','b')", kind: 'enum', columnDefault: 'b' }),
        { kind: 'constant', text: '2', quoted: false },
        'mysql',
      ),
    ).toEqual({ value: 'b' });
    expect(existingRowsValueAtAdd(fact({}), { kind: 'other' }, 'mysql')).toEqual(catalog);
    expect(existingRowsValueAtAdd(fact({}), undefined, 'mysql')).toEqual(catalog);
  });

  it('other kinds: the statement and the catalog must agree, else the value is unknown (the table is copied again)', () => {
    const date = fact({ type: 'date', kind: 'date', columnDefault: '2020-01-01' });
    expect(existingRowsValueAtAdd(date, { kind: 'constant', text: '2020-01-01', quoted: true }, 'mysql')).toEqual({
      value: '2020-01-01',
    });
    // A later SET DEFAULT changed the catalog before the ADD COLUMN was read.
    expect(
      existingRowsValueAtAdd(date, { kind: 'constant', text: '1999-09-09', quoted: true }, 'mysql'),
    ).toHaveProperty('unknown');
    // A TIMESTAMP literal is in the writing session's zone, the catalog's in UTC: they cannot be matched.
    expect(
      existingRowsValueAtAdd(
        fact({ type: 'timestamp', kind: 'timestamptz', columnDefault: '2020-01-01 00:00:00' }),
        { kind: 'constant', text: '2020-01-01 05:00:00', quoted: true },
        'mysql',
      ),
    ).toHaveProperty('unknown');
    // Nullable without a default: existing rows read NULL whatever the catalog says now.
    expect(existingRowsValueAtAdd(date, { kind: 'none', notNull: false }, 'mysql')).toEqual({ value: null });
  });
});
