/**
 * partition DOMAIN|CGROUP: make a running VM's pinned vCPU cgroups isolated cpuset partitions (remote partitions,
 * Linux >= 6.7). cpuset.cpus.exclusive is written on every ancestor from the top-level cgroup down to the vCPUs'
 * parent, then each vCPU cgroup gets its own CPUs as exclusive and becomes `isolated`. The kernel then takes those
 * CPUs from every other cgroup, from scheduler load balancing and from unbound workqueues by itself. The emulator
 * cgroup stays a member, so <emulatorpin> keeps working. Journalled: release/restore undoes it, newest first.
 */
import type { Ctx, Handler, Invocation, Plan } from '../cli/spec.ts';
import { CpuSet } from '../cpus/cpuset.ts';
import { RuntimeFailure, UsageError } from '../errors.ts';
import { cgroupName, normalizeCgroupName } from '../kernel/cgroup.ts';
import { isPinnedKernelThread } from '../kernel/procs.ts';
import { readRegistry } from '../kernel/reservations.ts';
import { loadProfile, profileFile } from '../profile.ts';
import type { Step } from '../steps/step.ts';
import { writeFilesStep, type FileWrite } from '../steps/write-step.ts';

/** libvirt's scope of a domain under machine.slice: machine-qemu\x2dID\x2dNAME.scope (systemd escapes "-"). */
export function scopeDomain(dirName: string): string | undefined {
  const m = /^machine-qemu\\x2d\d+\\x2d(.+)\.scope$/.exec(dirName);
  if (!m) return undefined;
  return m[1]!.replace(/\\x([0-9a-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

/** The cgroup (as parts) that holds the vCPU cgroups of DOMAIN, or of the cgroup path given. */
function vmCgroup(ctx: Ctx, arg: string, command: string): string[] {
  const cg = ctx.k.cgroups;
  if (arg.startsWith('/')) {
    const parts = normalizeCgroupName(arg);
    if (!cg.exists(parts)) throw new RuntimeFailure(`${command}: cgroup ${cgroupName(parts)} does not exist`);
    return cg.children(parts).includes('libvirt') ? [...parts, 'libvirt'] : parts;
  }
  if (!/^[A-Za-z0-9_.+-]{1,200}$/.test(arg))
    throw new UsageError(`${command}: "${arg}" is neither a libvirt domain name nor a cgroup path (/...)`);
  for (const top of ['machine.slice', 'machine']) {
    if (!cg.exists([top])) continue;
    for (const child of cg.children([top])) {
      const name = scopeDomain(child) ?? /^qemu-\d+-(.+)\.libvirt-qemu$/.exec(child)?.[1];
      if (name === arg) {
        const parts = [top, child];
        return cg.children(parts).includes('libvirt') ? [...parts, 'libvirt'] : parts;
      }
    }
  }
  throw new RuntimeFailure(
    `${command}: no running VM named ${arg} (no machine-qemu-*-${arg}.scope in machine.slice)`,
    'start the domain first; partition works on a running VM (libvirt hook phase "started")',
  );
}

interface Vcpu {
  name: string;
  parts: string[];
  cpus: CpuSet;
}

/** The checks a valid remote partition layout needs, each refused with its reason before any change. */
function readLayout(ctx: Ctx, parent: string[], command: string): { vcpus: Vcpu[]; union: CpuSet } {
  const cg = ctx.k.cgroups;
  const vcpus: Vcpu[] = [];
  for (const child of cg.children(parent)) {
    if (!/^vcpu\d+$/.test(child)) continue;
    const parts = [...parent, child];
    const text = ctx.state.read(`${cg.path(parts)}/cpuset.cpus`)?.trim() ?? '';
    if (text === '')
      throw new RuntimeFailure(
        `${command}: ${child} is not pinned (its cpuset.cpus is empty)`,
        'pin every vCPU with <vcpupin> (vfio-isolate libvirt cputune prints them)',
      );
    vcpus.push({ name: child, parts, cpus: CpuSet.parseList(text) });
  }
  if (vcpus.length === 0)
    throw new RuntimeFailure(`${command}: no vCPU cgroups (vcpuN) in ${cgroupName(parent)}`);
  let union = CpuSet.EMPTY;
  for (const v of vcpus) {
    const other = vcpus.find((w) => w !== v && w.cpus.overlaps(v.cpus));
    if (other)
      throw new RuntimeFailure(
        `${command}: ${v.name} and ${other.name} share CPUs ${v.cpus.intersect(other.cpus).toList()}; partitions need CPUs of their own`,
        'pin each vCPU to its own CPU (one <vcpupin> per CPU)',
      );
    union = union.union(v.cpus);
  }
  const emu = ctx.state.read(`${cg.path([...parent, 'emulator'])}/cpuset.cpus`)?.trim();
  if (emu && CpuSet.parseList(emu).overlaps(union))
    throw new RuntimeFailure(
      `${command}: the emulator threads may run on the vCPU CPUs ${CpuSet.parseList(emu).intersect(union).toList()}`,
      'pin them elsewhere with <emulatorpin> (the host CPUs)',
    );
  const online = ctx.k.machine.online;
  if (online.minus(union).isEmpty)
    throw new RuntimeFailure(`${command}: the vCPUs would take every online CPU from the host`);
  return { vcpus, union };
}

/**
 * A partition taking or giving back CPUs resets the mask of every task of the root cgroup to the CPUs left to it,
 * losing masks the kernel itself had narrowed (kswapdN and kcompactdN on their node, IRQ threads on their IRQ's
 * CPUs). Recorded first, so that they are put back last, after the partitions are gone.
 */
function rememberRootMasks(command: string): Step {
  return {
    command,
    title: "remember the narrowed CPU masks of the root cgroup's tasks (a partition change resets them)",
    changes: [{ target: 'sched_getaffinity', note: 'tasks of / whose mask is narrower than every CPU' }],
    apply({ k, record }) {
      const all = k.possibleCpus.toList();
      const narrowed: [number, number, string][] = [];
      for (const pid of k.cgroups.readTasks([])) {
        for (const tid of k.procs.threads(pid)) {
          const st = k.procs.stat(pid, tid);
          if (!st || isPinnedKernelThread(st)) continue;
          const text = k.procs.allowedText(tid);
          if (text === undefined || text === all) continue;
          try {
            narrowed.push([tid, st.start, CpuSet.parseList(text).toList()]);
          } catch {
            /* unreadable mask: nothing to remember */
          }
        }
      }
      if (narrowed.length > 0) record({ kind: 'affinity', tasks: narrowed });
      return { changed: 0 };
    },
  };
}

function planPartition(ctx: Ctx, inv: Invocation): Plan {
  const command = inv.name;
  let vmArg = inv.args.VM;
  if (typeof inv.values.profile === 'string') {
    // the libvirt hook runs this at "started begin" for every VM: the profile says whether it wants partitions
    const p = loadProfile(
      profileFile(inv.values.profile, (sys) => ctx.k.hostPath(sys)),
      ctx.k.machine,
    );
    if (!p.isolate.steps.partition) {
      ctx.log.info(`${command}: the profile ${p.path} does not ask for partitions (partition = false)`);
      return { steps: [] };
    }
    vmArg ??= p.domain;
  }
  if (vmArg === undefined)
    throw new UsageError(
      `${command}: which VM? give its domain name or cgroup, or --profile FILE with domain = "..."`,
    );
  const cg = ctx.k.cgroups;
  if (cg.version !== 2)
    throw new RuntimeFailure(`${command}: isolated partitions need cgroup v2 (this machine uses v1 cpusets)`);
  const parent = vmCgroup(ctx, vmArg, command);
  const { vcpus, union } = readLayout(ctx, parent, command);
  // The host CPUs of the active isolations are what the host still needs: a partition there would take them.
  const reserved = readRegistry(ctx.k).reservations.reduce(
    (acc, r) => acc.union(CpuSet.parseList(r.vm)),
    CpuSet.EMPTY,
  );
  const hostTaken = union.minus(reserved);
  if (!reserved.isEmpty && !hostTaken.isEmpty && !ctx.g.force)
    throw new RuntimeFailure(
      `${command}: the vCPUs' CPUs ${hostTaken.toList()} are host CPUs of the active isolation(s) (VM CPUs ${reserved.toList()}); a partition would take them from the host`,
      'pin the vCPUs within the isolated CPUs (vfio-isolate libvirt cputune), or use --force',
    );
  const excl = (parts: readonly string[]): string => `${cg.path(parts)}/cpuset.cpus.exclusive`;
  if (ctx.state.read(excl(vcpus[0]!.parts)) === undefined) {
    const [major, minor] = ctx.k.version();
    throw new RuntimeFailure(
      `${command}: this kernel (${major}.${minor}) has no cpuset.cpus.exclusive: remote isolated partitions need Linux 6.7 or newer`,
      'use isolate alone, or boot with isolcpus=/nohz_full= for the VM CPUs',
    );
  }
  // 1. every ancestor, top-down, lends the vCPU CPUs as exclusive (what it already lends stays)
  const ancestors: FileWrite[] = [];
  for (let depth = 1; depth <= parent.length; depth++) {
    const path = excl(parent.slice(0, depth));
    const before = ctx.state.read(path)?.trim() ?? '';
    const has = before === '' ? CpuSet.EMPTY : CpuSet.parseList(before);
    if (union.isSubsetOf(has)) continue;
    const value = has.union(union).toList();
    ancestors.push({ path, value, before });
    ctx.state.set(path, value);
  }
  const steps: Step[] = [rememberRootMasks(command)];
  if (ancestors.length)
    steps.push(
      writeFilesStep(
        command,
        `lend CPUs ${union.toList()} exclusively down to ${cgroupName(parent)}`,
        ancestors,
      ),
    );
  // 2. each vCPU cgroup: its CPUs exclusive, then an isolated partition (undone in the reverse order)
  for (const v of vcpus) {
    const partition = `${cg.path(v.parts)}/cpuset.cpus.partition`;
    const step = writeFilesStep(command, `make ${v.name} (CPUs ${v.cpus.toList()}) an isolated partition`, [
      { path: excl(v.parts), value: v.cpus.toList(), before: ctx.state.read(excl(v.parts))?.trim() ?? '' },
      { path: partition, value: 'isolated', before: ctx.state.read(partition)?.trim() ?? 'member' },
    ]);
    steps.push({
      ...step,
      apply(a) {
        const r = step.apply(a);
        // the kernel accepts an invalid layout and says so only when the file is read back
        const now = a.k.read(partition).trim();
        if (now !== 'isolated')
          throw new RuntimeFailure(
            `${v.name}: the kernel made it "${now}"`,
            'the CPUs may be in use by another partition or needed by the host; see vfio-isolate status',
          );
        return r;
      },
    });
  }
  return {
    steps,
    after: (c) => {
      const isolated = c.k.readTrim(`${cg.path([])}/cpuset.cpus.isolated`);
      // with --json the same facts are in the result document, the only thing on stdout
      if (!c.g.json)
        c.streams.out(
          `${cgroupName(parent)}: ${vcpus.length} vCPU cgroups are isolated partitions on CPUs ${union.toList()}` +
            (isolated !== undefined ? ` (the kernel isolates ${isolated || 'none'})` : '') +
            '\n',
        );
      return { code: 0, json: { command, cgroup: cgroupName(parent), cpus: union.toList(), isolated } };
    },
  };
}

/**
 * reset: every cpuset partition below the root back to `member`, then every `cpuset.cpus.exclusive` below the root
 * cleared, both deepest first (a child's exclusive CPUs must stay within what its parent lends). The kernel then
 * gives the partitions' CPUs back to every cgroup, to load balancing and to unbound workqueues. Whoever made the
 * partition (partition, a lost journal, another tool), reset is "give me my machine back": all of them go. An
 * invalid partition is journalled as the mode it asked for (`isolated invalid (...)` -> `isolated`), a value
 * restore may write. Returns undefined on v1 and when there is nothing to clear.
 */
export function planPartitionReset(ctx: Ctx, command: string): Step | undefined {
  const cg = ctx.k.cgroups;
  if (cg.version !== 2) return undefined;
  const deepestFirst: string[][] = [];
  const walk = (parts: string[]): void => {
    for (const child of cg.children(parts)) walk([...parts, child]);
    if (parts.length > 0) deepestFirst.push(parts);
  };
  walk([]);
  const members: { path: string; before: string; mode: string }[] = [];
  const cleared: FileWrite[] = [];
  for (const parts of deepestFirst) {
    const partition = `${cg.path(parts)}/cpuset.cpus.partition`;
    const text = ctx.state.read(partition)?.trim() ?? '';
    const mode = /^(root|isolated)\b/.exec(text)?.[1];
    if (mode) members.push({ path: partition, before: text, mode });
    const exclusive = `${cg.path(parts)}/cpuset.cpus.exclusive`;
    const excl = ctx.state.read(exclusive)?.trim() ?? '';
    if (excl !== '') cleared.push({ path: exclusive, value: '', before: excl });
  }
  if (members.length === 0 && cleared.length === 0) return undefined;
  for (const m of members) ctx.state.set(m.path, 'member');
  for (const c of cleared) ctx.state.set(c.path, '');
  const writes: FileWrite[] = [
    ...members.map((m) => ({ path: m.path, value: 'member', before: m.before })),
    ...cleared,
  ];
  return {
    command,
    title:
      `make ${members.length} cpuset partition(s) members again and clear cpuset.cpus.exclusive of ` +
      `${cleared.length} cgroup(s) (their CPUs go back to every cgroup)`,
    changes: writes.map((w) => ({ target: w.path, before: w.before, after: w.value })),
    apply({ k, record, log }) {
      const files: [string, string, string][] = [];
      for (const w of writes) {
        let old: string;
        try {
          old = k.read(w.path).trim();
        } catch {
          continue; // the cgroup has gone meanwhile
        }
        // "isolated invalid (reason)": what was asked, not the kernel's verdict
        if (w.path.endsWith('/cpuset.cpus.partition'))
          old = /^(member|root|isolated)/.exec(old)?.[1] ?? 'member';
        files.push([w.path, old, w.value]);
      }
      if (files.length === 0) return { changed: 0 };
      record({ kind: 'write', files });
      let changed = 0;
      for (const [path, , value] of files) {
        k.write(path, value);
        changed++;
        log.debugLine(`${path} <- ${JSON.stringify(value)}`);
      }
      return { changed };
    },
  };
}

/** The handlers of this file's commands, by full name (the command table loads this module on demand). */
export const handlers: Record<string, Handler> = {
  partition: { kind: 'plan', plan: planPartition },
};
