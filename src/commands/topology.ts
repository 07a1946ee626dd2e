/** topology: the machine at a glance (packages, dies, L3 domains, cores, nodes) and the suggested host/VM split. */
import type { Handler } from '../cli/spec.ts';
import { buildTopology, renderTopology, topologyJson } from '../report/topology-view.ts';

/** The handlers of this file's commands, by full name (the command table loads this module on demand). */
export const handlers: Record<string, Handler> = {
  topology: {
    kind: 'report',
    run(ctx, inv) {
      const view = buildTopology(ctx.k.machine);
      if (ctx.g.json || inv.values.json === true)
        ctx.streams.out(JSON.stringify(topologyJson(view), null, 2) + '\n');
      else ctx.streams.out(renderTopology(view, ctx.colour));
      return 0;
    },
  },
};
