import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { isoUtc } from '../../src/iso-time.ts';

describe('isoUtc: Date#toISOString without the time-zone set-up', () => {
  test('the same text as toISOString for any time from 1970 to 9999 and beyond', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 253_402_300_799_999 }), (ms) => {
        assert.equal(isoUtc(ms), new Date(ms).toISOString());
      }),
      { numRuns: 20_000 },
    );
    for (const ms of [
      0, 951_782_400_000, 951_868_799_999, 4_107_542_400_000, 253_402_300_799_999, 253_402_300_800_000, -1,
    ])
      assert.equal(isoUtc(ms), new Date(ms).toISOString(), String(ms));
  });
});
