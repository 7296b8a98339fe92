import { z } from 'zod';

/**
 * The config keys both database targets read alike: how many committed batches share one target transaction (the
 * shell's group commit) and how many rows go into one statement. Each engine sets the default that suits its
 * statements.
 */
export function sqlTargetWriteKeys(defaults: { statementMaxRows: number }) {
  return {
    group_commit_max_batches: z
      .number()
      .int()
      .positive()
      .default(8)
      .describe('Most already queued batches ending on a commit that are applied in one target transaction.'),
    statement_max_rows: z
      .number()
      .int()
      .positive()
      .default(defaults.statementMaxRows)
      .describe('Most rows sent in one statement (rows of a batch are sent in several statements above it).'),
  };
}
