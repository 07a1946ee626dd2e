/**
 * The test entry (test/support/sim-main.ts) bundled like the product, for tests that start the CLI as a process
 * (crash matrix, completion scripts, the guest suite). Built once per test process into .test-build/, atomically,
 * so that test files running in parallel never see half a file.
 */
import { buildSync } from 'esbuild';
import * as fs from 'node:fs';
import * as path from 'node:path';

const REPO = path.resolve(import.meta.dirname, '../..');
export const TEST_BUNDLE = path.join(REPO, '.test-build/vfio-isolate-test.mjs');
let built = false;

export function testBundle(): string {
  if (built) return TEST_BUNDLE;
  fs.mkdirSync(path.dirname(TEST_BUNDLE), { recursive: true });
  const tmp = `${TEST_BUNDLE}.${process.pid}.tmp.mjs`;
  buildSync({
    entryPoints: [path.join(REPO, 'test/support/sim-main.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile: tmp,
    external: ['koffi', 'esbuild'],
    logLevel: 'error',
  });
  fs.renameSync(tmp, TEST_BUNDLE);
  built = true;
  return TEST_BUNDLE;
}
