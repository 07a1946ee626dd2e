/**
 * How a cgroup gets restricted to CPUs / memory nodes: through systemd when the cgroup is an active systemd unit's
 * and systemd manages the hierarchy (`systemctl set-property --runtime UNIT AllowedCPUs=… AllowedMemoryNodes=…`;
 * systemd rewrites cpuset files written behind its back), else by writing its cpuset files (no systemd, v1, cgroups
 * that are no unit's, delegated subtrees). Shared by isolate and the compatible cpuset commands.
 */
import type { Ctx } from '../cli/spec.ts';
import type { CpuSet } from '../cpus/cpuset.ts';
import { RuntimeFailure } from '../errors.ts';
import { cgroupName } from '../kernel/cgroup.ts';
import {
  setPropertyArgs,
  setUnitProperties,
  showUnits,
  systemdMode,
  unitOfCgroup,
  type SystemdMode,
  type UnitInfo,
  type UnitProps,
} from '../kernel/systemd.ts';
import type { UnitRecord } from '../steps/records.ts';
import type { Step } from '../steps/step.ts';
import { writeFilesStep, type FileWrite } from '../steps/write-step.ts';
import { planEnableCpuset } from './common.ts';

/** Does systemd manage the hierarchy? Asked once per run; "present but not managing" warns once. */
export function systemdOf(ctx: Ctx): SystemdMode {
  if (ctx.state.systemd) return ctx.state.systemd;
  const mode = systemdMode(ctx.k);
  ctx.state.systemd = mode;
  if (mode.kind === 'unmanaged')
    ctx.log.warn(
      `systemd runs but does not manage ${ctx.k.cgroups.mount} (${mode.why}); writing cpuset files directly`,
    );
  return mode;
}

/**
 * The systemd unit of each cgroup (by parts), or undefined where the cgroup is no active unit's: no systemd
 * managing the tree, a name that is no unit's, a cgroup below a service or scope (delegated), a cgroup created
 * earlier in this chain, an inactive slice whose cgroup someone else created. One `systemctl show` for all.
 * A cgroup named like a unit that systemd does not have at all: exit 1 before any change (or, with `unknown`
 * 'raw', no unit's).
 */
export function unitsOf(
  ctx: Ctx,
  cgroups: readonly string[][],
  command: string,
  /** 'raw': such a cgroup is treated as no unit's (reset gives every cgroup back, whatever its name). */
  unknown: 'refuse' | 'raw' = 'refuse',
): (UnitInfo | undefined)[] {
  if (ctx.k.cgroups.version !== 2) return cgroups.map(() => undefined);
  if (systemdOf(ctx).kind !== 'managed') return cgroups.map(() => undefined);
  const names = cgroups.map((parts) =>
    ctx.k.fs.isDir(ctx.k.cgroups.path(parts)) ? unitOfCgroup(parts) : undefined,
  );
  const asked = [...new Set(names.filter((n): n is string => n !== undefined))];
  const infos = showUnits(ctx.k, asked);
  return cgroups.map((parts, i) => {
    const name = names[i];
    if (name === undefined) return undefined;
    const info = infos.get(name)!;
    if (info.loadState !== 'loaded') {
      if (unknown === 'raw') return undefined;
      throw new RuntimeFailure(
        `${command}: cgroup ${cgroupName(parts)} is named like systemd unit ${name}, but systemd has no such unit (LoadState=${info.loadState || 'unknown'})`,
        'systemd would not keep a restriction there; check the name with: systemctl status ' + name,
      );
    }
    return info.controlGroup === cgroupName(parts) ? info : undefined;
  });
}

/**
 * One step that sets a unit's AllowedCPUs / AllowedMemoryNodes through systemd (runtime only), journalling the
 * values before; undefined when they already are what is asked (so re-applying changes nothing).
 */
export function planUnitLimit(
  ctx: Ctx,
  unit: UnitInfo,
  parts: readonly string[],
  limit: UnitProps,
  command: string,
): Step | undefined {
  const now = ctx.state.units.get(unit.unit) ?? { cpus: unit.allowedCpus, mems: unit.allowedMemoryNodes };
  const props: UnitProps = {};
  const rec: UnitRecord = { kind: 'unit', unit: unit.unit };
  if (limit.allowedCpus !== undefined && limit.allowedCpus !== now.cpus) {
    props.allowedCpus = limit.allowedCpus;
    rec.allowedCpus = [now.cpus, limit.allowedCpus];
  }
  if (limit.allowedMemoryNodes !== undefined && limit.allowedMemoryNodes !== now.mems) {
    props.allowedMemoryNodes = limit.allowedMemoryNodes;
    rec.allowedMemoryNodes = [now.mems, limit.allowedMemoryNodes];
  }
  if (!rec.allowedCpus && !rec.allowedMemoryNodes) return undefined;
  ctx.state.units.set(unit.unit, {
    cpus: props.allowedCpus ?? now.cpus,
    mems: props.allowedMemoryNodes ?? now.mems,
  });
  // Chained commands see the cpuset files systemd will write.
  const dir = ctx.k.cgroups.path(parts);
  if (props.allowedCpus) ctx.state.set(`${dir}/cpuset.cpus`, props.allowedCpus);
  if (props.allowedMemoryNodes) ctx.state.set(`${dir}/cpuset.mems`, props.allowedMemoryNodes);
  const args = setPropertyArgs(unit.unit, props);
  const what = [
    props.allowedCpus !== undefined ? `CPUs ${props.allowedCpus || '(all)'}` : '',
    props.allowedMemoryNodes !== undefined ? `nodes ${props.allowedMemoryNodes || '(all)'}` : '',
  ]
    .filter(Boolean)
    .join(', ');
  return {
    command,
    title: `restrict systemd unit ${unit.unit} to ${what} through systemd (runtime only)`,
    changes: [
      {
        target: `systemctl ${args.join(' ')}`,
        note: `was ${[rec.allowedCpus ? `AllowedCPUs=${rec.allowedCpus[0]}` : '', rec.allowedMemoryNodes ? `AllowedMemoryNodes=${rec.allowedMemoryNodes[0]}` : ''].filter(Boolean).join(' ')}`,
      },
    ],
    apply({ k, record, log }) {
      record(rec);
      setUnitProperties(k, unit.unit, props);
      log.debugLine(`systemctl ${args.join(' ')}`);
      return { changed: 1 };
    },
  };
}

/**
 * One step that lifts a unit's CPU restriction through systemd (reset): AllowedCPUs= set to `all` first, then
 * emptied. Widening first gives the unit's tasks every CPU back before systemd may disable the cpuset controller
 * (which leaves tasks on the CPUs they had); emptying leaves the property as systemd's default. The value before is
 * journalled. Undefined when the property is empty and the unit's cpuset file already inherits.
 */
export function planUnitLift(
  ctx: Ctx,
  unit: UnitInfo,
  parts: readonly string[],
  all: string,
  command: string,
): Step | undefined {
  const dir = ctx.k.cgroups.path(parts);
  const now = ctx.state.units.get(unit.unit)?.cpus ?? unit.allowedCpus;
  const file = ctx.state.read(`${dir}/cpuset.cpus`) ?? '';
  if (now === '' && file === '') return undefined;
  const rec: UnitRecord = { kind: 'unit', unit: unit.unit, allowedCpus: [now, ''] };
  ctx.state.units.set(unit.unit, {
    cpus: '',
    mems: ctx.state.units.get(unit.unit)?.mems ?? unit.allowedMemoryNodes,
  });
  ctx.state.set(`${dir}/cpuset.cpus`, '');
  const widen = setPropertyArgs(unit.unit, { allowedCpus: all });
  const lift = setPropertyArgs(unit.unit, { allowedCpus: '' });
  return {
    command,
    title: `let systemd unit ${unit.unit} use all CPUs again through systemd (runtime only)`,
    changes: [
      {
        target: `systemctl ${widen.join(' ')}`,
        note: `was AllowedCPUs=${now}${file ? ` (cpuset.cpus ${file})` : ''}`,
      },
      { target: `systemctl ${lift.join(' ')}` },
    ],
    apply({ k, record, log }) {
      record(rec);
      setUnitProperties(k, unit.unit, { allowedCpus: all });
      log.debugLine(`systemctl ${widen.join(' ')}`);
      setUnitProperties(k, unit.unit, { allowedCpus: '' });
      log.debugLine(`systemctl ${lift.join(' ')}`);
      return { changed: 1 };
    },
  };
}

/**
 * Restrict these cgroups (isolate: the top-level ones except the VM's) to `cpus` (and `mems` when given): units
 * through systemd, one step each; the rest by their cpuset files, with the controller enabled top-down, in one
 * step. Cgroups already restricted that way get no step.
 */
export function planRestrictCgroups(
  ctx: Ctx,
  cgroups: readonly string[][],
  limit: { cpus: CpuSet; mems?: CpuSet },
  command: string,
): Step[] {
  const cg = ctx.k.cgroups;
  const units = unitsOf(ctx, cgroups, command);
  const unitSteps: Step[] = [];
  const steps: Step[] = [];
  const writes: FileWrite[] = [];
  cgroups.forEach((parts, i) => {
    const unit = units[i];
    if (unit) {
      const s = planUnitLimit(
        ctx,
        unit,
        parts,
        { allowedCpus: limit.cpus.toList(), allowedMemoryNodes: limit.mems?.toList() },
        command,
      );
      if (s) unitSteps.push(s);
      return;
    }
    steps.push(...planEnableCpuset(ctx, parts, command));
    const files: [string, string][] = [['cpuset.cpus', limit.cpus.toList()]];
    if (limit.mems) files.push(['cpuset.mems', limit.mems.toList()]);
    for (const [name, value] of files) {
      const path = `${cg.path(parts)}/${name}`;
      const before = ctx.state.read(path);
      if (before === undefined) continue;
      writes.push({ path, value, before });
      ctx.state.set(path, value);
    }
  });
  if (writes.length)
    steps.push(
      writeFilesStep(
        command,
        `restrict ${writes.length} top-level cgroups to CPUs ${limit.cpus.toList()}`,
        writes,
      ),
    );
  return [...unitSteps, ...steps];
}
