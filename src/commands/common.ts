/** Helpers shared by the commands: CPU/node arguments, cgroup names, v2 top-down cpuset enabling. */
import { CpuSet } from '../cpus/cpuset.ts';
import { NotationError, parseCpuSpec, parseNodeSpec } from '../cpus/notation.ts';
import { UsageError, RuntimeFailure } from '../errors.ts';
import { cgroupName, normalizeCgroupName } from '../kernel/cgroup.ts';
import type { Ctx } from '../cli/spec.ts';
import type { Step } from '../steps/step.ts';

export function cpusArg(ctx: Ctx, value: string, what: string): CpuSet {
  try {
    const r = parseCpuSpec(value, ctx.k.machine, { what });
    for (const w of r.warnings) ctx.log.warn(w);
    return r.cpus;
  } catch (e) {
    if (e instanceof NotationError)
      throw new UsageError(e.message, 'see "vfio-isolate help cpus" for the notation');
    throw e;
  }
}

export function nodesArg(ctx: Ctx, value: string, what: string): CpuSet {
  try {
    const r = parseNodeSpec(value, ctx.k.machine, { what });
    for (const w of r.warnings) ctx.log.warn(w);
    return r.nodes;
  } catch (e) {
    if (e instanceof NotationError) throw new UsageError(e.message, 'NUMA nodes are written N0 or N0-1');
    throw e;
  }
}

export interface CgroupRef {
  parts: string[];
  name: string;
  path: string;
}

export function cgroupArg(ctx: Ctx, value: string): CgroupRef {
  const parts = normalizeCgroupName(value);
  return { parts, name: cgroupName(parts), path: ctx.k.cgroups.path(parts) };
}

export function requireCgroup(ctx: Ctx, cg: CgroupRef, command: string): void {
  if (!ctx.state.isDir(cg.path)) {
    throw new RuntimeFailure(
      `${command}: cgroup ${cg.name} does not exist`,
      ctx.k.cgroups.version === 2
        ? 'create it first with cpuset-create, or check the name with: vfio-isolate status'
        : 'create it first with cpuset-create',
    );
  }
}

/**
 * v2: the cpuset controller must be enabled in every ancestor's cgroup.subtree_control, from the root down, for
 * `parts` to have cpuset files. Plans one step per ancestor that lacks it (each journalled, undone on restore).
 */
export function planEnableCpuset(ctx: Ctx, parts: readonly string[], command: string): Step[] {
  const cg = ctx.k.cgroups;
  if (cg.version !== 2) return [];
  const steps: Step[] = [];
  for (let depth = 0; depth < parts.length; depth++) {
    const anc = parts.slice(0, depth);
    const dir = cg.path(anc);
    const control = ctx.state.read(`${dir}/cgroup.subtree_control`) ?? '';
    if (control.split(/\s+/).includes('cpuset')) continue;
    const controllers = (ctx.state.read(`${dir}/cgroup.controllers`) ?? '').split(/\s+/);
    if (!controllers.includes('cpuset')) {
      throw new RuntimeFailure(
        `${command}: the cpuset controller is not available in ${cgroupName(anc)}`,
        'its parent must enable cpuset first',
      );
    }
    const children = cg.children(anc).map((c) => `${dir}/${c}`);
    ctx.state.set(`${dir}/cgroup.subtree_control`, `${control} cpuset`.trim());
    for (const child of children) {
      const avail = ctx.state.read(`${child}/cgroup.controllers`) ?? '';
      if (!avail.split(/\s+/).includes('cpuset'))
        ctx.state.set(`${child}/cgroup.controllers`, `${avail} cpuset`.trim());
      // a child has no cpuset files while its parent does not enable the controller (none to read); once
      // enabled, they are empty, unless an earlier step of the chain plans them
      for (const file of [`${child}/cpuset.cpus`, `${child}/cpuset.mems`])
        ctx.state.set(file, ctx.state.planned(file) ? (ctx.state.read(file) ?? '') : '');
    }
    steps.push({
      command,
      title: `enable the cpuset controller for the children of ${cgroupName(anc)}`,
      changes: [{ target: `${dir}/cgroup.subtree_control`, before: control, after: '+cpuset' }],
      apply({ k, record }) {
        // Enabled meanwhile (systemd realizing the units an earlier step of this run restricted, e.g. isolate on a
        // tree systemd manages): not ours to enable, so not ours to disable at release (a "-cpuset" there would
        // drop the cpuset files of the units systemd still restricts).
        if ((k.readTrim(`${dir}/cgroup.subtree_control`) ?? '').split(/\s+/).includes('cpuset'))
          return { changed: 0 };
        record({ kind: 'controller', path: dir, controller: 'cpuset' });
        k.write(`${dir}/cgroup.subtree_control`, '+cpuset');
        return { changed: 1 };
      },
    });
  }
  return steps;
}

export function boolOpt(v: string | boolean | undefined): boolean | undefined {
  return typeof v === 'boolean' ? v : undefined;
}
