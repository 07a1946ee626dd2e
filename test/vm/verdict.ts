/**
 * The verdict of a guest-suite run, from each mode's node:test counts. Pure, so a unit test can check it.
 *
 * A mode that crashed or had a failing test fails the run. When the suite is required (VFIO_REQUIRE_VM=1, as in
 * CI), a run that executed no test at all also fails: no mode selected, or a mode whose tests all skipped (not in
 * a guest, dist/ not built, ...). The reasons node:test printed for the skips are named.
 */
export interface ModeCounts {
  mode: string;
  passed: number;
  failed: number;
  skipped: number;
  crashed?: string;
  /** The guest's test output (node:test spec reporter), to name why tests skipped. */
  stdout?: string;
}

/** Distinct `# SKIP reason` texts of a spec-reporter output, in order of first appearance. */
export function skipReasons(stdout: string): string[] {
  const seen = new Set<string>();
  for (const m of stdout.matchAll(/# SKIP(?: (.*))?$/gm))
    seen.add((m[1] ?? '').trim() || '(no reason given)');
  return [...seen];
}

/** Returns the problems that make the run fail (empty: success). */
export function suiteProblems(outcomes: readonly ModeCounts[], required: boolean): string[] {
  const problems: string[] = [];
  for (const o of outcomes) {
    if (o.crashed) problems.push(`${o.mode} crashed: ${o.crashed}`);
    else if (o.failed > 0) problems.push(`${o.mode}: ${o.failed} failed`);
    else if (required && o.passed === 0) {
      const why = skipReasons(o.stdout ?? '');
      problems.push(
        `${o.mode}: no test ran (${o.skipped} skipped${why.length ? `: ${why.join('; ')}` : ''})` +
          ' and VFIO_REQUIRE_VM=1 requires the guest suite',
      );
    }
  }
  if (required && outcomes.length === 0)
    problems.push(
      'no guest mode ran (VFIO_VM_MODES selects none) and VFIO_REQUIRE_VM=1 requires the guest suite',
    );
  return problems;
}
