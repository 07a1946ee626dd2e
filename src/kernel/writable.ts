/**
 * The kernel files vfio-isolate itself writes, and the shape of the values they take: what `restore` may write
 * (every path of a journal must match one of these after resolution). The kernel layer owns these paths.
 */
const LIST = /^[0-9,-]*$/;
const MASK = /^[0-9a-fA-F,]{1,2048}$/;
const FLAG = /^[01]$/;

export interface WritableRule {
  re: RegExp;
  value: RegExp;
}

/** The IRQ affinity files (they do not depend on where the cgroup hierarchy is mounted). */
const IRQ_RULES: readonly WritableRule[] = [
  { re: /^\/proc\/irq\/\d+\/smp_affinity_list$/, value: LIST },
  { re: /^\/proc\/irq\/\d+\/smp_affinity$/, value: MASK },
  { re: /^\/proc\/irq\/default_smp_affinity$/, value: MASK },
];

export function writableRules(cgroupMount: string): WritableRule[] {
  const cg = cgroupMount.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const cgFile = (name: string): RegExp => new RegExp(`^${cg}(/[^/]+)*/${name.replace(/\./g, '\\.')}$`);
  return [
    { re: cgFile('cpuset.cpus'), value: LIST },
    { re: cgFile('cpuset.mems'), value: LIST },
    { re: cgFile('cpuset.cpus.exclusive'), value: LIST },
    { re: cgFile('cpuset.cpus.partition'), value: /^(member|root|isolated)$/ },
    { re: cgFile('cpuset.cpu_exclusive'), value: FLAG },
    { re: cgFile('cpuset.mem_exclusive'), value: FLAG },
    { re: cgFile('cpuset.memory_migrate'), value: FLAG },
    { re: cgFile('cpuset.sched_load_balance'), value: FLAG },
    ...IRQ_RULES,
    {
      re: /^\/sys\/devices\/system\/cpu\/cpufreq\/policy\d+\/scaling_governor$/,
      value: /^[a-z0-9_-]{1,32}$/,
    },
    { re: /^\/proc\/sys\/vm\/stat_interval$/, value: /^\d{1,7}$/ },
    { re: /^\/proc\/sys\/kernel\/watchdog_cpumask$/, value: LIST },
    {
      re: /^\/sys\/devices\/system\/cpu\/cpu\d+\/power\/pm_qos_resume_latency_us$/,
      value: /^(\d{1,9}|n\/a)$/,
    },
    { re: /^\/sys\/devices\/virtual\/workqueue\/([A-Za-z0-9_.-]+\/)?cpumask$/, value: MASK },
    { re: /^\/sys\/bus\/workqueue\/devices\/[A-Za-z0-9_.-]+\/cpumask$/, value: MASK },
  ];
}

/** An IRQ affinity file: a write the kernel may refuse (EIO/EPERM) for managed IRQs. */
export function isIrqAffinityPath(path: string): boolean {
  return /^\/proc\/irq\/\d+\/smp_affinity(_list)?$/.test(path);
}

/**
 * The rule of an IRQ affinity file (/proc/irq/N/smp_affinity, smp_affinity_list, /proc/irq/default_smp_affinity),
 * undefined for any other path. procfs lays out these directories and files itself and nobody can create a symlink
 * or a file in them, so once /proc/irq is known to be a procfs directory (checked once per run), opening such a path
 * O_NOFOLLOW opens exactly that file, and the path is canonical as written.
 */
export function irqRuleOf(path: string): WritableRule | undefined {
  return IRQ_RULES.find((r) => r.re.test(path));
}
