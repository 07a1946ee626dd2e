/** topology: the machine at a glance (packages, dies, L3 domains, cores, nodes) and the suggested host/VM split. */
import type { Ctx, Handler } from '../cli/spec.ts';
import { buildTopology, renderTopology, topologyJson } from '../report/topology-view.ts';
import { jsonDocument } from '../report/json-text.ts';

/** Can a running VM's vCPUs become isolated partitions here? undefined = yes, else why not. */
function partitionSupport(ctx: Ctx): string | undefined {
  const [major, minor] = ctx.k.version();
  let v2 = false;
  try {
    v2 = ctx.k.cgroups.version === 2;
  } catch {
    /* no cpuset hierarchy mounted */
  }
  if (!v2) return 'this machine has no cgroup v2 cpuset hierarchy';
  if (major < 6 || (major === 6 && minor < 7)) return `this kernel is ${major}.${minor}`;
  return undefined;
}

/** The handlers of this file's commands, by full name (the command table loads this module on demand). */
export const handlers: Record<string, Handler> = {
  topology: {
    kind: 'report',
    run(ctx, inv) {
      const view = buildTopology(ctx.k.machine);
      if (ctx.g.json || inv.values.json === true) ctx.streams.out(jsonDocument(topologyJson(view)));
      else ctx.streams.out(renderTopology(view, ctx.colour, partitionSupport(ctx)));
      return 0;
    },
  },
};
