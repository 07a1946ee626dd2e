/**
 * write(2) through koffi, loaded lazily: a refused write returns its errno instead of throwing. Node's writeSync
 * builds two errors with stack traces per refusal (its own, then ours), about 1 ms under TCG; a move from the root
 * cgroup meets one refusal per kernel thread bound to a CPU (four or more per CPU).
 */
import { constants } from 'node:os';
import { loadKoffi, loadLibc } from './koffi.ts';

/** Writes `text` (as UTF-8) to `fd` with one write(2): undefined on success, else the errno's name ('EINVAL', ...). */
export type RawWrite = (fd: number, text: string) => string | undefined;

const NAMES = new Map<number, string>(Object.entries(constants.errno).map(([name, n]) => [n, name]));

let cached: RawWrite | undefined;

/** The raw write, or undefined where koffi cannot be loaded (callers then use node:fs and its exceptions). */
export function loadRawWrite(): RawWrite | undefined {
  if (cached) return cached;
  try {
    const koffi = loadKoffi();
    const libc = loadLibc();
    const write = libc.func('long write(int fd, const char *buf, size_t count)');
    const errnoFn = libc.func('int *__errno_location()');
    cached = (fd, text) => {
      const bytes = Buffer.byteLength(text);
      const n = write(fd, text, bytes) as number;
      if (n === bytes) return undefined;
      if (n >= 0) return 'EIO'; // a short write of a control file: not what the kernel does
      const errno = koffi.decode(errnoFn(), 'int') as number;
      return NAMES.get(errno) ?? `E${errno}`;
    };
  } catch {
    return undefined;
  }
  return cached;
}
