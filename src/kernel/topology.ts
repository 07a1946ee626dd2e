import { CpuSet } from '../cpus/cpuset.ts';
import { orderL3Domains, type CpuTopology } from '../cpus/topology-model.ts';
import { errnoOf, type Fs } from './fs.ts';
import { P } from './paths.ts';

export interface Core {
  package: number;
  die: number;
  core: number;
  cpus: CpuSet;
}

/** What the tool knows about the machine's CPUs: the notation's view plus cores and memory per node. */
export interface Machine extends CpuTopology {
  cores: Core[];
  /** MemTotal per node in kB (0 when unknown). */
  nodeMemKb: Map<number, number>;
  isolated: CpuSet;
  nohzFull: CpuSet;
  cmdline: string;
}

/** A CPU list file: empty when it cannot be read or is no list. */
function readSet(fs: Fs, path: string): CpuSet {
  return readOptionalSet(fs, path, CpuSet.EMPTY);
}

/** readSet for a file older kernels lack: `missing` when it is not there (one read, no existence check first). */
function readOptionalSet(fs: Fs, path: string, missing: CpuSet | (() => CpuSet)): CpuSet {
  let text: string;
  try {
    text = fs.read(path);
  } catch (e) {
    if (errnoOf(e) !== 'ENOENT') return CpuSet.EMPTY;
    return typeof missing === 'function' ? missing() : missing;
  }
  try {
    return CpuSet.parseList(text);
  } catch {
    return CpuSet.EMPTY;
  }
}

function readInt(fs: Fs, path: string, dflt: number): number {
  try {
    const n = Number.parseInt(fs.read(path).trim(), 10);
    return Number.isFinite(n) ? n : dflt;
  } catch {
    return dflt;
  }
}

function numbered(fs: Fs, dir: string, prefix: string): number[] {
  const re = new RegExp(`^${prefix}(\\d+)$`);
  try {
    return fs
      .list(dir)
      .map((e) => re.exec(e.name))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
  } catch {
    return [];
  }
}

/**
 * Read the machine's topology from sysfs. Never throws for a missing optional file. Everything is read on first use
 * and once: possible, present and online each by itself (the CPU notation and IRQ masking need present and online,
 * move-tasks from the root and restore's validation possible alone); the rest (a dozen files per CPU: ~50 ms for
 * 8 CPUs under TCG, more on big machines) together, so commands that take plain CPU lists (the hook sequences)
 * never read it.
 */
export function readMachine(fs: Fs): Machine {
  let possible: CpuSet | undefined;
  let present: CpuSet | undefined;
  let online: CpuSet | undefined;
  const possibleSet = (): CpuSet => (possible ??= readSet(fs, P.cpuPossible));
  const presentSet = (): CpuSet => (present ??= readOptionalSet(fs, P.cpuPresent, possibleSet));
  const onlineSet = (): CpuSet => (online ??= readOptionalSet(fs, P.cpuOnline, presentSet));
  let rest: Omit<Machine, 'possible' | 'present' | 'online'> | undefined;
  const more = (): Omit<Machine, 'possible' | 'present' | 'online'> =>
    (rest ??= readDetails(fs, presentSet()));
  return {
    get possible() {
      return possibleSet();
    },
    get present() {
      return presentSet();
    },
    get online() {
      return onlineSet();
    },
    get siblings() {
      return more().siblings;
    },
    get packages() {
      return more().packages;
    },
    get l3() {
      return more().l3;
    },
    get nodes() {
      return more().nodes;
    },
    get cores() {
      return more().cores;
    },
    get nodeMemKb() {
      return more().nodeMemKb;
    },
    get isolated() {
      return more().isolated;
    },
    get nohzFull() {
      return more().nohzFull;
    },
    get cmdline() {
      return more().cmdline;
    },
  };
}

/** A CPU's SMT siblings, itself included (itself alone when the kernel does not say). */
export function siblingsOf(fs: Fs, cpu: number): CpuSet {
  const file = `${P.cpu(cpu)}/topology/thread_siblings_list`;
  const sib = fs.exists(file) ? readSet(fs, file) : CpuSet.EMPTY;
  return sib.isEmpty ? CpuSet.of([cpu]) : sib;
}

function readDetails(fs: Fs, present: CpuSet): Omit<Machine, 'possible' | 'present' | 'online'> {
  const siblings = new Map<number, CpuSet>();
  const packages = new Map<number, number[]>();
  // L3 domains: what each CPU's cache/index3/shared_cpu_list says it shares (lscpu and hwloc read the same);
  // the cache id only groups CPUs whose shared_cpu_list is missing or empty.
  const l3Shared: CpuSet[] = [];
  const l3ById = new Map<string, number[]>();
  const coreMap = new Map<string, Core & { list: number[] }>();
  for (const cpu of present) {
    const t = `${P.cpu(cpu)}/topology`;
    const pkg = readInt(fs, `${t}/physical_package_id`, 0);
    const die = readInt(fs, `${t}/die_id`, 0);
    const coreId = readInt(fs, `${t}/core_id`, cpu);
    siblings.set(cpu, siblingsOf(fs, cpu));
    (packages.get(pkg) ?? packages.set(pkg, []).get(pkg)!).push(cpu);
    const key = `${pkg}:${die}:${coreId}`;
    const c = coreMap.get(key) ?? { package: pkg, die, core: coreId, cpus: CpuSet.EMPTY, list: [] };
    c.list.push(cpu);
    coreMap.set(key, c);
    const idx3 = `${P.cpu(cpu)}/cache/index3`;
    const shared = fs.exists(`${idx3}/shared_cpu_list`)
      ? readSet(fs, `${idx3}/shared_cpu_list`)
      : CpuSet.EMPTY;
    if (!shared.isEmpty) l3Shared.push(shared.union(CpuSet.of([cpu])));
    else if (fs.exists(`${idx3}/id`)) {
      const id = `${pkg}:${fs.read(`${idx3}/id`).trim()}`;
      (l3ById.get(id) ?? l3ById.set(id, []).get(id)!).push(cpu);
    }
  }
  const l3 = orderL3Domains([...l3Shared, ...[...l3ById.values()].map((l) => CpuSet.of(l))]);
  const cores = [...coreMap.values()]
    .map(({ list, ...c }) => ({ ...c, cpus: CpuSet.of(list) }))
    .sort((a, b) => (a.cpus.first ?? 0) - (b.cpus.first ?? 0));
  const nodes = new Map<number, CpuSet>();
  const nodeMemKb = new Map<number, number>();
  for (const k of numbered(fs, P.nodeDir, 'node')) {
    nodes.set(k, readSet(fs, `${P.node(k)}/cpulist`));
    let kb = 0;
    try {
      const m = /MemTotal:\s+(\d+)\s*kB/.exec(fs.read(`${P.node(k)}/meminfo`));
      if (m) kb = Number(m[1]);
    } catch {
      /* optional */
    }
    nodeMemKb.set(k, kb);
  }
  if (nodes.size === 0) nodes.set(0, present); // kernels without CONFIG_NUMA expose no node dir
  let cmdline = '';
  try {
    cmdline = fs.read(P.cmdline).trim();
  } catch {
    /* optional */
  }
  return {
    siblings,
    packages: new Map([...packages].map(([k, v]) => [k, CpuSet.of(v)])),
    l3: l3.length > 0 ? l3 : [...packages.values()].map((v) => CpuSet.of(v)),
    nodes,
    cores,
    nodeMemKb,
    isolated: readSet(fs, P.cpuIsolated),
    nohzFull: readSet(fs, P.cpuNohzFull),
    cmdline,
  };
}
