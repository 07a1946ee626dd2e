/**
 * The guest's initramfs: static busybox, the few modules needed to reach the root share (virtio_pci, fuse,
 * virtiofs, overlay and their dependencies, uncompressed so busybox insmod can load them) and the stage-1
 * `/init` (initramfs-init.sh). Written as a newc cpio by hand; cached per kernel and content hash.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { VM_DIR, cacheSubdir } from './cache.ts';
import type { Kernel } from './kernels.ts';

/** Modules the stage-1 init loads (when they are not built in). */
export const INITRAMFS_MODULES = ['virtio_pci', 'fuse', 'virtiofs', 'overlay'] as const;

export const BUSYBOX_CANDIDATES = ['/bin/busybox', '/usr/bin/busybox'];

const FORMAT = 1;

interface CpioEntry {
  name: string;
  mode: number;
  data?: Buffer;
  rdevMajor?: number;
  rdevMinor?: number;
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

/** Serialise entries as a newc ("070701") cpio archive. */
export function writeCpio(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  const push = (e: CpioEntry): void => {
    const name = Buffer.from(e.name + '\0');
    const data = e.data ?? Buffer.alloc(0);
    const fields = [
      ino++,
      e.mode,
      0, // uid
      0, // gid
      (e.mode & 0o170000) === 0o040000 ? 2 : 1,
      0, // mtime: fixed, so the image is reproducible
      data.length,
      0,
      0,
      e.rdevMajor ?? 0,
      e.rdevMinor ?? 0,
      name.length,
      0,
    ];
    const header = '070701' + fields.map((f) => f.toString(16).padStart(8, '0')).join('');
    parts.push(Buffer.from(header), name, Buffer.alloc(pad4(110 + name.length)));
    parts.push(data, Buffer.alloc(pad4(data.length)));
  };
  for (const e of entries) push(e);
  push({ name: 'TRAILER!!!', mode: 0 });
  return Buffer.concat(parts);
}

function findBusybox(): string | undefined {
  return BUSYBOX_CANDIDATES.find((p) => existsSync(p) && isStatic(p));
}

/** A static ELF64 executable has no PT_INTERP program header. */
export function isStaticElf(buf: Buffer): boolean {
  if (buf.length < 64 || buf.readUInt32BE(0) !== 0x7f454c46 || buf[4] !== 2 || buf[5] !== 1) return false;
  const phoff = Number(buf.readBigUInt64LE(0x20));
  const phentsize = buf.readUInt16LE(0x36);
  const phnum = buf.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    const off = phoff + i * phentsize;
    if (off + 4 > buf.length) return false;
    if (buf.readUInt32LE(off) === 3 /* PT_INTERP */) return false;
  }
  return true;
}

function isStatic(path: string): boolean {
  try {
    return isStaticElf(readFileSync(path));
  } catch {
    return false;
  }
}

export function busyboxPath(): string | undefined {
  return findBusybox();
}

/** Map module name (with `_` for `-`) → path of its .ko[.xz|.zst|.gz] file. */
function moduleIndex(modulesDir: string): Map<string, string> {
  const index = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const ent of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, ent.name);
      if (ent.isDirectory()) walk(p);
      else {
        const m = /^(.+)\.ko(\.xz|\.zst|\.gz)?$/.exec(ent.name);
        if (m?.[1]) index.set(m[1].replace(/-/g, '_'), p);
      }
    }
  };
  walk(join(modulesDir, 'kernel'));
  return index;
}

function decompress(path: string): Buffer {
  if (path.endsWith('.gz')) return gunzipSync(readFileSync(path));
  const tool = path.endsWith('.xz') ? 'xz' : path.endsWith('.zst') ? 'zstd' : undefined;
  if (!tool) return readFileSync(path);
  const r = spawnSync(tool, ['-dc', path], { maxBuffer: 256 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${tool} -dc ${path} failed: ${r.stderr?.toString() ?? r.error}`);
  return r.stdout;
}

function modinfoDepends(ko: Buffer): string[] {
  const i = ko.indexOf('\0depends=');
  if (i < 0) return [];
  const end = ko.indexOf(0, i + 1);
  return ko
    .subarray(i + '\0depends='.length, end)
    .toString()
    .split(',')
    .filter(Boolean)
    .map((d) => d.replace(/-/g, '_'));
}

/** The modules to load, dependencies first; built-in ones are skipped. */
export function resolveModules(kernel: Kernel, wanted: readonly string[]): { name: string; data: Buffer }[] {
  const index = moduleIndex(kernel.modulesDir);
  const out: { name: string; data: Buffer }[] = [];
  const seen = new Set<string>();
  const visit = (name: string): void => {
    if (seen.has(name)) return;
    seen.add(name);
    const path = index.get(name);
    if (!path) return; // built in (or absent: the init reports what fails to mount)
    const data = decompress(path);
    for (const dep of modinfoDepends(data)) visit(dep);
    out.push({ name, data });
  };
  for (const w of wanted) visit(w);
  return out;
}

/** Drop superseded images of the same kernel (older than an hour, so a guest starting right now keeps its own). */
function pruneOld(dir: string, release: string, keep: string): void {
  const cutoff = Date.now() - 3600 * 1000;
  for (const f of readdirSync(dir)) {
    const p = join(dir, f);
    if (p === keep || !f.startsWith(`${release}-`)) continue;
    try {
      if (statSync(p).mtimeMs < cutoff) rmSync(p, { force: true });
    } catch {
      // removed concurrently
    }
  }
}

/** Build (or reuse) the initramfs for `kernel`; returns its path. */
export function ensureInitramfs(kernel: Kernel): string {
  const busybox = findBusybox();
  if (!busybox) throw new Error('no static busybox found (apt-get install busybox-static)');
  const init = readFileSync(join(VM_DIR, 'initramfs-init.sh'));
  const bb = statSync(busybox);
  const key = createHash('sha256')
    .update(`${FORMAT}\n${kernel.package}\n${kernel.version}\n${INITRAMFS_MODULES.join(',')}\n`)
    .update(`${busybox}:${bb.size}:${bb.mtimeMs}\n`)
    .update(init)
    .digest('hex')
    .slice(0, 16);
  const target = join(cacheSubdir('initramfs'), `${kernel.release}-${key}.cpio`);
  if (existsSync(target)) return target;

  const modules = resolveModules(kernel, INITRAMFS_MODULES);
  const entries: CpioEntry[] = [];
  for (const d of ['bin', 'dev', 'proc', 'sys', 'lower', 'rw', 'newroot', 'modules']) {
    entries.push({ name: d, mode: 0o040755 });
  }
  entries.push({ name: 'dev/console', mode: 0o020600, rdevMajor: 5, rdevMinor: 1 });
  entries.push({ name: 'dev/null', mode: 0o020666, rdevMajor: 1, rdevMinor: 3 });
  entries.push({ name: 'bin/busybox', mode: 0o100755, data: readFileSync(busybox) });
  entries.push({ name: 'init', mode: 0o100755, data: init });
  modules.forEach((m, i) => {
    entries.push({
      name: `modules/${String(i).padStart(2, '0')}-${m.name}.ko`,
      mode: 0o100644,
      data: m.data,
    });
  });
  const tmp = `${target}.${process.pid}.tmp`;
  writeFileSync(tmp, writeCpio(entries));
  renameSync(tmp, target);
  pruneOld(dirname(target), kernel.release, target);
  return target;
}
