/** Interrupts: /proc/irq/N affinity files, default_smp_affinity and names/counts from /proc/interrupts. */
import { CpuSet } from '../cpus/cpuset.ts';
import type { Fs } from './fs.ts';
import { P } from './paths.ts';
import { listIds } from './task-list.ts';

export interface IrqInfo {
  irq: number;
  name: string;
  counts: number[];
}

export class Irqs {
  constructor(readonly fs: Fs) {}

  list(): number[] {
    return listIds(this.fs, P.irqDir, true);
  }

  affinityPath(irq: number): string {
    return `${P.irq(irq)}/smp_affinity_list`;
  }
  hasAffinity(irq: number): boolean {
    return this.fs.exists(this.affinityPath(irq));
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

  /** Names and per-CPU counts from /proc/interrupts (numbered lines only). */
  info(): Map<number, IrqInfo> {
    const out = new Map<number, IrqInfo>();
    let text: string;
    try {
      text = this.fs.read(P.interrupts);
    } catch {
      return out;
    }
    const lines = text.split('\n');
    const ncpu = (lines[0] ?? '').trim().split(/\s+/).filter(Boolean).length;
    for (const line of lines.slice(1)) {
      const m = /^\s*(\d+):(.*)$/.exec(line);
      if (!m) continue;
      const fields = (m[2] ?? '').trim().split(/\s+/);
      const counts = fields.slice(0, ncpu).map(Number);
      const rest = fields.slice(ncpu);
      // rest: chip, [hwirq], [type], name... — the device name is the last field(s)
      const name = rest.length > 0 ? rest[rest.length - 1]! : '';
      out.set(Number(m[1]), { irq: Number(m[1]), name, counts });
    }
    return out;
  }
}
