/**
 * How tests run the CLI: a Kernel over a fake tree (SimFs) and a step observer that fails or kills a run at a
 * chosen step. These live here, never in src/: the shipped product has no simulator and no fault injection.
 *
 * The test-only variables, read by `simOptions` (used by the in-process `cli()` helper and the test entry
 * test/support/sim-main.ts):
 *   VFIO_ISOLATE_ROOT       a fake tree to run on (unset: the real kernel, for the guest suite)
 *   VFIO_ISOLATE_FAULT      fail:K (step K throws before changing anything), crash-before:K (SIGKILL right after
 *                           step K's undo record is on disk), crash-after:K (SIGKILL right after step K),
 *                           crash-rollback:K (SIGKILL once a rollback has undone K records), crash-journal:0
 *                           (SIGKILL right after a new undo file was created, before its header); several points
 *                           joined with commas, e.g. fail:4,crash-rollback:2
 *   VFIO_ISOLATE_SYSTEMCTL  the systemctl command (tests use a fake that logs its arguments)
 *   VFIO_ISOLATE_IRQBALANCE the irqbalance command
 *   VFIO_ISOLATE_PROBE      `measure --mode probe` on a fake tree: "quiet" (small gaps on every CPU) or
 *                           "noisy:CPU" (CPU CPU loses 20% in gaps up to 5 ms); unset: the probe refuses (a fake
 *                           tree's CPUs are not this machine's, so the real probe never runs on one)
 */
import { RuntimeFailure } from '../../src/errors.ts';
import { Kernel } from '../../src/kernel/kernel.ts';
import type { RunOptions } from '../../src/cli/run.ts';
import type { StepObserver } from '../../src/steps/executor.ts';
import { SimFs } from './simfs.ts';
import type { ProbeRunner } from '../../src/kernel/probe.ts';

/** The probe of a fake tree (see VFIO_ISOLATE_PROBE above): figures made up from the spec, nothing runs. */
export function simProbe(spec: string | undefined): ProbeRunner {
  const noisy = /^noisy:(\d+)$/.exec(spec ?? '');
  return (opts) =>
    Promise.resolve({
      interrupted: false,
      cpus: opts.cpus.map((cpu) => {
        const windowNs = opts.seconds * 1e9;
        if (!spec)
          return {
            cpu,
            error: 'no probe on a fake tree',
            loops: 0,
            loopNs: 0,
            maxNs: 0,
            lostNs: 0,
            windowNs,
            histogram: [0, 0, 0, 0, 0],
          };
        if (noisy && Number(noisy[1]) === cpu)
          return {
            cpu,
            loops: 1e6,
            loopNs: 50,
            maxNs: 5e6,
            lostNs: windowNs * 0.2,
            windowNs,
            histogram: [10, 20, 30, 40, 0],
          };
        return {
          cpu,
          loops: 1e6,
          loopNs: 50,
          maxNs: 8000,
          lostNs: windowNs * 1e-5,
          windowNs,
          histogram: [3, 0, 0, 0, 0],
        };
      }),
    });
}

export function faultObserver(spec: string | undefined): StepObserver | undefined {
  const parts = (spec ?? '').split(',').filter(Boolean);
  const points: { kind: string; step: number }[] = [];
  for (const part of parts) {
    const m = /^(fail|crash-before|crash-after|crash-rollback|crash-journal):(\d+)$/.exec(part);
    if (!m) return undefined;
    points.push({ kind: m[1]!, step: Number(m[2]) });
  }
  if (points.length === 0) return undefined;
  return (phase, n) => {
    for (const { kind, step } of points) {
      if (kind === 'crash-journal' && phase === 'journal') process.kill(process.pid, 'SIGKILL');
      if (n !== step) continue;
      if (kind === 'fail' && phase === 'start')
        throw new RuntimeFailure(`injected failure at step ${n} (VFIO_ISOLATE_FAULT)`);
      if (
        (kind === 'crash-before' && phase === 'recorded') ||
        (kind === 'crash-after' && phase === 'applied') ||
        (kind === 'crash-rollback' && phase === 'undone')
      )
        process.kill(process.pid, 'SIGKILL');
    }
  };
}

/** A Kernel over the fake tree at `root`, acting as root. */
export function simKernel(root: string, env: NodeJS.ProcessEnv = {}): Kernel {
  return new Kernel(new SimFs(root), {
    // no VFIO_ISOLATE_SYSTEMCTL: no systemd to talk to (cgroups written directly; irqbalance calls fail)
    systemctl: env.VFIO_ISOLATE_SYSTEMCTL || '',
    // the fake systemctl (test/support/fake-systemctl.ts) starts node + tsx per call: seconds on a loaded machine
    systemctlTimeoutMs: 60000,
    irqbalance: env.VFIO_ISOLATE_IRQBALANCE || '/nonexistent/irqbalance',
    euid: 0,
    probe: simProbe(env.VFIO_ISOLATE_PROBE),
  });
}

/** runCli's kernel and observer from the test-only variables above. */
export function simOptions(env: NodeJS.ProcessEnv): Pick<RunOptions, 'kernel' | 'observe'> {
  const root = env.VFIO_ISOLATE_ROOT;
  return {
    kernel: root ? () => simKernel(root, env) : undefined,
    observe: faultObserver(env.VFIO_ISOLATE_FAULT),
  };
}
