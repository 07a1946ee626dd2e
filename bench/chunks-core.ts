/** The pure half of bench/chunks.ts: which files of the bundle a command loads, from esbuild's metafile. */

/** The part of esbuild's metafile read here. */
export interface Meta {
  outputs: Record<
    string,
    { bytes: number; entryPoint?: string; imports: { path: string; kind: string; external?: boolean }[] }
  >;
}

/**
 * The modules a command's run imports on demand, besides the entry (src/cli/table.ts's load() and src/cli/run.ts):
 * a plan command its module and the runner, a report command its module, the report runner and the kernel layer.
 */
export const ON_DEMAND: Record<string, string[]> = {
  '--version': [],
  restore: ['src/commands/restore.ts', 'src/cli/execute.ts'],
  release: ['src/commands/release.ts', 'src/cli/execute.ts'],
  'irq-affinity': ['src/commands/irq-affinity.ts', 'src/cli/execute.ts'],
  isolate: ['src/commands/isolate.ts', 'src/cli/execute.ts'],
  'move-tasks': ['src/commands/move-tasks.ts', 'src/cli/execute.ts'],
  'cpuset-modify': ['src/commands/cpuset.ts', 'src/cli/execute.ts'],
  status: ['src/commands/status.ts', 'src/cli/report-run.ts', 'src/kernel/kernel.ts', 'src/steps/state.ts'],
};

/** Files, static imports among them and bytes that `command` loads: the entry's, then its on-demand modules'. */
export function loadedBy(meta: Meta, command: string): { files: number; imports: number; bytes: number } {
  const modules = ON_DEMAND[command];
  if (!modules) throw new Error(`bench/chunks: no list of modules for ${command} (ON_DEMAND)`);
  const outputOf = (entry: string): string => {
    const o = Object.entries(meta.outputs).find(([, v]) => v.entryPoint === entry);
    if (!o) throw new Error(`bench/chunks: ${entry} is no entry of the bundle`);
    return o[0];
  };
  const seen = new Set<string>();
  const stack = ['src/main.ts', ...modules].map(outputOf);
  let imports = 0;
  let bytes = 0;
  while (stack.length > 0) {
    const f = stack.pop()!;
    if (seen.has(f)) continue;
    seen.add(f);
    const o = meta.outputs[f]!;
    bytes += o.bytes;
    for (const i of o.imports)
      if (i.kind === 'import-statement' && !i.external) {
        imports++;
        stack.push(i.path);
      }
  }
  return { files: seen.size, imports, bytes };
}
