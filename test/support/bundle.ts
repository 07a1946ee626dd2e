/**
 * Test programs bundled like the product, for tests that start them as processes: the test entry
 * (test/support/sim-main.ts: crash matrix, completion scripts, the guest suite) and the fake systemctl
 * (test/support/fake-systemctl.ts, started for every systemctl call a test makes). A bundle starts with plain node,
 * without tsx's loader (about 0.5 s a start on this machine's kind). Each is built once per test process into
 * .test-build/, atomically, so that test files running in parallel never see half a file.
 */
import { buildSync } from 'esbuild';
import * as fs from 'node:fs';
import * as path from 'node:path';

const REPO = path.resolve(import.meta.dirname, '../..');
export const TEST_BUNDLE = path.join(REPO, '.test-build/vfio-isolate-test.mjs');
const FAKE_SYSTEMCTL_BUNDLE = path.join(REPO, '.test-build/fake-systemctl.mjs');
const built = new Set<string>();

/** Bundles `entry` (a path in the repository) into `outfile` once per process; returns `outfile`. */
function bundleOnce(entry: string, outfile: string): string {
  if (built.has(outfile)) return outfile;
  fs.mkdirSync(path.dirname(outfile), { recursive: true });
  const tmp = `${outfile}.${process.pid}.tmp.mjs`;
  buildSync({
    entryPoints: [path.join(REPO, entry)],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile: tmp,
    external: ['koffi', 'esbuild'],
    logLevel: 'error',
  });
  fs.renameSync(tmp, outfile);
  built.add(outfile);
  return outfile;
}

/** The test entry, test/support/sim-main.ts. */
export function testBundle(): string {
  return bundleOnce('test/support/sim-main.ts', TEST_BUNDLE);
}

/** The fake systemctl, test/support/fake-systemctl.ts (it runs its main when started as the bundle itself). */
export function fakeSystemctlBundle(): string {
  return bundleOnce('test/support/fake-systemctl.ts', FAKE_SYSTEMCTL_BUNDLE);
}
