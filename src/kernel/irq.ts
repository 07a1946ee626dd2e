/** Interrupts: /proc/irq/N affinity files and default_smp_affinity (status reads /proc/interrupts: status-reads.ts). */
import { CpuSet } from '../cpus/cpuset.ts';
import type { Fs } from './fs.ts';
import { P } from './paths.ts';
import { listIds } from './task-list.ts';

export class Irqs {
  constructor(readonly fs: Fs) {}

  list(): number[] {
    return listIds(this.fs, P.irqDir, true);
  }

  affinityPath(irq: number): string {
    return `${P.irq(irq)}/smp_affinity_list`;
  }
  affinity(irq: number): CpuSet {
    return CpuSet.parseList(this.fs.read(this.affinityPath(irq)));
  }
  effective(irq: number): CpuSet | undefined {
    try {
      return CpuSet.parseList(this.fs.read(`${P.irq(irq)}/effective_affinity_list`));
    } catch {
      return undefined;
    }
  }
  defaultAffinity(): CpuSet {
    return CpuSet.parseMask(this.fs.read(P.defaultSmpAffinity));
  }
}
