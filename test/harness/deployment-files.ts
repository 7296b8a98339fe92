import fs from 'node:fs';
import YAML from 'yaml';

/** The final stage of the Dockerfile: what the image runs, as whom, with which environment and volumes. */
export function imageSpec() {
  const text = fs.readFileSync('Dockerfile', 'utf8').replace(/\\\n\s*/g, ' ');
  const stages = text.split(/^FROM /m);
  const last = stages[stages.length - 1]!;
  const instruction = (name: string) =>
    last
      .split('\n')
      .filter((line) => line.startsWith(`${name} `))
      .map((line) => line.slice(name.length + 1).trim());
  const env: Record<string, string> = {};
  for (const line of instruction('ENV')) {
    for (const m of line.matchAll(/(\w+)=(\S+)/g)) env[m[1]!] = m[2]!;
  }
  return {
    entrypoint: JSON.parse(instruction('ENTRYPOINT')[0] ?? '[]') as string[],
    cmd: JSON.parse(instruction('CMD')[0] ?? '[]') as string[],
    user: instruction('USER')[0],
    workdir: instruction('WORKDIR')[0],
    env,
    volumes: instruction('VOLUME').flatMap((v) => JSON.parse(v) as string[]),
    stopSignal: instruction('STOPSIGNAL')[0],
  };
}

/** docker-compose.yml's tributary service: command, environment and volumes. */
export function composeService() {
  const compose = YAML.parse(fs.readFileSync('docker-compose.yml', 'utf8'));
  return compose.services.tributary as { command: string[]; environment: Record<string, string>; volumes: string[] };
}

/** The uid/gid an unprivileged image user maps to on this machine. */
export const NOBODY = { uid: 65534, gid: 65534 };

/** The files and directories the Dockerfile's first (build) stage copies into the image before its `npm ci`. */
export function buildStageCopies(): string[] {
  const text = fs.readFileSync('Dockerfile', 'utf8').replace(/\\\n\s*/g, ' ');
  const build = text.split(/^FROM /m)[1]!;
  const beforeRun = build.split(/^RUN /m)[0]!;
  return beforeRun
    .split('\n')
    .filter((line) => line.startsWith('COPY ') && !line.includes('--from='))
    .flatMap((line) => line.slice(5).trim().split(/\s+/).slice(0, -1));
}
