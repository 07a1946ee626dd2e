/** drop-caches and compact-memory (0.5.2 compatible): one-way writes with nothing to undo. */
import { P } from '../kernel/kernel.ts';
import type { Handler } from '../cli/spec.ts';
import type { Step } from '../steps/step.ts';

/** A one-way write (nothing to undo): drop_caches, compact_memory. */
export function oneWayWrite(command: string, title: string, path: string, value: string): Step {
  return {
    command,
    title,
    changes: [{ target: path, after: value, note: 'cannot be undone (nothing to restore)' }],
    oneWay: true,
    apply({ k }) {
      k.write(path, value);
      return { changed: 1 };
    },
  };
}

/** The handlers of this file's commands, by full name (the command table loads this module on demand). */
export const handlers: Record<string, Handler> = {
  'drop-caches': {
    kind: 'plan',
    plan: (ctx, inv) => [oneWayWrite(inv.name, 'drop the page cache and slab caches', P.dropCaches, '3')],
  },
  'compact-memory': {
    kind: 'plan',
    plan: (ctx, inv) => [oneWayWrite(inv.name, 'compact memory', P.compactMemory, '1')],
  },
};
