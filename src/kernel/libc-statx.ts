/**
 * A file's link count by statx(2) through koffi, loaded lazily. Node's statSync builds a Stats object with four
 * Dates per call: under TCG 150–250 µs of a /proc/PID/task stat, where the koffi call takes 15–60 µs. Only runs
 * that load koffi anyway (the lock, sched_getaffinity, raw writes) ask for link counts.
 */
import { loadLibc } from './koffi.ts';

/** The link count of what is at `path` (symlinks followed), or undefined when it cannot be read (or holds a NUL byte). */
export type LinkCount = (path: string) => number | undefined;

const AT_FDCWD = -100;
const STATX_NLINK = 0x4;

let cached: LinkCount | null | undefined;

/** The statx link count, or undefined where koffi or statx cannot be loaded (callers then use node:fs). */
export function loadLinkCount(): LinkCount | undefined {
  if (cached !== undefined) return cached ?? undefined;
  cached = null;
  try {
    const libc = loadLibc();
    const statx = libc.func(
      'int statx(int dirfd, const char *path, int flags, unsigned int mask, _Out_ uint8_t *buf)',
    );
    // struct statx (the same on every architecture): stx_mask u32 at 0, stx_nlink u32 at 16; 256 bytes in all
    const buf = Buffer.alloc(256);
    const word = new Uint32Array(buf.buffer, buf.byteOffset, 64);
    cached = (path) => {
      // the C string ends at a NUL: statx would count another path's links (node:fs refuses such a path)
      if (path.includes('\0')) return undefined;
      if ((statx(AT_FDCWD, path, 0, STATX_NLINK, buf) as number) !== 0) return undefined;
      return (word[0]! & STATX_NLINK) !== 0 ? word[4] : undefined;
    };
  } catch {
    /* no koffi, or a libc without statx (glibc before 2.28) */
  }
  return cached ?? undefined;
}
