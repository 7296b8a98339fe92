import http from 'node:http';
import type { PipelineState } from '../pipeline/pipeline.ts';
import type { PipelineMetrics } from './metrics.ts';

/** /metrics (Prometheus), /healthz (200 while no pipeline failed), /status (JSON). */
export function startHttpServer(
  listen: string,
  metrics: PipelineMetrics,
  states: () => PipelineState[],
): Promise<http.Server> {
  const [host, port] = splitHostPort(listen);
  const server = http.createServer((req, res) => {
    const url = req.url?.split('?')[0];
    if (url === '/metrics') {
      metrics.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': metrics.registry.contentType });
          res.end(text);
        },
        (err) => {
          res.writeHead(500);
          res.end(String(err));
        },
      );
      return;
    }
    if (url === '/healthz') {
      const failed = states().filter((s) => s.status === 'failed');
      res.writeHead(failed.length ? 503 : 200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: failed.length === 0, failed: failed.map((s) => s.name) }));
      return;
    }
    if (url === '/status') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ pipelines: states() }, null, 2));
      return;
    }
    res.writeHead(404);
    res.end('not found: try /metrics, /healthz or /status\n');
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

export function splitHostPort(listen: string): [string, number] {
  const i = listen.lastIndexOf(':');
  return [listen.slice(0, i), Number(listen.slice(i + 1))];
}
