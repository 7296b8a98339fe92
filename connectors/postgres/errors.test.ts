import { describe, expect, it } from 'vitest';
import { ConnectionError, errorKind, SchemaMismatchError } from '../../src/errors.ts';
import { classifyPostgresError, postgresErrorKind } from './errors.ts';

describe('PostgreSQL error classifier', () => {
  it('knows the SQLSTATEs and connection losses worth a retry', () => {
    for (const code of ['57P01', '57P03', '08006', '40001', '40P01']) {
      expect(postgresErrorKind(Object.assign(new Error('x'), { code }))).toBe('retryable');
    }
    expect(postgresErrorKind(new Error('Connection terminated unexpectedly'))).toBe('retryable');
    expect(postgresErrorKind(Object.assign(new Error('no such table'), { code: '42P01' }))).toBe('fatal');
  });

  it('leaves our own errors and unknown ones to the generic rules', () => {
    expect(classifyPostgresError(new SchemaMismatchError('m', 'h'))).toBeUndefined();
    expect(postgresErrorKind(new SchemaMismatchError('m', 'h'))).toBe('operator');
    expect(classifyPostgresError(Object.assign(new Error('x'), { code: 'ECONNRESET' }))).toBeUndefined();
    expect(postgresErrorKind(Object.assign(new Error('x'), { code: 'ECONNRESET' }))).toBe('retryable');
    expect(postgresErrorKind(new ConnectionError('m', 'h'))).toBe('retryable');
  });

  it('the generic rules know no SQLSTATE', () => {
    expect(errorKind(Object.assign(new Error('x'), { code: '57P01' }))).toBe('fatal');
  });
});
