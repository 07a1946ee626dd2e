/** cpuset-create, cpuset-modify, cpuset-delete (0.5.2 compatible, without its bugs). */
import { V1_FLAG_OPTIONS } from '../cli/table.ts';
import { CpuSet } from '../cpus/cpuset.ts';
import { RuntimeFailure, UsageError } from '../errors.ts';
import { V1_FLAGS, type V1Flag } from '../kernel/cgroup.ts';
import type { Kernel } from '../kernel/kernel.ts';
import { attachCpus, masksLostByMove, writeIds } from '../kernel/tasks.ts';
import { readIds } from '../kernel/task-list.ts';
import type { Ctx, Handler, Invocation } from '../cli/spec.ts';
import type { Step } from '../steps/step.ts';
import { writeFilesStep, type FileWrite } from '../steps/write-step.ts';
import {
  boolOpt,
  cgroupArg,
  cpusArg,
  nodesArg,
  planEnableCpuset,
  requireCgroup,
  type CgroupRef,
} from './common.ts';
import { planUnitLimit, systemdOf, unitsOf } from './restrict.ts';
import { unitOfCgroup } from '../kernel/systemd.ts';

interface CpusetSettings {
  cpus?: string;
  mems?: string;
  flags: [V1Flag, boolean][];
}

function settingsOf(ctx: Ctx, inv: Invocation): CpusetSettings {
  const v = inv.values;
  const s: CpusetSettings = { flags: [] };
  if (typeof v.cpus === 'string') s.cpus = cpusArg(ctx, v.cpus, '--cpus').toList();
  if (typeof v.mems === 'string') s.mems = nodesArg(ctx, v.mems, '--mems').toList();
  for (const [key] of V1_FLAGS) {
    const b = boolOpt(v[key]);
    if (b !== undefined) s.flags.push([key, b]);
  }
  if (s.flags.length > 0 && ctx.k.cgroups.version === 2) {
    const names = s.flags
      .map(([k, b]) => `${b ? '-' : '-n'}${V1_FLAG_OPTIONS.find((f) => f[0] === k)![2]}`)
      .join(' ');
    ctx.log.warn(
      `${inv.name}: cgroup v1 flag ${names} has no effect on cgroup v2 and is ignored; see vfio-isolate status`,
    );
    s.flags = [];
  }
  return s;
}

function settingWrites(ctx: Ctx, cg: CgroupRef, s: CpusetSettings): FileWrite[] {
  const w: FileWrite[] = [];
  const file = (name: string): string => `${cg.path}/${name}`;
  const add = (name: string, value: string): void => {
    const path = file(name);
    w.push({ path, value, before: ctx.state.read(path) });
    ctx.state.set(path, value);
  };
  if (s.cpus !== undefined) add('cpuset.cpus', s.cpus);
  if (s.mems !== undefined) add('cpuset.mems', s.mems);
  for (const [key, b] of s.flags) add(V1_FLAGS.find((f) => f[0] === key)![1], b ? '1' : '0');
  return w;
}

function modifyPlan(ctx: Ctx, inv: Invocation): Step[] {
  const cg = cgroupArg(ctx, inv.args.NAME!);
  const s = settingsOf(ctx, inv);
  if (cg.parts.length === 0 && (s.cpus !== undefined || s.mems !== undefined)) {
    throw new UsageError(
      `${inv.name}: the root cgroup's cpuset cannot be changed`,
      'restrict the child cgroups instead (e.g. /system.slice)',
    );
  }
  requireCgroup(ctx, cg, inv.name);
  // A systemd unit's cgroup: through systemd (AllowedCPUs= / AllowedMemoryNodes=, runtime only).
  const [unit] = unitsOf(ctx, [cg.parts], inv.name);
  if (unit) {
    const step = planUnitLimit(
      ctx,
      unit,
      cg.parts,
      { allowedCpus: s.cpus, allowedMemoryNodes: s.mems },
      inv.name,
    );
    return step ? [step] : [];
  }
  const steps = planEnableCpuset(ctx, cg.parts, inv.name);
  const writes = settingWrites(ctx, cg, s);
  if (writes.length === 0) return steps;
  const desc = [
    s.cpus !== undefined ? `CPUs ${s.cpus}` : '',
    s.mems !== undefined ? `nodes ${s.mems}` : '',
    s.flags.length ? 'flags' : '',
  ]
    .filter(Boolean)
    .join(', ');
  steps.push(writeFilesStep(inv.name, `set ${cg.name} to ${desc}`, writes));
  return steps;
}

function createPlan(ctx: Ctx, inv: Invocation): Step[] {
  const cg = cgroupArg(ctx, inv.args.NAME!);
  if (cg.parts.length === 0)
    throw new UsageError(`${inv.name}: the root cgroup always exists`, 'name a new cgroup, e.g. /host.slice');
  const s = settingsOf(ctx, inv);
  const parent = {
    ...cg,
    parts: cg.parts.slice(0, -1),
    path: ctx.k.cgroups.path(cg.parts.slice(0, -1)),
    name: '/' + cg.parts.slice(0, -1).join('/'),
  };
  requireCgroup(ctx, parent, inv.name);
  if (ctx.state.isDir(cg.path)) {
    throw new RuntimeFailure(
      `${inv.name}: cgroup ${cg.name} already exists`,
      `use cpuset-modify to change it`,
    );
  }
  const v1 = ctx.k.cgroups.version === 1;
  // No unit comes into being by mkdir: the cgroup is created directly, as 0.5.2 did. Where systemd manages the
  // tree and the new cgroup sits among its units, say that systemd may drop its cpuset files.
  const amongUnits = parent.parts.length === 0 || unitOfCgroup(parent.parts)?.endsWith('.slice') === true;
  if (!v1 && amongUnits && systemdOf(ctx).kind === 'managed') {
    ctx.log.warn(
      `${inv.name}: ${cg.name} is a plain cgroup, not a systemd unit: systemd may drop its cpuset settings on its next daemon-reload; restrict units instead (e.g. cpuset-modify --cpus ... /system.slice, or isolate)`,
    );
  }
  const steps = planEnableCpuset(ctx, cg.parts, inv.name);
  // v1: a new cpuset needs CPUs and memory nodes before tasks can enter; default to the parent's (0.5.2 did
  // that always, even with --cpus). v2: unset values stay empty, which means "inherit from the parent".
  const settings: CpusetSettings = { ...s, flags: [...s.flags] };
  if (v1) {
    settings.cpus ??= ctx.state.read(`${parent.path}/cpuset.cpus`) ?? '';
    settings.mems ??= ctx.state.read(`${parent.path}/cpuset.mems`) ?? '';
  }
  ctx.state.mkdir(
    cg.path,
    v1
      ? { tasks: '', 'cgroup.procs': '', 'cpuset.cpus': '', 'cpuset.mems': '' }
      : {
          'cgroup.procs': '',
          'cpuset.cpus': '',
          'cpuset.mems': '',
          // a new v2 cgroup may use what its parent enables for its children
          'cgroup.controllers': ctx.state.read(`${parent.path}/cgroup.subtree_control`) ?? '',
        },
  );
  const writes = settingWrites(ctx, cg, settings);
  steps.push({
    command: inv.name,
    title: `create cgroup ${cg.name}${settings.cpus ? ` with CPUs ${settings.cpus}` : ''}${settings.mems ? ` and nodes ${settings.mems}` : ''}`,
    changes: [
      { target: cg.path, note: 'mkdir' },
      ...writes.map((w) => ({ target: w.path, before: '', after: w.value })),
    ],
    apply({ k, record, log }) {
      record({ kind: 'mkdir', path: cg.path });
      k.fs.mkdir(cg.path);
      for (const w of writes) {
        k.write(w.path, w.value);
        log.debugLine(`${w.path} <- ${w.value}`);
      }
      return { changed: 1 + writes.length };
    },
  });
  return steps;
}

function deletePlan(ctx: Ctx, inv: Invocation): Step[] {
  const cg = cgroupArg(ctx, inv.args.NAME!);
  if (cg.parts.length === 0) throw new UsageError(`${inv.name}: the root cgroup cannot be deleted`);
  requireCgroup(ctx, cg, inv.name);
  const [unit] = unitsOf(ctx, [cg.parts], inv.name);
  if (unit) {
    throw new RuntimeFailure(
      `${inv.name}: ${cg.name} is the cgroup of systemd unit ${unit.unit}; systemd owns it and vfio-isolate does not remove it`,
      `stop the unit (systemctl stop ${unit.unit}); a restriction set with cpuset-modify is lifted by restore`,
    );
  }
  const children = ctx.k.cgroups.children(cg.parts).filter((c) => ctx.state.isDir(`${cg.path}/${c}`));
  if (children.length > 0) {
    throw new RuntimeFailure(
      `${inv.name}: cgroup ${cg.name} has child cgroups (${children.slice(0, 3).join(', ')}${children.length > 3 ? ', ...' : ''})`,
      'delete the children first; vfio-isolate never deletes recursively',
    );
  }
  const parentPath = ctx.k.cgroups.path(cg.parts.slice(0, -1));
  const file = ctx.k.cgroups.taskFile;
  const v1 = ctx.k.cgroups.version === 1;
  const settingNames = v1
    ? ['cpuset.cpus', 'cpuset.mems', ...V1_FLAGS.map((f) => f[1])]
    : ['cpuset.cpus', 'cpuset.mems'];
  ctx.state.rmdir(cg.path);
  return [
    {
      command: inv.name,
      title: `move the tasks of ${cg.name} to its parent`,
      changes: [{ target: `${parentPath}/${file}`, note: `tasks of ${cg.name}` }],
      apply: (a) => moveAll(a, `${cg.path}/${file}`, cg.path, parentPath, file),
    },
    {
      command: inv.name,
      title: `remove cgroup ${cg.name}`,
      changes: [{ target: cg.path, note: 'rmdir' }],
      apply({ k, record }) {
        const settings: [string, string][] = [];
        for (const name of settingNames) {
          const value = k.readTrim(`${cg.path}/${name}`);
          if (value !== undefined) settings.push([name, value]);
        }
        record({ kind: 'rmdir', path: cg.path, settings });
        k.fs.rmdir(cg.path);
        return { changed: 1 };
      },
    },
  ];
}

/**
 * A task the kernel would not move, for the report. Its name is read only when the report is shown item by item
 * (--debug, --json): a move from the root meets one such kernel thread per CPU and more, ~440 µs per stat read
 * under TCG.
 */
function unmovable(k: Kernel, id: number, code: string): { what: string; why: string } {
  let what: string | undefined;
  return {
    get what() {
      if (what === undefined) {
        const comm = k.procs.statOf(id)?.comm;
        what = `task ${id}${comm ? ` (${comm})` : ''}`;
      }
      return what;
    },
    why: code === 'EINVAL' ? 'kernel thread bound to a CPU' : code,
  };
}

/**
 * Move every task listed in `fromDir` to `toDir`, one id per write. Passes repeat (at most 3) for tasks that were
 * forked meanwhile. Each pass is journalled before it moves anything: first the thread masks the move would lose
 * (masksLostByMove: kernel threads' on every kernel, every thread's before 6.2), then the tasks as their ids and
 * the uptime when the list was read (`pids`, `listedAt`: restore moves back only a task that started no later,
 * so a reused pid is never touched). Nothing of a task but its mask is read before its write; why a task did not
 * move is told by the write itself (ESRCH: it exited; EINVAL: a kernel thread bound to a CPU), and the names of
 * those that cannot move are read only for a report that lists them. Restore undoes the tasks record first, then
 * the affinity record.
 */
export function moveAll(
  a: Parameters<Step['apply']>[0],
  listFile: string,
  fromDir: string,
  toDir: string,
  file: 'tasks' | 'cgroup.procs',
) {
  const { k, record, log } = a;
  const tried = new Set<number>();
  let moved = 0;
  let gone = 0;
  const skipped: { what: string; why: string }[] = [];
  let home: CpuSet | undefined;
  const homeCpus = (): CpuSet => (home ??= attachCpus(k, fromDir));
  for (let pass = 0; pass < 3; pass++) {
    const ids = readIds(k.fs, listFile).filter((n) => !tried.has(n));
    if (ids.length === 0) break;
    for (const id of ids) tried.add(id);
    const listedAt = k.uptimeTicks();
    const lost = masksLostByMove(k, ids, file, fromDir, homeCpus, listedAt, pass === 0);
    if (lost.kept.length > 0 || lost.listed.length > 0)
      record({
        kind: 'affinity',
        tasks: lost.kept,
        ...(lost.listed.length > 0 && listedAt !== undefined ? { listed: lost.listed, listedAt } : {}),
      });
    if (listedAt !== undefined) {
      record({ kind: 'tasks', from: fromDir, to: toDir, file, ids: [], pids: ids, listedAt });
    } else {
      // No clock to stamp the list with: each task's start time, read before the move (one stat read each).
      const withStart: [number, number][] = [];
      for (const id of ids) {
        const start = k.procs.startOf(id);
        if (start !== undefined) withStart.push([id, start]);
      }
      record({ kind: 'tasks', from: fromDir, to: toDir, file, ids: withStart });
    }
    // every listed task is written: the write tells why one does not move (EINVAL: a kernel thread bound to a CPU)
    const res = writeIds(k.fs, `${toDir}/${file}`, ids, (done) =>
      log.progress(`moving tasks to ${toDir}`, done, ids.length),
    );
    if (ids.length >= 500) log.progress('', ids.length, ids.length);
    moved += res.moved.length;
    gone += res.gone.length;
    for (const u of res.unmovable) skipped.push(unmovable(k, u.id, u.code));
  }
  log.info(
    `moved ${moved} tasks from ${fromDir} to ${toDir}` +
      (skipped.length ? `, ${skipped.length} cannot move` : '') +
      (gone ? `, ${gone} exited` : ''),
  );
  return { changed: moved, gone, skipped };
}

/** The handlers of this file's commands, by full name (the command table loads this module on demand). */
export const handlers: Record<string, Handler> = {
  'cpuset-create': { kind: 'plan', plan: createPlan },
  'cpuset-modify': { kind: 'plan', plan: modifyPlan },
  'cpuset-delete': { kind: 'plan', plan: deletePlan },
};
