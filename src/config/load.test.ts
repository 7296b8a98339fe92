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

describe('config mistakes say what to fix', () => {
  it('a wrong type says what was expected and what was given', () => {
    const problems = problemsOf(`pipelines:
  - name: p
    source: { type: postgres, url: 5432, tables: public.t }
    target: { type: jsonl, path: out.jsonl }
    batch: { max_events: "many" }
`);
    expect(problems).toEqual(
      expect.arrayContaining([
        { path: 'pipelines[0].source.url', message: 'expected string, got number 5432' },
        { path: 'pipelines[0].source.tables', message: 'expected a list, got string "public.t"' },
        { path: 'pipelines[0].batch.max_events', message: 'expected number, got string "many"' },
      ]),
    );
    expect(problemsOf('pipelines:\n  - name: p\n    target: { type: jsonl, path: x }\n')).toContainEqual({
      path: 'pipelines[0].source',
      message: 'required (expected a mapping)',
    });
  });

  it('an unknown key names the nearest valid one, among the keys of its kind', () => {
    const problems = problemsOf(`htp: { listen: "127.0.0.1:1" }
pipelines:
  - name: p
    source: { type: postgres, url: x, snapshto: initial }
    target: { type: mysql, url: x, float_nonfinit: error }
    retyr: {}
`);
    expect(problems).toEqual(
      expect.arrayContaining([
        { path: 'htp', message: 'unknown key: did you mean http?' },
        { path: 'pipelines[0].source.snapshto', message: 'unknown key: did you mean snapshot?' },
        { path: 'pipelines[0].target.float_nonfinit', message: 'unknown key: did you mean float_nonfinite?' },
        { path: 'pipelines[0].retyr', message: 'unknown key: did you mean retry?' },
      ]),
    );
  });

  it('a YAML syntax error shows the line, the column and a caret under the spot', () => {
    const [problem] = problemsOf('pipelines:\n  - name: p\n    source: { type: postgres, url: x\n    target: {}\n');
    expect(problem!.path).toBe('line 4, column 5');
    expect(problem!.message).toContain('    target: {}');
    expect(problem!.message).toMatch(/\n\s+\^/);
  });

  it('a bare null where the string "null" is meant says to quote it; the quoted form loads', () => {
    const yaml = (value: string) =>
      `pipelines:\n  - name: p\n    source: { type: postgres, url: x }\n    target: { type: mysql, url: x, float_nonfinite: ${value} }\n`;
    expect(problemsOf(yaml('null'))[0]!.message).toContain('write "null" in quotes');
    expect(problemsOf(yaml('"null"'))).toEqual([]);
  });

  it('a relative JSON lines path is relative to the config file, not to the working directory', () => {
    const { config } = parseConfig(
      'pipelines:\n  - name: p\n    source: { type: postgres, url: x }\n    target: { type: jsonl, path: out/p.jsonl }\n',
      '/etc/tributary/tributary.yaml',
    );
    expect(config.pipelines[0]!.target).toMatchObject({ path: '/etc/tributary/out/p.jsonl' });
  });
});

describe('keys under an earlier name', () => {
  const mysql = (keys: string) =>
    `pipelines:\n  - name: p\n    source: { type: mysql, url: x, ${keys} }\n    target: { type: jsonl, path: "-" }\n`;

  it('a MySQL source reads read_buffer_* as read_ahead_*, with one warning for each naming the current key', () => {
    const { config, warnings } = parseConfig(mysql('read_buffer_events: 500, read_buffer_bytes: 2097152'), 't.yaml');
    expect(config.pipelines[0]!.source).toMatchObject({ read_ahead_events: 500, read_ahead_bytes: 2_097_152 });
    expect(config.pipelines[0]!.source).not.toHaveProperty('read_buffer_events');
    expect(warnings).toEqual([
      { path: 'pipelines[0].source.read_buffer_events', message: expect.stringMatching(/^renamed read_ahead_events;/) },
      { path: 'pipelines[0].source.read_buffer_bytes', message: expect.stringMatching(/^renamed read_ahead_bytes;/) },
    ]);
    // Checked as the current key is: the same bounds apply.
    expect(problemsOf(mysql('read_buffer_events: 5'))).toEqual([
      { path: 'pipelines[0].source.read_ahead_events', message: expect.stringContaining('100') },
    ]);
  });

  it('the current names load without a warning; both names at once is a problem', () => {
    expect(parseConfig(mysql('read_ahead_events: 500'), 't.yaml').warnings).toEqual([]);
    expect(problemsOf(mysql('read_buffer_events: 500, read_ahead_events: 600'))).toEqual([
      {
        path: 'pipelines[0].source.read_buffer_events',
        message: 'the old name of read_ahead_events, which is set as well: keep read_ahead_events only',
      },
    ]);
  });

  it('only the connector that had the old name reads it', () => {
    const problems = problemsOf(
      'pipelines:\n  - name: p\n    source: { type: postgres, url: x, read_buffer_events: 500 }\n    target: { type: jsonl, path: "-" }\n',
    );
    expect(problems.map((p) => p.path)).toEqual(['pipelines[0].source.read_buffer_events']);
  });
});
