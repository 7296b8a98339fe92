/**
 * Tributary's side of the comparison: source events (as recorded from a run, or read back from the golden input
 * file) encoded into topic records, and the jsonl target's lines mapped to their topics.
 */
import type { ChangeEvent, TableSchema } from '../../src/core/change-event.ts';
import { UNCHANGED } from '../../src/core/change-event.ts';
import type { Checkpoint } from '../../src/core/checkpoint.ts';
import { type EncodedRecord, EnvelopeEncoder, type EnvelopeOptions } from '../../src/envelope/encoder.ts';
import { TransactionTracker, transactionRecord } from '../../src/envelope/transaction.ts';
import type { TopicRecord } from './compare.ts';
import { parseExact } from './exact-json.ts';

/** Source events in order, and the checkpoints of batches that carried one (each ends on a transaction commit). */
export type RecordedStream = (ChangeEvent | { checkpoint: Checkpoint })[];

/** The topic Debezium writes an event to: `<prefix>.<schema>.<table>`, `<prefix>.message`. */
export function topicOf(server: string, event: ChangeEvent): string {
  if (event.op === 'message') return `${server}.message`;
  return `${server}.${event.table.schema}.${event.table.name}`;
}

/** Encodes a recorded stream as a Kafka target would (change topics, and the transaction topic when enabled). */
export function encodeToTopics(
  stream: RecordedStream,
  options: Partial<EnvelopeOptions> & { serverName: string },
): TopicRecord[] {
  const encoder = new EnvelopeEncoder({
    format: 'debezium',
    schemas: false,
    tombstones: true,
    unavailableValue: '__debezium_unavailable_value',
    transactionMetadata: false,
    ...options,
  });
  const server = options.serverName;
  const tracker = new TransactionTracker();
  const out: TopicRecord[] = [];
  const txTopic = `${server}.transaction`;
  const pushTx = (t: Parameters<typeof transactionRecord>[0] | null) => {
    if (!t || !encoder.options.transactionMetadata) return;
    out.push({ destination: txTopic, ...transactionRecord(t, encoder.options.schemas) });
  };
  for (const item of stream) {
    if ('checkpoint' in item) {
      pushTx(tracker.commit(item.checkpoint));
      continue;
    }
    const step = tracker.step(item);
    pushTx(step.ended);
    pushTx(step.began);
    const records: EncodedRecord[] = [];
    encoder.encode(item, records, step.position);
    for (const r of records)
      out.push({
        destination: r.type === 'schema_change' ? server : topicOf(server, item),
        key: r.key,
        value: r.value,
      });
  }
  return out;
}

/** The jsonl target's lines (`{"key":..,"value":..}`) with the topic each belongs to (a tombstone follows its delete). */
export function jsonlToTopics(lines: string[], server: string): TopicRecord[] {
  const out: TopicRecord[] = [];
  let last = '';
  for (const line of lines) {
    const parsed = parseExact(line) as { key: unknown; value: unknown };
    const { key, value } = splitLine(line);
    const v = parsed.value as { source?: { schema?: string; table?: string; db?: string }; op?: string } | null;
    if (v) {
      const s = v.source ?? {};
      last = v.op === 'm' ? `${server}.message` : `${server}.${s.schema ?? s.db}.${s.table}`;
    }
    out.push({ destination: last, key, value });
  }
  return out;
}

/** Splits `{"key":K,"value":V}` into the exact texts K and V. */
function splitLine(line: string): { key: string | null; value: string | null } {
  const prefix = '{"key":';
  const valueAt = findTopLevel(line, ',"value":', prefix.length);
  const key = line.slice(prefix.length, valueAt);
  const value = line.slice(valueAt + ',"value":'.length, -1);
  return { key: key === 'null' ? null : key, value: value === 'null' ? null : value };
}

function findTopLevel(text: string, needle: string, from: number): number {
  let depth = 0;
  let inString = false;
  for (let i = from; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
    else if (depth === 0 && text.startsWith(needle, i)) return i;
  }
  throw new Error(`not a jsonl line: ${text.slice(0, 200)}`);
}

// --- the recorded stream as a file (the fast test's input) ---------------------------------------------------------

/** One line per table schema, event or commit; schemas are written once and referenced by number. */
export function streamToLines(stream: RecordedStream): string[] {
  const ids = new Map<TableSchema, number>();
  const lines: string[] = [];
  for (const item of stream) {
    if ('checkpoint' in item) {
      lines.push(JSON.stringify({ checkpoint: item.checkpoint }));
      continue;
    }
    let id = ids.get(item.schema);
    if (id === undefined) {
      id = ids.size;
      ids.set(item.schema, id);
      lines.push(JSON.stringify({ schemaId: id, schema: item.schema }));
    }
    const { schema: _schema, ...rest } = item;
    lines.push(JSON.stringify({ schemaRef: id, event: rest }, (_k, v) => (v === UNCHANGED ? { unchanged: true } : v)));
  }
  return lines;
}

export function linesToStream(lines: string[]): RecordedStream {
  const schemas = new Map<number, TableSchema>();
  const out: RecordedStream = [];
  for (const line of lines) {
    if (line === '') continue;
    const o = JSON.parse(line, (_k, v) =>
      v && typeof v === 'object' && !Array.isArray(v) && v.unchanged === true && Object.keys(v).length === 1
        ? UNCHANGED
        : v,
    );
    if (o.checkpoint) out.push({ checkpoint: o.checkpoint });
    else if (o.schema) schemas.set(o.schemaId, o.schema);
    else out.push({ ...o.event, schema: schemas.get(o.schemaRef)! });
  }
  return out;
}
