/**
 * A node:fs function replaced while a test's code runs: every module that imported it sees the replacement
 * (syncBuiltinESMExports), and the original is put back afterwards, also when the code throws or rejects.
 */
import type * as fs from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';

type NodeFs = typeof fs;
const nodeFs = createRequire(import.meta.url)('node:fs') as Record<keyof NodeFs, unknown>;

/** Run `f` with node:fs's `name` replaced by what `spy` makes of the original; returns what `f` returns. */
export function withFsSpy<K extends keyof NodeFs, T>(
  name: K,
  spy: (original: NodeFs[K]) => NodeFs[K],
  f: () => T,
): T {
  const original = nodeFs[name] as NodeFs[K];
  nodeFs[name] = spy(original);
  syncBuiltinESMExports();
  const restore = (): void => {
    nodeFs[name] = original;
    syncBuiltinESMExports();
  };
  let out: T;
  try {
    out = f();
  } catch (e) {
    restore();
    throw e;
  }
  if (out instanceof Promise) return out.finally(restore) as T;
  restore();
  return out;
}
