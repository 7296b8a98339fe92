import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { liveStates } from '../commands/live-status.ts';
import { configSchema } from '../config/schema.ts';
import { startHttpServer } from './http.ts';
import { PipelineMetrics } from './metrics.ts';

const TOKEN = 'a-long-enough-secret-token';

describe('HTTP endpoint', () => {
  let server: http.Server | undefined;
  afterEach(async () => {
    await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
    server = undefined;
  });

  const start = async (bearerToken?: string) => {
    server = await startHttpServer('127.0.0.1:0', new PipelineMetrics(), () => [], { bearerToken });
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  };

  it('with a bearer token, /status and /metrics need it and /healthz stays open', async () => {
    const base = await start(TOKEN);
    for (const path of ['/status', '/metrics']) {
      const none = await fetch(`${base}${path}`);
      expect(none.status).toBe(401);
      expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect(await none.text()).toMatch(/Authorization: Bearer/);
      const wrong = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${TOKEN}x` } });
      expect(wrong.status).toBe(401);
      const basic = await fetch(`${base}${path}`, { headers: { authorization: `Basic ${TOKEN}` } });
      expect(basic.status).toBe(401);
      const right = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(right.status).toBe(200);
    }
    expect(
      (await fetch(`${base}/status`, { headers: { authorization: `Bearer ${TOKEN}` } }).then((r) => r.json()))
        .pipelines,
    ).toEqual([]);
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
  });

  it('`tributary status` reads a guarded endpoint with the configured token', async () => {
    const base = await start(TOKEN);
    const listen = base.replace('http://', '');
    expect(await liveStates(listen, TOKEN)).toEqual([]);
    expect(await liveStates(listen)).toBeUndefined();
  });

  it('without a token every path is open, as before', async () => {
    const base = await start();
    expect((await fetch(`${base}/status`)).status).toBe(200);
    expect((await fetch(`${base}/metrics`)).status).toBe(200);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });

  it('listens on the loopback interface unless told otherwise, and refuses a short token', () => {
    const pipelines = [
      { name: 'p', source: { type: 'postgres', url: 'postgres://x/y' }, target: { type: 'jsonl', path: 'o' } },
    ];
    expect(configSchema.parse({ http: {}, pipelines }).http?.listen).toBe('127.0.0.1:9464');
    const short = configSchema.safeParse({ http: { bearer_token: 'short' }, pipelines });
    expect(short.success).toBe(false);
    expect(JSON.stringify(short.error?.issues)).toMatch(/at least 16 characters/);
  });
});
