import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { failingSection, skipReasons, suiteProblems } from '../vm/verdict.ts';

const SKIPPED_OUTPUT = [
  '﹣ guest harness (0.4ms) # SKIP not inside a vfio-isolate test guest (run npm run test:vm)',
  '﹣ crash matrix (0.1ms) # SKIP dist/ not built (npm ci)',
  '﹣ other (0.1ms) # SKIP dist/ not built (npm ci)',
  'ℹ pass 0',
  'ℹ fail 0',
  'ℹ skipped 3',
].join('\n');

/** The "failing tests" section node:test prints at the end of a run with one failed test. */
const FAILING_SECTION = [
  '✖ failing tests:',
  '',
  'test at test/vm/guest/partition.test.ts:2:1015',
  '✖ reset makes the partitions members again (4137.575867ms)',
  '  AssertionError [ERR_ASSERTION]: Expected values to be strictly equal:',
  "  '4-5' !== ''",
];
/** A guest's spec-reporter output with that failed test (the shape node:test prints). */
const FAILED_OUTPUT = [
  '✔ passes (1ms)',
  '✖ breaks (4137.5ms)',
  'ℹ tests 2',
  'ℹ pass 1',
  'ℹ fail 1',
  '',
  ...FAILING_SECTION,
  '',
].join('\n');

describe('guest suite verdict (VFIO_REQUIRE_VM)', () => {
  test('a failed mode names its failed tests; their errors are kept for the end of the log', () => {
    assert.deepEqual(
      suiteProblems([{ mode: 'v1-hybrid', passed: 1, failed: 1, skipped: 0, stdout: FAILED_OUTPUT }], false),
      ['v1-hybrid: 1 failed (reset makes the partitions members again)'],
    );
    assert.deepEqual(failingSection(FAILED_OUTPUT), FAILING_SECTION);
    assert.equal(failingSection(FAILED_OUTPUT, 2).length, 3, 'capped, with a line saying so');
    assert.deepEqual(failingSection(SKIPPED_OUTPUT), []);
  });

  test('a required mode whose tests all skipped fails, naming the skip reasons', () => {
    const p = suiteProblems([{ mode: 'v2', passed: 0, failed: 0, skipped: 3, stdout: SKIPPED_OUTPUT }], true);
    assert.deepEqual(p, [
      'v2: no test ran (3 skipped: not inside a vfio-isolate test guest (run npm run test:vm); dist/ not built (npm ci)) and VFIO_REQUIRE_VM=1 requires the guest suite',
    ]);
  });
  test('a required mode with 0 tests at all fails', () => {
    assert.equal(suiteProblems([{ mode: 'v1-hybrid', passed: 0, failed: 0, skipped: 0 }], true).length, 1);
  });
  test('no mode selected fails when required, passes when not', () => {
    assert.match(suiteProblems([], true).join('\n'), /no guest mode ran/);
    assert.deepEqual(suiteProblems([], false), []);
  });
  test('not required: an all-skipped mode is not a failure; failures and crashes always are', () => {
    assert.deepEqual(suiteProblems([{ mode: 'v2', passed: 0, failed: 0, skipped: 3 }], false), []);
    assert.deepEqual(suiteProblems([{ mode: 'v2', passed: 5, failed: 1, skipped: 0 }], false), [
      'v2: 1 failed',
    ]);
    assert.deepEqual(
      suiteProblems([{ mode: 'v2', passed: 0, failed: 0, skipped: 0, crashed: 'boom' }], false),
      ['v2 crashed: boom'],
    );
  });
  test('a required mode that ran tests passes even when some skipped', () => {
    assert.deepEqual(suiteProblems([{ mode: 'v2', passed: 4, failed: 0, skipped: 2 }], true), []);
  });
  test('skipReasons lists each reason once', () => {
    assert.deepEqual(skipReasons(SKIPPED_OUTPUT), [
      'not inside a vfio-isolate test guest (run npm run test:vm)',
      'dist/ not built (npm ci)',
    ]);
  });
  test('npm test with VFIO_SKIP_VM=1 and VFIO_REQUIRE_VM=1 fails and says why (no test file is run)', () => {
    // An empty test/unit selection is not needed: the script exits non-zero whatever the unit suites did.
    const r = spawnSync(process.execPath, ['-e', SCRIPT_CHECK], {
      env: { ...process.env, VFIO_SKIP_VM: '1', VFIO_REQUIRE_VM: '1' },
      encoding: 'utf8',
    });
    assert.match(r.stdout, /VFIO_SKIP_VM=1 skips the guest suite, but VFIO_REQUIRE_VM=1 requires it/);
    assert.notEqual(r.status, 0);
  });
});

/** Runs scripts/test.mjs's decision with the unit run replaced by a no-op (spawn and spawnSync of `true`). */
const SCRIPT_CHECK = `
const cp = require('node:child_process');
const real = cp.spawnSync;
const realSpawn = cp.spawn;
cp.spawnSync = (cmd, args, opts) => real('true', [], opts);
cp.spawn = (cmd, args, opts) => realSpawn('true', [], opts);
require('node:module').syncBuiltinESMExports();
import('${new URL('../../scripts/test.mjs', import.meta.url).href}');
`;
