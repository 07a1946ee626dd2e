import * as path from 'node:path';

/**
 * Every system path the tool acts on, spelled out once, here. Code outside src/kernel/ refers to them only through
 * `P` (a planner reading through the plan state, the man page, a report naming a file); texts for the user (help,
 * hints) may mention them in words.
 */
export const P = {
  cpuDir: '/sys/devices/system/cpu',
  cpu: (n: number) => `/sys/devices/system/cpu/cpu${n}`,
  cpuPossible: '/sys/devices/system/cpu/possible',
  cpuPresent: '/sys/devices/system/cpu/present',
  cpuOnline: '/sys/devices/system/cpu/online',
  cpuIsolated: '/sys/devices/system/cpu/isolated',
  cpuNohzFull: '/sys/devices/system/cpu/nohz_full',
  cpufreqDir: '/sys/devices/system/cpu/cpufreq',
  governor: (n: number) => `/sys/devices/system/cpu/cpu${n}/cpufreq/scaling_governor`,
  nodeDir: '/sys/devices/system/node',
  node: (k: number) => `/sys/devices/system/node/node${k}`,
  mountinfo: '/proc/self/mountinfo',
  cmdline: '/proc/cmdline',
  bootId: '/proc/sys/kernel/random/boot_id',
  osrelease: '/proc/sys/kernel/osrelease',
  irqDir: '/proc/irq',
  irq: (n: number) => `/proc/irq/${n}`,
  defaultSmpAffinity: '/proc/irq/default_smp_affinity',
  interrupts: '/proc/interrupts',
  softirqs: '/proc/softirqs',
  stat: '/proc/stat',
  proc: '/proc',
  pid: (pid: number) => `/proc/${pid}`,
  task: (pid: number, tid: number) => `/proc/${pid}/task/${tid}`,
  /** kthreadd's children: every kernel thread but kthreadd (pid 2) itself. */
  kthreaddChildren: '/proc/2/task/2/children',
  dropCaches: '/proc/sys/vm/drop_caches',
  compactMemory: '/proc/sys/vm/compact_memory',
  statInterval: '/proc/sys/vm/stat_interval',
  watchdogCpumask: '/proc/sys/kernel/watchdog_cpumask',
  resumeLatency: (n: number) => `/sys/devices/system/cpu/cpu${n}/power/pm_qos_resume_latency_us`,
  vmDir: '/proc/sys/vm',
  workqueueMask: '/sys/devices/virtual/workqueue/cpumask',
  workqueueDir: '/sys/devices/virtual/workqueue',
  writebackMask: '/sys/bus/workqueue/devices/writeback/cpumask',
  workqueueBusDir: '/sys/bus/workqueue/devices',
  runDir: '/run/vfio-isolate',
  lockFile: '/run/vfio-isolate/lock',
  defaultJournal: '/run/vfio-isolate/isolate.journal',
  /** The active isolations (reservations) of isolate, and the journal of their shared host changes. */
  reservations: '/run/vfio-isolate/reservations.json',
  hostJournal: '/run/vfio-isolate/host.journal',
  systemdRunning: '/run/systemd/system',
  libvirtHooks: '/etc/libvirt/hooks',
  /** Where `--profile NAME` finds NAME.toml. */
  profileDir: '/etc/vfio-isolate',
  etcDefault: '/etc/default',
  irqbalanceDropIn: '/run/systemd/system/irqbalance.service.d/50-vfio-isolate.conf',
  irqbalanceEnv: '/run/vfio-isolate/irqbalance.env',
} as const;

/**
 * koffi's package directory and the `@koromix/koffi-PLATFORM-ARCH` directory beside it, from the real path of the
 * file node resolves `koffi` to: where koffi's own loader looks for its addon, and what a libvirt hook's trust check
 * covers: koffi.ts opens the addon there, hook-targets.ts checks it. Here rather than in koffi.ts, so that
 * hook-targets.ts does not give koffi.ts a chunk of its own (one more file for every command that changes something).
 */
export function koffiPackages(main: string): { koffi: string; native: string } {
  const marker = '/node_modules/koffi/';
  const i = main.lastIndexOf(marker);
  const koffi = i < 0 ? path.dirname(main) : main.slice(0, i + marker.length - 1);
  return {
    koffi,
    native: path.join(path.dirname(koffi), '@koromix', `koffi-${process.platform}-${process.arch}`),
  };
}
