/** Moving tasks between cgroups: one id per write(2) through one open descriptor; errors counted per task. */
import { errnoOf, type Fs } from './fs.ts';

export interface MoveResult {
  moved: number[];
  /** Exited before they could move (ESRCH). */
  gone: number[];
  /** The kernel does not let them move (EINVAL: per-CPU kernel threads; EBUSY/EOPNOTSUPP). */
  unmovable: { id: number; code: string }[];
}

/** Errors that concern the destination, not one task: the whole move fails. */
const FATAL = new Set(['ENOSPC', 'EACCES', 'EPERM', 'ENOENT', 'EROFS', 'ENODEV']);

export function writeIds(
  fs: Fs,
  file: string,
  ids: readonly number[],
  onProgress?: (done: number) => void,
): MoveResult {
  const res: MoveResult = { moved: [], gone: [], unmovable: [] };
  const writer = fs.openWriter?.(file) ?? { write: (v: string) => fs.write(file, v), close: () => {} };
  try {
    let i = 0;
    for (const id of ids) {
      try {
        writer.write(String(id));
        res.moved.push(id);
      } catch (e) {
        const code = errnoOf(e) ?? 'EIO';
        if (code === 'ESRCH') res.gone.push(id);
        else if (FATAL.has(code)) throw e;
        else res.unmovable.push({ id, code });
      }
      if (onProgress && ++i % 500 === 0) onProgress(i);
    }
  } finally {
    writer.close();
  }
  return res;
}
