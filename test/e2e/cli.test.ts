import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { tributary, tributaryInTerminal } from '../harness/cli.ts';

describe('tributary CLI', () => {
  it('prints help', async () => {
    const { code, stdout } = await tributary(['--help']);
    expect(code).toBe(0);
    for (const command of ['run', 'validate', 'status', 'teardown', 'demo']) expect(stdout).toContain(command);
  });

  it('validate reports all three mistakes with key paths, exit 1, no stack trace', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-cli-')), 'bad.yaml');
    fs.writeFileSync(
      file,
      `pipelines:
  - name: orders
    source: { type: postgres, url: "postgres://u:hunter2@db/app", snapshot: sometimes }
    target: { type: jsonl, path: out.jsonl, colour: red }
    batch: { max_events: 0 }
`,
    );
    const { code, stderr } = await tributary(['validate', '-c', file]);
    expect(code).toBe(1);
    expect(stderr).toContain('3 problems');
    expect(stderr).toContain('pipelines[0].source.snapshot');
    expect(stderr).toContain('pipelines[0].target.colour');
    expect(stderr).toContain('pipelines[0].batch.max_events');
    expect(stderr).not.toMatch(/\n\s+at /);
    expect(stderr).not.toContain('hunter2');
  });

  it('validate fails on a checkpoint file or output that cannot be written (run would fail on it)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-cli-'));
    const file = path.join(dir, 'unwritable.yaml');
    fs.writeFileSync(
      file,
      `pipelines:
  - name: p
    source: { type: postgres, url: "postgres://u@127.0.0.1:1/app" }
    target: { type: jsonl, path: /proc/tributary/out.jsonl }
    checkpoints: { type: file, path: /proc/tributary/p.json }
  - name: fine
    source: { type: postgres, url: "postgres://u@127.0.0.1:1/app" }
    target: { type: jsonl, path: out/fine.jsonl }
    checkpoints: { type: file, path: state/fine.json }
`,
    );
    const { code, stdout } = await tributary(['validate', '--offline', '-c', file]);
    expect(code, stdout).toBe(1);
    expect(stdout).toContain('pipeline p: 2 problem(s)');
    expect(stdout).toContain('the checkpoint file /proc/tributary/p.json cannot be written');
    expect(stdout).toContain('the output file /proc/tributary/out.jsonl cannot be written');
    expect(stdout).not.toContain('pipeline fine');
    // The check leaves nothing behind.
    expect(fs.readdirSync(dir)).toEqual(['unwritable.yaml']);
  });

  it('finds its config without -c: $TRIBUTARY_CONFIG, else ./tributary.yaml; says how when there is none', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-cli-'));
    const minimal = (name: string) =>
      `pipelines:\n  - name: ${name}\n    source: { type: postgres, url: x }\n    target: { type: jsonl, path: out.jsonl }\n`;
    const none = await tributary(['validate', '--offline'], { TRIBUTARY_CONFIG: '' }, dir);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('no config file: pass -c FILE, set TRIBUTARY_CONFIG, or create tributary.yaml');
    fs.writeFileSync(path.join(dir, 'tributary.yaml'), minimal('here'));
    fs.writeFileSync(path.join(dir, 'other.yaml'), minimal('there'));
    const found = await tributary(['validate', '--offline'], { TRIBUTARY_CONFIG: '' }, dir);
    expect(found.stdout).toContain('tributary.yaml: configuration is valid');
    const fromEnv = await tributary(['validate', '--offline'], { TRIBUTARY_CONFIG: path.join(dir, 'other.yaml') }, dir);
    expect(fromEnv.stdout).toContain('other.yaml: configuration is valid');
  });

  it('run --pipeline with a name the config lacks lists the names it has', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-cli-')), 'two.yaml');
    fs.writeFileSync(
      file,
      `pipelines:
  - { name: orders, source: { type: postgres, url: x }, target: { type: jsonl, path: a.jsonl } }
  - { name: users, source: { type: postgres, url: x }, target: { type: jsonl, path: b.jsonl } }
`,
    );
    const { code, stderr } = await tributary(['run', '-c', file, '--pipeline', 'order']);
    expect(code).toBe(2);
    expect(stderr).toContain('no pipeline named "order"');
    expect(stderr).toContain('Pipelines of this config: orders, users');
  });

  it('every command has examples in its help, and bash completion completes commands and options', async () => {
    for (const command of ['run', 'validate', 'status', 'teardown', 'verify', 'demo', 'completion']) {
      const { stdout } = await tributary([command, '--help']);
      expect(stdout, command).toMatch(/Examples?:\n {2}\S/);
    }
    const { stdout: script } = await tributary(['completion', 'bash']);
    const scriptFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-cli-')), 'completion.sh');
    fs.writeFileSync(scriptFile, script);
    const complete = (words: string[]) =>
      new Promise<string>((resolve, reject) =>
        execFile(
          'bash',
          [
            '-c',
            `source ${scriptFile}; COMP_WORDS=(${words.join(' ')}); COMP_CWORD=${words.length - 1}; _tributary; echo "\${COMPREPLY[@]}"`,
          ],
          (err, stdout) => (err ? reject(err) : resolve(stdout.trim())),
        ),
      );
    expect(await complete(['tributary', 'te'])).toBe('teardown');
    expect(await complete(['tributary', 'run', '--pi'])).toBe('--pipeline');
    expect(await complete(['tributary', 'verify', '--max'])).toBe('--max-diffs');
  });

  // zsh runs the script through bashcompinit; completion is exercised as a person would, in an interactive zsh on a
  // pseudo-terminal (zsh/zpty): the typed words, a TAB, then the line as the line editor holds it.
  it.runIf(hasZsh())(
    'zsh completion completes commands and options in an interactive zsh',
    async () => {
      const { stdout: script } = await tributary(['completion', 'zsh']);
      const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-zsh-'));
      const scriptFile = path.join(scratch, '_tributary.zsh');
      fs.writeFileSync(scriptFile, script);
      const complete = async (typed: string) => {
        const driver = path.join(scratch, 'drive.zsh');
        fs.writeFileSync(
          driver,
          `zmodload zsh/zpty
zpty z 'zsh -f -i'
zpty -w z 'bindkey -e && autoload -U compinit && compinit -u && source ${scriptFile}'
sleep 1
zpty -w -n z $'${typed}\t'
sleep 1
zpty -w -n z $'\x01print -r -- LINE:\x05:END\n'
sleep 1
out=''
while zpty -r -t z chunk; do out+=$chunk; done
zpty -d z
print -r -- "$out"
`,
        );
        const { stdout } = await promisify(execFile)('zsh', ['-f', driver], { timeout: 30_000 });
        const line = stdout.split(/\r?\n/).find((l) => l.startsWith('LINE:'));
        return line?.slice('LINE:'.length, line.indexOf(':END')).trim();
      };
      try {
        expect(await complete('tributary te')).toBe('tributary teardown');
        expect(await complete('tributary run --pi')).toBe('tributary run --pipeline');
        expect(await complete('tributary verify --max')).toBe('tributary verify --max-diffs');
      } finally {
        fs.rmSync(scratch, { recursive: true, force: true });
      }
    },
    60_000,
  );

  it('long output reaches a slow reader whole (the process exits only after its output is written)', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-cli-')), 'many.yaml');
    const keys = Array.from({ length: 4000 }, (_, i) => `  unknown_key_number_${i}: 1`).join('\n');
    fs.writeFileSync(file, `http:\n${keys}\npipelines: []\n`);
    const expected = (await tributary(['validate', '--offline', '-c', file])).stderr.length;
    expect(expected).toBeGreaterThan(200_000);
    const slow = await new Promise<string>((resolve, reject) =>
      execFile(
        'bash',
        [
          '-c',
          `node ${path.resolve('bin/tributary.js')} validate --offline -c ${file} 2>&1 >/dev/null | (sleep 1; wc -c)`,
        ],
        (err, stdout) => (err ? reject(err) : resolve(stdout.trim())),
      ),
    );
    expect(Number(slow)).toBe(expected);
  });

  it('a missing config file is a clear error', async () => {
    const { code, stderr } = await tributary(['run', '-c', '/nonexistent/tributary.yaml']);
    expect(code).toBe(1);
    expect(stderr).toContain('cannot read the config file: no such file');
  });

  it('an unknown command is a usage error', async () => {
    const { code } = await tributary(['frobnicate']);
    expect(code).toBe(64);
  });

  it('an HTTP port already in use is an operator error that says what to do, once, on a terminal too', async () => {
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const { port } = busy.address() as net.AddressInfo;
    try {
      const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-cli-')), 'busy.yaml');
      fs.writeFileSync(
        file,
        `http: { listen: "127.0.0.1:${port}" }
pipelines:
  - name: p
    source: { type: postgres, url: "postgres://u@127.0.0.1:1/app" }
    target: { type: jsonl, path: out.jsonl }
`,
      );
      const { code, output } = await tributaryInTerminal(['run', '-c', file]);
      expect(code, output).toBe(2);
      expect(output).toContain(`the HTTP endpoint cannot listen on 127.0.0.1:${port}: the address is already in use`);
      expect(output).toContain('choose another port in http.listen');
      expect(output).not.toContain('internal error');
      expect(output.match(/already in use/g)).toHaveLength(1);
      expect(output).not.toMatch(/\n\s+at /);
    } finally {
      busy.close();
    }
  });
});

function hasZsh(): boolean {
  const found = process.env.PATH?.split(':').some((dir) => fs.existsSync(path.join(dir, 'zsh')));
  if (!found) console.warn('zsh completion test skipped: zsh is not installed');
  return Boolean(found);
}
