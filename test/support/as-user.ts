/**
 * Node (with tsx) as a process of its own on a fixture tree, for what the in-process cli() cannot be: another user
 * (uid/gid 65534 by default), or root under a wrapper command (setpriv without some capabilities).
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

const REPO = path.resolve(import.meta.dirname, '../..');

export interface ProcessResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** `node --import tsx ARGS` as uid/gid 65534, in the repository, with VFIO_ISOLATE_ROOT=root and `env`. */
export function asNobody(root: string, args: string[], env: Record<string, string> = {}): ProcessResult {
  return spawnSync(process.execPath, ['--import', 'tsx', ...args], {
    cwd: REPO,
    uid: 65534,
    gid: 65534,
    env: { ...process.env, VFIO_ISOLATE_ROOT: root, ...env },
    encoding: 'utf8',
  });
}

/** `WRAP… node --import tsx ARGS` as this process's user, in the repository, with VFIO_ISOLATE_ROOT=root. */
export function wrapped(wrap: string[], root: string, args: string[]): ProcessResult {
  const [cmd, ...pre] = wrap;
  return spawnSync(cmd!, [...pre, process.execPath, '--import', 'tsx', ...args], {
    cwd: REPO,
    env: { ...process.env, VFIO_ISOLATE_ROOT: root },
    encoding: 'utf8',
  });
}
