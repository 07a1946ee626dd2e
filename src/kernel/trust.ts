/**
 * Who could have changed a file before root reads or runs it. A path is trusted when the file and every directory
 * on the way to it (as written, and after resolving symlinks) belong to root (the effective uid) and are writable
 * by nobody else. A root-owned sticky directory (/tmp) is accepted on the way to a data file only when asked
 * (`allowSticky`): others can add files there but cannot replace root's.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface Distrust {
  /** The first path that fails (the file itself or a directory on the way). */
  path: string;
  /** Why, in words: "owned by uid 1000", "writable by group or others", "not a regular file". */
  why: string;
}

export interface TrustOptions {
  /** The owner everything must have: the effective uid (root) unless given. */
  uid?: number;
  /** Accept a root-owned sticky directory (mode 1777) on the way, for a root-owned data file in it. */
  allowSticky?: boolean;
  /** What the final path must be: a regular file (default), a directory, or either. */
  kind?: 'file' | 'dir' | 'any';
}

function ownerUid(opts: TrustOptions): number {
  return opts.uid ?? process.geteuid?.() ?? 0;
}

function checkOne(
  p: string,
  st: fs.Stats,
  uid: number,
  dirOnPath: boolean,
  allowSticky: boolean,
): Distrust | undefined {
  if (st.uid !== uid)
    return { path: p, why: `owned by uid ${st.uid}, not by ${uid === 0 ? 'root' : `uid ${uid}`}` };
  if ((st.mode & 0o022) === 0) return undefined;
  if (dirOnPath && allowSticky && st.isDirectory() && (st.mode & 0o1000) !== 0) return undefined;
  return { path: p, why: `writable by ${(st.mode & 0o002) !== 0 ? 'others' : 'group'}` };
}

/** The directories from "/" down to `dir`, inclusive. */
function prefixes(dir: string): string[] {
  const out = ['/'];
  let cur = '';
  for (const part of dir.split('/').filter(Boolean)) {
    cur += `/${part}`;
    out.push(cur);
  }
  return out;
}

function walk(file: string, uid: number, opts: TrustOptions): Distrust | undefined {
  for (const d of prefixes(path.dirname(file))) {
    let st: fs.Stats;
    try {
      st = fs.statSync(d);
    } catch (e) {
      return { path: d, why: `cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})` };
    }
    const bad = checkOne(d, st, uid, true, opts.allowSticky ?? false);
    if (bad) return bad;
  }
  return undefined;
}

/**
 * Check `file` (an absolute host path that exists). Returns the first problem, or undefined when root alone could
 * have written it and every directory leading to it.
 */
export function distrust(file: string, opts: TrustOptions = {}): Distrust | undefined {
  return judge(file, opts).bad;
}

/** distrust, also saying where `file` really is (its path with every symlink resolved) when that is known. */
export function judge(file: string, opts: TrustOptions = {}): { bad?: Distrust; real?: string } {
  const uid = ownerUid(opts);
  const abs = path.resolve(file);
  let real: string;
  try {
    real = fs.realpathSync.native(abs);
  } catch (e) {
    return {
      bad: { path: abs, why: `cannot be resolved (${(e as NodeJS.ErrnoException).code ?? 'error'})` },
    };
  }
  const found = (bad: Distrust | undefined) => (bad ? { bad, real } : { real });
  // The directories as written (a symlink there could be swapped by whoever can write its directory) ...
  const lexical = walk(abs, uid, opts);
  if (lexical) return found(lexical);
  // ... and the ones the file really lives in (the same ones when no symlink is on the way).
  const canonical = real === abs ? undefined : walk(real, uid, opts);
  if (canonical) return found(canonical);
  const st = fs.statSync(real);
  const kind = opts.kind ?? 'file';
  if (kind === 'file' && !st.isFile()) return found({ path: real, why: 'not a regular file' });
  if (kind === 'dir' && !st.isDirectory()) return found({ path: real, why: 'not a directory' });
  return found(checkOne(real, st, uid, false, false));
}
