/** How many guests the real-kernel suite boots at once, in which order, and the pool that runs them. */
import { ALL_MODES, type VmMode } from './modes.ts';

/**
 * Guests at once: VFIO_VM_JOBS when it is a whole number ≥ 1, else 1; never more than there are modes. One by
 * default: on the 2-core machines CI runs on, two guests at once each took 1.8x as long as alone (v2 617 s against
 * 346 s, systemd 539 s against 277 s), so the suite ended no sooner; a machine with more real cores can ask for more.
 */
export function guestJobs(env: string | undefined, modes: number): number {
  const asked = env !== undefined && /^\s*\d+\s*$/.test(env) ? Number(env) : undefined;
  const jobs = asked !== undefined && asked >= 1 ? asked : 1;
  return Math.max(1, Math.min(jobs, modes));
}

/** Guest wall time seen in CI-like runs (s): v2 ~350, systemd ~280, v2-6.1 and v1-hybrid ~185. */
const EXPECTED_SECONDS: Readonly<Record<VmMode, number>> = {
  v2: 350,
  systemd: 280,
  'v2-6.1': 190,
  'v1-hybrid': 185,
};

/** The modes, longest expected suite first (ties in ALL_MODES order), so that a pool of two ends at about one time. */
export function byExpectedLength(modes: readonly VmMode[]): VmMode[] {
  return [...modes].sort(
    (a, b) => EXPECTED_SECONDS[b] - EXPECTED_SECONDS[a] || ALL_MODES.indexOf(a) - ALL_MODES.indexOf(b),
  );
}

/** Runs `work` on every item, at most `jobs` at once, each next item starting as one ends; results in `items` order. */
export async function runPool<T, R>(
  items: readonly T[],
  jobs: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(jobs, items.length)) }, worker));
  return results;
}
