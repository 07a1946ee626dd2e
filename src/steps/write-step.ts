/** The common step: write files, recording their old values first (one record for the whole step). */
import { errnoOf } from '../kernel/fs.ts';
import type { Change, Skipped, Step } from './step.ts';

export interface FileWrite {
  path: string;
  value: string;
  /** What it was when planned (for --dry-run). */
  before?: string;
  /** Human name of the item, for skip reports ("IRQ 24"). */
  label?: string;
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
      const files: [string, string][] = [];
      for (const w of writes) {
        let old = '';
        try {
          old = k.read(w.path).trim();
        } catch {
          /* a missing file fails at the write below */
        }
        files.push([w.path, old]);
      }
      if (files.length > 0) record({ kind: 'write', files });
      const skipped: Skipped[] = [];
      let changed = 0;
      for (const w of writes) {
        try {
          k.write(w.path, w.value);
          changed++;
          log.debugLine(`${w.path} <- ${w.value}`);
        } catch (e) {
          const code = errnoOf(e) ?? 'EIO';
          if (!opts.tolerate?.includes(code)) throw e;
          skipped.push({ what: w.label ?? w.path, why: opts.skipReason?.(code) ?? code });
          log.debugLine(`${w.path}: skipped (${code})`);
        }
      }
      return { changed, skipped };
    },
  };
}
