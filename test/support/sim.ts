/**
 * How tests run the CLI: a Kernel over a fake tree (SimFs) and a step observer that fails or kills a run at a
 * chosen step. These live here, never in src/: the shipped product has no simulator and no fault injection.
 *
 * The test-only variables, read by `simOptions` (used by the in-process `cli()` helper and the test entry
 * test/support/sim-main.ts):
 *   VFIO_ISOLATE_ROOT       a fake tree to run on (unset: the real kernel, for the guest suite)
 *   VFIO_ISOLATE_FAULT      fail:K (step K throws before changing anything), crash-before:K (SIGKILL right after
 *                           step K's undo record is on disk), crash-after:K (SIGKILL right after step K)
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
  const m = /^(fail|crash-before|crash-after):(\d+)$/.exec(spec ?? '');
  if (!m) return undefined;
  const kind = m[1];
  const step = Number(m[2]);
  return (phase, n) => {
    if (n !== step) return;
    if (kind === 'fail' && phase === 'start')
      throw new RuntimeFailure(`injected failure at step ${n} (VFIO_ISOLATE_FAULT)`);
    if ((kind === 'crash-before' && phase === 'recorded') || (kind === 'crash-after' && phase === 'applied'))
      process.kill(process.pid, 'SIGKILL');
  };
}

/** A Kernel over the fake tree at `root`, acting as root. */
export function simKernel(root: string, env: NodeJS.ProcessEnv = {}): Kernel {
  return new Kernel(new SimFs(root), {
    systemctl: env.VFIO_ISOLATE_SYSTEMCTL || '/nonexistent/systemctl',
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
