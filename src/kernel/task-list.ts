/**
 * The one reader of task lists: files the kernel prints as ids separated by white space (`cgroup.procs`, `tasks`,
 * `cgroup.threads`: one per line; `/proc/PID/task/TID/children`: space separated) and numbered directories
 * (`/proc`, `/proc/PID/task`, `/proc/irq`).
 */
import type { Fs } from './fs.ts';

/** The ids in a task list's text, in the order printed; anything that is not a decimal number is skipped. */
export function parseIds(text: string): number[] {
  const out: number[] = [];
  let n = -1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i) - 48;
    if (c >= 0 && c <= 9) n = n < 0 ? c : n * 10 + c;
    else {
      if (n >= 0) out.push(n);
      n = -1;
    }
  }
  if (n >= 0) out.push(n);
  return out;
}

/** The ids listed in a task file. Throws like Fs.read (ENOENT, EACCES, ...). */
export function readIds(fs: Fs, path: string): number[] {
  return parseIds(fs.read(path));
}

/**
 * The numbered entries of a directory (`/proc`, `/proc/PID/task`), ascending; [] when it cannot be listed. Without
 * `dirsOnly`, by names alone where the Fs lists them: no entry types (under TCG, a listing of /proc/PID/task with
 * its types took two to three times as long).
 */
export function listIds(fs: Fs, dir: string, dirsOnly = false): number[] {
  try {
    const out: number[] = [];
    const names =
      !dirsOnly && fs.listNames
        ? fs.listNames(dir)
        : fs
            .list(dir)
            .filter((e) => !dirsOnly || e.isDir)
            .map((e) => e.name);
    for (const name of names) if (/^\d+$/.test(name)) out.push(Number(name));
    return out.sort((a, b) => a - b);
  } catch {
    return [];
  }
}
