/** How many guests the real-kernel suite boots at once, in which order, and the pool that runs them. */
import { availableParallelism } from 'node:os';
import { ALL_MODES, type VmMode } from './modes.ts';

/**
 * Guests at once: VFIO_VM_JOBS when it is a whole number ≥ 1, else one per host core up to 2 (a TCG guest with
 * thread=single keeps one host core busy). Never more than there are modes.
 */
export function guestJobs(env: string | undefined, modes: number, cores = availableParallelism()): number {
  const asked = env !== undefined && /^\s*\d+\s*$/.test(env) ? Number(env) : undefined;
  const jobs = asked !== undefined && asked >= 1 ? asked : Math.min(2, cores);
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
