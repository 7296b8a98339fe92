import { describe, expect, it } from 'vitest';
import { SchemaMismatchError } from '../../src/errors.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { classifyMysqlError, mysqlErrorKind } from './errors.ts';
import { mysqlTargetConfig } from './sink/config.ts';
import { MysqlTarget } from './sink/target.ts';
import { mysqlSourceConfig } from './source/config.ts';
import { MysqlSource } from './source/source.ts';

describe('MySQL error classifier', () => {
  it('knows the server codes and connection losses worth a retry', () => {
    for (const code of ['ER_LOCK_DEADLOCK', 'ER_SERVER_SHUTDOWN', 'PROTOCOL_CONNECTION_LOST', 'ER_CON_COUNT_ERROR']) {
      expect(mysqlErrorKind(Object.assign(new Error('x'), { code }))).toBe('retryable');
    }
    expect(mysqlErrorKind(new Error('MySQL server has gone away'))).toBe('retryable');
    expect(mysqlErrorKind(Object.assign(new Error('x'), { code: 'ER_NO_SUCH_TABLE' }))).toBe('fatal');
    expect(classifyMysqlError(new SchemaMismatchError('m', 'h'))).toBeUndefined();
  });

  it('the source uses the same classifier as the target and its checkpoint store', () => {
    const ctx = { pipeline: 'p', logger: createLogger({ level: 'error' }) };
    const url = 'mysql://u:p@127.0.0.1:1/db';
    const source = new MysqlSource(mysqlSourceConfig.parse({ type: 'mysql', url, databases: ['db'] }), ctx);
    const target = new MysqlTarget(mysqlTargetConfig.parse({ type: 'mysql', url }), ctx);
    const deadlock = Object.assign(new Error('Deadlock found'), { code: 'ER_LOCK_DEADLOCK' });
    expect(source.classifyError(deadlock)).toBe('retryable');
    expect(target.classifyError(deadlock)).toBe('retryable');
    expect(source.classifyError).toBe(target.classifyError);
  });
});
