/**
 * sched_{get,set}affinity and sched_{get,set}scheduler through koffi, loaded lazily (only when a command
 * changes thread affinity or scheduling), so start-up stays fast.
 */
import { loadKoffi, loadLibc } from './koffi.ts';
import { ErrnoError } from './fs.ts';

export interface Sched {
  getAffinity(tid: number): number[];
  setAffinity(tid: number, cpus: readonly number[]): void;
  getScheduler(tid: number): { policy: number; priority: number };
  setScheduler(tid: number, policy: number, priority: number): void;
}

const ERRNO: Record<number, string> = { 1: 'EPERM', 3: 'ESRCH', 13: 'EACCES', 14: 'EFAULT', 22: 'EINVAL' };
const MASK_BYTES = 1024; // 8192 CPUs

let cached: Sched | undefined;

export function loadSched(): Sched {
  if (cached) return cached;
  const koffi = loadKoffi();
  const libc = loadLibc();
  const setaff = libc.func('int sched_setaffinity(int pid, size_t len, const uint8_t *mask)');
  const getaff = libc.func('int sched_getaffinity(int pid, size_t len, _Out_ uint8_t *mask)');
  const getsched = libc.func('int sched_getscheduler(int pid)');
  const getparam = libc.func('int sched_getparam(int pid, _Out_ int *param)');
  const setsched = libc.func('int sched_setscheduler(int pid, int policy, const int *param)');
  const errnoFn = libc.func('int *__errno_location()');
  const errno = (): string => {
    const p = errnoFn();
    const n = koffi.decode(p, 'int') as number;
    return ERRNO[n] ?? `E${n}`;
  };
  const fail = (op: string, tid: number): never => {
    throw new ErrnoError(errno(), op, `thread ${tid}`);
  };
  // The smallest mask length the kernel takes (a multiple of 8 bytes covering nr_cpu_ids; EINVAL when shorter),
  // found on the first call: copying and scanning 8 bytes instead of 1,024 makes a call ~5 µs instead of ~25 µs
  // under TCG (move-tasks reads one mask per thread on kernels before 6.2).
  let getLen = 8;
  let getBuf = Buffer.alloc(getLen);
  cached = {
    getAffinity(tid) {
      getBuf.fill(0);
      while (getaff(tid, getLen, getBuf) !== 0) {
        if (errno() !== 'EINVAL' || getLen >= MASK_BYTES) fail('sched_getaffinity', tid);
        getLen *= 2;
        getBuf = Buffer.alloc(getLen);
      }
      const out: number[] = [];
      for (let byte = 0; byte < getLen; byte++) {
        const b = getBuf[byte]!;
        if (b === 0) continue;
        for (let bit = 0; bit < 8; bit++) if (b & (1 << bit)) out.push(byte * 8 + bit);
      }
      return out;
    },
    setAffinity(tid, cpus) {
      const buf = Buffer.alloc(MASK_BYTES);
      for (const c of cpus) buf[c >> 3]! |= 1 << (c & 7);
      if (setaff(tid, MASK_BYTES, buf) !== 0) fail('sched_setaffinity', tid);
    },
    getScheduler(tid) {
      const policy = getsched(tid) as number;
      if (policy < 0) fail('sched_getscheduler', tid);
      const param = [0];
      if (getparam(tid, param) !== 0) fail('sched_getparam', tid);
      return { policy: policy & 0xff, priority: param[0] ?? 0 };
    },
    setScheduler(tid, policy, priority) {
      if (setsched(tid, policy, [priority]) !== 0) fail('sched_setscheduler', tid);
    },
  };
  return cached;
}
