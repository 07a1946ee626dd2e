/**
 * The probe of `measure --mode probe`: one worker thread per CPU, each pinned to its CPU with
 * sched_setaffinity(0, ...) on itself (koffi, loaded in the worker), reading the clock in a tight loop the way
 * sysjitter and osnoise do. A gap between two consecutive reads longer than the threshold is an interruption:
 * something else ran on that CPU (an IRQ, a softirq, another task). Only threads this process started are pinned.
 * The workers start reading together, once every one has pinned itself (they sleep at a shared gate until then), and
 * `onStart` marks that moment for the caller's counters. SIGINT (or the abort signal) terminates every worker at
 * once; the promise then resolves with `interrupted`.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** Upper bounds (µs) of the histogram buckets of interruption sizes; the last bucket is open. */
export const GAP_BUCKETS_US = [10, 100, 1000, 10000] as const;

export interface ProbeCpuResult {
  cpu: number;
  /** The worker could not pin itself ("sched_setaffinity: EINVAL"): no figures. */
  error?: string;
  /** Clock reads made. */
  loops: number;
  /** The smallest gap seen: the cost of one loop (ns), subtracted from every interruption. */
  loopNs: number;
  /** The largest single interruption (ns). */
  maxNs: number;
  /** Time lost to interruptions (ns) over `windowNs`. */
  lostNs: number;
  windowNs: number;
  /** Interruptions by size: < 10 µs, < 100 µs, < 1 ms, < 10 ms, ≥ 10 ms (GAP_BUCKETS_US). */
  histogram: number[];
}

export interface ProbeResult {
  cpus: ProbeCpuResult[];
  /** Stopped early by SIGINT or the abort signal (the figures cover what ran). */
  interrupted: boolean;
}

export interface ProbeOptions {
  cpus: readonly number[];
  seconds: number;
  /** Gaps longer than this (ns) count as interruptions. */
  thresholdNs: number;
  signal?: AbortSignal;
  /**
   * Called once every worker has pinned itself (or failed to), right before they all start reading the clock:
   * the window starts here (the caller reads its counters), not while the workers were still starting.
   */
  onStart?: () => void;
}

/** Runs the probe; the function a Kernel uses unless a test gives it another. */
export type ProbeRunner = (opts: ProbeOptions) => Promise<ProbeResult>;

// The worker, as CommonJS source (evaluated by worker_threads, so the bundle needs no separate worker file).
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { cpu, seconds, thresholdNs, koffi: koffiPath, buckets, gate } = workerData;
let error;
try {
  const koffi = require(koffiPath);
  const libc = koffi.load('libc.so.6');
  const setaff = libc.func('int sched_setaffinity(int pid, size_t len, const uint8_t *mask)');
  const errnoFn = libc.func('int *__errno_location()');
  const mask = Buffer.alloc(1024);
  mask[cpu >> 3] |= 1 << (cpu & 7);
  if (setaff(0, mask.length, mask) !== 0) { const n = koffi.decode(errnoFn(), 'int'); error = 'sched_setaffinity: ' + ({ 1: 'EPERM', 3: 'ESRCH', 22: 'EINVAL' }[n] || 'errno ' + n); }
} catch (e) {
  error = String(e && e.message || e);
}
// pinned (or not): tell the parent, then sleep until every worker is ready, so that no worker's loop slows
// down the start of the others and every window starts together
parentPort.postMessage({ ready: true, cpu });
Atomics.wait(new Int32Array(gate), 0, 0);
const histogram = buckets.map(() => 0).concat([0]);
let loops = 0, maxNs = 0, lostNs = 0, loopNs = Infinity;
const t0 = performance.now();
if (!error) {
  const end = t0 + seconds * 1000;
  const thresholdMs = thresholdNs / 1e6;
  let prev = performance.now();
  // a first short pass finds the loop's own cost
  for (let i = 0; i < 10000; i++) { const t = performance.now(); const g = t - prev; if (g > 0 && g < loopNs) loopNs = g; prev = t; }
  if (!Number.isFinite(loopNs)) loopNs = 0;
  let lastReport = prev;
  for (;;) {
    const t = performance.now();
    const g = t - prev;
    prev = t;
    loops++;
    if (g > thresholdMs) {
      const ns = (g - loopNs) * 1e6;
      lostNs += ns;
      if (ns > maxNs) maxNs = ns;
      const us = ns / 1000;
      let b = 0;
      while (b < buckets.length && us >= buckets[b]) b++;
      histogram[b]++;
      if (t >= end) break;
    } else if (t >= end) break;
    if (t - lastReport > 250) {
      lastReport = t;
      parentPort.postMessage({ partial: true, cpu, loops, loopNs: loopNs * 1e6, maxNs, lostNs, windowNs: (t - t0) * 1e6, histogram });
    }
  }
}
parentPort.postMessage({ cpu, error, loops, loopNs: loopNs * 1e6, maxNs, lostNs, windowNs: (performance.now() - t0) * 1e6, histogram });
`;

/** The probe on this machine: worker threads pinned with sched_setaffinity. */
export const runProbe: ProbeRunner = (opts) => {
  const require = createRequire(import.meta.url);
  const koffi = require.resolve('koffi');
  const latest = new Map<number, ProbeCpuResult>();
  const workers: Worker[] = [];
  // 0 while the workers start; 1: go (every worker is ready, or the run is over)
  const gate = new SharedArrayBuffer(4);
  const go = (): void => {
    const g = new Int32Array(gate);
    if (Atomics.load(g, 0) === 1) return;
    Atomics.store(g, 0, 1);
    Atomics.notify(g, 0);
  };
  let ready = 0;
  return new Promise<ProbeResult>((resolve, reject) => {
    let pending = opts.cpus.length;
    let done = false;
    const finish = (interrupted: boolean, error?: Error): void => {
      if (done) return;
      done = true;
      go(); // no worker stays asleep at the gate
      process.off('SIGINT', onSigint);
      opts.signal?.removeEventListener('abort', onAbort);
      void Promise.all(workers.map((w) => w.terminate())).then(() => {
        if (error) return reject(error);
        resolve({
          cpus: opts.cpus.map(
            (cpu) =>
              latest.get(cpu) ?? {
                cpu,
                loops: 0,
                loopNs: 0,
                maxNs: 0,
                lostNs: 0,
                windowNs: 0,
                histogram: [0, 0, 0, 0, 0],
                ...(interrupted ? {} : { error: 'no result' }),
              },
          ),
          interrupted,
        });
      });
    };
    const onSigint = (): void => finish(true);
    const onAbort = (): void => finish(true);
    process.on('SIGINT', onSigint);
    opts.signal?.addEventListener('abort', onAbort);
    for (const cpu of opts.cpus) {
      const w = new Worker(WORKER, {
        eval: true,
        workerData: {
          cpu,
          seconds: opts.seconds,
          thresholdNs: opts.thresholdNs,
          koffi,
          buckets: [...GAP_BUCKETS_US],
          gate,
        },
      });
      workers.push(w);
      w.on('message', (m: ProbeCpuResult & { partial?: boolean; ready?: boolean }) => {
        if (m.ready) {
          if (++ready === opts.cpus.length && !done) {
            opts.onStart?.();
            go();
          }
          return;
        }
        const { partial, ...r } = m;
        latest.set(cpu, r.error ? { ...r, error: r.error } : r);
        if (!partial && --pending === 0) finish(false);
      });
      w.on('error', (e) => finish(false, e));
    }
    if (opts.cpus.length === 0) finish(false);
  });
};
