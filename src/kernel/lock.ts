/**
 * One run at a time: flock(2) on /run/vfio-isolate/lock (through koffi, loaded lazily). The kernel admits one
 * holder and drops the lock when its holder dies, however it dies, so there is no stale lock to take over and no
 * race between a new lock file and its contents. The file is never removed (removing a flock file lets two runs
 * lock two different files). Its contents (the holder's pid, written by the holder) only name the holder in the
 * message of a run that gave up waiting.
 *
 * What is at the lock path must be a regular file owned by root in a directory only root can change (the trust
 * check, src/kernel/trust.ts); a directory, FIFO, symlink or another user's file there is refused at once (exit 2).
 * A run waits at most `waitMs` for a live holder, polling, then fails (exit 1).
 */
import * as path from 'node:path';
import { RuntimeFailure, UsageError } from '../errors.ts';
import type { Kernel } from './kernel.ts';
import { P } from './paths.ts';
import { distrust, distrustText } from './trust.ts';
import { loadKoffi, loadLibc } from './koffi.ts';

const fs = process.getBuiltinModule('node:fs');

const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;
const EWOULDBLOCK = 11;
const EINTR = 4;

interface Flock {
  flock(fd: number, op: number): number;
  errno(): number;
}

let cached: Flock | undefined;

function loadFlock(): Flock {
  if (cached) return cached;
  const koffi = loadKoffi();
  const libc = loadLibc();
  const flock = libc.func('int flock(int fd, int operation)');
  const errnoFn = libc.func('int *__errno_location()');
  cached = {
    flock: (fd, op) => flock(fd, op) as number,
    errno: () => koffi.decode(errnoFn(), 'int') as number,
  };
  return cached;
}

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export interface Lock {
  /**
   * The lock's directory, as its path was given: checked when the lock was taken to be one only root can change
   * (a file missing there can be created by nobody else meanwhile).
   */
  readonly dir: string;
  release(): void;
}

/** The lock of a kernel layer: /run/vfio-isolate/lock under its root. */
export function acquireLock(k: Kernel, waitMs: number): Lock {
  return lockFile(k.hostPath(P.lockFile), waitMs);
}

const LINE_BYTES = 40;

/** Open (creating it if missing) and check the lock file; the descriptor is ours to flock. */
function openLockFile(file: string): number {
  const dir = path.dirname(file);
  // made only when missing (the trust walk finds that out; a mkdir of an existing directory is two system calls)
  let badDir = distrust(dir, { kind: 'dir', allowSticky: true });
  if (badDir?.code === 'ENOENT') {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    badDir = distrust(dir, { kind: 'dir', allowSticky: true });
  }
  if (badDir) {
    throw new UsageError(
      `lock ${file}: ${distrustText(badDir)}`,
      `only root may be able to change ${dir} and the directories above it (chown root: and chmod go-w)`,
    );
  }
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO at the path does not block the open; O_NOFOLLOW: a symlink there fails with ELOOP.
    fd = fs.openSync(
      file,
      fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK,
      0o600,
    );
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    if (code === 'EISDIR' || code === 'ELOOP' || code === 'ENXIO') {
      throw new UsageError(
        `lock ${file} is not a regular file (${code === 'EISDIR' ? 'a directory' : code === 'ELOOP' ? 'a symbolic link' : 'a special file'})`,
        `remove it (no vfio-isolate run creates anything else there)`,
      );
    }
    throw new RuntimeFailure(`cannot open lock ${file}: ${code}`, 'must run as root (try sudo)');
  }
  const st = fs.fstatSync(fd);
  const uid = process.geteuid?.() ?? 0;
  const why = !st.isFile()
    ? 'not a regular file'
    : st.uid !== uid
      ? `owned by uid ${st.uid}`
      : (st.mode & 0o022) !== 0
        ? 'writable by group or others'
        : st.nlink !== 1
          ? `a hard link (${st.nlink} names)`
          : undefined;
  if (why) {
    fs.closeSync(fd);
    throw new UsageError(`lock ${file} is ${why}`, 'remove it; the next run creates a fresh one');
  }
  return fd;
}

/** Take the lock at `file` (a host path), waiting at most `waitMs` for another holder. */
export function lockFile(file: string, waitMs: number): Lock {
  const fl = loadFlock();
  const fd = openLockFile(file);
  const deadline = Date.now() + waitMs;
  let pause = 1;
  for (;;) {
    if (fl.flock(fd, LOCK_EX | LOCK_NB) === 0) break;
    const errno = fl.errno();
    if (errno === EINTR) continue;
    if (errno !== EWOULDBLOCK) {
      fs.closeSync(fd);
      throw new RuntimeFailure(`cannot lock ${file}: errno ${errno}`);
    }
    if (Date.now() >= deadline) {
      let holder = '';
      try {
        const b = Buffer.alloc(LINE_BYTES);
        holder = b.toString('utf8', 0, fs.readSync(fd, b, 0, LINE_BYTES, 0));
      } catch {
        /* unreadable: named as "another run" */
      }
      fs.closeSync(fd);
      const pid = /^(\d+) /.exec(holder)?.[1];
      throw new RuntimeFailure(
        `another vfio-isolate run${pid ? ` (pid ${pid})` : ''} is still running`,
        `waited ${Math.round(waitMs / 1000)} s; try again when it has finished`,
      );
    }
    sleep(Math.min(pause, Math.max(1, deadline - Date.now())));
    pause = Math.min(pause * 2, 8);
  }
  // Name ourselves for whoever waits: one fixed-width write at offset 0 (the file is never truncated).
  const me = `${process.pid} `.padEnd(LINE_BYTES - 1, ' ') + '\n';
  try {
    fs.writeSync(fd, me, 0);
  } catch {
    /* the name is only for messages */
  }
  let held = true;
  return {
    dir: path.dirname(file),
    release() {
      if (!held) return;
      held = false;
      fl.flock(fd, LOCK_UN);
      fs.closeSync(fd);
    },
  };
}
