import { describe, expect, it } from 'vitest';
import { redactUrl } from './logger.ts';

describe('redactUrl', () => {
  it('hides the password of every URL in a text and keeps the rest', () => {
    expect(redactUrl('connect postgres://app:s3cr%40t@db:5432/app failed; mysql://root:pw@h/')).toBe(
      'connect postgres://app:***@db:5432/app failed; mysql://root:***@h/',
    );
    expect(redactUrl('postgres://app@db/app')).toBe('postgres://app@db/app');
  });
});
