import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePort } from './free-port.ts';

const execFileAsync = promisify(execFile);

/**
 * A throwaway Apache Kafka broker for tests and benchmarks: one KRaft node (broker and controller in one JVM) from
 * the jars of Maven Central that test/harness/kafka/pom.xml names, on free loopback ports, with its log directory in
 * a temporary directory. The jars are fetched once with `mvn dependency:copy-dependencies` into a user cache
 * directory and reused by later runs.
 */
export interface KafkaBroker {
  /** host:port of the PLAINTEXT listener. */
  bootstrap: string;
  port: number;
  /** With `security`: localhost:port of the TLS listener (no SASL) and of the SASL-over-TLS listener. */
  tlsBootstrap?: string;
  saslTlsBootstrap?: string;
  /** Process id of the running JVM, or undefined while stopped. */
  readonly pid: number | undefined;
  /** The broker's own log (server.log plus the JVM's output), for failure messages. */
  log(): string;
  /** SIGSTOP: the broker holds every connection open and answers nothing, until resume(). */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
  /** The produce requests the broker completed, as its request logger wrote them (needs `requestLog: true`). */
  produceRequests(): { acks: number; clientId: string }[];
  /** kill -9: no controlled shutdown, nothing flushed beyond what the OS holds. */
  kill9(): Promise<void>;
  /** Starts the broker again on the same ports and log directory (after kill9 or stopProcess). */
  start(): Promise<void>;
  /** Runs a Kafka command-line class (e.g. org.apache.kafka.tools.GetOffsetShell) with the broker's jars. */
  runTool(mainClass: string, args: string[], timeoutMs?: number): Promise<{ stdout: string; stderr: string }>;
  /** Kills the broker and deletes its directory. */
  stop(): Promise<void>;
}

export interface StartKafkaOptions {
  /** Extra server.properties lines (e.g. message.max.bytes). */
  settings?: Record<string, string | number>;
  /** Log every request the broker completes to request.log (for checks of what clients asked for). */
  requestLog?: boolean;
  /** Secured listeners beside PLAINTEXT (which the harness's own tools keep using). */
  security?: KafkaSecurityOptions;
}

/**
 * An SSL listener and a SASL_SSL listener, both advertised as `localhost` (the name the server certificate
 * lists). SASL offers PLAIN (users from the JAAS line) and SCRAM-SHA-256/512 (users stored when the storage is
 * formatted, as `kafka-storage format --add-scram` does).
 */
export interface KafkaSecurityOptions {
  /** PEM files: the server certificate and its key (PKCS#8, unencrypted). */
  serverCertFile: string;
  serverKeyFile: string;
  /** Users for SASL/PLAIN and SCRAM (both mechanisms) with their passwords. */
  users: { name: string; password: string }[];
  /** When given, the SSL listener requires a client certificate signed by this CA (mutual TLS). */
  clientCaFile?: string;
}

const POM = fileURLToPath(new URL('./kafka/pom.xml', import.meta.url));

/** Why a broker cannot be started here (a missing tool), or undefined when it can. */
export function kafkaToolingMissing(): string | undefined {
  for (const tool of ['java', 'mvn']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `\`${tool}\` is not installed (the Kafka tests start a broker from Maven Central jars and need java and mvn; or set KAFKA_BROKERS)`;
    }
  }
  return undefined;
}

function cacheRoot(): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'tributary');
}

/**
 * The directory holding the broker's jars, fetched on first use. The cache is keyed by the pom's content, so a
 * version change fetches anew; a half-finished fetch never becomes the cache (it is renamed into place at the end).
 */
export async function kafkaJars(): Promise<string> {
  const pom = fs.readFileSync(POM);
  const key = createHash('sha256').update(pom).digest('hex').slice(0, 12);
  const version = /<kafka\.version>([^<]+)</.exec(pom.toString())?.[1] ?? 'unknown';
  const lib = path.join(cacheRoot(), `kafka-${version}-${key}`, 'lib');
  if (fs.existsSync(path.join(lib, '.complete'))) return lib;
  fs.mkdirSync(path.dirname(lib), { recursive: true });
  const partial = fs.mkdtempSync(path.join(path.dirname(lib), 'lib-partial-'));
  try {
    await execFileAsync(
      'mvn',
      ['-q', '-B', '-f', POM, 'dependency:copy-dependencies', `-DoutputDirectory=${partial}`],
      { timeout: 600_000, maxBuffer: 16 << 20 },
    ).catch((err: { stdout?: string; stderr?: string; message: string }) => {
      throw new Error(`mvn could not fetch the Kafka jars: ${err.message}\n${err.stdout ?? ''}${err.stderr ?? ''}`);
    });
    fs.writeFileSync(path.join(partial, '.complete'), '');
    try {
      fs.renameSync(partial, lib);
    } catch (err) {
      // Another run put the same jars in place meanwhile.
      if (!fs.existsSync(path.join(lib, '.complete'))) throw err;
    }
  } finally {
    fs.rmSync(partial, { recursive: true, force: true });
  }
  return lib;
}

/**
 * Runs a Kafka command-line class (org.apache.kafka.tools.GetOffsetShell, TopicCommand, ConfigCommand, ...) with the
 * broker's jars, against any broker: tests judge what reached the broker with Kafka's own tools.
 */
export async function kafkaTool(
  mainClass: string,
  args: string[],
  timeoutMs = 120_000,
): Promise<{ stdout: string; stderr: string }> {
  const lib = await kafkaJars();
  return execFileAsync('java', ['-Xmx256m', '-XX:+UseSerialGC', '-cp', `${lib}/*`, mainClass, ...args], {
    timeout: timeoutMs,
    maxBuffer: 256 << 20,
  });
}

/** Sum of a topic's end offsets per partition, as Kafka's GetOffsetShell reports them. */
export async function topicEndOffsets(bootstrap: string, topic: string): Promise<Map<number, number>> {
  const { stdout } = await kafkaTool('org.apache.kafka.tools.GetOffsetShell', [
    '--bootstrap-server',
    bootstrap,
    '--topic',
    topic,
    '--time',
    '-1',
  ]);
  const offsets = new Map<number, number>();
  for (const line of stdout.split('\n')) {
    const m = /^(.+):(\d+):(\d+)$/.exec(line.trim());
    if (m && m[1] === topic) offsets.set(Number(m[2]), Number(m[3]));
  }
  return offsets;
}

/** A record as Kafka's ConsoleConsumer printed it. */
export interface ConsumedRecord {
  partition: number;
  offset: number;
  headers: Record<string, string>;
  key: string | null;
  value: string | null;
}

/**
 * Every record of a topic from the beginning up to its current end offsets, read with Kafka's own
 * ConsoleConsumer (not with the client the product uses), in offset order per partition. ConsoleConsumer ends
 * quietly, with exit code 0, when no record arrives within its timeout (a rebuild on a loaded machine once lacked
 * 3,684 of 100,000 rows, likely so): every partition's offsets are checked to be all there, and a short read is
 * read again, so that a short read can never pass for a loss or a loss for a short read.
 */
export async function consumeTopic(bootstrap: string, topic: string): Promise<ConsumedRecord[]> {
  const ends = await topicEndOffsets(bootstrap, topic);
  const total = [...ends.values()].reduce((a, b) => a + b, 0);
  if (total === 0) return [];
  let missing = '';
  for (let attempt = 1; attempt <= 3; attempt++) {
    const records = await readWithConsoleConsumer(bootstrap, topic, total);
    missing = [...ends]
      .map(([partition, end]) => [
        partition,
        end,
        new Set(records.filter((r) => r.partition === partition && r.offset < end).map((r) => r.offset)).size,
      ])
      .filter(([, end, read]) => read! < end!)
      .map(([partition, end, read]) => `partition ${partition}: ${read} of ${end}`)
      .join(', ');
    if (!missing) return records;
    console.info(`[kafka] ConsoleConsumer read ${topic} short (${missing}), attempt ${attempt}`);
  }
  throw new Error(`Kafka's ConsoleConsumer did not read all of ${topic} in 3 attempts (${missing})`);
}

async function readWithConsoleConsumer(bootstrap: string, topic: string, total: number): Promise<ConsumedRecord[]> {
  const { stdout } = await kafkaTool(
    'org.apache.kafka.tools.consumer.ConsoleConsumer',
    [
      '--bootstrap-server',
      bootstrap,
      '--topic',
      topic,
      '--from-beginning',
      '--max-messages',
      String(total),
      '--timeout-ms',
      '60000',
      '--property',
      'print.partition=true',
      '--property',
      'print.offset=true',
      '--property',
      'print.headers=true',
      '--property',
      'print.key=true',
    ],
    600_000,
  );
  const records: ConsumedRecord[] = [];
  // Default formatting: tab-separated fields, headers `k:v,k:v` (our header values hold no comma), "null" for null
  // (never one of our keys or values, which are JSON objects).
  const nullText = 'null';
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('Partition:')) continue;
    const [partition, offset, headers, key, ...value] = line.split('\t');
    const parsedHeaders: Record<string, string> = {};
    if (headers !== 'NO_HEADERS') {
      for (const h of headers!.split(',')) {
        const at = h.indexOf(':');
        parsedHeaders[h.slice(0, at)] = h.slice(at + 1);
      }
    }
    const valueText = value.join('\t');
    records.push({
      partition: Number(partition!.slice('Partition:'.length)),
      offset: Number(offset!.slice('Offset:'.length)),
      headers: parsedHeaders,
      key: key === nullText ? null : key!,
      value: valueText === nullText ? null : valueText,
    });
  }
  records.sort((a, b) => a.partition - b.partition || a.offset - b.offset);
  return records;
}

/** Log4j 2 configuration: the broker's log goes to server.log in its directory; requests to request.log if asked. */
function log4jProperties(dir: string, requestLog: boolean): string {
  const requests = requestLog
    ? `appender.requests.type = File
appender.requests.name = requests
appender.requests.fileName = ${path.join(dir, 'request.log')}
appender.requests.layout.type = PatternLayout
appender.requests.layout.pattern = %m%n
logger.request.name = kafka.request.logger
logger.request.level = debug
logger.request.additivity = false
logger.request.appenderRef.requests.ref = requests
`
    : `logger.request.name = kafka.request.logger
logger.request.level = warn
`;
  return `${requests}status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = ${path.join(dir, 'server.log')}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.controller.name = org.apache.kafka.controller
logger.controller.level = warn
logger.state.name = state.change.logger
logger.state.level = warn
`;
}

export async function startKafkaBroker(options: StartKafkaOptions = {}): Promise<KafkaBroker> {
  const lib = await kafkaJars();
  const classpath = `${lib}/*`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-kafka-'));
  const [port, controllerPort] = [await freePort(), await freePort()];
  const secured = options.security ? await securedListeners(options.security, dir) : undefined;
  const properties: Record<string, string | number> = {
    'process.roles': 'broker,controller',
    'node.id': 1,
    'controller.quorum.voters': `1@127.0.0.1:${controllerPort}`,
    listeners: `PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}${secured?.listeners ?? ''}`,
    'advertised.listeners': `PLAINTEXT://127.0.0.1:${port}${secured?.advertised ?? ''}`,
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'listener.security.protocol.map': `PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT${secured ? ',SSL:SSL,SASL_SSL:SASL_SSL' : ''}`,
    ...secured?.properties,
    'log.dirs': path.join(dir, 'data'),
    'auto.create.topics.enable': 'false',
    'num.partitions': 1,
    'offsets.topic.replication.factor': 1,
    'offsets.topic.num.partitions': 3,
    'transaction.state.log.replication.factor': 1,
    'transaction.state.log.min.isr': 1,
    'transaction.state.log.num.partitions': 3,
    'share.coordinator.state.topic.replication.factor': 1,
    'share.coordinator.state.topic.min.isr': 1,
    'group.initial.rebalance.delay.ms': 0,
    ...options.settings,
  };
  const propertiesFile = path.join(dir, 'server.properties');
  fs.writeFileSync(
    propertiesFile,
    `${Object.entries(properties)
      .map(([k, v]) => `${k}=${v}`)
      .join('\n')}\n`,
  );
  fs.writeFileSync(path.join(dir, 'log4j2.properties'), log4jProperties(dir, options.requestLog === true));
  const jvm = [
    '-Xms128m',
    '-Xmx512m',
    '-XX:+UseSerialGC',
    '-Djava.awt.headless=true',
    `-Dlog4j2.configurationFile=${path.join(dir, 'log4j2.properties')}`,
    '-cp',
    classpath,
  ];
  const java = (args: string[]) => execFileAsync('java', [...jvm, ...args], { cwd: dir, maxBuffer: 16 << 20 });

  const clusterId = (await java(['kafka.tools.StorageTool', 'random-uuid'])).stdout.trim();
  await java([
    'kafka.tools.StorageTool',
    'format',
    '-t',
    clusterId,
    '-c',
    propertiesFile,
    ...(secured?.formatArgs ?? []),
  ]);

  const serverLog = path.join(dir, 'server.log');
  const outputLog = path.join(dir, 'jvm.log');
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const readLog = () =>
    [serverLog, outputLog]
      .filter((f) => fs.existsSync(f))
      .map((f) => fs.readFileSync(f, 'utf8'))
      .join('\n');
  const killNow = () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', killNow);

  const start = async () => {
    if (child && child.exitCode === null && child.signalCode === null) throw new Error('the broker is running');
    const startedBefore = fs.existsSync(serverLog) ? fs.statSync(serverLog).size : 0;
    const out = fs.openSync(outputLog, 'a');
    const proc = spawn('java', [...jvm, 'kafka.Kafka', propertiesFile], { cwd: dir, stdio: ['ignore', out, out] });
    fs.closeSync(out);
    child = proc;
    exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    const deadline = Date.now() + 120_000;
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        throw new Error(
          `the Kafka broker exited while starting (${proc.exitCode ?? proc.signalCode})\n${tail(readLog())}`,
        );
      }
      const text = fs.existsSync(serverLog) ? fs.readFileSync(serverLog, 'utf8').slice(startedBefore) : '';
      if (/Kafka Server started/.test(text) && (await accepts(port))) return;
      if (Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new Error(`the Kafka broker did not start within 120 s\n${tail(readLog())}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  };

  try {
    await start();
  } catch (err) {
    killNow();
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  return {
    bootstrap: `127.0.0.1:${port}`,
    port,
    ...(secured
      ? { tlsBootstrap: `localhost:${secured.tlsPort}`, saslTlsBootstrap: `localhost:${secured.saslPort}` }
      : {}),
    get pid() {
      return child && child.exitCode === null && child.signalCode === null ? child.pid : undefined;
    },
    log: readLog,
    pause() {
      if (child?.pid) process.kill(child.pid, 'SIGSTOP');
    },
    resume() {
      if (child?.pid) process.kill(child.pid, 'SIGCONT');
    },
    produceRequests() {
      const file = path.join(dir, 'request.log');
      if (!fs.existsSync(file)) return [];
      const out: { acks: number; clientId: string }[] = [];
      for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
        const json = line.indexOf('{');
        if (!line.startsWith('Completed request:') || json < 0) continue;
        const entry = JSON.parse(line.slice(json)) as {
          requestHeader?: { requestApiKey?: number; clientId?: string };
          request?: { acks?: number };
        };
        if (entry.requestHeader?.requestApiKey !== 0) continue;
        out.push({ acks: entry.request?.acks ?? Number.NaN, clientId: entry.requestHeader.clientId ?? '' });
      }
      return out;
    },
    async kill9() {
      killNow();
      await exited;
    },
    start,
    async runTool(mainClass, args, timeoutMs = 120_000) {
      const { stdout, stderr } = await execFileAsync('java', [...jvm, mainClass, ...args], {
        cwd: dir,
        timeout: timeoutMs,
        maxBuffer: 256 << 20,
      });
      return { stdout, stderr };
    },
    async stop() {
      process.off('exit', killNow);
      // Its data is deleted next: a controlled shutdown (tens of seconds for a lone KRaft node) buys nothing.
      killNow();
      await exited;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function securedListeners(security: KafkaSecurityOptions, dir: string) {
  const [tlsPort, saslPort] = [await freePort(), await freePort()];
  // A PEM key store is one file: the private key, then the certificate chain.
  const keyStore = path.join(dir, 'server-keystore.pem');
  fs.writeFileSync(
    keyStore,
    fs.readFileSync(security.serverKeyFile, 'utf8') + fs.readFileSync(security.serverCertFile, 'utf8'),
  );
  const jaasQuote = (s: string) => `"${s.replace(/["\\]/g, '\\$&')}"`;
  const plainUsers = security.users.map((u) => `user_${u.name}=${jaasQuote(u.password)}`).join(' ');
  const scram = ['SCRAM-SHA-256', 'SCRAM-SHA-512'];
  return {
    tlsPort,
    saslPort,
    listeners: `,SSL://127.0.0.1:${tlsPort},SASL_SSL://127.0.0.1:${saslPort}`,
    advertised: `,SSL://localhost:${tlsPort},SASL_SSL://localhost:${saslPort}`,
    properties: {
      'ssl.keystore.type': 'PEM',
      'ssl.keystore.location': keyStore,
      'ssl.client.auth': 'none',
      ...(security.clientCaFile
        ? {
            'ssl.truststore.type': 'PEM',
            'ssl.truststore.location': security.clientCaFile,
            'listener.name.ssl.ssl.client.auth': 'required',
          }
        : {}),
      'sasl.enabled.mechanisms': ['PLAIN', ...scram].join(','),
      'listener.name.sasl_ssl.plain.sasl.jaas.config': `org.apache.kafka.common.security.plain.PlainLoginModule required ${plainUsers};`,
      'listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config':
        'org.apache.kafka.common.security.scram.ScramLoginModule required;',
      'listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config':
        'org.apache.kafka.common.security.scram.ScramLoginModule required;',
    } as Record<string, string | number>,
    formatArgs: security.users.flatMap((u) =>
      scram.flatMap((m) => ['--add-scram', `${m}=[name=${u.name},password=${u.password}]`]),
    ),
  };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function tail(text: string, chars = 6000): string {
  return text.length <= chars ? text : text.slice(-chars);
}
