/**
 * Real Debezium 3.6.1 (embedded engine, Kafka Connect's JsonConverter), the reference our envelope is compared with.
 *
 * Jars come from Maven Central through test/debezium/pom.xml (`mvn dependency:copy-dependencies`) into a user cache
 * directory; the small runner (DebeziumReference.java) is compiled there with plain `javac`. Nothing is fetched
 * into the repository.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export const DEBEZIUM_VERSION = '3.6.1.Final';
const HERE = import.meta.dirname;

/** One record Debezium produced: its topic, and key and value as the converter's exact JSON text (null value: tombstone). */
export interface DebeziumRecord {
  destination: string;
  key: string | null;
  value: string | null;
}

/**
 * Whether `records` hold a record of `topic` followed by a transaction END on `transactionTopic`. With transaction
 * metadata Debezium sends a transaction's END after its rows: a run stopped at the row alone can miss the END.
 */
export function sawWithEnd(records: DebeziumRecord[], topic: string, transactionTopic: string): boolean {
  const at = records.findIndex((r) => r.destination === topic);
  return (
    at >= 0 &&
    records.slice(at + 1).some((r) => r.destination === transactionTopic && (r.value ?? '').includes('"status":"END"'))
  );
}

function cacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'tributary', `debezium-${DEBEZIUM_VERSION}`);
}

function hasCommand(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Why Debezium cannot run here, or null when it can (java, javac and mvn on the PATH). */
export function debeziumUnavailable(): string | null {
  const missing = ['java', 'javac', 'mvn'].filter((c) => !hasCommand(c));
  return missing.length > 0 ? `Debezium reference skipped: ${missing.join(', ')} not found on the PATH` : null;
}

/**
 * Fetches the jars (once) and compiles the runner (once); returns the classpath. Each is built in a private
 * directory and renamed into place, so test files preparing at the same time do not see half a result.
 */
export async function prepareDebezium(): Promise<string> {
  const dir = cacheDir();
  const lib = path.join(dir, 'lib');
  const classes = path.join(dir, 'classes');
  fs.mkdirSync(dir, { recursive: true });
  if (!fs.existsSync(path.join(lib, '.complete'))) {
    await buildInPlace(lib, async (tmp) => {
      await execFileAsync(
        'mvn',
        ['-q', '-B', '-f', path.join(HERE, 'pom.xml'), 'dependency:copy-dependencies', `-DoutputDirectory=${tmp}`],
        { maxBuffer: 64 << 20 },
      );
      fs.writeFileSync(path.join(tmp, '.complete'), '');
    });
  }
  const source = path.join(HERE, 'DebeziumReference.java');
  const compiled = path.join(classes, 'DebeziumReference.class');
  if (!fs.existsSync(compiled) || fs.statSync(compiled).mtimeMs < fs.statSync(source).mtimeMs) {
    fs.rmSync(classes, { recursive: true, force: true });
    await buildInPlace(classes, (tmp) => execFileAsync('javac', ['-d', tmp, '-cp', `${lib}/*`, source]));
  }
  return `${lib}/*${path.delimiter}${classes}`;
}

/** Builds `target` in a sibling temporary directory and renames it into place (another builder may win). */
async function buildInPlace(target: string, build: (tmp: string) => Promise<unknown>): Promise<void> {
  const tmp = fs.mkdtempSync(`${target}.tmp-`);
  try {
    await build(tmp);
    try {
      fs.renameSync(tmp, target);
    } catch {
      // Another test file finished first; an incomplete leftover (no stamp) is replaced.
      if (fs.existsSync(path.join(target, '.complete')) || fs.existsSync(path.join(target, 'DebeziumReference.class')))
        return;
      fs.rmSync(target, { recursive: true, force: true });
      fs.renameSync(tmp, target);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

export interface RunDebeziumOptions {
  /** Engine properties (connector, converters, offsets); offset and history files are placed by this function. */
  properties: Record<string, string | number | boolean>;
  /** Stop once the records seen so far satisfy this. */
  until: (records: DebeziumRecord[]) => boolean;
  timeoutMs?: number;
}

/** Runs the embedded engine until `until` holds, stops it cleanly and returns every record it wrote. */
export async function runDebezium(options: RunDebeziumOptions): Promise<DebeziumRecord[]> {
  const classpath = await prepareDebezium();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-debezium-'));
  const props: Record<string, string | number | boolean> = {
    'offset.storage': 'org.apache.kafka.connect.storage.FileOffsetBackingStore',
    'offset.storage.file.filename': path.join(work, 'offsets.dat'),
    'offset.flush.interval.ms': 0,
    'schema.history.internal': 'io.debezium.storage.file.history.FileSchemaHistory',
    'schema.history.internal.file.filename': path.join(work, 'schema-history.dat'),
    ...options.properties,
  };
  const propsFile = path.join(work, 'engine.properties');
  fs.writeFileSync(
    propsFile,
    Object.entries(props)
      .map(([k, v]) => `${k}=${String(v).replace(/\\/g, '\\\\')}`)
      .join('\n'),
  );
  const outFile = path.join(work, 'out.jsonl');
  fs.writeFileSync(outFile, '');
  const child = spawn(
    'java',
    ['-Dorg.slf4j.simpleLogger.defaultLogLevel=warn', '-cp', classpath, 'DebeziumReference', propsFile, outFile],
    { stdio: ['pipe', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-20_000);
  });
  let exited: number | null | undefined;
  const exit = new Promise<void>((resolve) =>
    child.on('exit', (code) => {
      exited = code;
      resolve();
    }),
  );
  const read = (): DebeziumRecord[] => {
    const text = fs.readFileSync(outFile, 'utf8');
    const complete = text.slice(0, text.lastIndexOf('\n') + 1);
    return complete
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as DebeziumRecord);
  };
  const deadline = Date.now() + (options.timeoutMs ?? 240_000);
  try {
    for (;;) {
      if (exited !== undefined) throw new Error(`Debezium exited early (code ${exited}):\n${stderr}`);
      if (options.until(read())) break;
      if (Date.now() > deadline) throw new Error(`Debezium did not produce the expected records in time:\n${stderr}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    child.stdin.end();
    const stopDeadline = setTimeout(() => child.kill('SIGKILL'), 60_000);
    await exit;
    clearTimeout(stopDeadline);
    return read();
  } finally {
    if (exited === undefined) child.kill('SIGKILL');
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** Engine properties of Debezium's PostgreSQL connector (pgoutput) with the given overrides. */
export function postgresConnectorProperties(
  server: { host: string; port: number },
  database: string,
  overrides: Record<string, string | number | boolean>,
): Record<string, string | number | boolean> {
  return {
    name: 'debezium-reference',
    'connector.class': 'io.debezium.connector.postgresql.PostgresConnector',
    'plugin.name': 'pgoutput',
    'database.hostname': server.host,
    'database.port': server.port,
    'database.user': 'postgres',
    'database.password': '',
    'database.dbname': database,
    'slot.name': 'debezium_reference',
    'publication.name': 'debezium_reference',
    'publication.autocreate.mode': 'filtered',
    'snapshot.mode': 'initial',
    ...overrides,
  };
}

// --- golden files: Debezium's records, one per line, key and value embedded as the converter wrote them ---------

export function recordToGoldenLine(r: DebeziumRecord): string {
  return `{"destination":${JSON.stringify(r.destination)},"key":${r.key ?? 'null'},"value":${r.value ?? 'null'}}`;
}

export function goldenLineToRecord(line: string): DebeziumRecord {
  const head = /^\{"destination":("(?:[^"\\]|\\.)*"),"key":/.exec(line);
  if (!head) throw new Error(`not a golden line: ${line.slice(0, 200)}`);
  const destination = JSON.parse(head[1]!) as string;
  const rest = line.slice(head[0].length, -1);
  const valueAt = topLevelIndex(rest, ',"value":');
  const key = rest.slice(0, valueAt);
  const value = rest.slice(valueAt + ',"value":'.length);
  return { destination, key: key === 'null' ? null : key, value: value === 'null' ? null : value };
}

function topLevelIndex(text: string, needle: string): number {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
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
  throw new Error(`no ${needle} at the top level: ${text.slice(0, 200)}`);
}
