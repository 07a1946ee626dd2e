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
import { koffiPackages } from './paths.ts';

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
 * glibc system (its loader present, musl's absent); koffi as node resolves it from the file `from`; the
 * `@koromix/koffi-linux-ARCH` package beside it (koffiPackages) and none inside koffi's directory, where koffi would
 * look first; both packages of the same version. Undefined otherwise.
 */
export function koffiAddon(from: string): { path: string; version: string } | undefined {
  const arch = process.arch;
  const glibc = GLIBC[arch];
  const musl = MUSL[arch];
  if (process.platform !== 'linux' || !glibc || !musl) return undefined;
  if (!fs.existsSync(glibc) || fs.existsSync(musl)) return undefined;
  try {
    const { koffi, native } = koffiPackages(fs.realpathSync(createRequire(from).resolve('koffi')));
    const nested = [
      'node_modules',
      'src/node_modules',
      'src/koffi/node_modules',
      'src/koffi/src/node_modules',
    ];
    if (nested.some((d) => fs.existsSync(path.join(koffi, d, '@koromix', `koffi-linux-${arch}`))))
      return undefined;
    const version = (p: string): unknown =>
      (JSON.parse(fs.readFileSync(path.join(p, 'package.json'), 'utf8')) as { version?: unknown }).version;
    const want = version(koffi);
    const addon = path.join(native, `linux_${arch}`, 'koffi.node');
    return typeof want === 'string' && version(native) === want && fs.existsSync(addon)
      ? { path: addon, version: want }
      : undefined;
  } catch {
    return undefined; // koffi not found, or a package.json that is not JSON: koffi's loader says what is wrong
  }
}

/** koffi itself; throws (as koffi's loader does) where it cannot be loaded. */
export function loadKoffi(): Koffi {
  if (koffi) return koffi;
  const addon = koffiAddon(fileURLToPath(import.meta.url));
  if (addon) {
    const m = { exports: {} as Partial<Koffi> };
    try {
      process.dlopen(m, addon.path);
    } catch {
      /* koffi's own loader decides */
    }
    // an addon of another version than its package says: koffi's own loader decides too
    if (m.exports.version === addon.version) {
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
