import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (two levels above this file). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** This folder (test/vm), where the guest scripts live. */
export const VM_DIR = join(REPO_ROOT, 'test', 'vm');

/** Cache for kernel packages, unpacked kernels, initramfs images and job folders. */
export function cacheDir(): string {
  const dir = resolve(process.env.VFIO_VM_CACHE || join(REPO_ROOT, '.vm-cache'));
  mkdirSync(dir, { recursive: true });
  return dir;
}

export function cacheSubdir(name: string): string {
  const dir = join(cacheDir(), name);
  mkdirSync(dir, { recursive: true });
  return dir;
}
