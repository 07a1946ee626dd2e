/**
 * One run at a time: an exclusive lock file under /run/vfio-isolate holding "pid starttime". A lock left by a
 * killed run is detected (pid gone or reused) and taken over. A second run waits a bounded time, then fails.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RuntimeFailure } from '../errors.ts';
import type { Kernel } from './kernel.ts';
import { P } from './paths.ts';

function startOfReal(pid: number): string | undefined {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export interface Lock {
  release(): void;
}

export function acquireLock(k: Kernel, waitMs: number): Lock {
  const file = k.hostPath(P.lockFile);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const me = `${process.pid} ${startOfReal(process.pid) ?? 0}\n`;
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      const fd = fs.openSync(
        file,
        fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW,
        0o600,
      );
      fs.writeSync(fd, me);
      fs.closeSync(fd);
      return {
        release() {
          try {
            if (fs.readFileSync(file, 'utf8') === me) fs.unlinkSync(file);
          } catch {
            /* already gone */
          }
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new RuntimeFailure(
          `cannot create lock ${file}: ${(e as NodeJS.ErrnoException).code}`,
          'must run as root (try sudo)',
        );
      }
    }
    let holder: string;
    try {
      holder = fs.readFileSync(file, 'utf8');
    } catch {
      continue; // released meanwhile
    }
    const [pid, start] = holder.trim().split(' ');
    const alive = pid !== undefined && /^\d+$/.test(pid) && startOfReal(Number(pid)) === start;
    if (!alive) {
      // Stale: its owner died (SIGKILL, crash). Take it over atomically by renaming it away first.
      try {
        if (fs.readFileSync(file, 'utf8') !== holder) continue;
        fs.renameSync(file, `${file}.stale.${process.pid}`);
        fs.unlinkSync(`${file}.stale.${process.pid}`);
      } catch {
        /* someone else took it over */
      }
      continue;
    }
    if (Date.now() >= deadline) {
      throw new RuntimeFailure(
        `another vfio-isolate run (pid ${pid}) is still running`,
        `waited ${Math.round(waitMs / 1000)} s; try again when it has finished`,
      );
    }
    sleep(50);
  }
}
