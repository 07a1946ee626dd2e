/**
 * The shipped product holds no test support: no simulator, no fault injection, no environment switch that swaps the
 * kernel or skips the root check. Checked on the bundle that `npm run build` makes, and on the source it is built
 * from (so that a marker renamed in one place is still caught in the other).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';

const REPO = path.resolve(import.meta.dirname, '../..');
const MARKERS = [
  'class SimFs',
  'VFIO_ISOLATE_ROOT',
  'VFIO_ISOLATE_FAULT',
  'VFIO_ISOLATE_SYSTEMCTL',
  'injected failure',
  'SIGKILL',
  '.sim-log',
];

function files(dir: string, ext: RegExp): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) =>
      e.isDirectory() ? files(path.join(dir, e.name), ext) : ext.test(e.name) ? [path.join(dir, e.name)] : [],
    );
}

describe('the shipped product', () => {
  it('dist/ (as built) contains no simulator and no fault injection', () => {
    const b = spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: REPO, encoding: 'utf8' });
    assert.equal(b.status, 0, b.stderr);
    const built = files(path.join(REPO, 'dist'), /\.(m?js|cjs)$/);
    assert.ok(built.length > 0, 'the build wrote dist/');
    for (const f of built) {
      const text = fs.readFileSync(f, 'utf8');
      for (const m of MARKERS) assert.ok(!text.includes(m), `${path.relative(REPO, f)} contains "${m}"`);
    }
  });

  it('src/ names none of the test switches (comments about SIGKILL aside)', () => {
    for (const f of files(path.join(REPO, 'src'), /\.ts$/)) {
      const text = fs.readFileSync(f, 'utf8');
      for (const m of MARKERS.filter((x) => x !== 'SIGKILL'))
        assert.ok(!text.includes(m), `${path.relative(REPO, f)} contains "${m}"`);
    }
  });
});
