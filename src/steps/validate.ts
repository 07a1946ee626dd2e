/**
 * Restore may only write what the tool itself writes. Every path in a journal is resolved (no `..`, symlinks
 * followed inside the root) and must land in an allowed kernel interface; every value must have the shape of
 * the file it goes to. Anything else refuses the whole journal before any write.
 */
import { UsageError } from '../errors.ts';
import type { Kernel } from '../kernel/kernel.ts';
import { irqRuleOf, writableRules as rules, type WritableRule } from '../kernel/writable.ts';
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

/** systemd refuses CPU (and node) numbers from 8192 on in AllowedCPUs= / AllowedMemoryNodes=. */
const SYSTEMD_MAX_CPU = 8191;

/** MAX_NUMNODES of the kernel: memory node numbers are below it. */
const MAX_NODES = 1024;

/**
 * Is `s` a CPU/node list ("0-3,8") whose every number is at most `max`? Checked on the text, range by range, before
 * anything is materialised (a record "0-999999999999" is refused, not expanded).
 */
export function listWithin(s: string, max: number, allowEmpty: boolean): boolean {
  const t = s.trim();
  if (t === '') return allowEmpty;
  if (t.length > 4096) return false;
  for (const part of t.split(',')) {
    const m = /^(\d{1,7})(?:-(\d{1,7}))?$/.exec(part);
    if (!m) return false;
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (a > b || b > max) return false;
  }
  return true;
}

/** Is `s` a hex mask ("ff,00000000") with no bit at or above `bits`? */
export function maskWithin(s: string, bits: number): boolean {
  const hex = s.trim().replace(/,/g, '').replace(/^0+/, '');
  if (!/^[0-9a-fA-F]*$/.test(hex)) return false;
  if (hex === '') return true;
  return (hex.length - 1) * 4 + (32 - Math.clz32(parseInt(hex[0]!, 16))) <= bits;
}

export function validateRecords(k: Kernel, recs: readonly UndoRecord[], file: string): void {
  // the cgroup mount only when a record names a cgroup or a file that may be one (an IRQ journal needs neither)
  let mountOnce: string | undefined;
  const mount = (): string => (mountOnce ??= k.cgroups.mount);
  let rulesOnce: WritableRule[] | undefined;
  const rs = (): readonly WritableRule[] => (rulesOnce ??= rules(mount()));
  const maxCpu = k.possibleCpus.last ?? 0;
  const cgDir = (p: string): boolean =>
    p.startsWith(mount() + '/') &&
    !p
      .slice(mount().length)
      .split('/')
      .some((s) => s === '..');
  const fail = (i: number, msg: string): never => {
    throw new UsageError(
      `${file}: refusing the whole journal: record ${i + 1}: ${msg}`,
      'nothing was changed',
    );
  };
  /** Values bounded to what the tool writes: CPU lists and masks within the possible CPUs, node lists within MAX_NUMNODES. */
  const valueFits = (p: string, value: string): boolean => {
    if (/\/cpuset\.mems$/.test(p)) return listWithin(value, MAX_NODES - 1, true);
    if (/\/(cpuset\.cpus(\.exclusive)?|smp_affinity_list)$/.test(p)) return listWithin(value, maxCpu, true);
    if (/\/(smp_affinity|default_smp_affinity|cpumask)$/.test(p)) return maskWithin(value, maxCpu + 1);
    return true;
  };
  const checkPath = (i: number, p: string, kind: 'file' | 'cgroup', values: string[] = []): void => {
    // an IRQ affinity file is canonical as written (procfs has no symlink on its way: irqRuleOf)
    const irqRule = irqRuleOf(p);
    let real: string;
    try {
      real = irqRule ? p : resolveSystemPath(k, p);
    } catch {
      return fail(i, `path ${JSON.stringify(p)} is not a plain absolute path`);
    }
    // Canonical only: resolving the path changes nothing (the write then opens exactly this path, no symlinks).
    if (real !== p)
      fail(i, `${JSON.stringify(p)} is not a canonical path (it resolves to ${JSON.stringify(real)})`);
    if (kind === 'cgroup') {
      if (!cgDir(real)) fail(i, `${JSON.stringify(p)} is not a cgroup below ${mount()}`);
      return;
    }
    const rule = irqRule ?? rs().find((r) => r.re.test(real));
    if (!rule) return fail(i, `${JSON.stringify(p)} is not a file vfio-isolate writes`);
    for (const value of values) {
      if (!rule.value.test(value.trim()) || !valueFits(p, value)) {
        fail(i, `value ${JSON.stringify(value.slice(0, 40))} does not fit ${p}`);
      }
    }
  };
  recs.forEach((rec, i) => {
    switch (rec.kind) {
      case 'write':
        for (const [p, ...values] of rec.files) checkPath(i, p, 'file', values);
        break;
      case 'mkdir':
        checkPath(i, rec.path, 'cgroup');
        break;
      case 'controller':
        if (rec.path !== mount()) checkPath(i, rec.path, 'cgroup');
        break;
      case 'rmdir':
        checkPath(i, rec.path, 'cgroup');
        for (const [name, value] of rec.settings) checkPath(i, `${rec.path}/${name}`, 'file', [value]);
        break;
      case 'tasks':
        for (const p of [rec.from, rec.to]) if (p !== mount()) checkPath(i, p, 'cgroup');
        if (rec.from === rec.to) fail(i, `tasks moved from ${rec.from} to itself`);
        break;
      case 'affinity':
        if (rec.listed !== undefined && rec.listedAt === undefined)
          fail(i, 'affinity of threads identified by the list time, without that time (listedAt)');
        for (const [tid, list] of [...rec.tasks.map(([t, , l]) => [t, l] as const), ...(rec.listed ?? [])])
          if (!listWithin(list, maxCpu, false))
            fail(
              i,
              `affinity ${JSON.stringify(list.slice(0, 40))} of thread ${tid} is not a list of possible CPUs (0-${maxCpu})`,
            );
        break;
      case 'sched':
        for (const [tid, , policy, prio] of rec.tasks) {
          // SCHED_OTHER/BATCH/IDLE have priority 0; FIFO/RR 1..99 (what sched_setscheduler accepts).
          const rt = policy === 1 || policy === 2;
          if (rt ? prio < 1 : prio !== 0) fail(i, `policy ${policy} with priority ${prio} for thread ${tid}`);
        }
        break;
      case 'irqbalance-ban':
        for (const list of [rec.cpus, rec.old].filter((l) => l !== null))
          if (!listWithin(list, maxCpu, false))
            fail(
              i,
              `irqbalance ban ${JSON.stringify(list.slice(0, 40))} is not a list of possible CPUs (0-${maxCpu})`,
            );
        break;
      case 'unit':
        // The unit name is fully described by its schema; the lists must be CPU/node lists systemd takes. A value
        // before may name CPUs this machine lacks (systemd keeps what an administrator gave it), so the bound is
        // systemd's own (CPU numbers below 8192), not the possible CPUs.
        for (const [prop, pair] of [
          ['AllowedCPUs', rec.allowedCpus],
          ['AllowedMemoryNodes', rec.allowedMemoryNodes],
        ] as const)
          for (const list of pair ?? [])
            if (!listWithin(list, SYSTEMD_MAX_CPU, true))
              fail(
                i,
                `${rec.unit} ${prop}=${JSON.stringify(list.slice(0, 40))} is not a list within 0-${SYSTEMD_MAX_CPU}`,
              );
        break;
      case 'service':
        break; // fully described by its schema (a fixed name)
    }
  });
}
