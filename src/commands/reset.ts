/** reset: put the isolation-related state back to the kernel's defaults, whatever journals say. */
import { CpuSet } from '../cpus/cpuset.ts';
import { cgroupName } from '../kernel/cgroup.ts';
import { P } from '../kernel/kernel.ts';
import { isKernelThread, isPinnedKernelThread } from '../kernel/procs.ts';
import { readBan, setBan } from '../kernel/irqbalance.ts';
import { hostJournalPath, readRegistry, writeRegistry } from '../kernel/reservations.ts';
import { journalActive, markRestored } from '../steps/journal.ts';
import type { Ctx, Handler } from '../cli/spec.ts';
import type { Step } from '../steps/step.ts';
import { writeFilesStep, type FileWrite } from '../steps/write-step.ts';
import { moveAll } from './cpuset.ts';
import { planIrqMasks } from './irq-affinity.ts';
import { planPartitionReset } from './partition.ts';
import { planUnitLift, unitsOf } from './restrict.ts';

function planReset(ctx: Ctx, command: string): Step[] {
  const k = ctx.k;
  const cg = k.cgroups;
  const all = k.machine.online;
  const steps: Step[] = [];
  if (cg.version === 2) {
    // Partitions first: while they hold CPUs, the root's effective CPUs lack them.
    const partitions = planPartitionReset(ctx, command);
    if (partitions) steps.push(partitions);
    const writes: FileWrite[] = [];
    // "" (inherit) where the kernel allows it; a cgroup with tasks cannot be emptied (ENOSPC), so it gets every
    // CPU the root has, explicitly: the same CPUs (every online CPU once no partition holds some).
    const rootCpus = partitions
      ? all.toList()
      : (ctx.state.read(`${cg.mount}/cpuset.cpus.effective`) ?? all.toList());
    // systemd's units get their restriction lifted through systemd (never their cpuset files); the rest by file.
    const tops = cg.children([]).map((child) => [child]);
    const units = unitsOf(ctx, tops, command, 'raw');
    tops.forEach((parts, i) => {
      const unit = units[i];
      if (unit) {
        const s = planUnitLift(ctx, unit, parts, rootCpus, command);
        if (s) steps.push(s);
        return;
      }
      const path = `${cg.path(parts)}/cpuset.cpus`;
      const before = ctx.state.read(path);
      if (before === undefined || before === '') return;
      const value = cg.populated(parts) ? rootCpus : '';
      if (before !== value) writes.push({ path, value, before });
    });
    if (writes.length)
      steps.push(
        writeFilesStep(command, `let ${writes.length} top-level cgroups use all CPUs again`, writes),
      );
  } else {
    for (const child of cg.children([])) {
      const path = cg.path([child]);
      steps.push({
        command,
        title: `move the tasks of ${cgroupName([child])} back to the root cpuset`,
        changes: [{ target: `${cg.mount}/tasks`, note: `tasks of /${child}` }],
        apply: (a) => moveAll(a, `${path}/tasks`, path, cg.mount, 'tasks'),
      });
    }
  }
  steps.push({
    command,
    title: 'let movable kernel threads and kthreadd run on all CPUs',
    changes: [{ target: 'sched_setaffinity', note: 'every movable kernel thread' }],
    apply({ k: kk, record }) {
      const todo: [number, number, string][] = [];
      for (const { tid, pid } of kk.procs.allTasks()) {
        const st = kk.procs.stat(pid, tid);
        if (!st || !isKernelThread(st) || isPinnedKernelThread(st)) continue;
        const allowed = kk.procs.allowed(tid, pid);
        if (allowed && !allowed.equals(all)) todo.push([tid, st.start, allowed.toList()]);
      }
      if (todo.length === 0) return { changed: 0 };
      record({ kind: 'affinity', tasks: todo });
      let changed = 0;
      for (const [tid] of todo) {
        try {
          kk.fs.setAffinity(tid, all.toArray());
          changed++;
        } catch {
          /* exited or pinned meanwhile */
        }
      }
      return { changed };
    },
  });
  const wq = ctx.k
    .workqueueMasks()
    .map((path) => ({ path, value: all.toMask(k.nrCpuIds), before: ctx.state.read(path) }));
  const dflt = ctx.state.read(P.defaultSmpAffinity);
  if (dflt !== undefined)
    wq.push({ path: P.defaultSmpAffinity, value: all.toMask(k.nrCpuIds), before: dflt });
  const changed = wq.filter((w) => w.before === undefined || !CpuSet.parseMask(w.before).equals(all));
  if (changed.length) steps.push(writeFilesStep(command, 'workqueues and new IRQs on all CPUs', changed));
  const irq = planIrqMasks(ctx, command, 'add', all);
  if (irq) steps.push(irq);
  const ban = readBan(k);
  if (ban !== null)
    steps.push({
      command,
      title: `remove the irqbalance ban of CPUs ${ban} (the drop-in under /run) and restart irqbalance`,
      changes: [{ target: P.irqbalanceDropIn, note: 'removed; then systemctl daemon-reload, try-restart' }],
      apply({ k: kk, record }) {
        record({ kind: 'irqbalance-ban', cpus: null, old: ban });
        setBan(kk, null);
        return { changed: 1 };
      },
    });
  const hostFile = hostJournalPath(k);
  const bootId = k.bootId();
  let reservations = 0;
  let registryFile: boolean; // a registry of an earlier boot, or one that cannot be believed, is removed too
  try {
    const reg = readRegistry(k);
    reservations = reg.reservations.length;
    registryFile = reg.staleBoot;
  } catch {
    registryFile = true;
  }
  const hostActive = journalActive(hostFile, bootId);
  if (reservations > 0 || registryFile || hostActive)
    steps.push({
      command,
      title: `forget ${reservations} active isolation(s) and the host journal (the host has every CPU again)`,
      changes: [
        { target: P.reservations, note: 'removed' },
        { target: P.hostJournal, note: 'marked restored' },
      ],
      apply({ k: kk }) {
        writeRegistry(kk, []);
        if (journalActive(hostFile, bootId)) markRestored(hostFile, false);
        return { changed: 1 };
      },
    });
  return steps;
}

/** The handlers of this file's commands, by full name (the command table loads this module on demand). */
export const handlers: Record<string, Handler> = {
  reset: { kind: 'plan', plan: (ctx, inv) => planReset(ctx, inv.name) },
};
