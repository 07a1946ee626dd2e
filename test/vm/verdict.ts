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

/**
 * The "failing tests" section node:test's spec reporter prints at the end of a run (the failed tests with their
 * errors), without the summary counts that follow it; at most `maxLines` lines. Empty when nothing failed.
 */
export function failingSection(stdout: string, maxLines = 80): string[] {
  const lines = stdout.split('\n').map((l) => l.replace(/\r$/, ''));
  const start = lines.findIndex((l) => l.startsWith('✖ failing tests:'));
  if (start < 0) return [];
  const rest = lines.slice(start);
  const end = rest.findIndex((l) => /^ℹ tests \d+/.test(l));
  const section = end < 0 ? rest : rest.slice(0, end);
  while (section.length > 0 && section.at(-1)?.trim() === '') section.pop();
  return section.length > maxLines
    ? [...section.slice(0, maxLines), `… (${section.length - maxLines} more lines above in the log)`]
    : section;
}

/** Names of the failed tests listed in the "failing tests" section. */
export function failedTestNames(stdout: string): string[] {
  return failingSection(stdout, Infinity)
    .slice(1)
    .flatMap((l) => {
      const m = /^✖ (.*?)(?: \([\d.]+m?s\))?$/.exec(l);
      return m?.[1] !== undefined ? [m[1]] : [];
    });
}

/** Returns the problems that make the run fail (empty: success). */
export function suiteProblems(outcomes: readonly ModeCounts[], required: boolean): string[] {
  const problems: string[] = [];
  for (const o of outcomes) {
    if (o.crashed) problems.push(`${o.mode} crashed: ${o.crashed}`);
    else if (o.failed > 0) {
      const names = failedTestNames(o.stdout ?? '');
      problems.push(`${o.mode}: ${o.failed} failed${names.length ? ` (${names.join('; ')})` : ''}`);
    } else if (required && o.passed === 0) {
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
