/** The status report as text (aligned tables, one line per leak) and as JSON (docs/json.md). Pure. */
import { CpuSet } from '../cpus/cpuset.ts';
import { P } from '../kernel/paths.ts';
import {
  findingLine,
  isolcpusList,
  maybeManaged,
  type CgroupNode,
  type Finding,
  type FindingKind,
  type LeakReport,
  type StatusModel,
  type VmCpuChoice,
} from './status-model.ts';
import { paint, plural, table } from './table.ts';
import type { SplitSuggestion } from './topology-view.ts';
import { printable } from './printable.ts';

export interface StatusViewOptions {
  colour: boolean;
  /** -v: every cgroup, every leak, every expected item. */
  verbose: boolean;
  /** The default split, offered when nothing is isolated yet. */
  suggestion?: SplitSuggestion;
}

/** Without -v, at most this many lines per kind of finding. */
const PER_KIND = 8;

const listOrNone = (s: CpuSet | undefined): string =>
  s === undefined ? 'unknown' : s.isEmpty ? 'none' : s.toList();

/** Consecutive CPUs with the same governor: "schedutil on 8-15, performance on 24-31". */
export function governorGroups(
  governors: Map<number, string | undefined>,
  cpus: CpuSet,
): { cpus: CpuSet; governor?: string }[] {
  const groups = new Map<string, number[]>();
  for (const cpu of cpus) {
    const g = governors.get(cpu) ?? '';
    (groups.get(g) ?? groups.set(g, []).get(g)!).push(cpu);
  }
  return [...groups].map(([g, list]) => ({ cpus: CpuSet.of(list), governor: g === '' ? undefined : g }));
}

function v1Flags(n: CgroupNode): string {
  const f = n.v1;
  if (!f) return '';
  const out: string[] = [];
  if (f.cpuExclusive) out.push('cpu_exclusive');
  if (f.memExclusive) out.push('mem_exclusive');
  if (f.memMigrate) out.push('memory_migrate');
  if (f.schedLoadBalance === false) out.push('no sched_load_balance');
  return out.join(' ');
}

function cgroupRows(model: StatusModel, verbose: boolean): { rows: string[][]; hidden: number } {
  const cg = model.cgroups!;
  const rows: string[][] = [];
  let hidden = 0;
  const count = (n: CgroupNode): number => 1 + n.children.reduce((a, c) => a + count(c), 0);
  const visit = (n: CgroupNode, prefix: string, childPrefix: string): void => {
    // a cgroup's name is chosen by whoever made it (a delegated user tree): escaped for the terminal
    const label = n.name === '/' ? '/' : printable(n.name.slice(n.name.lastIndexOf('/') + 1));
    const configured = !n.cpuset
      ? '-'
      : n.configuredCpus === undefined
        ? '-'
        : n.configuredCpus === ''
          ? 'inherit'
          : n.configuredCpus;
    const tasks =
      n.tasks === undefined
        ? '?'
        : n.subtreeTasks !== n.tasks
          ? `${n.tasks} (${n.subtreeTasks})`
          : `${n.tasks}`;
    rows.push([
      prefix + label,
      configured,
      n.cpuset ? listOrNone(n.effectiveCpus) : '-',
      n.cpuset ? listOrNone(n.effectiveMems) : '-',
      cg.version === 2 ? (n.partition ?? (n.name === '/' ? 'root' : '-')) : v1Flags(n),
      tasks,
    ]);
    const shown = n.children.filter((c) => verbose || c.cpuset);
    for (const c of n.children) if (!shown.includes(c)) hidden += count(c);
    shown.forEach((c, i) => {
      const last = i === shown.length - 1;
      visit(c, childPrefix + (last ? '`- ' : '|- '), childPrefix + (last ? '   ' : '|  '));
    });
  };
  visit(cg.root, '', '');
  return { rows, hidden };
}

/** "3 more user tasks". */
function moreOf(kind: FindingKind, n: number): string {
  const noun: Partial<Record<FindingKind, [string, string]>> = {
    task: ['user task', 'user tasks'],
    kthread: ['kernel thread', 'kernel threads'],
    irq: ['IRQ', 'IRQs'],
    'pinned-kthread': ['kernel-pinned thread', 'kernel-pinned threads'],
    'managed-irq': ['managed IRQ', 'managed IRQs'],
  };
  const [one, many] = noun[kind] ?? ['item', 'items'];
  return `${n} more ${n === 1 ? one : many}`;
}

function findingLines(list: Finding[], verbose: boolean, indent: string): string {
  let out = '';
  const kinds = [...new Set(list.map((f) => f.kind))];
  for (const kind of kinds) {
    const of = list.filter((f) => f.kind === kind);
    const shown = verbose ? of : of.slice(0, PER_KIND);
    for (const f of shown) out += `${indent}${findingLine(f)}\n`;
    if (shown.length < of.length)
      out += `${indent}... and ${moreOf(kind, of.length - shown.length)} (-v lists all)\n`;
  }
  return out;
}

/** The human report. */
export function renderStatus(
  model: StatusModel,
  choice: VmCpuChoice,
  r: LeakReport,
  o: StatusViewOptions,
): string {
  const p = paint(o.colour);
  let out = '';

  // cgroups
  const cg = model.cgroups;
  if (cg) {
    const hybrid = cg.hybrid ? ' (hybrid: a cgroup2 mount exists beside the v1 hierarchies)' : '';
    out += `${p.bold('Cgroups:')} v${cg.version} cpuset hierarchy at ${cg.mount}${hybrid}\n`;
    const { rows, hidden } = cgroupRows(model, o.verbose);
    const unit = cg.version === 2 ? 'PROCS' : 'TASKS';
    out += table(rows, {
      header: [
        'CGROUP',
        'CPUS',
        'EFFECTIVE',
        'MEMS',
        cg.version === 2 ? 'PARTITION' : 'FLAGS',
        `${unit} (SUBTREE)`,
      ],
      colour: o.colour,
      align: ['left', 'left', 'left', 'left', 'left', 'right'],
    });
    if (hidden > 0) {
      out += `${plural(hidden, 'deeper cgroup')} without cpuset files (they use their parent's CPUs) not shown; -v lists them\n`;
    }
    if (cg.version === 2 && cg.root.subtreeCpuset === false) {
      out +=
        'cpuset is not enabled for the children of / (cgroup.subtree_control): no cgroup restricts CPUs\n';
    }
  } else {
    out += `${p.bold('Cgroups:')} no cpuset hierarchy found\n`;
  }

  // boot-time isolation
  const b = model.boot;
  out += `\n${p.bold('Boot-time isolation:')}\n`;
  const bootRows: string[][] = [
    ['isolcpus=', b.cmdline.isolcpus ?? 'not set'],
    ['nohz_full=', b.cmdline.nohz_full ?? 'not set'],
    ['rcu_nocbs=', b.cmdline.rcu_nocbs ?? 'not set'],
  ];
  if (b.cmdline.irqaffinity !== undefined) bootRows.push(['irqaffinity=', b.cmdline.irqaffinity]);
  bootRows.push([P.cpuIsolated, listOrNone(b.isolated)], [P.cpuNohzFull, listOrNone(b.nohzFull)]);
  if (b.cpusetIsolated !== undefined)
    bootRows.push(['cpuset.cpus.isolated (root)', listOrNone(b.cpusetIsolated)]);
  out += table(bootRows, { indent: '  ' });

  // the active isolations (isolate's reservations)
  if (model.reservations.length > 0) {
    out += `\n${p.bold('Active isolations:')} (release JOURNAL gives a VM's CPUs back; the last release restores the host)\n`;
    out += table(
      model.reservations.map((r) => [
        r.vm.toList(),
        r.journal,
        `/${r.vmCgroup}`,
        r.at,
        r.journalState === 'active' ? 'active' : `journal ${r.journalState}`,
      ]),
      { header: ['VM CPUS', 'JOURNAL', 'VM CGROUP', 'SINCE', 'STATE'], colour: o.colour, indent: '  ' },
    );
  }

  // the VM CPUs
  out += '\n';
  if (r.vmCpus.isEmpty) {
    out += `${p.bold('VM CPUs:')} none: nothing is isolated yet (${choice.why})\n`;
    const s = o.suggestion;
    if (s && !s.vm.isEmpty) {
      out += `  To check CPUs for a VM: vfio-isolate status C${s.vm.toList()}  (the suggested split, see vfio-isolate topology)\n`;
    }
  } else {
    out += `${p.bold('VM CPUs:')} ${r.vmCpus.toList()}   ${p.bold('host CPUs:')} ${r.host.toList() || 'none'}\n`;
    if (choice.source !== 'argument') out += `  (the default: ${choice.why})\n`;
  }
  const rows: string[][] = [];
  const vmOrOnline = r.vmCpus.isEmpty ? model.online : r.vmCpus;
  const gov = governorGroups(model.governors, vmOrOnline)
    .map((g) => `${g.governor ?? 'no cpufreq'} on ${g.cpus.toList()}`)
    .join(', ');
  rows.push(['governors', gov || 'unknown']);
  rows.push(['default_smp_affinity', listOrNone(model.defaultSmpAffinity)]);
  if (model.knobs.watchdog) rows.push(['watchdog_cpumask', listOrNone(model.knobs.watchdog)]);
  const limits = wakeupGroups(model.knobs.wakeupLatency, vmOrOnline);
  if (limits) rows.push(['wake-up latency limit', limits]);
  for (const w of model.workqueues)
    rows.push(['workqueue cpumask', `${listOrNone(w.cpus)}  ${p.dim(w.path)}`]);
  if (model.workqueues.length === 0) rows.push(['workqueue cpumask', 'not available']);
  const ib = model.irqbalance;
  rows.push([
    'irqbalance',
    ib
      ? `running (pid ${ib.pid}${ib.banned ? `, banned CPUs ${ib.banned.toList() || 'none'}` : ''})`
      : 'not running',
  ]);
  if (model.hooks.length > 0) {
    rows.push([
      'libvirt hooks',
      model.hooks.map((h) => `${h.domain} (${h.unsafe ? p.red('unsafe') : 'root-owned'})`).join(', '),
    ]);
  }
  if (!r.vmCpus.isEmpty) {
    const count = (k: FindingKind): number => [...r.leaks, ...r.unmovable].filter((f) => f.kind === k).length;
    rows.push([
      'tasks on VM CPUs',
      `${plural(count('task'), 'movable user task')}, ${plural(count('kthread'), 'movable kernel thread')}, ` +
        `${count('pinned-kthread')} kernel-pinned (expected), ${plural(r.vmTasks, 'VM task')} (expected)`,
    ]);
    rows.push([
      'IRQs on VM CPUs',
      `${count('irq')} movable, ${count('managed-irq')} managed by the kernel (expected), ${r.idleIrqs.length} without handler; ` +
        `${r.interruptsOnVm} interrupts there since boot`,
    ]);
  }
  out += table(rows, { indent: '  ' });

  if (!r.vmCpus.isEmpty) {
    if (r.leaks.length > 0) {
      out += `\n${p.red(p.bold('Leaks'))} (movable; "vfio-isolate isolate" fixes all of them):\n`;
      out += findingLines(r.leaks, o.verbose, '  ');
    }
    if (r.unmovable.length > 0) {
      out += `\n${p.bold('Expected')} (only the kernel can move them; not leaks):\n`;
      const pinned = r.unmovable.filter((f) => f.kind === 'pinned-kthread');
      if (o.verbose) out += findingLines(r.unmovable, true, '  ');
      else {
        if (pinned.length > 0) {
          const names = pinned.slice(0, 4).map((f) => printable(f.name ?? ''));
          out += `  ${plural(pinned.length, 'kernel thread')} whose affinity only the kernel sets (per-CPU threads, workqueue workers): ${names.join(', ')}${pinned.length > 4 ? ', ...' : ''}\n`;
        }
        out += findingLines(
          r.unmovable.filter((f) => f.kind !== 'pinned-kthread'),
          false,
          '  ',
        );
      }
      if (o.verbose && r.idleIrqs.length > 0)
        out += `  IRQs without a handler (never fire): ${r.idleIrqs.join(' ')}\n`;
    }
  }
  if (r.warnings.length > 0) {
    out += `\n${p.yellow(p.bold('Warnings:'))}\n`;
    out += findingLines(r.warnings, true, '  ');
  }
  const unsafe = model.hooks.filter((h) => h.unsafe !== undefined);
  if (unsafe.length > 0) {
    out += `\n${p.yellow(p.bold('Unsafe libvirt hooks'))} (libvirtd runs them as root at every VM start; they refuse to run until fixed):\n`;
    for (const h of unsafe)
      out += `  ${h.path}: ${h.unsafe}; fix: install vfio-isolate and node root-owned (npm run install-global), then vfio-isolate libvirt hook install ${h.domain} --profile FILE\n`;
  }
  if (model.notVisible.length > 0) {
    out += `\n${p.bold('Not visible')} (run as root to see everything):\n`;
    for (const n of model.notVisible) out += `  ${n}\n`;
  }
  out += '\n';
  if (r.vmCpus.isEmpty) out += 'Result: no VM CPUs to check.\n';
  else if (r.leaks.length === 0)
    out += `Result: ${p.green('no movable leaks')} on the VM CPUs ${r.vmCpus.toList()}.\n`;
  else
    out += `Result: ${p.red(plural(r.leaks.length, 'movable leak'))} on the VM CPUs ${r.vmCpus.toList()}.\n`;
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// JSON

const listOrNull = (s: CpuSet | undefined): string | null => (s === undefined ? null : s.toList());

export function findingJson(f: Finding): Record<string, unknown> {
  return {
    kind: f.kind,
    movable: f.movable,
    id: f.id ?? null,
    name: f.name ?? null,
    cpus: listOrNull(f.cpus),
    message: f.message,
    fix: f.fix ?? null,
    line: findingLine(f),
  };
}

function cgroupJson(n: CgroupNode): Record<string, unknown> {
  return {
    name: n.name,
    cpuset: n.cpuset,
    cpus: n.configuredCpus ?? null,
    effectiveCpus: listOrNull(n.effectiveCpus),
    mems: n.configuredMems ?? null,
    effectiveMems: listOrNull(n.effectiveMems),
    partition: n.partition ?? null,
    exclusiveCpus: n.exclusiveCpus ?? null,
    subtreeCpuset: n.subtreeCpuset ?? null,
    v1: n.v1
      ? {
          cpuExclusive: n.v1.cpuExclusive ?? null,
          memExclusive: n.v1.memExclusive ?? null,
          memMigrate: n.v1.memMigrate ?? null,
          schedLoadBalance: n.v1.schedLoadBalance ?? null,
        }
      : null,
    tasks: n.tasks ?? null,
    subtreeTasks: n.subtreeTasks,
    children: n.children.map(cgroupJson),
  };
}

/** The leak check alone (also printed by isolate). */
export function leakCheckJson(r: LeakReport): Record<string, unknown> {
  return {
    ok: r.leaks.length === 0,
    vmCpus: r.vmCpus.toList(),
    hostCpus: r.host.toList(),
    leaks: r.leaks.map(findingJson),
    unmovable: r.unmovable.map(findingJson),
    warnings: r.warnings.map(findingJson),
    vmTasks: r.vmTasks,
    idleIrqs: r.idleIrqs,
    interruptsOnVmCpus: r.interruptsOnVm,
  };
}

export function statusJson(model: StatusModel, choice: VmCpuChoice, r: LeakReport): Record<string, unknown> {
  const cg = model.cgroups;
  const count = (k: FindingKind): number => [...r.leaks, ...r.unmovable].filter((f) => f.kind === k).length;
  const onVm = model.irqs.filter((q) => q.affinity?.overlaps(r.vmCpus));
  return {
    command: 'status',
    schemaVersion: 1,
    ok: r.leaks.length === 0,
    kernel: model.kernel,
    cpus: { present: model.present.toList(), online: model.online.toList() },
    vmCpus: { cpus: r.vmCpus.toList(), source: choice.source, why: choice.why },
    hostCpus: r.host.toList(),
    reservations: model.reservations.map((x) => ({
      journal: x.journal,
      vmCpus: x.vm.toList(),
      vmCgroup: `/${x.vmCgroup}`,
      since: x.at,
      journalState: x.journalState,
    })),
    cgroups: cg
      ? {
          version: cg.version,
          mount: cg.mount,
          hybrid: cg.hybrid,
          taskFile: cg.taskFile,
          tree: cgroupJson(cg.root),
        }
      : null,
    boot: {
      cmdline: {
        isolcpus: model.boot.cmdline.isolcpus ?? null,
        isolcpusCpus:
          model.boot.cmdline.isolcpus !== undefined ? isolcpusList(model.boot.cmdline.isolcpus) : null,
        nohz_full: model.boot.cmdline.nohz_full ?? null,
        rcu_nocbs: model.boot.cmdline.rcu_nocbs ?? null,
        irqaffinity: model.boot.cmdline.irqaffinity ?? null,
      },
      isolated: listOrNull(model.boot.isolated),
      nohzFull: listOrNull(model.boot.nohzFull),
      cpusetIsolated: listOrNull(model.boot.cpusetIsolated),
    },
    knobs: {
      watchdogCpumask: listOrNull(model.knobs.watchdog),
      wakeupLatencyUs: Object.fromEntries(model.knobs.wakeupLatency),
    },
    tasks: {
      scanned: model.tasks.length,
      vm: r.vmTasks,
      movableUser: count('task'),
      movableKthreads: count('kthread'),
      pinnedKthreads: count('pinned-kthread'),
    },
    irqs: {
      total: model.irqs.length,
      onVmCpus: onVm.length,
      movable: count('irq'),
      managed: onVm.filter((q) => q.names.length > 0 && maybeManaged(q)).length,
      idle: r.idleIrqs.length,
      interruptsOnVmCpus: r.interruptsOnVm,
    },
    defaultSmpAffinity: listOrNull(model.defaultSmpAffinity),
    workqueues: model.workqueues.map((w) => ({ path: w.path, cpus: listOrNull(w.cpus) })),
    governors: governorGroups(model.governors, model.online).map((g) => ({
      cpus: g.cpus.toList(),
      governor: g.governor ?? null,
    })),
    irqbalance: {
      running: model.irqbalance !== undefined,
      pid: model.irqbalance?.pid ?? null,
      bannedCpus: listOrNull(model.irqbalance?.banned),
    },
    leaks: r.leaks.map(findingJson),
    unmovable: r.unmovable.map(findingJson),
    warnings: r.warnings.map(findingJson),
    notVisible: model.notVisible,
    hooks: model.hooks.map((h) => ({
      domain: h.domain,
      path: h.path,
      node: h.node ?? null,
      tool: h.tool ?? null,
      safe: h.unsafe === undefined,
      problem: h.unsafe ?? null,
    })),
  };
}

/** "20 us on 8-15,24-31, none on 0-7" for the CPUs shown (a value "0" means no limit, "n/a" no wake-up latency). */
function wakeupGroups(limits: Map<number, string>, cpus: CpuSet): string | undefined {
  const groups = new Map<string, number[]>();
  for (const cpu of cpus) {
    const v = limits.get(cpu);
    if (v === undefined) continue;
    const label = v === '0' ? 'none' : v === 'n/a' ? 'no wake-up latency' : `${v} us`;
    groups.set(label, [...(groups.get(label) ?? []), cpu]);
  }
  if (groups.size === 0) return undefined;
  return [...groups].map(([label, list]) => `${label} on ${CpuSet.of(list).toList()}`).join(', ');
}
