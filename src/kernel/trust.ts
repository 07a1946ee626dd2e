/**
 * Who could have changed a file before root reads or runs it. A path is trusted when the file and every directory
 * on the way to it (as written, and after resolving symlinks) belong to root and are writable by nobody else (a run
 * without root also trusts its own user's files: root's and its own are the only ones it may believe). A root-owned
 * sticky directory (/tmp) is accepted on the way to a data file only when asked (`allowSticky`): others can add files
 * there but cannot replace root's.
 */
import type { Stats } from 'node:fs';
import * as path from 'node:path';

const fs = process.getBuiltinModule('node:fs');

export interface Distrust {
  /** The first path that fails (the file itself or a directory on the way). */
  path: string;
  /**
   * Which check failed: another owner; writable by group or others; an entry others may have made in a directory
   * they may write (a symlink, a second name); the wrong kind of file; or one that cannot be looked at (lstat/stat
   * failed: `unreadable`) or resolved (realpath failed: `unresolved`), with `code`.
   */
  kind: 'owner' | 'writable' | 'others-entry' | 'type' | 'unreadable' | 'unresolved';
  /** Why, in words: "owned by uid 1000", "writable by group or others", "not a regular file". */
  why: string;
  /** The errno of an `unreadable` or `unresolved` path ("ENOENT", "EACCES"). */
  code?: string;
}

/** distrust()'s finding as a sentence: "/x is owned by uid 1000, not by root", "/x cannot be read (EACCES)". */
export function distrustText(d: Distrust): string {
  return d.kind === 'unreadable' || d.kind === 'unresolved' ? `${d.path} ${d.why}` : `${d.path} is ${d.why}`;
}

/** A path that cannot be looked at (`unreadable`) or resolved, with the errno of the failed call. */
function failed(p: string, kind: 'unreadable' | 'unresolved', e: unknown): Distrust {
  const code = (e as NodeJS.ErrnoException).code ?? 'error';
  return { path: p, kind, code, why: `cannot be ${kind === 'unreadable' ? 'read' : 'resolved'} (${code})` };
}

export interface TrustOptions {
  /** The one owner everything must have; unless given, root or the effective uid (the same for root). */
  uid?: number;
  /** Accept a root-owned sticky directory (mode 1777) on the way, for a root-owned data file in it. */
  allowSticky?: boolean;
  /** What the final path must be: a regular file (default), a directory, or either. */
  kind?: 'file' | 'dir' | 'any';
}

/** The owners a trusted path may have: `uid` when given, else root and the effective uid. */
type Owners = readonly number[];

function ownersOf(opts: TrustOptions): Owners {
  if (opts.uid !== undefined) return [opts.uid];
  const euid = process.geteuid?.() ?? 0;
  return euid === 0 ? [0] : [0, euid];
}

/** Whether `uid` is an owner distrust() believes when no one uid is asked for: root, or the effective uid. */
export function trustedOwner(uid: number): boolean {
  return ownersOf({}).includes(uid);
}

function ownersText(owners: Owners): string {
  return owners.map((u) => (u === 0 ? 'root' : `uid ${u}`)).join(' or ');
}

function checkOne(
  p: string,
  st: Stats,
  owners: Owners,
  dirOnPath: boolean,
  allowSticky: boolean,
): Distrust | undefined {
  if (!owners.includes(st.uid))
    return { path: p, kind: 'owner', why: `owned by uid ${st.uid}, not by ${ownersText(owners)}` };
  if ((st.mode & 0o022) === 0) return undefined;
  if (dirOnPath && allowSticky && st.isDirectory() && (st.mode & 0o1000) !== 0) return undefined;
  return { path: p, kind: 'writable', why: `writable by ${(st.mode & 0o002) !== 0 ? 'others' : 'group'}` };
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

function walk(file: string, owners: Owners, opts: TrustOptions): Distrust | undefined {
  // in a sticky directory others may write (accepted above), an entry belongs to whoever made it: a symlink there
  // is replaced at its owner's will, so it must be root's (stat follows it and sees only where it leads now), and a
  // file there must have no other name (anyone may link a root file they can reach under a name of their choosing)
  let inSticky = false;
  for (const d of prefixes(path.dirname(file))) {
    if (inSticky) {
      const link = othersEntry(d, owners);
      if (link) return link;
    }
    let st: Stats;
    try {
      st = fs.statSync(d);
    } catch (e) {
      return failed(d, 'unreadable', e);
    }
    const bad = checkOne(d, st, owners, true, opts.allowSticky ?? false);
    if (bad) return bad;
    inSticky = (st.mode & 0o022) !== 0;
  }
  return inSticky ? othersEntry(file, owners) : undefined;
}

/**
 * `p`, in a directory others may write, may be someone else's doing: a symbolic link none of `owners` owns,
 * or a regular file with more than one name.
 */
function othersEntry(p: string, owners: Owners): Distrust | undefined {
  let st: Stats;
  try {
    st = fs.lstatSync(p);
  } catch {
    return undefined; // missing: its walk or open tells
  }
  if (st.isSymbolicLink() && !owners.includes(st.uid))
    return {
      path: p,
      kind: 'others-entry',
      why: `a symbolic link owned by uid ${st.uid} in a directory others may write`,
    };
  if (st.isFile() && st.nlink !== 1)
    return {
      path: p,
      kind: 'others-entry',
      why: `a hard link (${st.nlink} names) in a directory others may write`,
    };
  return undefined;
}

/**
 * The directories on the way to `file` as written, from "/" down (symlinks not resolved first): the first problem,
 * which may be one that cannot be looked at ("cannot be read (EACCES)"). A root-owned sticky directory is accepted
 * when asked (`allowSticky`), the file's own directory included. For saying why a path that cannot be looked at is
 * refused: a directory above it another user owns is the reason.
 */
export function distrustWay(file: string, opts: TrustOptions = {}): Distrust | undefined {
  return walk(path.resolve(file), ownersOf(opts), opts);
}

/**
 * Check `file` (an absolute host path that exists). Returns the first problem, or undefined when root alone could
 * have written it and every directory leading to it.
 */
export function distrust(file: string, opts: TrustOptions = {}): Distrust | undefined {
  const owners = ownersOf(opts);
  const abs = path.resolve(file);
  let real: string;
  try {
    real = fs.realpathSync.native(abs);
  } catch (e) {
    return failed(abs, 'unresolved', e);
  }
  // The directories as written (a symlink there could be swapped by whoever can write its directory) ...
  const lexical = walk(abs, owners, opts);
  if (lexical) return lexical;
  // ... and the ones the file really lives in (the same ones when no symlink is on the way).
  const canonical = real === abs ? undefined : walk(real, owners, opts);
  if (canonical) return canonical;
  const st = fs.statSync(real);
  const kind = opts.kind ?? 'file';
  if (kind === 'file' && !st.isFile()) return { path: real, kind: 'type', why: 'not a regular file' };
  if (kind === 'dir' && !st.isDirectory()) return { path: real, kind: 'type', why: 'not a directory' };
  return checkOne(real, st, owners, false, false);
}
