/**
 * koffi (the C calls node lacks: flock, sched_*affinity, write with its errno, statx), loaded once per run, and the
 * C library through it.
 *
 * On a glibc system the native addon is loaded straight from the `@koromix/koffi-linux-ARCH` package beside koffi,
 * the file koffi's own loader picks there (and the one a libvirt hook's trust check covers, hook-targets.ts). koffi's
 * loader first reads node's ELF header and several package files and runs three modules: 10–14 ms natively and
 * about 400 ms under emulation, against 3 ms for the addon alone. Anywhere else (musl, another layout, versions that
 * differ), or when the addon does not load, koffi's own loader runs.
 */
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const fs = process.getBuiltinModule('node:fs');

type Koffi = typeof import('koffi');
type Library = ReturnType<Koffi['load']>;

/** The dynamic loader of glibc and of musl, by node's process.arch. */
const GLIBC: Partial<Record<string, string>> = {
  x64: '/lib64/ld-linux-x86-64.so.2',
  arm64: '/lib/ld-linux-aarch64.so.1',
};
const MUSL: Partial<Record<string, string>> = {
  x64: '/lib/ld-musl-x86_64.so.1',
  arm64: '/lib/ld-musl-aarch64.so.1',
};

let koffi: Koffi | undefined;
let libc: Library | undefined;

/**
 * The native addon koffi would load on this system and its version, when it can be loaded without koffi's loader: a
 * glibc system (its loader present, musl's absent); koffi where node finds it from `from` (NODE_PATH and the global
 * folders aside), a directory with a package.json in the nearest node_modules that has anything named koffi; the
 * `@koromix/koffi-linux-ARCH` package beside koffi's real directory (which hook-targets.ts checks) and none inside
 * it; both packages of the same version. Undefined otherwise.
 */
export function koffiAddon(from: string, arch = process.arch): { path: string; version: string } | undefined {
  const glibc = GLIBC[arch];
  const musl = MUSL[arch];
  if (process.platform !== 'linux' || !glibc || !musl) return undefined;
  if (!fs.existsSync(glibc) || fs.existsSync(musl)) return undefined;
  let nm: string | undefined;
  for (let d = path.resolve(from); nm === undefined; d = path.dirname(d)) {
    const here = path.join(d, 'node_modules');
    // node tries koffi as a file (.js, .json, .node) before the directory: any of them ends its search here
    if (
      path.basename(d) !== 'node_modules' &&
      ['', '.js', '.json', '.node'].some((x) => fs.existsSync(`${here}/koffi${x}`))
    )
      nm = here;
    else if (d === path.dirname(d)) return undefined;
  }
  if (['.js', '.json', '.node'].some((x) => fs.existsSync(`${nm}/koffi${x}`))) return undefined;
  try {
    // koffi takes the package from beside its real directory (a symlinked koffi: beside its target), or from its own
    // node_modules first when it has one there: that case is left to koffi
    const real = fs.realpathSync.native(path.join(nm, 'koffi'));
    if (fs.existsSync(path.join(real, 'node_modules', '@koromix', `koffi-linux-${arch}`))) return undefined;
    const version = (p: string): unknown =>
      (JSON.parse(fs.readFileSync(path.join(p, 'package.json'), 'utf8')) as { version?: unknown }).version;
    const want = version(real);
    const pkg = path.join(path.dirname(real), '@koromix', `koffi-linux-${arch}`);
    const addon = path.join(pkg, `linux_${arch}`, 'koffi.node');
    return typeof want === 'string' && version(pkg) === want && fs.existsSync(addon)
      ? { path: addon, version: want }
      : undefined;
  } catch {
    return undefined; // no package.json, or one that is not JSON: koffi's loader says what is wrong
  }
}

/** koffi itself; throws (as koffi's loader does) where it cannot be loaded. */
export function loadKoffi(): Koffi {
  if (koffi) return koffi;
  const addon = koffiAddon(path.dirname(fileURLToPath(import.meta.url)));
  if (addon) {
    const m = { exports: {} as Partial<Koffi> };
    try {
      process.dlopen(m, addon.path);
    } catch {
      m.exports = {}; // koffi's own loader decides
    }
    // koffi's loader refuses an addon of another version the same way
    if (m.exports.version !== undefined && m.exports.version !== addon.version)
      throw new Error('Mismatched native Koffi modules');
    if (m.exports.version !== undefined) {
      koffi = m.exports as Koffi;
      return koffi;
    }
  }
  koffi = createRequire(import.meta.url)('koffi') as Koffi;
  return koffi;
}

/** The C library, loaded through koffi once for every caller. */
export function loadLibc(): Library {
  libc ??= loadKoffi().load('libc.so.6');
  return libc;
}
