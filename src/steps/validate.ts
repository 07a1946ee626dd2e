/**
 * Restore may only write what the tool itself writes. Every path in a journal is resolved (no `..`, symlinks
 * followed inside the root) and must land in an allowed kernel interface; every value must have the shape of
 * the file it goes to. Anything else refuses the whole journal before any write.
 */
import { UsageError } from '../errors.ts';
import type { Kernel } from '../kernel/kernel.ts';
import { writableRules as rules } from '../kernel/writable.ts';
import type { UndoRecord } from './records.ts';

/** Resolve a system path: reject `..`/`.`/empty segments; follow symlinks of the existing part inside the root. */
export function resolveSystemPath(k: Kernel, path: string): string {
  const segs = path.split('/').slice(1);
  if (!path.startsWith('/') || segs.some((s) => s === '' || s === '.' || s === '..')) {
    throw new Error('not a plain absolute path');
  }
  // Find the longest existing prefix and resolve it.
  for (let i = segs.length; i >= 1; i--) {
    const prefix = '/' + segs.slice(0, i).join('/');
    if (k.fs.exists(prefix)) {
      const real = k.fs.realpath(prefix);
      const rest = segs.slice(i);
      return rest.length ? `${real === '/' ? '' : real}/${rest.join('/')}` : real;
    }
  }
  return path;
}

export function validateRecords(k: Kernel, recs: readonly UndoRecord[], file: string): void {
  const mount = k.cgroups.mount;
  const rs = rules(mount);
  const cgDir = (p: string): boolean =>
    p.startsWith(mount + '/') &&
    !p
      .slice(mount.length)
      .split('/')
      .some((s) => s === '..');
  const fail = (i: number, msg: string): never => {
    throw new UsageError(
      `${file}: refusing the whole journal: record ${i + 1}: ${msg}`,
      'nothing was changed',
    );
  };
  const checkPath = (i: number, p: string, kind: 'file' | 'cgroup', value?: string): void => {
    let real: string;
    try {
      real = resolveSystemPath(k, p);
    } catch {
      return fail(i, `path ${JSON.stringify(p)} is not a plain absolute path`);
    }
    if (kind === 'cgroup') {
      if (real !== p || !cgDir(real)) fail(i, `${JSON.stringify(p)} is not a cgroup below ${mount}`);
      return;
    }
    const rule = rs.find((r) => r.re.test(real));
    if (!rule) return fail(i, `${JSON.stringify(p)} is not a file vfio-isolate writes`);
    // A symlink may only lead to the same kind of file (cpuN/cpufreq → policyN); cgroup files must be literal.
    if (real !== p && real.startsWith(mount)) fail(i, `${JSON.stringify(p)} goes through a symbolic link`);
    if (value !== undefined && !rule.value.test(value.trim())) {
      fail(i, `value ${JSON.stringify(value.slice(0, 40))} does not fit ${p}`);
    }
  };
  recs.forEach((rec, i) => {
    switch (rec.kind) {
      case 'write':
        for (const [p, old] of rec.files) checkPath(i, p, 'file', old);
        break;
      case 'mkdir':
        checkPath(i, rec.path, 'cgroup');
        break;
      case 'controller':
        if (rec.path !== mount) checkPath(i, rec.path, 'cgroup');
        break;
      case 'rmdir':
        checkPath(i, rec.path, 'cgroup');
        for (const [name, value] of rec.settings) checkPath(i, `${rec.path}/${name}`, 'file', value);
        break;
      case 'tasks':
        for (const p of [rec.from, rec.to]) if (p !== mount) checkPath(i, p, 'cgroup');
        break;
      case 'affinity':
      case 'sched':
      case 'service':
      case 'irqbalance-config':
      case 'unit':
        break; // fully described by their schemas (ids, lists, fixed names)
    }
  });
}
