/**
 * Fixture installs of vfio-isolate for the libvirt hook tests: a package tree (entry, a split chunk, package.json,
 * koffi with its native addon package) and a fake node, laid out like `npm install -g` lays them out, in a
 * directory that only root can change all the way from "/" (the hook refuses executables under a sticky /tmp).
 * Needs root (the files must be root-owned, and some tests chown parts to uid 1000).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { distrust } from '../../src/kernel/trust.ts';

const REPO = path.resolve(import.meta.dirname, '../..');

// Directories and files the tests create must not be group-writable by accident (a umask of 002).
process.umask(0o022);

/**
 * A root-owned directory, writable by nobody else all the way from "/", to put fixture installs in: the
 * repository's .test-tmp/ when the clone is such a place, else root's home. undefined when not root or none is.
 */
export function trustedBase(): string | undefined {
  if (process.geteuid?.() !== 0) return undefined;
  const candidates = [path.join(REPO, '.test-tmp'), path.join(os.homedir(), '.cache', 'vfio-isolate-tests')];
  for (const c of candidates) {
    try {
      fs.mkdirSync(c, { recursive: true, mode: 0o755 });
      fs.chmodSync(c, 0o755);
    } catch {
      continue;
    }
    if (!distrust(c, { uid: 0, kind: 'dir' })) return c;
  }
  return undefined;
}

/** Skip reason for describe()/it() when fixture installs cannot be made. */
export function noTrustedBase(): string | false {
  if (process.geteuid?.() !== 0)
    return 'needs root: the fixture installs must be root-owned (and some are chowned)';
  return trustedBase() ? false : "no root-owned directory to put fixture installs in (not even root's home)";
}

/** A fresh temporary directory under `base` (mode 0755, root-owned). */
export function tempTree(base: string, prefix = 'hook-'): string {
  const d = fs.mkdtempSync(path.join(base, prefix));
  fs.chmodSync(d, 0o755);
  return d;
}

function write(file: string, text: string, mode = 0o644): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
  fs.writeFileSync(file, text, { mode });
  fs.chmodSync(file, mode);
}

export const NATIVE_PKG = `koffi-${process.platform}-${process.arch}`;

export interface FakePackage {
  /** The package directory (…/node_modules/vfio-isolate or a clone). */
  dir: string;
  entry: string;
  chunk: string;
  koffi: string;
  /** The native addon file in the @koromix package. */
  addon: string;
}

/**
 * Lay out a package as `npm install -g` does: dir/package.json, dir/dist/vfio-isolate.mjs (+ dist/chunks/chunk-TEST.mjs, as esbuild splits it),
 * dir/node_modules/koffi and dir/node_modules/@koromix/koffi-PLATFORM-ARCH/.../koffi.node.
 */
export function fakePackage(dir: string): FakePackage {
  write(path.join(dir, 'package.json'), '{"name":"vfio-isolate","type":"module","version":"0.0.0-test"}\n');
  const entry = path.join(dir, 'dist', 'vfio-isolate.mjs');
  write(entry, '#!/usr/bin/env node\nimport "./chunks/chunk-TEST.mjs";\n', 0o755);
  const chunk = path.join(dir, 'dist', 'chunks', 'chunk-TEST.mjs');
  write(chunk, 'export {};\n');
  const koffi = path.join(dir, 'node_modules', 'koffi');
  write(path.join(koffi, 'package.json'), '{"name":"koffi","main":"./index.cjs"}\n');
  write(path.join(koffi, 'index.cjs'), 'module.exports = {};\n');
  const native = path.join(dir, 'node_modules', '@koromix', NATIVE_PKG);
  write(path.join(native, 'package.json'), `{"name":"@koromix/${NATIVE_PKG}","main":"./index.js"}\n`);
  write(path.join(native, 'index.js'), 'module.exports = {};\n');
  const addon = path.join(native, `${process.platform}_${process.arch}`, 'koffi.node');
  write(addon, 'not really ELF\n', 0o755);
  return { dir, entry, chunk, koffi, addon };
}

/**
 * A fake node: a shell script that appends its arguments (joined by "|") and the lock wait to `calls`, and exits 0.
 * The hook runs it as libvirtd would run the real one.
 */
export function fakeNode(file: string, calls: string): string {
  write(
    file,
    `#!/bin/sh\nprintf '%s|' "$@" >>'${calls}'\necho "lock=$VFIO_ISOLATE_LOCK_WAIT_MS" >>'${calls}'\necho "vfio-isolate: ran"\n`,
    0o755,
  );
  return file;
}

export interface FakeInstall extends FakePackage {
  root: string;
  /** root/usr/bin/node (a fake, root-owned). */
  node: string;
  /** root/usr/local/bin/vfio-isolate → ../lib/node_modules/vfio-isolate/dist/vfio-isolate.mjs */
  bin: string;
  calls: string;
}

/** A root-owned global install under `root`: /usr/bin/node, /usr/local/lib/node_modules/vfio-isolate, the bin link. */
export function fakeInstall(root: string): FakeInstall {
  const calls = path.join(root, 'calls');
  const node = fakeNode(path.join(root, 'usr', 'bin', 'node'), calls);
  const pkg = fakePackage(path.join(root, 'usr', 'local', 'lib', 'node_modules', 'vfio-isolate'));
  const bin = path.join(root, 'usr', 'local', 'bin', 'vfio-isolate');
  fs.mkdirSync(path.dirname(bin), { recursive: true, mode: 0o755 });
  fs.symlinkSync('../lib/node_modules/vfio-isolate/dist/vfio-isolate.mjs', bin);
  return { ...pkg, root, node, bin, calls };
}

/** chown -R uid:uid (symlinks themselves, not their targets). */
export function chownTree(p: string, uid = 1000): void {
  fs.lchownSync(p, uid, uid);
  if (fs.lstatSync(p).isDirectory()) for (const e of fs.readdirSync(p)) chownTree(path.join(p, e), uid);
}

/**
 * Run `fn` as if this process were `node tool` started by `execPath`: the hook install reads process.execPath and
 * process.argv[1], as it does when the installed tool runs. Restored afterwards.
 */
export async function asInvokedBy<T>(execPath: string, tool: string, fn: () => Promise<T>): Promise<T> {
  const saved = { execPath: process.execPath, argv1: process.argv[1] };
  process.execPath = execPath;
  process.argv[1] = tool;
  try {
    return await fn();
  } finally {
    process.execPath = saved.execPath;
    process.argv[1] = saved.argv1!;
  }
}

/**
 * Run `fn` as a root-owned fixture install runs the tool, when one can be made (root): libvirt hook install refuses
 * a tool that others could change, such as this test file in a checkout under /tmp. Without root, `fn` runs as is.
 */
export async function asInstalled<T>(fn: () => Promise<T>): Promise<T> {
  const base = trustedBase();
  if (!base) return fn();
  const dir = tempTree(base);
  try {
    const inst = fakeInstall(dir);
    return await asInvokedBy(inst.node, inst.bin, fn);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
