import { RuntimeFailure } from '../errors.ts';
import { ErrnoError, errnoOf } from './fs.ts';

/** What an errno means for the file the tool was touching, in words a user understands. */
export function explainErrno(e: unknown, what?: string): RuntimeFailure {
  if (e instanceof RuntimeFailure) return e;
  const errno = errnoOf(e);
  // not an errno (a module that failed to load, a bug): its own message, not a made-up kernel error
  if (errno === undefined || !/^E[A-Z0-9]+$/.test(errno)) {
    const message = e instanceof Error ? e.message.split('\n')[0]! : String(e);
    return new RuntimeFailure(
      `${what ? `${what}: ` : ''}${message}${errno ? ` (${errno})` : ''}`,
      'this is no error of the kernel; run with --debug to see where it happened',
    );
  }
  const code = errno;
  const path = e instanceof ErrnoError ? e.path : '';
  const op = e instanceof ErrnoError ? e.op : 'access';
  const subject = what ?? (path || (e instanceof Error && 'path' in e ? String(e.path) : 'a kernel file'));
  switch (code) {
    case 'EACCES':
    case 'EPERM':
      return new RuntimeFailure(`permission denied: cannot ${op} ${subject}`, 'must run as root (try sudo)');
    case 'ENOENT':
      return new RuntimeFailure(`${subject} does not exist`, hintForMissing(path));
    case 'EROFS':
      return new RuntimeFailure(
        `${subject} is on a read-only file system`,
        'the cgroup file system is mounted read-only (in a container?)',
      );
    case 'EBUSY':
      return new RuntimeFailure(
        `${subject} is busy (${op})`,
        'a cgroup still has tasks or child cgroups, or a controller is still in use below it',
      );
    case 'ENOSPC':
      return new RuntimeFailure(
        `${subject}: the cpuset has no CPUs or memory nodes to run tasks on`,
        'set --cpus and --mems first',
      );
    case 'EINVAL':
      return new RuntimeFailure(
        `the kernel refused the value for ${subject} (invalid argument)`,
        'check that the CPUs/nodes are online and allowed by the parent cgroup',
      );
    case 'ESRCH':
      return new RuntimeFailure(`${subject}: no such process`);
    case 'EEXIST':
      return new RuntimeFailure(
        `${subject} already exists`,
        'use cpuset-modify to change an existing cpuset',
      );
    case 'EOPNOTSUPP':
      return new RuntimeFailure(`${subject}: operation not supported by this kernel`);
    case 'EIO':
      return new RuntimeFailure(`${subject}: I/O error from the kernel`);
    default:
      return new RuntimeFailure(`${subject}: ${op} failed (${code})`);
  }
}

function hintForMissing(path: string): string | undefined {
  if (/\/cpuset\.[a-z_.]+$/.test(path))
    return 'the cpuset controller is not enabled for this cgroup (see vfio-isolate status)';
  if (path.includes('/cpufreq/')) return 'no cpufreq driver is loaded for this CPU (common in VMs)';
  if (path.includes('/proc/sys/vm/compact_memory')) return 'the kernel was built without CONFIG_COMPACTION';
  return undefined;
}
