/** The common step: write files, recording their old values first (one record for the whole step). */
import { ErrnoError, errnoOf } from '../kernel/fs.ts';
import type { Change, Skipped, Step } from './step.ts';

export interface FileWrite {
  path: string;
  value: string;
  /** What it was when planned (for --dry-run). */
  before?: string;
  /** Human name of the item, for skip reports ("IRQ 24"). */
  label?: string;
  /**
   * The path is canonical by construction (/proc/irq/N/smp_affinity_list: no symlink on the way), so it is not
   * resolved again before it is journalled; the write itself still refuses a path that needs resolving.
   */
  canonical?: boolean;
  /**
   * `before` was read from the kernel while planning, under this run's lock, and no earlier step of the chain
   * writes the path: it is journalled as the old value without reading the file again (one read and one write per
   * file). Without it the old value is read right before the write.
   */
  fresh?: boolean;
}

export function writeFilesStep(
  command: string,
  title: string,
  writes: FileWrite[],
  opts: { tolerate?: readonly string[]; skipReason?: (code: string) => string } = {},
): Step {
  const changes: Change[] = writes.map((w) => ({ target: w.path, before: w.before, after: w.value }));
  return {
    command,
    title,
    changes,
    apply({ k, record, log }) {
      // Journalled and written under their canonical paths (restore writes only canonical paths, and the kernel
      // layer refuses a write whose path needs resolving), e.g. /sys/bus/workqueue/devices/writeback/cpumask
      // becomes /sys/devices/virtual/workqueue/writeback/cpumask. Each record holds the old value and the one
      // written, so that restore can tell whether the file still holds what this run wrote.
      const files: [string, string, string][] = [];
      const paths: string[] = [];
      for (const w of writes) {
        let real = w.path;
        if (!w.canonical) {
          try {
            real = k.fs.realpath(w.path);
          } catch {
            /* a missing file fails at the write below */
          }
        }
        let old = '';
        if (w.fresh && w.before !== undefined) old = w.before.trim();
        else
          try {
            old = k.read(real).trim();
          } catch {
            /* a missing file fails at the write below */
          }
        paths.push(real);
        files.push([real, old, w.value.trim()]);
      }
      if (files.length > 0) record({ kind: 'write', files });
      const skipped: Skipped[] = [];
      let changed = 0;
      for (const [i, w] of writes.entries()) {
        // a refusal comes back as its errno where the kernel layer can tell it so (no exception: the kernel
        // refuses to move a managed IRQ, one after another), else it is thrown
        let code: string | undefined;
        let thrown: unknown;
        try {
          code = k.tryWrite(paths[i]!, w.value);
        } catch (e) {
          thrown = e;
          code = errnoOf(e) ?? 'EIO';
        }
        if (code === undefined) {
          changed++;
          log.debugLine(`${w.path} <- ${w.value}`);
          continue;
        }
        if (!opts.tolerate?.includes(code)) throw thrown ?? new ErrnoError(code, 'write', paths[i]!);
        skipped.push({ what: w.label ?? w.path, why: opts.skipReason?.(code) ?? code });
        log.debugLine(`${w.path}: skipped (${code})`);
      }
      return { changed, skipped };
    },
  };
}
