import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jsonDocument } from '../../src/report/json-text.ts';
import { printable } from '../../src/report/printable.ts';

const CONTROLS = '\x00\x1b\x7f\u0085\u009b\u009f\u2028\u2029';

describe('text another user chose, for a terminal', () => {
  it('printable escapes C0, DEL, C1 and the line and paragraph separators; other text stays as it is', () => {
    assert.equal(printable(`a${CONTROLS}\n\tb`), 'a\\x00\\x1b\\x7f\\x85\\x9b\\x9f\\u2028\\u2029\\n\\tb');
    assert.equal(printable('café 日本 ½ €'), 'café 日本 ½ €');
  });

  it('jsonDocument writes them as \\u escapes and parses back to the same value; other text stays raw', () => {
    const value = { name: `x${CONTROLS}y`, plain: 'café 日本 ½ €', list: [1, null] };
    const text = jsonDocument(value);
    // eslint-disable-next-line no-control-regex
    assert.doesNotMatch(text, /[\x00-\x09\x0b-\x1f\u007f-\u009f\u2028\u2029]/);
    assert.ok(text.includes('café 日本 ½ €'));
    assert.ok(text.endsWith('}\n'));
    assert.deepEqual(JSON.parse(text), value);
    assert.equal(jsonDocument([]), '[]\n');
  });
});
