import { describe, expect, it } from 'vitest';
import { mysqlDouble } from './binary-json.ts';

describe('MySQL JSON doubles as the server prints them', () => {
  it('matches what MySQL 9.7 printed for SELECT json_array(...) of these values', () => {
    const printed: [number, string][] = [
      [1, '1.0'],
      [100, '100.0'],
      [1234.5, '1234.5'],
      [1e20, '1e20'],
      [1.5e-7, '0.00000015'],
      [0.1, '0.1'],
      [1.2345678901234568e17, '1.2345678901234568e17'], // 123456789012345678 as a double
      [1e15, '1e15'],
      [123456789012345, '123456789012345.0'],
      [1234567890123456, '1.234567890123456e15'],
      [1e-10, '0.0000000001'],
      [1e-15, '0.000000000000001'],
      [1.1e-15, '0.0000000000000011'],
      [1.2345678e-16, '1.2345678e-16'],
      [1.5e-20, '1.5e-20'],
      [5e-324, '5e-324'],
      [1.7976931348623157e308, '1.7976931348623157e308'],
      [-2.5e300, '-2.5e300'],
    ];
    for (const [x, text] of printed) expect([x, mysqlDouble(x)]).toEqual([x, text]);
  });
});
