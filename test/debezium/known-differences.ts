/**
 * The differences from Debezium 3.6.1 that we keep on purpose, each with its reason. docs/event-format.md lists the
 * same ones; a difference the comparison finds that is not here fails the test.
 */
import type { Difference, KnownDifference } from './compare.ts';

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

const columnOf = (path: string) => /^value\.(?:before|after)\.([^.[]+)/.exec(path)?.[1];
const schemaColumnOf = (path: string) =>
  /^schema\.value\.fields\[(?:before|after)\]\.fields\[([^\]]+)\]/.exec(path)?.[1];

function integer(text: string): bigint | null {
  return /^-?\d+$/.test(text) ? BigInt(text) : null;
}

/** PostgreSQL: the columns of the comparison workload whose values Debezium cannot carry, by their type. */
export function postgresKnownDifferences(columns: {
  /** Columns Debezium leaves out of its events (box, circle, line, lseg, path, polygon, user-defined ranges, composites). */
  dropped: string[];
  /** Two-dimensional array columns. */
  nestedArrays: string[];
  /** Enum columns (their schema lists the labels in Debezium). */
  enums: string[];
  /** Domains over a 2- or 4-byte integer. */
  integerDomains: string[];
}): KnownDifference[] {
  return [
    {
      id: 'source.version',
      reason: 'source.version names the producer: ours is tributary-<version>, not a Debezium release.',
      matches: (d) => d.path === 'value.source.version',
    },
    {
      id: 'dropped-types',
      reason:
        "Debezium leaves box, circle, line, lseg, path, polygon, ranges of user-defined subtypes and composite types out of the event; we write PostgreSQL's text.",
      matches: (d) =>
        d.debezium === '(absent)' && columns.dropped.includes(columnOf(d.path) ?? schemaColumnOf(d.path) ?? ''),
    },
    {
      id: 'nested-arrays',
      reason:
        'Debezium writes a 2-D array as one null (int) or an unreadable Java object name (text) per inner array; we write nested JSON arrays.',
      matches: (d) =>
        columns.nestedArrays.includes(columnOf(d.path) ?? '') &&
        /\[\d+\]$/.test(d.path) &&
        (d.debezium === 'null' || d.debezium.startsWith('"[Ljava.lang.')) &&
        d.tributary.startsWith('['),
    },
    {
      id: 'numeric-nan-infinity',
      reason: 'Debezium writes numeric NaN and ±Infinity as null; we write the value as a string.',
      matches: (d) => d.debezium === 'null' && ['"NaN"', '"Infinity"', '"-Infinity"'].includes(d.tributary),
    },
    {
      id: 'date-infinity',
      reason:
        'Debezium writes a meaningless day number for date ±infinity (different in snapshot and stream); we write "infinity" / "-infinity".',
      matches: (d) => columnOf(d.path) !== undefined && ['"infinity"', '"-infinity"'].includes(d.tributary),
    },
    {
      id: 'beyond-int64',
      reason:
        'Timestamps after year 294247 and intervals beyond ±292,000 years overflow int64 microseconds: Debezium wraps or clamps them; we write the exact number.',
      matches: (d) => {
        const t = integer(d.tributary);
        return columnOf(d.path) !== undefined && t !== null && (t > INT64_MAX || t < INT64_MIN);
      },
    },
    {
      id: 'bc-dates-in-snapshot',
      reason:
        "Debezium's snapshot drops the era of BC dates (4713 BC reads as 4713 AD; streamed changes are right); we write the BC date.",
      matches: (d) => {
        const a = integer(d.debezium);
        const b = integer(d.tributary);
        return columnOf(d.path) !== undefined && a !== null && b !== null && a > 0n && b < -719162n;
      },
    },
    {
      id: 'enum-labels',
      reason: 'Our enum schema does not list the labels (Debezium\'s "allowed" parameter); values are equal.',
      matches: (d) => columns.enums.includes(schemaColumnOf(d.path) ?? '') && d.path.endsWith('.parameters'),
    },
    {
      id: 'integer-domains',
      reason:
        'A domain over int2/int4 is declared int64 in our schema (Debezium uses the base type); values are equal.',
      matches: (d) =>
        columns.integerDomains.includes(schemaColumnOf(d.path) ?? '') &&
        d.path.endsWith('.type') &&
        d.tributary === '"int64"',
    },
    {
      id: 'message-data-collection',
      reason:
        'In a transaction END, Debezium names a logical message\'s data collection with a Java object name; we write "".',
      matches: (d) =>
        /^value\.data_collections\[\d+\]\.data_collection$/.test(d.path) &&
        d.debezium.includes('LogicalDecodingMessageId@') &&
        d.tributary === '""',
    },
  ];
}

/** The columns of the PostgreSQL comparison workload (test/fixtures/postgres-types.ts) in each category. */
export const POSTGRES_WORKLOAD_COLUMNS = {
  dropped: ['fr', 'pr', 'ln', 'bx', 'pg', 'ci', 'ls', 'pa'],
  nestedArrays: ['ai', 'at'],
  enums: ['mood'],
  integerDomains: ['pi'],
};

export type { Difference };

/** MySQL: the differences kept on purpose or not done yet, each with its reason. */
export function mysqlKnownDifferences(serverName: string): KnownDifference[] {
  const column = (d: Difference) => /^value\.(?:before|after)\.([^.[]+)$/.exec(d.path)?.[1];
  return [
    {
      id: 'source.version',
      reason: 'source.version names the producer: ours is tributary-<version>, not a Debezium release.',
      matches: (d) => d.path === 'value.source.version',
    },
    {
      id: 'bigint-unsigned-above-int64',
      reason:
        'BIGINT UNSIGNED above 2^63-1: Debezium (bigint.unsigned.handling.mode=long) wraps it negative (18446744073709551615 -> -1); we write the exact number.',
      matches: (d) => {
        const t = integer(d.tributary);
        return column(d) !== undefined && t !== null && t > INT64_MAX && integer(d.debezium) !== null;
      },
    },
    {
      id: 'year-zero',
      reason: 'YEAR 0000: Debezium writes 2000 in the snapshot and 1900 when streamed; we write 0.',
      matches: (d) => column(d) !== undefined && d.tributary === '0' && ['2000', '1900'].includes(d.debezium),
    },
    {
      id: 'negative-time-connect',
      reason:
        'A negative TIME with time.precision.mode=connect: Debezium writes null (Kafka Connect Time cannot be negative); we write the negative milliseconds.',
      matches: (d) => column(d) !== undefined && d.debezium === 'null' && (integer(d.tributary) ?? 0n) < 0n,
    },
    {
      id: 'json-in-snapshot',
      reason:
        "Debezium's snapshot writes MySQL's JSON text with spaces, its streamed changes the compact form; we write the compact form always.",
      matches: (d) => {
        if (column(d) === undefined || !d.debezium.startsWith('"') || !d.tributary.startsWith('"')) return false;
        const a = JSON.parse(d.debezium) as string;
        const b = JSON.parse(d.tributary) as string;
        try {
          return JSON.stringify(JSON.parse(a)) === JSON.stringify(JSON.parse(b)) && a.includes(' ');
        } catch {
          return false;
        }
      },
    },
    {
      id: 'commit-time-precision',
      reason:
        "source.ts_ms/ts_us/ts_ns: Debezium reads the transaction's commit time in microseconds (GTID event); we read the binlog event header's seconds.",
      matches: (d) => {
        if (!/^value\.source\.ts_(ms|us|ns)$/.test(d.path)) return false;
        const a = integer(d.debezium);
        const b = integer(d.tributary);
        if (a === null || b === null) return false;
        const unit = d.path.endsWith('ms') ? 1000n : d.path.endsWith('us') ? 1_000_000n : 1_000_000_000n;
        return a / unit === b / unit;
      },
    },
    {
      id: 'binlog-pos',
      reason:
        'source.pos: ours is where the transaction starts in the binlog (where a restart resumes); Debezium writes the position of an event inside the transaction.',
      matches: (d) => d.path === 'value.source.pos',
    },
    {
      id: 'thread',
      reason: "source.thread: Debezium reads the session id from the transaction's BEGIN query event; we write null.",
      matches: (d) => d.path === 'value.source.thread' && d.tributary === 'null',
    },
    {
      id: 'schema-change-table-changes',
      reason:
        "Schema-change records: our tableChanges is empty (the table's new definition is not part of the DDL event); Debezium describes every column.",
      matches: (d) => d.topic === serverName && d.path.startsWith('value.tableChanges'),
    },
  ];
}

/**
 * Debezium's schema-change records written during its snapshot (SET, DROP and CREATE statements that rebuild its
 * schema history): we write none, as nothing changed at the source. Left out before comparing.
 */
export function withoutSnapshotSchemaChanges<T extends { destination: string; value: string | null }>(
  records: T[],
  serverName: string,
): T[] {
  return records.filter((r) => !(r.destination === serverName && !r.value?.includes('"snapshot":"false"')));
}
