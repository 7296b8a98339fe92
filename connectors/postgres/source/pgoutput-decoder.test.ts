import { describe, expect, it } from 'vitest';
import { type ChangeEvent, type TableSchema, UNCHANGED } from '../../../src/core/change-event.ts';
import { type ControlMessage, isControl, PgoutputDecoder } from './pgoutput-decoder.ts';

/** Builds protocol messages byte by byte. */
class Msg {
  private parts: Buffer[] = [];
  byte(c: string | number): this {
    this.parts.push(Buffer.from([typeof c === 'string' ? c.charCodeAt(0) : c]));
    return this;
  }
  i16(n: number): this {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(n);
    this.parts.push(b);
    return this;
  }
  i32(n: number): this {
    const b = Buffer.alloc(4);
    b.writeInt32BE(n);
    this.parts.push(b);
    return this;
  }
  i64(n: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigInt64BE(n);
    this.parts.push(b);
    return this;
  }
  str(s: string): this {
    this.parts.push(Buffer.from(`${s}\0`, 'utf8'));
    return this;
  }
  tuple(values: (string | null | typeof UNCHANGED)[]): this {
    this.i16(values.length);
    for (const v of values) {
      if (v === null) this.byte('n');
      else if (v === UNCHANGED) this.byte('u');
      else {
        const b = Buffer.from(v, 'utf8');
        this.byte('t').i32(b.length);
        this.parts.push(b);
      }
    }
    return this;
  }
  get buf(): Buffer {
    return Buffer.concat(this.parts);
  }
}

const schema: TableSchema = {
  table: { schema: 'public', name: 't' },
  columns: [
    { name: 'id', type: 'bigint', kind: 'int', isKey: true },
    { name: 'doc', type: 'text', kind: 'text', isKey: false },
    { name: 'n', type: 'numeric', kind: 'decimal', isKey: false },
  ],
  keyColumns: ['id'],
  beforeImage: 'key',
};

function decode(d: PgoutputDecoder, m: Msg, lsnLo = 0x100) {
  const b = m.buf;
  return d.decode(b, 0, b.length, 0, lsnLo);
}

describe('PgoutputDecoder', () => {
  it('decodes begin, relation, insert/update/delete tuples, truncate, message and commit', () => {
    const d = new PgoutputDecoder('app');
    const begin = decode(d, new Msg().byte('B').i64(0x2000n).i64(1_000_000n).i32(42)) as ControlMessage;
    expect(begin).toEqual({ type: 'begin', finalLsn: 0x2000n, commitTimeMs: 946_684_801_000, xid: 42 });

    const rel = decode(
      d,
      new Msg()
        .byte('R')
        .i32(16384)
        .str('public')
        .str('t')
        .byte('d')
        .i16(3)
        .byte(1)
        .str('id')
        .i32(20)
        .i32(-1)
        .byte(0)
        .str('doc')
        .i32(25)
        .i32(-1)
        .byte(0)
        .str('n')
        .i32(1700)
        .i32(655366),
    ) as ControlMessage;
    expect(rel).toMatchObject({
      type: 'relation',
      relation: {
        relid: 16384,
        schema: 'public',
        name: 't',
        replicaIdentity: 'd',
        columns: [
          { name: 'id', typeOid: 20, typmod: -1, isKey: true },
          { name: 'doc', typeOid: 25, isKey: false },
          { name: 'n', typeOid: 1700, typmod: 655366, isKey: false },
        ],
      },
    });
    d.setRelation(16384, schema);

    const ins = decode(
      d,
      new Msg().byte('I').i32(16384).byte('N').tuple(['9223372036854775807', 'ünï', null]),
      0xabc,
    ) as ChangeEvent;
    expect(isControl(ins)).toBe(false);
    expect(ins).toMatchObject({
      op: 'insert',
      key: { id: '9223372036854775807' },
      before: null,
      after: { id: '9223372036854775807', doc: 'ünï', n: null },
      source: { txId: '42', db: 'app', snapshot: false, position: { kind: 'postgres', lsn: '0/ABC' } },
    });
    expect(ins.schema).toBe(schema);

    const upd = decode(
      d,
      new Msg().byte('U').i32(16384).byte('K').tuple(['1', null, null]).byte('N').tuple(['2', UNCHANGED, '1.5']),
    ) as ChangeEvent;
    expect(upd).toMatchObject({
      op: 'update',
      key: { id: '2' },
      before: { id: '1' },
      after: { id: '2', doc: UNCHANGED, n: '1.5' },
    });

    const updNoOld = decode(d, new Msg().byte('U').i32(16384).byte('N').tuple(['2', 'x', 'NaN'])) as ChangeEvent;
    expect(updNoOld.before).toBeNull();

    const del = decode(d, new Msg().byte('D').i32(16384).byte('K').tuple(['2', null, null])) as ChangeEvent;
    expect(del).toMatchObject({ op: 'delete', key: { id: '2' }, before: { id: '2' }, after: null });

    const trunc = decode(d, new Msg().byte('T').i32(1).byte(3).i32(16384)) as ChangeEvent[];
    expect(trunc).toHaveLength(1);
    expect(trunc[0]).toMatchObject({ op: 'truncate', key: null, truncate: { cascade: true, restartIdentity: true } });

    const msg = decode(d, new Msg().byte('M').byte(1).i64(0x3000n).str('app').i32(2).str('h')) as ControlMessage;
    expect(msg).toMatchObject({ type: 'message', transactional: true, prefix: 'app', lsn: 0x3000n });

    const commit = decode(d, new Msg().byte('C').byte(0).i64(0x2000n).i64(0x2030n).i64(2_000_000n)) as ControlMessage;
    expect(commit).toEqual({ type: 'commit', commitLsn: 0x2000n, endLsn: 0x2030n, commitTimeMs: 946_684_802_000 });
  });

  it('rejects a change for an unknown relation and unknown message types', () => {
    const d = new PgoutputDecoder('app');
    expect(() => decode(d, new Msg().byte('I').i32(1).byte('N').tuple(['1']))).toThrow(/Relation message/);
    expect(() => decode(d, new Msg().byte('Z'))).toThrow(/unexpected message type/);
  });
});
