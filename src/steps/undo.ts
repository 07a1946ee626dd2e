/** Applying an undo record: the one code path shared by rollback and `restore`. Tolerant and idempotent. */
import { CpuSet } from '../cpus/cpuset.ts';
import { errnoOf, type Updater } from '../kernel/fs.ts';
import { isIrqAffinityPath } from '../kernel/writable.ts';
import type { Kernel } from '../kernel/kernel.ts';
import { moveBackKeepingMasks } from '../kernel/tasks.ts';
import { readIds } from '../kernel/task-list.ts';
import { readBan, setBan } from '../kernel/irqbalance.ts';
import { stopOrStartIrqbalance } from '../kernel/services.ts';
import { setUnitProperties, showUnits, type UnitInfo, type UnitProps } from '../kernel/systemd.ts';
import type { Log } from '../report/log.ts';
import type { UndoRecord } from './records.ts';

export interface UndoResult {
  done: number;
  skipped: number;
  failed: string[];
  /**
   * Left alone because they no longer hold what the run wrote (someone changed them since): "path (holds X, the
   * run wrote Y)". Restore reports them and exits 1; --force writes the old values anyway.
   */
  conflicts: string[];
}

export interface UndoOptions {
  /** Write old values back even where the file no longer holds what the run wrote. */
  force?: boolean;
  /**
   * Every value the journal being restored recorded for a file (old values and values written). A file holding one
   * of them is in a state the journal itself made (a restore killed half-way and run again): not a conflict.
   */
  known?: ReadonlyMap<string, readonly string[]>;
  /**
   * Files a newer record of the same restore left alone (changed since): an older record does not write them either
   * (one of a journal before 0.6 has no value written to compare). undoRecord adds the files it leaves alone.
   */
  leftAlone?: Set<string>;
}

function parentOf(path: string): string {
  return path.slice(0, path.lastIndexOf('/')) || '/';
}

export function describeRecord(rec: UndoRecord): string {
  switch (rec.kind) {
    case 'write':
      return rec.files.length === 1
        ? `write back ${rec.files[0]![0]}`
        : `write back ${rec.files.length} files`;
    case 'mkdir':
      return `remove created cgroup ${rec.path}`;
    case 'rmdir':
      return `recreate cgroup ${rec.path}`;
    case 'controller':
      return `disable ${rec.controller} in ${rec.path}/cgroup.subtree_control`;
    case 'tasks':
      return `move ${rec.ids.length + (rec.pids?.length ?? 0)} tasks back from ${rec.to} to ${rec.from}`;
    case 'affinity':
      return `restore the affinity of ${rec.tasks.length + (rec.listed?.length ?? 0)} threads`;
    case 'sched':
      return `restore the scheduling policy of ${rec.tasks.length} threads`;
    case 'service':
      return `start ${rec.name} again`;
    case 'irqbalance-ban':
      return rec.old === null
        ? 'remove the irqbalance ban (drop-in under /run) and restart irqbalance'
        : `ban CPUs ${rec.old} in irqbalance again and restart it`;
    case 'unit':
      return `put back ${unitPropsText(rec, 0)} of systemd unit ${rec.unit} (systemctl set-property --runtime)`;
  }
}

/**
 * Lifting a restriction (AllowedCPUs= empty) makes systemd write "" to the unit's cpuset file. Where systemd keeps
 * the cpuset controller enabled (another unit needs it, e.g. a running VM's delegated scope), the kernel refuses
 * to empty a populated cpuset (ENOSPC) and the old restriction stays in effect. Then the unit is first widened to
 * what it inherits (its parent's effective CPUs / nodes) and lifted again: the property is empty as before, and
 * the file holds the inherited set explicitly (the same limit as for direct writes, see writeBack). `widened` is
 * called with the widen once systemd has taken it.
 */
function settleLifted(k: Kernel, unit: string, props: UnitProps, widened: (w: UnitProps) => void): void {
  const widen: UnitProps = {};
  for (const { key, inherited } of liftedButSet(k, unit, props)) widen[key] = inherited ?? '';
  if (Object.keys(widen).length === 0) return;
  setUnitProperties(k, unit, widen);
  widened(widen);
  setUnitProperties(k, unit, {
    allowedCpus: widen.allowedCpus !== undefined ? '' : undefined,
    allowedMemoryNodes: widen.allowedMemoryNodes !== undefined ? '' : undefined,
  });
}

/**
 * Before a restriction is lifted, the unit is widened to what it inherits while its cpuset still exists: lifting
 * the last restriction makes systemd disable the cpuset controller, and the kernel then leaves the unit's tasks on
 * the CPUs they had (they stay on the restricted CPUs, seen in the systemd guest). Widening first gives them every
 * CPU back; lifting then leaves the property empty, as it was. `widened` is called with the widen once systemd has taken it.
 */
function widenBeforeLift(k: Kernel, unit: string, props: UnitProps, widened: (w: UnitProps) => void): void {
  const widen: UnitProps = {};
  for (const { key, inherited } of liftedButSet(k, unit, props)) if (inherited) widen[key] = inherited;
  if (Object.keys(widen).length === 0) return;
  setUnitProperties(k, unit, widen);
  widened(widen);
}

/**
 * The properties `props` lifts ("") whose file in the unit's cgroup still names CPUs (nodes), each with what the
 * unit inherits (undefined when unknown). No systemd call when `props` lifts nothing.
 */
function liftedButSet(
  k: Kernel,
  unit: string,
  props: UnitProps,
): { key: (typeof UNIT_PROPERTIES)[number]['key']; inherited: string | undefined }[] {
  const lifted = UNIT_PROPERTIES.filter((p) => props[p.key] === '');
  if (lifted.length === 0) return [];
  const cg = showUnits(k, [unit]).get(unit)?.controlGroup ?? '';
  if (!cg.startsWith('/') || cg === '/') return [];
  const dir = `${k.cgroups.mount}${cg}`;
  return lifted
    .filter((p) => (k.readTrim(`${dir}/${p.file}`) ?? '') !== '')
    .map((p) => ({ key: p.key, inherited: inheritedBy(k, cg, p.file) }));
}

/** The unit properties a unit record may hold: its key, systemd's name, and the cgroup file systemd realizes it in. */
const UNIT_PROPERTIES = [
  { key: 'allowedCpus', name: 'AllowedCPUs', file: 'cpuset.cpus' },
  { key: 'allowedMemoryNodes', name: 'AllowedMemoryNodes', file: 'cpuset.mems' },
] as const;

/** How a restore names one property of a unit (in `known`, `leftAlone` and its conflicts); never a file's path. */
export function unitPropertyKey(unit: string, property: string): string {
  return `systemd unit ${unit} ${property}`;
}

/** The same CPU (node) list, however written ("0-3" and "0,1,2,3"); "" only equals "". */
function sameUnitList(a: string, b: string): boolean {
  if (a === b) return true;
  if (a === '' || b === '') return false;
  const x = canonicalList(a);
  return x !== undefined && x === canonicalList(b);
}

/** What a unit's cgroup inherits for `file` (its parent's effective CPUs or nodes), or undefined if unknown. */
function inheritedBy(k: Kernel, controlGroup: string, file: string): string | undefined {
  if (!controlGroup.startsWith('/') || controlGroup === '/') return undefined;
  const dir = `${k.cgroups.mount}${controlGroup}`;
  return k.readTrim(`${dir.slice(0, dir.lastIndexOf('/'))}/${file}.effective`);
}

/** Whether systemd shows `unit` with every property of `props` (false when it cannot be asked). */
function unitHolds(k: Kernel, unit: string, props: UnitProps): boolean {
  try {
    const now = showUnits(k, [unit]).get(unit);
    return (
      now !== undefined &&
      UNIT_PROPERTIES.every((p) => props[p.key] === undefined || sameUnitList(now[p.key], props[p.key]!))
    );
  } catch {
    return false;
  }
}

/** "AllowedCPUs=0-7 AllowedMemoryNodes=" with the values before (0) or applied (1). */
export function unitPropsText(rec: Extract<UndoRecord, { kind: 'unit' }>, which: 0 | 1): string {
  return propsText({
    allowedCpus: rec.allowedCpus?.[which],
    allowedMemoryNodes: rec.allowedMemoryNodes?.[which],
  });
}

/** "AllowedCPUs=0-7 AllowedMemoryNodes=": the properties `props` sets, by systemd's names. */
function propsText(props: UnitProps): string {
  return UNIT_PROPERTIES.filter((p) => props[p.key] !== undefined)
    .map((p) => `${p.name}=${props[p.key]}`)
    .join(' ');
}

export function undoRecord(k: Kernel, rec: UndoRecord, log: Log, opts: UndoOptions = {}): UndoResult {
  const r: UndoResult = { done: 0, skipped: 0, failed: [], conflicts: [] };
  const attempt = (what: string, f: () => void, tolerate: string[] = []): void => {
    try {
      f();
      r.done++;
      log.debugLine(`undo: ${what}`);
    } catch (e) {
      // an errno by its name; any other failure by its message (a systemctl call's says what systemd answered)
      const code = errnoOf(e) ?? (e instanceof Error ? e.message : String(e));
      if (tolerate.includes(code)) {
        r.skipped++;
        log.debugLine(`undo: ${what}: skipped (${code})`);
      } else r.failed.push(`${what}: ${code}`);
    }
  };
  switch (rec.kind) {
    case 'write': {
      // the canonical form of each distinct list value, worked out once per record (an IRQ record holds a few
      // values for many files)
      const lists = new Map<string, string | undefined>();
      const sameValue = (form: ValueForm, now: string, v: string): boolean =>
        sameValueIn(form, now, v, lists);
      for (const [path, old, wrote] of [...rec.files].reverse()) {
        // An IRQ's affinity file (records hold many) is opened once, read, and written through the same
        // descriptor; any other file, or one that cannot be opened so, is read and then written on its own.
        const irq = isIrqAffinityPath(path);
        let handle: Updater | undefined;
        try {
          if (irq) handle = k.openForUpdate(path);
        } catch {
          handle = undefined;
        }
        let now: string | undefined;
        try {
          now = (handle ? handle.text : k.read(path)).trim();
        } catch {
          now = undefined;
        }
        try {
          if (now === undefined && !k.fs.exists(path)) {
            r.skipped++;
            continue;
          }
          if (opts.leftAlone?.has(path) && !opts.force) {
            r.skipped++;
            log.debugLine(`undo: ${path}: left alone by a newer record`);
            continue;
          }
          const form = valueForm(path);
          if (now !== undefined && (sameValue(form, now, old) || inheritsAlready(k, path, now, old))) {
            r.skipped++;
            continue;
          }
          // Only where the file still holds what the run wrote: a value changed since by someone else stays.
          const ours = (v: string): boolean => sameValue(form, now!, v) || inheritsAlready(k, path, now!, v);
          if (
            wrote !== undefined &&
            now !== undefined &&
            !ours(wrote) &&
            !(opts.known?.get(path) ?? []).some(ours)
          ) {
            const what = `${path} (holds ${JSON.stringify(now)}, the run wrote ${JSON.stringify(wrote)})`;
            if (opts.force)
              log.warn(`--force: writing back ${JSON.stringify(old)} over a change since the run: ${what}`);
            else {
              r.conflicts.push(what);
              opts.leftAlone?.add(path);
              log.debugLine(`undo: ${path}: conflict, left alone`);
              continue;
            }
          }
          // IRQs that refuse were never changed; tolerate them refusing again.
          attempt(
            `${path} <- ${JSON.stringify(old)}`,
            () => (handle ? handle.write(old) : writeBack(k, path, old, log)),
            irq ? ['EIO', 'EPERM'] : [],
          );
        } finally {
          try {
            handle?.close();
          } catch {
            // the value is written (or left alone) already: a failing close changes nothing of that
          }
        }
      }
      break;
    }
    case 'mkdir': {
      if (!k.fs.isDir(rec.path)) {
        r.skipped++;
        break;
      }
      // Tasks born inside the cgroup after we created it go to the parent first.
      const file = k.fs.exists(`${rec.path}/tasks`) ? 'tasks' : 'cgroup.procs';
      try {
        const left = readIds(k.fs, `${rec.path}/${file}`);
        if (left.length > 0) moveBackKeepingMasks(k, rec.path, `${parentOf(rec.path)}/${file}`, left, file);
      } catch {
        /* reported by rmdir below */
      }
      attempt(`rmdir ${rec.path}`, () => k.fs.rmdir(rec.path), ['ENOENT']);
      break;
    }
    case 'rmdir':
      if (!k.fs.isDir(rec.path)) attempt(`mkdir ${rec.path}`, () => k.fs.mkdir(rec.path), ['EEXIST']);
      for (const [name, value] of rec.settings) {
        const path = `${rec.path}/${name}`;
        if (k.fs.exists(path)) attempt(`${path} <- ${JSON.stringify(value)}`, () => k.write(path, value));
      }
      break;
    case 'controller':
      attempt(`${rec.path}/cgroup.subtree_control <- -${rec.controller}`, () =>
        k.write(`${rec.path}/cgroup.subtree_control`, `-${rec.controller}`),
      );
      break;
    case 'tasks': {
      let inTo: Set<number>;
      try {
        inTo = new Set(readIds(k.fs, `${rec.to}/${rec.file}`));
      } catch {
        inTo = new Set();
      }
      const back: number[] = [];
      for (const id of rec.pids ?? []) {
        // Listed without start times: the same task started no later than the list was read (a reused pid
        // started after its predecessor exited, so after that). Only tasks still where we put them are read.
        if (!inTo.has(id) || rec.listedAt === undefined) {
          r.skipped++;
          continue;
        }
        const start = k.procs.startOf(id);
        if (start === undefined || start > rec.listedAt) {
          r.skipped++;
          continue;
        }
        back.push(id);
      }
      for (const [id, start] of rec.ids) {
        // Only tasks that are still the same task (pid + start time) and still where we put them.
        if (!inTo.has(id) || k.procs.startOf(id) !== start) {
          r.skipped++;
          continue;
        }
        back.push(id);
      }
      if (back.length > 0) {
        try {
          const res = moveBackKeepingMasks(k, rec.to, `${rec.from}/${rec.file}`, back, rec.file);
          r.done += res.moved.length;
          r.skipped += res.gone.length + res.unmovable.length;
        } catch (e) {
          r.failed.push(`move tasks back to ${rec.from}: ${errnoOf(e) ?? String(e)}`);
        }
      }
      break;
    }
    case 'affinity': {
      const { listedAt } = rec;
      type Entry = [tid: number, same: (start: number) => boolean, old: string];
      const entries: Entry[] = [
        ...rec.tasks.map(([tid, start, old]): Entry => [tid, (s) => s === start, old]),
        // listed by the list time: the same thread started no later than that (validate requires listedAt)
        ...(rec.listed ?? []).map(([tid, old]): Entry => [
          tid,
          (s) => listedAt !== undefined && s <= listedAt,
          old,
        ]),
      ];
      // threads share a few masks: each distinct one is expanded once
      const masks = new Map<string, number[]>();
      for (const [tid, same, old] of entries) {
        let cpus = masks.get(old);
        if (cpus === undefined) masks.set(old, (cpus = parseListLoose(old)));
        // a thread that has the journalled mask already needs nothing (a kernel thread bound to a CPU, which the
        // move did not change): one sched_getaffinity, no stat read
        if (hasMask(k, tid, cpus)) continue;
        const start = k.procs.startOf(tid);
        if (start === undefined || !same(start)) {
          r.skipped++;
          continue;
        }
        attempt(`affinity of ${tid} <- ${old}`, () => k.fs.setAffinity(tid, cpus), ['ESRCH', 'EINVAL']);
      }
      break;
    }
    case 'sched':
      for (const [tid, start, policy, prio] of rec.tasks) {
        if (k.procs.startOf(tid) !== start) {
          r.skipped++;
          continue;
        }
        // Only a thread that still has the policy the run set gets its old one back (--force: any thread, named).
        let cur: { policy: number; priority: number } | undefined;
        try {
          cur = k.fs.getScheduler(tid);
        } catch {
          cur = undefined;
        }
        if (cur === undefined && !opts.force) {
          r.skipped++;
          continue;
        }
        if (cur && (cur.policy !== rec.to[0] || cur.priority !== rec.to[1])) {
          if (cur.policy === policy && cur.priority === prio) {
            r.skipped++;
            continue;
          }
          const what = `thread ${tid} (has policy ${cur.policy}/${cur.priority}, the run set ${rec.to[0]}/${rec.to[1]})`;
          if (!opts.force) {
            r.conflicts.push(what);
            continue;
          }
          log.warn(`--force: setting policy ${policy}/${prio} again over a change since the run: ${what}`);
        }
        attempt(`scheduling of ${tid} <- ${policy}/${prio}`, () => k.fs.setScheduler(tid, policy, prio), [
          'ESRCH',
        ]);
      }
      break;
    case 'service':
      attempt(`start ${rec.name}`, () => stopOrStartIrqbalance(k, 'start', rec.how));
      break;
    case 'unit': {
      // Through systemd, only what differs now, and only where the unit still has what the run set (or another
      // value this journal recorded); a unit that is gone (a stopped scope) has nothing to restore.
      const props: UnitProps = {};
      let now: UnitInfo;
      try {
        now = showUnits(k, [rec.unit]).get(rec.unit)!;
        if (now.loadState !== 'loaded') {
          r.skipped++;
          break;
        }
        for (const prop of UNIT_PROPERTIES) {
          const pair = rec[prop.key];
          if (!pair) continue;
          const held = now[prop.key];
          if (sameUnitList(held, pair[0])) continue;
          const key = unitPropertyKey(rec.unit, prop.name);
          if (opts.leftAlone?.has(key) && !opts.force) {
            r.skipped++;
            log.debugLine(`undo: ${key}: left alone by a newer record`);
            continue;
          }
          // a lifted property ("") and one naming what the unit inherits now give it the same CPUs (nodes): reset's
          // lift sets the inherited set before it empties the property, and restore's own lift may leave it set
          const ours = (v: string): boolean =>
            sameUnitList(held, v) ||
            (v === '' &&
              held !== '' &&
              sameUnitList(held, inheritedBy(k, now.controlGroup, prop.file) ?? ''));
          if (!ours(pair[1]) && !(opts.known?.get(key) ?? []).some(ours)) {
            const what = `${key} (holds ${JSON.stringify(held)}, the run set ${JSON.stringify(pair[1])})`;
            if (opts.force)
              log.warn(
                `--force: setting ${JSON.stringify(pair[0])} again over a change since the run: ${what}`,
              );
            else {
              r.conflicts.push(what);
              opts.leftAlone?.add(key);
              log.debugLine(`undo: ${key}: conflict, left alone`);
              continue;
            }
          }
          props[prop.key] = pair[0];
        }
      } catch (e) {
        r.failed.push(`${rec.unit}: ${e instanceof Error ? e.message : String(e)}`);
        break;
      }
      if (Object.keys(props).length === 0) {
        r.skipped++;
        break;
      }
      const failedBefore = r.failed.length;
      const doneBefore = r.done;
      // a widen systemd took that gave the unit another value is a change made, even when the lift after it fails
      let widened = false;
      const onWiden = (w: UnitProps): void => {
        for (const p of UNIT_PROPERTIES) {
          const v = w[p.key];
          if (v !== undefined && !sameUnitList(now[p.key], v)) widened = true;
        }
      };
      attempt(`${rec.unit} ${propsText(props)}`, () => {
        widenBeforeLift(k, rec.unit, props, onWiden);
        setUnitProperties(k, rec.unit, props);
      });
      const setFailed = r.failed.length > failedBefore;
      attempt(`${rec.unit}: cpuset files after lifting its restriction`, () =>
        settleLifted(k, rec.unit, props, onWiden),
      );
      if (widened && r.done === doneBefore) r.done++;
      // settleLifted widens and lifts again: where the first call failed and it succeeded, the unit holds what
      // was asked, and nothing failed
      if (setFailed && r.failed.length === failedBefore + 1 && unitHolds(k, rec.unit, props)) {
        log.debugLine(`undo: ${rec.unit}: ${r.failed.pop()}; set on the second try`);
        r.done++;
      }
      break;
    }
    case 'irqbalance-ban':
      attempt(describeRecord(rec), () => {
        if (readBan(k) !== rec.old) setBan(k, rec.old);
      });
      break;
  }
  return r;
}

/**
 * Write an old value back. The kernel refuses (ENOSPC) to set a populated cpuset's cpus/mems back to empty — on
 * cgroup v2 too, where empty means "inherit". Then the CPUs/nodes it would inherit (the parent's effective
 * ones) are written instead: the same effect, explicit. When the run had enabled the controller itself, undoing
 * that right after resets the value to "inherit" exactly.
 */
function writeBack(k: Kernel, path: string, old: string, log: Log): void {
  try {
    k.write(path, old);
  } catch (e) {
    const m = /^(.*)\/(cpuset\.(?:cpus|mems))$/.exec(path);
    if (errnoOf(e) !== 'ENOSPC' || old.trim() !== '' || !m || k.cgroups.version !== 2) throw e;
    const parent = m[1]!.slice(0, m[1]!.lastIndexOf('/'));
    const inherited = k.read(`${parent}/${m[2]}.effective`).trim();
    k.write(path, inherited);
    log.info(
      `${path}: a cgroup with tasks cannot go back to "inherit"; set to what it inherits (${inherited})`,
    );
  }
}

/**
 * Whether thread `tid`'s mask is `cpus` now. sched_getaffinity shows the online CPUs of a mask only: it tells when
 * every possible CPU is online; with one offline (possible 0-31 on a 24-thread machine), a mask naming it looks
 * like one that does not, so Cpus_allowed_list (/proc/ID/task/ID/status, the whole mask) tells. false when it
 * cannot be told.
 */
function hasMask(k: Kernel, tid: number, cpus: readonly number[]): boolean {
  const { online, possible } = k.machine;
  if (!possible.isSubsetOf(online)) {
    const text = k.procs.allowedText(tid);
    if (text === undefined) return false;
    try {
      return CpuSet.parseList(text).equals(CpuSet.of(cpus));
    } catch {
      return false;
    }
  }
  if (!cpus.every((c) => online.has(c))) return false;
  try {
    const now = k.fs.getAffinity(tid);
    return now.length === cpus.length && now.every((c, i) => c === cpus[i]);
  } catch {
    return false;
  }
}

/** A CPU list as numbers; validated records are bounded (validate.ts), and nothing above 8191 is expanded here. */
function parseListLoose(s: string): number[] {
  const out: number[] = [];
  for (const part of s.split(',').filter(Boolean)) {
    const [a, b] = part.split('-').map(Number);
    const hi = Math.min(b ?? a!, 8191);
    for (let i = a!; i <= hi; i++) out.push(i);
  }
  return out;
}

/** How a file's value is compared: the files whose kernel prints one value in more than one way have a form. */
type ValueForm = 'list' | 'mask' | 'partition' | 'plain';

/** The files that hold a CPU (or node) list; watchdog_cpumask is one though its name ends in "cpumask". */
const LIST_FILES = new Set([
  'cpuset.cpus',
  'cpuset.mems',
  'cpuset.cpus.exclusive',
  'smp_affinity_list',
  'watchdog_cpumask',
]);

/** The value form of a file, told by its name once per file (the undo loop compares each file up to three times). */
function valueForm(path: string): ValueForm {
  const name = path.slice(path.lastIndexOf('/') + 1);
  if (name === 'cpuset.cpus.partition') return 'partition';
  if (LIST_FILES.has(name)) return 'list';
  if (name.endsWith('smp_affinity') || name.endsWith('cpumask')) return 'mask';
  return 'plain';
}

/**
 * A CPU list in one spelling: its ranges sorted and merged, never expanded ("0,1,2,3", "2-3,0-1" and "0-3" alike);
 * undefined when `s` is not a list ("N" or "N-M" parts, M >= N) of bounded length.
 */
function canonicalList(s: string): string | undefined {
  if (s.length > 4096) return undefined;
  const ranges: [number, number][] = [];
  for (const part of s.split(',')) {
    if (part === '') continue;
    const m = /^(\d{1,7})(?:-(\d{1,7}))?$/.exec(part);
    if (!m) return undefined;
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) return undefined;
    ranges.push([a, b]);
  }
  ranges.sort((x, y) => x[0] - y[0]);
  const merged: [number, number][] = [];
  for (const [a, b] of ranges) {
    const last = merged.at(-1);
    if (last && a <= last[1] + 1) last[1] = Math.max(last[1], b);
    else merged.push([a, b]);
  }
  return merged.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(',');
}

/** A hex mask without separators, leading zeros or case ("0000,000f" and "F" alike). */
function canonicalMask(s: string): string {
  return s.replace(/[,\s]/g, '').replace(/^0+/, '').toLowerCase();
}

/**
 * The same value, as the kernel prints it or as it was written ("0-3" and "0,1,2,3"; masks with leading zeros).
 * `lists` keeps the canonical form of each list seen (canonicalList), for the caller's next files.
 */
function sameValueIn(
  form: ValueForm,
  now: string,
  v: string,
  lists: Map<string, string | undefined>,
): boolean {
  const b = v.trim();
  if (now === b) return true;
  switch (form) {
    case 'mask':
      return canonicalMask(now) === canonicalMask(b);
    case 'partition':
      // "isolated invalid (reason)" is the kernel's verdict on "isolated": the file holds what was written
      return /^(member|root|isolated)\b/.exec(now)?.[1] === b;
    case 'list': {
      const canonical = (t: string): string | undefined => {
        if (!lists.has(t)) lists.set(t, canonicalList(t));
        return lists.get(t);
      };
      const x = canonical(now);
      return x !== undefined && x === canonical(b);
    }
    case 'plain':
      return false;
  }
}

/**
 * A v2 cpuset.cpus/.mems whose old value was "" (inherit) and that now holds exactly what it inherits: restored
 * already (the kernel refuses "" on a populated cgroup, so writeBack writes the inherited CPUs; a restore killed
 * after that and run again finds this).
 */
function inheritsAlready(k: Kernel, path: string, now: string, old: string): boolean {
  if (old.trim() !== '' || !/\/cpuset\.(cpus|mems)$/.test(path)) return false;
  try {
    const parent = path.slice(0, path.lastIndexOf('/', path.lastIndexOf('/') - 1));
    const file = path.slice(path.lastIndexOf('/') + 1);
    return now !== '' && k.read(`${parent}/${file}.effective`).trim() === now;
  } catch {
    return false;
  }
}
