/**
 * `npm run test:vm`: boots one guest per cgroup mode and runs every test/vm/guest/*.test.ts in it with node:test.
 *
 * Env: VFIO_REQUIRE_VM=1 (a missing QEMU is a failure, not a skip), VFIO_VM_MODES=v2,v1-hybrid (default: all four),
 * VFIO_VM_TESTS="test/vm/guest/x.test.ts ..." (default: all guest tests), VFIO_VM_TIMEOUT (seconds per guest,
 * default 900, 1200 in mode systemd), VFIO_VM_MEM (MiB, default 1024), VFIO_VM_CACHE, VFIO_VM_KEEP=1.
 */
import {
  ALL_MODES,
  ensureKernels,
  parseModes,
  SYSTEMD_MODE_INSTALL,
  systemdModeMissing,
  runInGuest,
  vmAvailable,
  type GuestResult,
  type VmMode,
} from './harness.ts';
import { execFileSync } from 'node:child_process';
import { prepareTarballInstall } from './tarball-install.ts';
import { testBundle } from '../support/bundle.ts';
import { REPO_ROOT } from './cache.ts';
import { isSystemdMode } from './modes.ts';
import { failingSection, suiteProblems } from './verdict.ts';
import { byExpectedLength, guestJobs, runPool } from './pool.ts';

const GUEST_DIR = 'test/vm/guest';

interface ModeOutcome {
  mode: VmMode;
  passed: number;
  failed: number;
  skipped: number;
  crashed?: string;
  result?: GuestResult;
  stdout?: string;
}

function out(line: string): void {
  process.stdout.write(line + '\n');
}

/** Prefixes every complete line of a stream with `[mode] `. */
function linePrefixer(prefix: string): { write: (chunk: string) => void; flush: () => void } {
  let pending = '';
  return {
    write(chunk) {
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const l of lines) out(prefix + l);
    },
    flush() {
      if (pending) out(prefix + pending);
      pending = '';
    },
  };
}

function summaryNumber(text: string, key: string): number | undefined {
  const m = new RegExp(`^ℹ ${key} (\\d+)\\s*$`, 'm').exec(text);
  return m?.[1] !== undefined ? Number(m[1]) : undefined;
}

/**
 * The guest's test command. Mode `systemd` runs test/vm/guest/systemd-*.test.ts (they need systemd as PID 1); the
 * other modes run every other guest test, harness.test.ts first, so the guest's sanity is checked before other
 * tests change anything. VFIO_VM_TESTS overrides the list for every mode.
 */
function guestCommand(mode: VmMode): string {
  const tests = process.env.VFIO_VM_TESTS?.trim();
  const files = tests
    ? `files=(${tests})`
    : isSystemdMode(mode)
      ? `files=(${GUEST_DIR}/systemd-*.test.ts)`
      : `files=(${GUEST_DIR}/harness.test.ts)\n` +
        `for f in ${GUEST_DIR}/*.test.ts; do case "$f" in "\${files[0]}" | ${GUEST_DIR}/systemd-*) ;; *) files+=("$f") ;; esac; done`;
  return `${files}\nexec node --import tsx --test --test-reporter=spec --test-concurrency=1 "\${files[@]}"\n`;
}

/**
 * Default seconds before a guest is killed: a bound for a hung guest, not a speed test. The v2 mode's suite takes
 * 5-7 min under TCG on a loaded machine (it was killed at 420 s once with partitions, knobs and measure added), and
 * systemd's boot and its scenarios take longer than a script's.
 */
function defaultTimeout(mode: VmMode): number {
  return isSystemdMode(mode) ? 1200 : 900;
}

async function runMode(mode: VmMode, timeoutSec: number, memMiB: number): Promise<ModeOutcome> {
  const stdout = linePrefixer(`[${mode}] `);
  const stderr = linePrefixer(`[${mode}] ! `);
  let result: GuestResult;
  try {
    result = await runInGuest({
      mode,
      command: guestCommand(mode),
      timeoutSec,
      memMiB,
      onOutput: (chunk, stream) => (stream === 'stdout' ? stdout : stderr).write(chunk),
    });
  } catch (e) {
    return { mode, passed: 0, failed: 0, skipped: 0, crashed: e instanceof Error ? e.message : String(e) };
  } finally {
    stdout.flush();
    stderr.flush();
  }
  const passed = summaryNumber(result.stdout, 'pass');
  const failed = summaryNumber(result.stdout, 'fail');
  const skipped =
    (summaryNumber(result.stdout, 'skipped') ?? 0) + (summaryNumber(result.stdout, 'todo') ?? 0);
  const outcome: ModeOutcome = { mode, passed: passed ?? 0, failed: failed ?? 0, skipped, result };
  outcome.stdout = result.stdout;
  if (passed === undefined || failed === undefined) {
    outcome.crashed = result.timedOut
      ? `guest killed after ${timeoutSec} s`
      : `no test summary from the guest (exit code ${result.code})`;
  } else if (result.code !== 0 && failed === 0) {
    outcome.crashed = `the guest's test runner exited ${result.code}`;
  }
  if (outcome.crashed) {
    out(`[${mode}] guest setup: ${result.setupLog.trim()}`);
    out(`[${mode}] console tail:`);
    for (const l of result.consoleTail.split('\n')) out(`[${mode}] | ${l.replace(/\r$/, '')}`);
    out(`[${mode}] job folder kept: ${result.jobDir}`);
  }
  return outcome;
}

async function main(): Promise<number> {
  const t0 = Date.now();
  const avail = vmAvailable();
  if (!avail.ok) {
    out(`real-kernel suite skipped: ${avail.why}; install with: ${avail.install}`);
    return process.env.VFIO_REQUIRE_VM === '1' ? 1 : 0;
  }
  let modes: VmMode[];
  try {
    modes = parseModes(process.env.VFIO_VM_MODES);
  } catch (e) {
    out(`vm: ${(e as Error).message}`);
    return 2;
  }
  const timeoutFor = (mode: VmMode): number => Number(process.env.VFIO_VM_TIMEOUT) || defaultTimeout(mode);
  const memMiB = Number(process.env.VFIO_VM_MEM) || 1024;

  // libvirt-hook.test.ts needs a root-owned install from the packed tarball (made here, on the host).
  const tests = process.env.VFIO_VM_TESTS?.trim();
  if (!tests || tests.includes('libvirt-hook')) {
    try {
      out(prepareTarballInstall());
    } catch (e) {
      out(
        `vm: npm pack / npm install -g of the tarball failed (libvirt-hook.test.ts will skip): ${(e as Error).message}`,
      );
    }
  }
  const noSystemd = modes.some(isSystemdMode) ? systemdModeMissing() : undefined;
  if (noSystemd) {
    out(`vm: mode systemd skipped: ${noSystemd}; install with: ${SYSTEMD_MODE_INSTALL}`);
    modes = modes.filter((m) => !isSystemdMode(m));
  }

  // Guest tests that start the CLI as a process (the crash matrix) run the test entry, bundled here once.
  testBundle();
  const kernels = await ensureKernels(modes, (l) => out(l));
  for (const mode of ALL_MODES.filter((m) => modes.includes(m))) {
    const k = kernels.get(mode);
    if (!k) continue;
    out(
      `vm: mode ${mode} boots ${k.kernel.release} (${k.kernel.package} ${k.kernel.version}, via ${k.kernel.meta})`,
    );
    if (k.note) out(`vm: NOTE: ${k.note}`);
  }

  if (modes.some(isSystemdMode)) {
    // The libvirt hook in the systemd guest runs the built CLI (dist/), as an installed hook does: build it from
    // the sources under test.
    execFileSync(process.execPath, ['scripts/build.mjs'], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    out('vm: built dist/ (the systemd guest installs a libvirt hook that runs it)');
  }

  // Guests run `jobs` at a time (VFIO_VM_JOBS, default 1: see guestJobs), the longest suites first.
  const jobs = guestJobs(process.env.VFIO_VM_JOBS, modes.length);
  out(`vm: ${modes.length} guest(s), ${jobs} at a time`);
  const outcomes = await runPool(byExpectedLength(modes), jobs, async (mode) => {
    out(`==== vm ${mode} ${'='.repeat(60 - mode.length)} started`);
    const o = await runMode(mode, timeoutFor(mode), memMiB);
    const r = o.result;
    const timing = r
      ? `boot ${r.bootSeconds?.toFixed(1) ?? '?'} s, guest ${r.seconds.toFixed(1)} s${r.boots > 1 ? `, ${r.boots} boots` : ''}`
      : 'no guest';
    out(
      `==== vm ${mode}: ${o.passed} passed, ${o.failed} failed, ${o.skipped} skipped (${timing})` +
        (o.crashed ? ` — CRASHED: ${o.crashed}` : ''),
    );
    return o;
  });

  const passed = outcomes.reduce((n, o) => n + o.passed, 0);
  const failed = outcomes.reduce((n, o) => n + o.failed, 0);
  const boots = outcomes.reduce((n, o) => n + (o.result?.boots ?? 0), 0);
  const bootTimes = outcomes.map((o) => `${o.mode} ${o.result?.bootSeconds?.toFixed(1) ?? '?'} s`).join(', ');
  out('');
  const problems = suiteProblems(outcomes, process.env.VFIO_REQUIRE_VM === '1');
  // The failed tests' errors again at the end, where a CI log's tail shows them (each mode printed them mid-log).
  for (const o of outcomes) for (const l of failingSection(o.stdout ?? '')) out(`vm: [${o.mode}] ${l}`);
  for (const p of problems) out(`vm: FAILED: ${p}`);
  out(`vm: ${passed} passed, ${failed} failed`);
  out(
    `vm: ${boots} boots (to the test command: ${bootTimes}), wall time ${((Date.now() - t0) / 1000).toFixed(1)} s`,
  );
  const requiredButSkipped = noSystemd !== undefined && process.env.VFIO_REQUIRE_VM === '1';
  if (requiredButSkipped) out('vm: FAILED: VFIO_REQUIRE_VM=1 and mode systemd could not run');
  return problems.length > 0 || requiredButSkipped ? 1 : 0;
}

process.exitCode = await main();
