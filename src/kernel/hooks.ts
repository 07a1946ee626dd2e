/**
 * libvirt hook files under /etc/libvirt/hooks (under the Kernel's root, so tests run on fake trees): install one
 * file per domain in qemu.d without ever clobbering a file that is not ours, remove only our own files, list them.
 * What the file says (and how to recognise ours) is decided by the caller through `isOurs`.
 */
import type { Stats } from 'node:fs';
import * as path from 'node:path';
import { RuntimeFailure } from '../errors.ts';
import type { Kernel } from './kernel.ts';
import { P } from './paths.ts';

const fs = process.getBuiltinModule('node:fs');

/** System path of libvirt's per-driver hook directory for QEMU (libvirt >= 6.5). */
export const QEMU_HOOK_DIR = `${P.libvirtHooks}/qemu.d`;
/** System path of the single legacy QEMU hook script. */
export const QEMU_HOOK_SCRIPT = `${P.libvirtHooks}/qemu`;

/** The journal a domain's hook uses (system path). */
export function hookJournalPath(domain: string): string {
  return `${P.runDir}/${domain}.journal`;
}

export function hookFilePath(fileName: string): string {
  return `${QEMU_HOOK_DIR}/${fileName}`;
}

function lstat(p: string): Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** On a fake tree, refuse a symlink on the way from the root to the hook directory: it could lead out of it. */
function checkNoSymlinks(k: Kernel, systemDir: string): void {
  if (k.root === '/') return;
  const parts = systemDir.split('/').filter(Boolean);
  for (let i = 1; i <= parts.length; i++) {
    const sys = '/' + parts.slice(0, i).join('/');
    if (lstat(k.hostPath(sys))?.isSymbolicLink()) {
      throw new RuntimeFailure(`${sys} is a symbolic link; refusing to follow it out of the root`);
    }
  }
}

function failure(e: unknown, what: string): RuntimeFailure {
  const code = (e as NodeJS.ErrnoException).code ?? String(e);
  const hint =
    code === 'EACCES' || code === 'EPERM' || code === 'EROFS' ? 'must run as root (try sudo)' : undefined;
  return new RuntimeFailure(`${what}: ${code}`, hint);
}

export interface ExistingHook {
  /** System path. */
  path: string;
  /** The file's text, when it is a regular file we could read. */
  text?: string;
  isSymlink: boolean;
  isFile: boolean;
  executable: boolean;
}

export function readHookFile(k: Kernel, systemPath: string): ExistingHook | undefined {
  const host = k.hostPath(systemPath);
  const st = lstat(host);
  if (!st) return undefined;
  const h: ExistingHook = {
    path: systemPath,
    isSymlink: st.isSymbolicLink(),
    isFile: st.isFile(),
    executable: (st.mode & 0o111) !== 0,
  };
  if (st.isFile() && st.size <= 1 << 20) {
    try {
      h.text = fs.readFileSync(host, 'utf8');
    } catch {
      /* unreadable: not ours */
    }
  }
  return h;
}

/** Of /etc/libvirt/hooks and its qemu.d, those that do not exist yet (system paths, parent first). */
export function missingHookDirs(k: Kernel): string[] {
  return [P.libvirtHooks, QEMU_HOOK_DIR].filter((d) => !lstat(k.hostPath(d)));
}

/** Is any QEMU hook executable present (the legacy script or an executable in qemu.d)? libvirtd checks this at start. */
export function anyQemuHook(k: Kernel): boolean {
  const legacy = readHookFile(k, QEMU_HOOK_SCRIPT);
  if (legacy && legacy.executable && !legacy.isSymlink) return true;
  if (legacy?.isSymlink) return true;
  return listHookDir(k).some((h) => h.executable || h.isSymlink);
}

export interface InstallResult {
  path: string;
  replaced: boolean;
  created: string[];
}

/**
 * Write `text` as `qemu.d/fileName`, mode 0755. An existing file is replaced only when `isOurs(its text)`; anything
 * else there (another file, a symlink, a directory) is refused with exit 1 and left alone. The file appears
 * atomically (written beside, then linked or renamed into place), so libvirtd never runs a half-written hook.
 * `makeText` gets the directories this install creates, so the file can record them for uninstall.
 */
export function installHookFile(
  k: Kernel,
  fileName: string,
  makeText: (created: string[]) => string,
  isOurs: (text: string) => boolean,
): InstallResult {
  const target = hookFilePath(fileName);
  checkNoSymlinks(k, QEMU_HOOK_DIR);
  const existing = readHookFile(k, target);
  if (existing && !(existing.isFile && existing.text !== undefined && isOurs(existing.text))) {
    throw new RuntimeFailure(
      `${target} exists and was not written by vfio-isolate; leaving it alone`,
      'move it away (or pick it up into your own hook) and run the install again',
    );
  }
  const libvirtEtc = path.posix.dirname(P.libvirtHooks);
  if (!lstat(k.hostPath(libvirtEtc))?.isDirectory()) {
    throw new RuntimeFailure(
      `${libvirtEtc} does not exist: is libvirt installed?`,
      'install libvirt first (the hook is for libvirt-managed VMs)',
    );
  }
  const created = missingHookDirs(k);
  for (const d of created) {
    try {
      fs.mkdirSync(k.hostPath(d), { mode: 0o755 });
      fs.chmodSync(k.hostPath(d), 0o755);
    } catch (e) {
      throw failure(e, `cannot create ${d}`);
    }
  }
  const text = makeText(created);
  const hostTarget = k.hostPath(target);
  const tmp = `${path.posix.dirname(hostTarget)}/.${fileName}.tmp-${process.pid}`;
  let placing = false;
  try {
    if (lstat(tmp)) fs.unlinkSync(tmp); // left by a run that was killed

    const fd = fs.openSync(
      tmp,
      fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW,
      0o600,
    );
    try {
      fs.writeSync(fd, text);
      fs.fsyncSync(fd);
      fs.fchmodSync(fd, 0o755);
    } finally {
      fs.closeSync(fd);
    }
    placing = true;
    if (existing) fs.renameSync(tmp, hostTarget);
    else {
      // link(2) fails with EEXIST when something appeared meanwhile: still never clobbers.
      fs.linkSync(tmp, hostTarget);
      fs.unlinkSync(tmp);
    }
  } catch (e) {
    try {
      fs.unlinkSync(tmp);
    } catch {
      /* not created */
    }
    removeEmptyDirs(k, created);
    if (placing && (e as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new RuntimeFailure(
        `${target} appeared while installing; leaving it alone`,
        'run the install again',
      );
    }
    throw failure(e, `cannot write ${target}`);
  }
  return { path: target, replaced: existing !== undefined, created };
}

/** rmdir the given directories (deepest first) when empty; returns those removed. */
export function removeEmptyDirs(k: Kernel, dirs: readonly string[]): string[] {
  const removed: string[] = [];
  for (const d of [...dirs].sort((a, b) => b.length - a.length)) {
    if (!d.startsWith(`${P.libvirtHooks}`)) continue; // only what install can have created
    try {
      fs.rmdirSync(k.hostPath(d));
      removed.push(d);
    } catch {
      /* not empty, or gone */
    }
  }
  return removed;
}

/** Remove `qemu.d/fileName` when `isOurs`; a file that is not ours is refused. Returns false when there is none. */
export function removeHookFile(k: Kernel, fileName: string, isOurs: (text: string) => boolean): boolean {
  const target = hookFilePath(fileName);
  checkNoSymlinks(k, QEMU_HOOK_DIR);
  const existing = readHookFile(k, target);
  if (!existing) return false;
  if (!(existing.isFile && existing.text !== undefined && isOurs(existing.text))) {
    throw new RuntimeFailure(`${target} was not written by vfio-isolate; leaving it alone`);
  }
  try {
    fs.unlinkSync(k.hostPath(target));
  } catch (e) {
    throw failure(e, `cannot remove ${target}`);
  }
  return true;
}

/** Every entry of qemu.d (files, links; not hidden temporary files), sorted by name as libvirt runs them. */
export function listHookDir(k: Kernel): ExistingHook[] {
  let names: string[];
  try {
    names = fs.readdirSync(k.hostPath(QEMU_HOOK_DIR));
  } catch {
    return [];
  }
  return names
    .filter((n) => !n.startsWith('.'))
    .sort()
    .map((n) => readHookFile(k, hookFilePath(n)))
    .filter((h): h is ExistingHook => h !== undefined);
}
