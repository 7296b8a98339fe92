import { describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.ts';
import { parseConfig } from './load.ts';

const problemsOf = (text: string, env: NodeJS.ProcessEnv = {}) => {
  try {
    parseConfig(text, 'test.yaml', env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
};

describe('config loading', () => {
  it('accepts the documented minimal shape with interpolation and defaults', () => {
    const { config } = parseConfig(
      `
http:
  listen: 127.0.0.1:9464
pipelines:
  - name: app-to-replica
    source: { type: postgres, url: "postgres://app:\${PGPASS}@db/app", tables: [public.accounts], snapshot: initial }
    target: { type: postgres, url: "\${REPLICA_URL:-postgres://localhost/replica}" }
    checkpoints: { type: file, path: ./state/app-to-replica.json }
`,
      'test.yaml',
      { PGPASS: 's3cret' },
    );
    const p = config.pipelines[0]!;
    expect(p.source).toMatchObject({ type: 'postgres', url: 'postgres://app:s3cret@db/app', snapshot: 'initial' });
    expect(p.target).toMatchObject({ url: 'postgres://localhost/replica' });
    expect(p.batch.max_events).toBeGreaterThan(0);
  });

  it('reports every mistake at once, each with its key path', () => {
    const problems = problemsOf(`
pipelines:
  - name: Bad Name
    source: { type: postgress, url: x }
    target: { type: jsonl, path: out.jsonl, colour: red }
    batch: { max_events: -5 }
`);
    const paths = problems.map((p) => p.path);
    expect(paths).toContain('pipelines[0].name');
    expect(paths).toContain('pipelines[0].source.type');
    expect(paths).toContain('pipelines[0].target.colour');
    expect(paths).toContain('pipelines[0].batch.max_events');
    expect(problems.find((p) => p.path === 'pipelines[0].source.type')!.message).toContain('postgres, mysql');
  });

  it('names unset environment variables and YAML syntax errors', () => {
    expect(
      problemsOf(
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a config text with an interpolation
        'pipelines:\n  - name: a\n    source: { type: postgres, url: "${NOPE}" }\n    target: { type: jsonl, path: "-" }\n',
      ),
    ).toEqual([{ path: 'pipelines[0].source.url', message: expect.stringContaining('NOPE is not set') }]);
    expect(problemsOf('pipelines: [\n')[0]!.path).toMatch(/^line \d+/);
  });

  it('rejects duplicate pipeline names and shared checkpoint files', () => {
    const problems = problemsOf(`
pipelines:
  - { name: a, source: { type: postgres, url: x }, target: { type: jsonl, path: "-" }, checkpoints: { type: file, path: s.json } }
  - { name: a, source: { type: postgres, url: x }, target: { type: jsonl, path: "-" }, checkpoints: { type: file, path: ./s.json } }
`);
    expect(problems.map((p) => p.path)).toEqual(['pipelines[1].name', 'pipelines[1].checkpoints.path']);
  });
});
