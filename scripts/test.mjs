// npm test: the unit and fixture suites, then the real-kernel suite (skipped with a reason when QEMU is missing,
// a failure when VFIO_REQUIRE_VM=1, and so is a guest suite that ran no test; dist/ is built first for it).
// VFIO_SKIP_VM=1 runs the unit suites only (a failure together with VFIO_REQUIRE_VM=1).
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

function find(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? find(join(dir, e.name)) : e.name.endsWith('.test.ts') ? [join(dir, e.name)] : [],
  );
}

const files = find('test/unit').sort();
const unit = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', ...files], {
  stdio: 'inherit',
});
let code = unit.status ?? 1;
if (process.env.VFIO_SKIP_VM === '1' && process.env.VFIO_REQUIRE_VM === '1') {
  // A required guest suite that is not run is a failure, never a silent pass.
  console.log('vm: FAILED: VFIO_SKIP_VM=1 skips the guest suite, but VFIO_REQUIRE_VM=1 requires it');
  code = code || 1;
} else if (process.env.VFIO_SKIP_VM !== '1') {
  // The guest suite runs dist/vfio-isolate.mjs too: build it from the current sources first.
  const build = spawnSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
  if (build.status !== 0) process.exit(build.status ?? 1);
  const vm = spawnSync(process.execPath, ['--import', 'tsx', 'test/vm/run-suite.ts'], { stdio: 'inherit' });
  code = code || (vm.status ?? 1);
}
process.exit(code);
