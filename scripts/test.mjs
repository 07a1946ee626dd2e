// npm test: the unit and fixture suites, then the real-kernel suite (skipped with a reason when QEMU is missing,
// a failure when VFIO_REQUIRE_VM=1, and so is a guest suite that ran no test; dist/ is built first for it).
// VFIO_SKIP_VM=1 runs the unit suites only (a failure together with VFIO_REQUIRE_VM=1).
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { tsImport } from 'tsx/esm/api';

function find(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? find(join(dir, e.name)) : e.name.endsWith('.test.ts') ? [join(dir, e.name)] : [],
  );
}

/** Runs node with `args`, passing its output through as it comes; resolves to its exit code and its stdout. */
function passThrough(args) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['inherit', 'pipe', 'inherit'] });
    const chunks = [];
    child.stdout.on('data', (c) => {
      chunks.push(c);
      process.stdout.write(c);
    });
    child.on('close', (status) => resolve({ status, stdout: Buffer.concat(chunks).toString('utf8') }));
  });
}

const files = find('test/unit').sort();
const unit = await passThrough(['--import', 'tsx', '--test', '--test-reporter=spec', ...files]);
let code = unit.status ?? 1;
// A failed unit test's error, printed again after the guest suite's long output, where a log's tail shows it.
const { failingSection } = await tsImport('../test/vm/verdict.ts', import.meta.url);
const unitFailures = code === 0 ? [] : failingSection(unit.stdout);
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
for (const l of unitFailures) console.log(`unit: ${l}`);
if (unit.status !== 0) console.log(`unit: FAILED (the unit and fixture suites exited ${unit.status})`);
process.exit(code);
