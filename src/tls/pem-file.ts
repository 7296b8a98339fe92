import fs from 'node:fs';
import { TributaryError } from '../errors.ts';

/** Reads a certificate or key file named by a setting; a missing or unreadable file names that setting. */
export function readPemFile(file: string, setting: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new TributaryError('operator', `${setting}: cannot read ${file}: ${(err as Error).message}`, {
      hint: `set ${setting} to a readable PEM file`,
      cause: err,
    });
  }
}
