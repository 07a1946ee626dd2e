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
 */
import { RuntimeFailure } from '../../src/errors.ts';
import { Kernel } from '../../src/kernel/kernel.ts';
import type { RunOptions } from '../../src/cli/run.ts';
import type { StepObserver } from '../../src/steps/executor.ts';
import { SimFs } from './simfs.ts';

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
