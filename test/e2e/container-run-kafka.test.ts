import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { copyCheckout } from '../harness/checkout-copy.ts';
import { composeService, imageSpec, NOBODY } from '../harness/deployment-files.ts';
import { testKafkaBrokers } from '../harness/kafka-test-broker.ts';
import { type MysqlServer, startMariadb } from '../harness/mariadb.ts';
import { mysqlUnavailableReason, startMysql } from '../harness/mysql-server.ts';
import { type PgServer, startPostgres } from '../harness/postgres.ts';

const kafka = testKafkaBrokers();
const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log('skipping the container run: needs root (to run as the image user)');

/**
 * What `docker compose up` runs, without a container engine: the image's entrypoint and the compose service's
 * command, environment and volume, as the image's unprivileged user, on a copy of the application that user does
 * not own, against real PostgreSQL, MySQL (its compose options) and Kafka servers standing in for the compose services (their addresses
 * put in the compose environment's variables). Both pipelines of the compose config must run, the file checkpoint
 * must land in the volume, and `docker stop`'s signal must end the process promptly with exit 0.
 */
describe.skipIf(kafka.skipReason !== undefined || !isRoot)('the container, run as docker compose runs it', () => {
  let pgServer: PgServer;
  let mysql: MysqlServer;
  let root: string;
  let child: ChildProcess | undefined;

  beforeAll(async () => {
    // The compose file's MySQL service: its server options, on MySQL itself when it runs here.
    const compose = YAML.parse(fs.readFileSync('docker-compose.yml', 'utf8'));
    const options = Object.fromEntries(
      (compose.services.mysql.command as string[]).map((arg) => arg.replace(/^--/, '').split('=') as [string, string]),
    );
    const unavailable = mysqlUnavailableReason();
    if (unavailable) console.log(`the compose MySQL service stood in for by MariaDB: ${unavailable}`);
    [pgServer, mysql] = await Promise.all([
      startPostgres(),
      unavailable ? startMariadb({ throwaway: true }) : startMysql({ throwaway: true, options }),
    ]);
    await pgServer.createDatabase('app');
    await pgServer.query('app', 'create table orders (id int primary key, item text)');
    await pgServer.query('app', "insert into orders values (1, 'first')");
    await mysql.createDatabase('shop');
    await mysql.query('create table products (id int primary key, name varchar(40))', [], 'shop');
    await mysql.query("insert into products values (1, 'widget')", [], 'shop');
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-container-'));
    fs.chmodSync(root, 0o755);
  });
  afterAll(async () => {
    child?.kill('SIGKILL');
    await Promise.all([pgServer?.stop(), mysql?.stop()]);
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  it('runs both pipelines as the image user, checkpoints into the volume, and stops on SIGTERM with exit 0', async () => {
    const app = path.join(root, 'app');
    copyCheckout(app);
    const image = imageSpec();
    const service = composeService();
    const [volumeName, volumeTarget] = service.volumes[0]!.split(':') as [string, string];
    const volume = path.join(root, volumeName);
    fs.mkdirSync(volume);
    fs.chownSync(volume, NOBODY.uid, NOBODY.gid); // the image creates it owned by its user
    // The compose services' addresses, as this machine's servers.
    const standIns: Record<string, string> = {
      PG_URL: pgServer.url('app'),
      MYSQL_URL: mysql.url(),
      KAFKA_BROKERS: kafka.brokers!.join(','),
    };
    expect(Object.keys(service.environment).sort()).toEqual(Object.keys(standIns).sort());
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: root, ...image.env, ...standIns };
    for (const [key, value] of Object.entries(env)) if (value === volumeTarget) env[key] = volume;
    const command = [...image.entrypoint, ...service.command];
    let output = '';
    const proc = spawn(command[0]!, command.slice(1), {
      cwd: app,
      env,
      uid: NOBODY.uid,
      gid: NOBODY.gid,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    proc.stdout!.on('data', (d) => (output += d));
    proc.stderr!.on('data', (d) => (output += d));
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));

    const checkpointFile = path.join(volume, 'app-to-kafka.json');
    const replicated = async () =>
      (await pgServer.query<{ n: string }>('app', 'select count(*)::text as n from shop.products').catch(() => []))[0]
        ?.n === '1';
    const deadline = Date.now() + 90_000;
    while (!(fs.existsSync(checkpointFile) && (await replicated()))) {
      if (proc.exitCode !== null) throw new Error(`exited with ${proc.exitCode}:\n${output}`);
      if (Date.now() > deadline)
        throw new Error(`no checkpoint in the volume or no MySQL row in PostgreSQL:\n${output}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(fs.statSync(checkpointFile).uid).toBe(NOBODY.uid);
    expect(JSON.parse(fs.readFileSync(checkpointFile, 'utf8'))).toMatchObject({ pipeline: 'app-to-kafka' });
    // The broker's own offsets: the PostgreSQL row reached its topic.
    const admin = new Kafka({ brokers: kafka.brokers!, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      const offsets = await admin.fetchTopicOffsets('app.public.orders');
      expect(offsets.reduce((sum, p) => sum + Number(p.high), 0)).toBeGreaterThanOrEqual(1);
    } finally {
      await admin.disconnect();
    }

    const stopAt = Date.now();
    proc.kill((image.stopSignal ?? 'SIGTERM') as NodeJS.Signals);
    expect(await exited, output).toBe(0);
    child = undefined;
    expect(Date.now() - stopAt).toBeLessThan(10_000);
  });
});
