/**
 * The undo journal: JSON Lines. Line 1 is a header; then `run` lines, one `rec` line per step (written and fsynced
 * before the step is applied), `rollback` lines for runs that undid themselves, and a final `restored` line.
 * A torn last line (crash mid-write) is ignored. README.md, "Guarantees and limits", describes it for users.
 */
import { fsyncDir } from '../kernel/fsync.ts';
import type { Stats } from 'node:fs';
import * as path from 'node:path';
import * as v from 'valibot';
import { CannotRead, UsageError, RuntimeFailure } from '../errors.ts';
import { errnoOf } from '../kernel/fs.ts';
import { isoUtc } from '../iso-time.ts';
import { distrust, distrustText, distrustWay, trustedOwner } from '../kernel/trust.ts';
import {
  BodyLine,
  HeaderLine,
  JOURNAL_FORMAT,
  JOURNAL_VERSION,
  RestoredLine,
  type UndoRecord,
} from './records.ts';

const fs = process.getBuiltinModule('node:fs');

export const MAX_JOURNAL_BYTES = 256 * 1024 * 1024;
/** Runs one journal may hold (the schema bounds run numbers to this). */
export const MAX_RUNS = 1_000_000;

/**
 * What lstat says of `file`, or undefined when nothing is there (ENOENT), or nothing can be (ENOTDIR: a file where a
 * directory of the path should be; ELOOP: a symbolic link loop on the way). Any other failure (EACCES without root)
 * throws CannotRead: a journal that cannot be looked at is never taken for a missing one. A missing file is answered
 * without an exception (under TCG a thrown ENOENT cost 0.6 ms, the answer without one 0.07 ms).
 */
function lstatOf(file: string): Stats | undefined {
  try {
    return fs.lstatSync(file, { throwIfNoEntry: false });
  } catch (e) {
    const code = errnoOf(e) ?? 'EIO';
    if (code === 'ENOTDIR' || code === 'ELOOP') return undefined;
    throw new CannotRead('journal', file, code);
  }
}

/**
 * lstatOf for a trust check: a path that cannot be looked at is judged by the directories on its way first, top
 * down, so that a directory another user owns above the one that cannot be searched is named as the reason (exit 2);
 * else CannotRead (exit 1).
 */
function lstatForTrust(file: string): Stats | undefined {
  try {
    return lstatOf(file);
  } catch (e) {
    if (e instanceof CannotRead) {
      const bad = distrustWay(file, { allowSticky: true });
      // the first directory that cannot be looked at says no more than the lstat did
      if (bad && bad.kind !== 'unreadable')
        throw new UsageError(`journal ${file} is not trusted: ${distrustText(bad)}`, TRUST_HINT);
    }
    throw e;
  }
}

/** No journal to read: nothing is at the path, or only what a run killed while creating it left (no change). */
export class JournalMissing extends RuntimeFailure {
  constructor(message: string, hint?: string) {
    super(message, hint);
    this.name = 'JournalMissing';
  }
}

/** A path with a ".." component: the kernel resolves it after the symbolic links before it, the trust walk lexically. */
export function hasParentStep(file: string): boolean {
  return file.split('/').includes('..');
}

/**
 * A journal path that cannot name a journal file, refused (exit 2) before it is looked at: an empty one; one ending in
 * "/" or "/." (or "."), which names a directory (path.resolve would drop the ending and judge another file, while
 * lstat(2) and open(2) of the path fail, or with O_CREAT make directories on the way); one with a ".." component (the
 * kernel resolves ".." after the symbolic links before it, which the trust walk, done lexically, cannot follow).
 */
export function refuseUnusableJournalPath(file: string): void {
  if (file === '')
    throw new UsageError('the journal path is empty', 'name a file, such as /run/vfio-isolate/NAME');
  if (file === '.' || file.endsWith('/') || file.endsWith('/.'))
    throw new UsageError(
      `journal ${file}: the path ends in "/" or "/.", which names a directory; a journal is a file`,
      `name the file itself (such as ${file.replace(/(\/\.?)+$/, '').replace(/^\.$/, '') || '/run/vfio-isolate/NAME'})`,
    );
  if (hasParentStep(file))
    throw new UsageError(
      `journal ${file}: a path with ".." is not used (the kernel resolves ".." after the symbolic links before it, which the trust check cannot follow)`,
      'name the journal without ".." (an absolute path such as /run/vfio-isolate/NAME)',
    );
}

const TRUST_HINT =
  'a journal must be a regular file owned by root and writable only by root (chown root: FILE; chmod go-w FILE), in directories only root can change (a sticky /tmp is fine, for a file with no second name: remove a hard link to it); /run/vfio-isolate/ is the usual place';

/**
 * The trust boundary of journals (README.md, "Guarantees and limits", "Trust"): root acts on what a journal says,
 * so it must be a regular file owned by root (a run without root also believes its own user's: distrust), not
 * writable by group or others, in directories only root can change (a root-owned sticky directory may hold a
 * root-owned journal). A journal that does not exist yet is judged by the directory it will be created in (the
 * nearest existing one), which may be a root-owned sticky directory: the file is created with O_EXCL|O_NOFOLLOW, so
 * nobody else's file can be taken for it. A path with ".." is refused: the kernel resolves it after the symbolic
 * links before it, the walk lexically, so the file read or created could be another than the one checked. Anything
 * else: exit 2.
 */
export function checkJournalTrust(
  file: string,
  /** What lstat said of `file` a moment ago (null: nothing was there), taken in place of another lstat. */
  seen?: Stats | null,
): JournalTrust {
  refuseUnusableJournalPath(file);
  const abs = path.resolve(file);
  const st = seen === undefined ? lstatForTrust(abs) : (seen ?? undefined);
  if (st?.isSymbolicLink())
    throw new UsageError(`undo file ${file} is a symbolic link; refusing to follow it`, TRUST_HINT);
  if (st) {
    const bad = distrust(abs, { allowSticky: true });
    if (bad) throw new UsageError(`journal ${file} is not trusted: ${distrustText(bad)}`, TRUST_HINT);
    return 'existing';
  }
  return checkNewJournalDir(file, abs);
}

/**
 * checkJournalTrust's rule for a journal still to be created at `abs` (`file` as given): the directory it will be
 * created in, the nearest existing one.
 */
function checkNewJournalDir(file: string, abs: string): 'new-in-root-dir' | 'new' {
  let dir = path.dirname(abs);
  while (dir !== '/' && !fs.existsSync(dir)) dir = path.dirname(dir);
  const bad = distrust(dir, { kind: 'dir', allowSticky: true });
  if (!bad) return dir === path.dirname(abs) ? 'new-in-root-dir' : 'new';
  // The directory itself may be a root-owned sticky one (/tmp): others cannot replace a file root creates there.
  let real: string;
  try {
    real = fs.realpathSync(dir);
  } catch {
    real = dir;
  }
  const dst = fs.statSync(real);
  const sticky = (dst.mode & 0o1000) !== 0;
  if (bad.path === real && trustedOwner(dst.uid) && sticky && bad.kind === 'writable') return 'new';
  throw new UsageError(
    `journal ${file} would be created in an untrusted directory: ${distrustText(bad)}`,
    TRUST_HINT,
  );
}

/**
 * What checkJournalTrust found: a journal that is there; one to be created in a directory that exists and that only
 * root can change (`new-in-root-dir`: nobody else can create the file meanwhile); or one to be created elsewhere
 * (a sticky directory, or directories still to be made), which anyone allowed there could create first.
 */
export type JournalTrust = 'existing' | 'new-in-root-dir' | 'new';

/**
 * checkJournalTrust for a journal that is there (a symlink counts); a missing one is left to its reader to report.
 * Returns what it judged, for the read that follows (readJournalBytes): the file's lstat, or null when nothing was
 * there (a file someone puts there afterwards, in a sticky directory, was never checked).
 */
export function checkExistingJournalTrust(file: string): Judged {
  refuseUnusableJournalPath(file);
  const st = lstatForTrust(file) ?? null;
  if (st) checkJournalTrust(file, st);
  return st;
}

/** What checkExistingJournalTrust judged at a journal's path: its lstat, or null when nothing was there. */
export type Judged = Stats | null;

export interface JournalRun {
  run: number;
  at: string;
  argv: string[];
  records: UndoRecord[];
  rolledBack: boolean;
}

export interface ParsedJournal {
  header: HeaderLine;
  runs: JournalRun[];
  restored: boolean;
  /** A torn last line was ignored. */
  torn: boolean;
  /** Bytes read (so that marking it restored can tell whether it changed since). */
  size?: number;
}

/** Records to undo, newest first (runs that rolled back are skipped). */
export function pendingRecords(j: ParsedJournal): UndoRecord[] {
  if (j.restored) return [];
  return j.runs
    .filter((r) => !r.rolledBack)
    .flatMap((r) => r.records)
    .reverse();
}

const PICKLE_HINT =
  'this looks like an undo file of the Python vfio-isolate 0.5.2 (a pickle), which is never read here: restore it with 0.5.2 itself (pip) or undo its changes by hand, then delete the file';

/** Parse and validate a journal's text. Throws UsageError naming the offending line. */
export function parseJournal(text: string, file: string): ParsedJournal {
  if (text.startsWith('\x80') || text.startsWith('\uFFFD') || /^\(lp\d|^\]q/.test(text)) {
    throw new UsageError(`${file} is not a vfio-isolate journal`, PICKLE_HINT);
  }
  const lines = text.split('\n');
  const endsClean = text.endsWith('\n');
  const complete = endsClean ? lines.slice(0, -1) : lines.slice(0, -1);
  const tornLine = endsClean ? undefined : lines[lines.length - 1];
  const parseLine = (line: string, n: number): unknown => {
    try {
      return JSON.parse(line);
    } catch {
      throw new UsageError(
        `${file} line ${n}: not JSON`,
        n === 1 ? 'the file is not a vfio-isolate journal' : undefined,
      );
    }
  };
  if (complete.length === 0)
    throw new UsageError(`${file} is empty or truncated: not a vfio-isolate journal`);
  const head = v.safeParse(HeaderLine, parseLine(complete[0]!, 1));
  if (!head.success) {
    const raw = parseLine(complete[0]!, 1) as { format?: unknown; version?: unknown };
    if (raw && raw.format === JOURNAL_FORMAT && raw.version !== JOURNAL_VERSION) {
      throw new UsageError(
        `${file}: journal version ${String(raw.version)} is not supported (this tool reads version ${JOURNAL_VERSION})`,
      );
    }
    throw new UsageError(`${file} is not a vfio-isolate journal (bad header: ${issueText(head.issues)})`);
  }
  const runs = new Map<number, JournalRun>();
  let restored = false;
  for (let i = 1; i < complete.length; i++) {
    const line = complete[i]!;
    if (line.trim() === '') continue;
    const parsed = v.safeParse(BodyLine, parseLine(line, i + 1));
    if (!parsed.success) throw new UsageError(`${file} line ${i + 1}: ${issueText(parsed.issues)}`);
    const b = parsed.output;
    if (restored)
      throw new UsageError(`${file} line ${i + 1}: entries after the journal was marked restored`);
    switch (b.t) {
      case 'run':
        if (runs.has(b.run)) throw new UsageError(`${file} line ${i + 1}: run ${b.run} appears twice`);
        runs.set(b.run, { run: b.run, at: b.at, argv: b.argv, records: [], rolledBack: false });
        break;
      case 'rec': {
        const r = runs.get(b.run);
        if (!r) throw new UsageError(`${file} line ${i + 1}: record of unknown run ${b.run}`);
        r.records.push(b.rec);
        break;
      }
      case 'rollback': {
        const r = runs.get(b.run);
        if (!r) throw new UsageError(`${file} line ${i + 1}: rollback of unknown run ${b.run}`);
        r.rolledBack = true;
        break;
      }
      case 'restored':
        restored = true;
        break;
    }
  }
  let torn = false;
  if (tornLine !== undefined && tornLine !== '') {
    // A crash while appending leaves a partial last line: ignore it (its step had not started).
    torn = true;
  }
  return { header: head.output, runs: [...runs.values()], restored, torn };
}

function issueText(issues: readonly v.BaseIssue<unknown>[]): string {
  const i = issues[0];
  if (!i) return 'invalid';
  const where = i.path?.map((p) => String(p.key)).join('.') ?? '';
  return where ? `${where}: ${i.message}` : i.message;
}

export function readJournalFile(file: string, judged?: Judged): ParsedJournal {
  return parsedBytes(readJournalBytes(file, judged), file);
}

/** A journal's bytes parsed (parseJournal), with their size. */
function parsedBytes(buf: Buffer, file: string): ParsedJournal {
  return { ...parseJournal(buf.toString('utf8'), file), size: buf.length };
}

/**
 * Whether a journal was marked restored, and its header, without validating its records: the header line and the
 * last complete line only (a torn last line is ignored, as parseJournal ignores it). For planning decisions (set a
 * restored or earlier-boot host journal aside; is another isolation's journal over?); an active journal is then read
 * whole where its records are used. A journal another user could have written is refused (checkJournalTrust).
 * One left by a run killed while creating it (interruptedCreation's rule) holds no change: it is reported as a
 * missing one is (JournalMissing), and is started anew by the next run that opens it (openJournal). `judged`: what
 * the caller's trust check of it judged (checkExistingJournalTrust; by default checked here).
 */
export function journalHead(
  file: string,
  judged: Judged = checkExistingJournalTrust(file),
): { header: HeaderLine; restored: boolean } {
  const buf = readJournalBytes(file, judged);
  if (interruptedBytes(buf))
    throw new JournalMissing(`journal ${file} was left unfinished by an interrupted run: it holds no change`);
  const text = buf.toString('utf8');
  const first = text.indexOf('\n');
  if (first < 0) throw new UsageError(`${file} is empty or truncated: not a vfio-isolate journal`);
  const { header } = parseJournal(text.slice(0, first + 1), file);
  // the last complete line that is not blank (a whole read skips blank lines)
  let end = text.endsWith('\n') ? text.length - 1 : text.lastIndexOf('\n');
  let last = '';
  while (end > first) {
    const start = text.lastIndexOf('\n', end - 1) + 1;
    const line = text.slice(start, end);
    if (line.trim() !== '') {
      last = line;
      break;
    }
    end = start - 1;
  }
  let restored = false;
  try {
    // the mark as a whole read accepts it
    restored = v.safeParse(RestoredLine, JSON.parse(last)).success;
  } catch {
    /* not JSON: not the restored mark (a whole read would refuse the file) */
  }
  return { header, restored };
}

/**
 * An open regular file's bytes, `size` being what its fstat just said: that many (fewer if it ends before), as
 * readFileSync reads them but without its own fstat. A size of 0 (a file system that does not tell sizes) is read
 * to its end, as readFileSync does, but at most `limit` + 1 bytes.
 */
function readSized(fd: number, size: number, limit: number): Buffer {
  if (size === 0) {
    const parts: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(64 * 1024);
      const got = fs.readSync(fd, chunk, 0, chunk.length, null);
      if (got === 0) break;
      parts.push(chunk.subarray(0, got));
      total += got;
      if (total > limit) break;
    }
    return Buffer.concat(parts, total);
  }
  const buf = Buffer.allocUnsafe(size);
  let n = 0;
  while (n < size) {
    const got = fs.readSync(fd, buf, n, size - n, null);
    if (got === 0) break;
    n += got;
  }
  return n < size ? buf.subarray(0, n) : buf;
}

/**
 * The bytes of a journal file: a regular file (no symlink), at most MAX_JOURNAL_BYTES, not a 0.5.2 pickle. `judged`:
 * what the trust check looked at (checkExistingJournalTrust); the file read must be that one (missing then: missing).
 */
function readJournalBytes(file: string, judged?: Judged): Buffer {
  const missing = (): JournalMissing =>
    new JournalMissing(`journal ${file} does not exist`, 'check the path given to restore / -u');
  const symlink = (): UsageError =>
    new UsageError(`${file} is a symbolic link; journals are never followed through links`);
  // the lstat its trust check judged stands for a new one (what is opened is held to it below)
  const st = judged === undefined ? lstatOf(file) : judged;
  if (!st) throw missing();
  if (st.isSymbolicLink()) throw symlink();
  if (!st.isFile()) throw new UsageError(`${file} is not a regular file`);
  if (st.size > MAX_JOURNAL_BYTES)
    throw new UsageError(`${file} is too large to be a journal (${st.size} bytes)`);
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (e) {
    // what is there now says why, as the lstat before the open did: open(2)'s errno alone cannot (ELOOP is also a
    // symlink loop on the way, ENXIO a socket, ENOTDIR a directory on the way that is no longer one). Only a failed
    // open pays for this lstat.
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw missing();
    const now = lstatOf(file);
    if (!now) throw missing();
    if (now.isSymbolicLink()) throw symlink();
    if (!now.isFile()) throw new UsageError(`${file} is not a regular file`);
    // a file there that cannot be opened (EACCES without root): said as such, as a failed lstat is
    throw new CannotRead('journal', file, errnoOf(e) ?? 'EIO');
  }
  let buf: Buffer;
  try {
    const opened = fs.fstatSync(fd);
    if (!opened.isFile()) throw new UsageError(`${file} is not a regular file`);
    refuseIfReplaced(file, opened, judged, 'read');
    if (opened.size > MAX_JOURNAL_BYTES)
      throw new UsageError(`${file} is too large to be a journal (${opened.size} bytes)`);
    buf = readSized(fd, opened.size, MAX_JOURNAL_BYTES);
  } finally {
    fs.closeSync(fd);
  }
  if (buf.length > MAX_JOURNAL_BYTES)
    throw new UsageError(`${file} is too large to be a journal (${buf.length} bytes)`);
  if (buf[0] === 0x80) throw new UsageError(`${file} is not a vfio-isolate journal`, PICKLE_HINT);
  return buf;
}

/** `opened` (an fstat) must be the file its trust check judged (`judged`: its lstat); undefined: nothing to hold to. */
function refuseIfReplaced(file: string, opened: Stats, judged: Judged | undefined, not: string): void {
  if (judged && (opened.ino !== judged.ino || opened.dev !== judged.dev))
    throw new UsageError(`journal ${file} was replaced after its trust check; not ${not}`, TRUST_HINT);
}

export interface JournalSink {
  /** Persist an undo record before its change is applied ('host': in the host journal, see Step.scope). */
  record(rec: UndoRecord, scope?: 'host'): void;
  /** Records of this run so far, oldest first. */
  readonly records: readonly UndoRecord[];
  markRollback(): void;
  close(): void;
  readonly file?: string;
  readonly warnings: string[];
}

/** No -u: records kept in memory, for rollback only. */
export function memoryJournal(): JournalSink {
  const records: UndoRecord[] = [];
  return { record: (r) => void records.push(r), records, markRollback() {}, close() {}, warnings: [] };
}

export interface OpenOptions {
  tool: string;
  bootId: string;
  argv: string[];
  now?: () => Date;
  /** Called right after a new file was created, before its header is written (a test's kill point). */
  onCreated?: () => void;
  /**
   * This run found the file's directory to be one only root can change (checkJournalTrust said `new-in-root-dir`,
   * or it is the lock's directory): while the file is still missing it is not checked again (only root can have
   * changed its directory since), and is created with O_EXCL|O_NOFOLLOW.
   */
  checkedNew?: boolean;
}

const HEADER_START = `{"t":"header","format":"${JOURNAL_FORMAT}"`;

/**
 * Was FILE left by a run killed while creating it: empty, or only a partial first line that is the start of our
 * header (or NUL bytes, what a crash can leave after the size was extended)? Records are written only after the
 * header and the run line, and a step is applied only after its record is on disk, so such a file holds no
 * change: nothing was applied. Reads only a file lstat finds to hold at most 4096 bytes, through readJournalBytes;
 * a symlink or non-file is never "interrupted".
 */
export function interruptedCreation(file: string): boolean {
  const st = lstatOf(file);
  if (!st?.isFile() || st.size > 4096) return false;
  try {
    // the file the lstat saw, read as every journal is (a symlink or FIFO put there since is neither followed nor
    // waited on, another file is refused)
    return interruptedBytes(readJournalBytes(file, st));
  } catch {
    return false;
  }
}

/** interruptedCreation's rule on a journal's bytes. */
function interruptedBytes(buf: Buffer): boolean {
  if (buf.length > 4096 || buf.includes(0x0a)) return false;
  if (buf.every((b) => b === 0)) return true;
  const text = buf.toString('utf8');
  return HEADER_START.startsWith(text) || text.startsWith(HEADER_START);
}

/**
 * A journal to undo, read once (readJournalFile's checks), or `interrupted` when it was left by a run killed while
 * creating it (interruptedCreation's rule): what restore and release read, under the lock.
 */
export function readJournalToUndo(file: string, judged?: Judged): ParsedJournal | 'interrupted' {
  const buf = readJournalBytes(file, judged);
  return interruptedBytes(buf) ? 'interrupted' : parsedBytes(buf, file);
}

/** restore/release of an interrupted journal: nothing to undo; the file is removed (checked again under the lock). */
export function removeInterrupted(file: string): boolean {
  checkJournalTrust(file);
  if (!interruptedCreation(file)) return false;
  fs.unlinkSync(file);
  fsyncDir(path.dirname(file));
  return true;
}

/**
 * Open FILE for a run: create it, append to an unrestored journal of this boot, or replace a restored/old-boot one
 * (kept as FILE.old). Refuses symlinks and files that are not journals (exit 2) before any change.
 */
export function openJournal(file: string, opts: OpenOptions): JournalSink {
  const now = opts.now ?? (() => new Date());
  const warnings: string[] = [];
  // What is at the path is looked at once, before the trust check: a file that appears after it is not taken for
  // the journal (the create below is O_EXCL)
  const there = lstatForTrust(file);
  if (there || !opts.checkedNew) checkJournalTrust(file, there ?? null);
  let runNo = 1;
  let exists = there !== undefined;
  if (there?.isSymbolicLink())
    throw new UsageError(`undo file ${file} is a symbolic link; refusing to follow it`);
  if (there && !there.isFile()) throw new UsageError(`undo file ${file} is not a regular file`);
  // the file the trust check judged (`there`) is read once, cut and appended to; one put in its place since is refused
  const buf = exists ? readJournalBytes(file, there) : undefined;
  if (buf && interruptedBytes(buf)) {
    // Left by a run killed while creating it: nothing was applied; start it anew in place of it.
    checkJournalTrust(file);
    fs.unlinkSync(file);
    warnings.push(
      `undo file ${file} was left unfinished by an interrupted run that applied nothing; started it anew`,
    );
    exists = false;
  }
  if (exists) {
    const j = parsedBytes(buf!, file);
    if (j.restored || j.header.bootId !== opts.bootId) {
      const why = j.restored ? 'was already restored' : 'is from an earlier boot';
      fs.renameSync(file, `${file}.old`);
      warnings.push(`undo file ${file} ${why}; kept it as ${file}.old and started a new one`);
      exists = false;
    } else {
      runNo = j.runs.reduce((m, r) => Math.max(m, r.run), 0) + 1;
      if (runNo > MAX_RUNS)
        throw new UsageError(
          `undo file ${file} already holds ${MAX_RUNS} runs`,
          'release or restore it, or use another -u FILE',
        );
      if (j.torn) dropTornTail(file, there);
    }
  }
  let fd: number;
  // a new journal's header goes out in one write with the run line (the file is then empty, an interrupted
  // creation, or both lines)
  let header = '';
  try {
    if (!exists) {
      // checkedNew: its directory exists (checkJournalTrust found it)
      if (!opts.checkedNew) {
        fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
        // a directory missing at the check may have been made by someone else (a symlink of theirs in a sticky
        // directory) before the mkdir above, which takes any directory there for its own: the way is walked again,
        // now that every directory on it exists (root's in a sticky directory cannot be replaced by others)
        checkNewJournalDir(file, path.resolve(file));
      }
      fd = fs.openSync(
        file,
        fs.constants.O_WRONLY |
          fs.constants.O_CREAT |
          fs.constants.O_EXCL |
          fs.constants.O_NOFOLLOW |
          fs.constants.O_APPEND,
        0o600,
      );
      opts.onCreated?.();
      const head: HeaderLine = {
        t: 'header',
        format: JOURNAL_FORMAT,
        version: JOURNAL_VERSION,
        tool: opts.tool,
        bootId: opts.bootId,
        created: isoUtc(now().getTime()),
      };
      header = JSON.stringify(head) + '\n';
    } else {
      fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_NOFOLLOW);
      try {
        refuseIfReplaced(file, fs.fstatSync(fd), there, 'appended to');
      } catch (e) {
        fs.closeSync(fd);
        throw e;
      }
    }
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new RuntimeFailure(
      `cannot write undo file ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`,
    );
  }
  // A line the disk took only in part (write(2) returns the bytes that fit, libuv's loop then stops at ENOSPC with
  // that short count and no error) is cut off again and refused: its change is then not applied, and the lines
  // written after it (the rollback mark, a later run's) start on a line of their own.
  const append = (obj: BodyLine, before = ''): void => {
    const line = Buffer.from(before + JSON.stringify(obj) + '\n');
    const n = fs.writeSync(fd, line);
    if (n !== line.length) {
      try {
        fs.ftruncateSync(fd, fs.fstatSync(fd).size - n);
      } catch {
        /* a torn last line is ignored by readers and cut by the next run that appends */
      }
      throw new RuntimeFailure(
        `cannot write undo file ${file}: only ${n} of ${line.length} bytes written (is its file system full?)`,
      );
    }
    fs.fsyncSync(fd);
  };
  append({ t: 'run', run: runNo, at: isoUtc(now().getTime()), argv: opts.argv }, header);
  if (!exists) fsyncDir(path.dirname(file));
  const records: UndoRecord[] = [];
  let open = true;
  return {
    file,
    warnings,
    records,
    record(rec) {
      append({ t: 'rec', run: runNo, rec });
      records.push(rec);
    },
    markRollback() {
      if (open) append({ t: 'rollback', run: runNo });
    },
    close() {
      if (open) fs.closeSync(fd);
      open = false;
    },
  };
}

/**
 * What the host looked like before the host journal's first change to each target: the value recorded by the
 * oldest record (of a run that did not roll back) that wrote a file or set a thread's affinity. Isolate and release
 * compute the host set from it, so that CPUs given back return to their owners' original settings.
 */
export interface Baseline {
  file(path: string): string | undefined;
  affinity(tid: number, start: number): string | undefined;
  /** Whether any thread has an affinity before the first isolate (else `affinity` is always undefined). */
  hasAffinities: boolean;
}

export const EMPTY_BASELINE: Baseline = {
  file: () => undefined,
  affinity: () => undefined,
  hasAffinities: false,
};

/** The baseline of an unrestored journal of this boot; anything else (missing, restored, old boot) has none. */
export function readBaseline(file: string, bootId: string): Baseline {
  let j: ParsedJournal;
  try {
    // one trust check; the head and the whole are read from the file it judged
    const judged = checkExistingJournalTrust(file);
    const head = journalHead(file, judged);
    if (head.restored || head.header.bootId !== bootId) return EMPTY_BASELINE;
    j = readJournalFile(file, judged);
  } catch (e) {
    if (e instanceof JournalMissing) return EMPTY_BASELINE;
    throw e;
  }
  if (j.restored || j.header.bootId !== bootId) return EMPTY_BASELINE;
  const files = new Map<string, string>();
  // per tid, its entries in journal order: [start time, old list] (`exact`: that start; else started no later)
  const affinity = new Map<number, [number, string, boolean][]>();
  const add = (tid: number, start: number, old: string, exact: boolean): void => {
    const at = affinity.get(tid);
    if (at) at.push([start, old, exact]);
    else affinity.set(tid, [[start, old, exact]]);
  };
  for (const run of j.runs) {
    if (run.rolledBack) continue;
    for (const rec of run.records) {
      if (rec.kind === 'write') for (const [p, before] of rec.files) if (!files.has(p)) files.set(p, before);
      if (rec.kind !== 'affinity') continue;
      for (const [tid, start, old] of rec.tasks) add(tid, start, old, true);
      if (rec.listedAt !== undefined)
        for (const [tid, old] of rec.listed ?? []) add(tid, rec.listedAt, old, false);
    }
  }
  return {
    file: (p) => files.get(p),
    // the first entry journalled for the thread: by its start time, or by a list time it started no later than
    affinity: (tid, start) =>
      affinity.get(tid)?.find(([s, , exact]) => (exact ? start === s : start <= s))?.[1],
    hasAffinities: affinity.size > 0,
  };
}

export type JournalState = 'active' | 'restored' | 'earlier-boot' | 'missing' | 'unreadable';

/**
 * Whether anything is at a journal's path (journalState's `missing`, without reading it or walking to it); when the
 * path cannot be looked at, lstatForTrust's verdict (exit 2) or CannotRead.
 */
export function journalThere(file: string): boolean {
  return lstatForTrust(file) !== undefined;
}

/**
 * What a journal file is now: unrestored of this boot, restored, of an earlier boot, missing, or not readable.
 * `read: 'head'` decides from the header and the last line only (journalHead): for planning, where an active
 * journal is read whole afterwards anyway (and refused then if a record is malformed); `status` reads it whole, so
 * that it can say a journal is unreadable. A journal another user could have written is 'unreadable' (its content
 * is not believed).
 */
export function journalState(file: string, bootId: string, read: 'whole' | 'head' = 'whole'): JournalState {
  try {
    let j: { header: HeaderLine; restored: boolean };
    if (read === 'head') j = journalHead(file);
    else j = readJournalFile(file, checkExistingJournalTrust(file));
    if (j.restored) return 'restored';
    return j.header.bootId === bootId ? 'active' : 'earlier-boot';
  } catch (e) {
    if (e instanceof JournalMissing) return 'missing';
    return 'unreadable';
  }
}

/** Is FILE an unrestored journal of this boot (from its header and last line, see journalState)? */
export function journalActive(file: string, bootId: string): boolean {
  return journalState(file, bootId, 'head') === 'active';
}

/**
 * A run's journal plus the host journal: records of host-scope steps go to the host journal, the others to the
 * run's own. Rollback sees every record of the run, in the order they were made.
 */
export function withHostJournal(own: JournalSink, host: JournalSink): JournalSink {
  const records: UndoRecord[] = [];
  return {
    file: own.file,
    warnings: [...own.warnings, ...host.warnings],
    records,
    record(rec, scope) {
      (scope === 'host' ? host : own).record(rec);
      records.push(rec);
    },
    markRollback() {
      own.markRollback();
      host.markRollback();
    },
    close() {
      own.close();
      host.close();
    },
  };
}

/**
 * Open the host journal for a run: a restored one, or one of an earlier boot, is set aside as FILE.old (the last
 * release restored it, or a reboot reset its state); an unrestored one of this boot is appended to, so that it
 * keeps the state from before the first isolate.
 */
export function openHostJournal(file: string, opts: OpenOptions): JournalSink {
  try {
    // an active one is read whole (and refused if it is not a journal) when it is opened for appending below
    const j = journalHead(file);
    if (j.restored || j.header.bootId !== opts.bootId) fs.renameSync(file, `${file}.old`);
  } catch (e) {
    if (!(e instanceof JournalMissing)) throw e; // missing: created below
  }
  return openJournal(file, opts);
}

/**
 * Append the `restored` marker (the journal is kept as a record of what happened). `expectedSize` is the size the
 * journal had when it was read for the restore: if it has grown since (another run appended records, which the
 * lock normally prevents), the mark is refused, so that those records are not hidden behind it.
 */
export function markRestored(
  file: string,
  forced: boolean,
  now: Date = new Date(),
  expectedSize?: number,
): void {
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_APPEND | fs.constants.O_NOFOLLOW);
  try {
    const size = fs.fstatSync(fd).size;
    if (expectedSize !== undefined && size !== expectedSize)
      throw new RuntimeFailure(
        `${file} changed while it was being restored (${expectedSize} -> ${size} bytes); not marked restored`,
        'run restore again: it undoes what is left',
      );
    dropTornTailFd(fd, size);
    const line: BodyLine = forced
      ? { t: 'restored', at: isoUtc(now.getTime()), forced }
      : { t: 'restored', at: isoUtc(now.getTime()) };
    fs.writeSync(fd, JSON.stringify(line) + '\n');
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Cut a partial last line (a crash mid-append) so that new lines start clean; only in the file `judged` saw. */
function dropTornTail(file: string, judged: Judged | undefined): void {
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_NOFOLLOW);
  try {
    const opened = fs.fstatSync(fd);
    refuseIfReplaced(file, opened, judged, 'cut');
    dropTornTailFd(fd, opened.size);
  } finally {
    fs.closeSync(fd);
  }
}

/** `size` bytes long: its last byte is read, and only a file that does not end in a newline is read whole and cut. */
function dropTornTailFd(fd: number, size: number): void {
  if (size === 0) return;
  const last = Buffer.alloc(1);
  if (fs.readSync(fd, last, 0, 1, size - 1) === 1 && last[0] === 0x0a) return;
  const buf = Buffer.alloc(size);
  fs.readSync(fd, buf, 0, size, 0);
  if (buf[size - 1] === 0x0a) return;
  fs.ftruncateSync(fd, buf.lastIndexOf(0x0a) + 1);
}
