/** topology: the machine at a glance (packages, dies, L3 domains, cores, nodes) and the suggested host/VM split. */
import type { CommandSpec } from '../cli/spec.ts';
import { buildTopology, renderTopology, topologyJson } from '../report/topology-view.ts';

export const topologyCommand: CommandSpec = {
  name: 'topology',
  summary: 'show packages, L3 cache domains, cores, NUMA nodes and a suggested host/VM split',
  description:
    'One row per L3 cache domain (a CCD or CCX on Ryzen) with its cores as SMT sibling pairs (0/16 1/17 ...), the NUMA nodes with their memory, and the CPU notation of each group (C0-7,16-23, L0, N0) ready to copy. Ends with the split isolate and libvirt cputune use by default, and why. Reads only; runs without root.',
  options: [
    {
      key: 'json',
      long: 'json',
      type: 'boolean',
      help: 'machine-readable output (same as the global --json)',
    },
  ],
  args: [],
  examples: ['vfio-isolate topology', 'vfio-isolate topology --json'],
  handler: {
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

export const topologyCommands: CommandSpec[] = [topologyCommand];
