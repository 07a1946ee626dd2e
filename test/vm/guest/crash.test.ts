/**
 * The crash matrix on a real kernel: the tool (the bundle, a real process) is SIGKILLed right after the undo
 * record of step k is on disk, and right after step k; `restore` of its journal must bring the snapshot back.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { TEST_BUNDLE } from '../../support/bundle.ts';
import { diffSnapshots, takeSnapshot } from '../snapshot.ts';
import { cli } from './cli.ts';
import { guestMode, notInGuest, seedHook } from './guest-env.ts';

const mode = guestMode();
const skip = notInGuest() || (mode === 'v2-6.1' ? 'the matrix runs on v2 (6.12) and v1-hybrid (6.1)' : false);
const BUNDLE = TEST_BUNDLE; // built on the host by run-suite.ts before the guest boots
const HOOK = seedHook(mode);
const STEPS = mode === 'v1-hybrid' ? 5 : 6; // v2: enabling cpuset at the root is a step of its own

describe(`crash matrix on a real kernel (${mode ?? 'host'})`, { skip }, () => {
  let exact = 0;
  const points: string[] = [];
  for (let k = 1; k <= STEPS; k++) points.push(`crash-before:${k}`, `crash-after:${k}`);
  for (const point of points) {
    test(
      `SIGKILL at ${point}, then restore`,
      { skip: existsSync(BUNDLE) ? false : 'the test bundle was not built (run-suite.ts builds it)' },
      async () => {
        const before = takeSnapshot();
        const undo = join(mkdtempSync(join(tmpdir(), 'vi-crash-')), 'undo');
        const env: NodeJS.ProcessEnv = { ...process.env, VFIO_ISOLATE_FAULT: point };
        delete env.VFIO_ISOLATE_ROOT;
        const r = spawnSync(process.execPath, [BUNDLE, '-u', undo, ...HOOK], {
          env,
          encoding: 'utf8',
          timeout: 120_000,
        });
        assert.equal(r.signal, 'SIGKILL', `not killed at ${point}: exit ${r.status} ${r.stderr}`);
        const res = await cli(['restore', undo]);
        assert.equal(res.code, 0, res.stderr);
        assert.deepEqual(
          diffSnapshots(before, takeSnapshot()),
          [],
          `state after restore (killed at ${point})`,
        );
        exact++;
      },
    );
  }
  test(
    'every crash point restored exactly',
    { skip: existsSync(BUNDLE) ? false : 'the test bundle was not built' },
    () => {
      assert.equal(exact, points.length);
    },
  );
});
