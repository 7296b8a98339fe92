import { describe, expect, it } from 'vitest';
import { type ChangeEvent, type TableSchema, UNCHANGED } from '../core/change-event.ts';
import { type EncodedRecord, EnvelopeEncoder } from './encoder.ts';

const schema: TableSchema = {
  table: { schema: 'public', name: 'docs' },
  columns: [
    { name: 'id', type: 'integer', kind: 'int', isKey: true },
    { name: 'body', type: 'text', kind: 'text', isKey: false },
  ],
  keyColumns: ['id'],
  beforeImage: 'full',
};

function keyChange(before: ChangeEvent['before']): ChangeEvent {
  return {
    op: 'update',
    table: schema.table,
    schema,
    key: { id: '2' },
    before,
    after: { id: '2', body: UNCHANGED },
    source: {
      connector: 'postgresql',
      db: 'app',
      position: { kind: 'postgres', lsn: '0/100' },
      txId: '7',
      commitTimeMs: 0,
      snapshot: false,
    },
  };
}

const encoder = new EnvelopeEncoder({
  format: 'debezium',
  schemas: false,
  tombstones: true,
  unavailableValue: '__debezium_unavailable_value',
  transactionMetadata: false,
  serverName: 's',
  clock: () => 0,
});

describe('primary-key change with an unchanged TOAST value', () => {
  it('the create under the new key takes the value from the full before image', () => {
    const out: EncodedRecord[] = [];
    encoder.encode(keyChange({ id: '1', body: 'large text' }), out);
    expect(out.map((r) => r.type)).toEqual(['change', 'tombstone', 'change']);
    expect(JSON.parse(out[2]!.value!).after).toEqual({ id: 2, body: 'large text' });
  });

  it('without a full before image the placeholder stays (the value is not known)', () => {
    const out: EncodedRecord[] = [];
    encoder.encode(keyChange({ id: '1', body: UNCHANGED }), out);
    expect(JSON.parse(out[2]!.value!).after).toEqual({ id: 2, body: '__debezium_unavailable_value' });
  });
});
