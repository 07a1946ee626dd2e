/**
 * What the guest half of the demo (guest-demo.ts) reports to the host half (demo.ts): one JSON object per line on
 * the guest's stdout. The guest does the work, the host renders (colour, alignment) or collects them (--json).
 */

/** Leak figures for the VM CPUs, from `vfio-isolate status --json CPUS`. */
export interface LeakFigures {
  /** Host tasks (processes / threads) that may run on the VM CPUs and could be moved. */
  tasks: number;
  /** Kernel threads whose affinity may be set that may run there. */
  kthreads: number;
  /** Movable IRQs that may fire there. */
  irqs: number;
  /** default_smp_affinity and workqueue cpumasks that include the VM CPUs. */
  masks: number;
  /** Every movable leak status reports (including kinds not counted above). */
  total: number;
  /** Expected to stay: kernel threads only the kernel may move, IRQs the kernel manages. */
  pinnedKthreads: number;
  managedIrqs: number;
}

export interface ProcessPlacement {
  pid: number;
  samples: number;
  /** Distinct CPUs the process was seen on, ascending. */
  cpus: number[];
  /** Samples taken while it was on a VM CPU. */
  onVm: number;
  /** Its Cpus_allowed_list at the end of sampling. */
  allowed: string;
}

export type DemoEvent =
  | {
      type: 'start';
      mode: string;
      kernel: string;
      cgroups: string;
      cpus: string;
      vmCpus: string;
      hostCpus: string;
      busy: number[];
      busyCgroup: string;
    }
  | { type: 'section'; title: string }
  | { type: 'say'; text: string }
  | {
      type: 'command';
      /** The program run, when it is not vfio-isolate (systemctl, virsh, ...). */
      program?: string;
      /** The argv given to vfio-isolate (or to `program`). */
      argv: string[];
      /** argv split where each chained command starts, for display. */
      chunks: string[][];
      code: number;
      stdout: string;
      stderr: string;
      seconds: number;
    }
  | { type: 'changes'; title: string; summary: string[]; lines: string[] }
  | { type: 'placement'; title: string; vmCpus: string; seconds: number; procs: ProcessPlacement[] }
  | { type: 'leaks'; label: string; figures: LeakFigures }
  | { type: 'check'; name: string; ok: boolean; detail: string }
  | { type: 'end'; ok: boolean; seconds: number };

/** Marks a line of guest stdout as an event (anything else is passed through as it is). */
export const EVENT_PREFIX = '@demo ';

export function encodeEvent(e: DemoEvent): string {
  return EVENT_PREFIX + JSON.stringify(e) + '\n';
}

/** The event on this line, or undefined when the line is not one. */
export function decodeEvent(line: string): DemoEvent | undefined {
  if (!line.startsWith(EVENT_PREFIX)) return undefined;
  try {
    const v = JSON.parse(line.slice(EVENT_PREFIX.length)) as unknown;
    if (typeof v === 'object' && v !== null && typeof (v as { type?: unknown }).type === 'string') {
      return v as DemoEvent;
    }
  } catch {
    // not an event after all
  }
  return undefined;
}

/** Splits a stream into complete lines (the guest's output arrives in arbitrary chunks). */
export class LineSplitter {
  private pending = '';
  constructor(private readonly onLine: (line: string) => void) {}

  write(chunk: string): void {
    this.pending += chunk;
    const lines = this.pending.split('\n');
    this.pending = lines.pop() ?? '';
    for (const l of lines) this.onLine(l);
  }

  flush(): void {
    if (this.pending) this.onLine(this.pending);
    this.pending = '';
  }
}
