/** The seed page's libvirt hook sequence (drop-caches, two cpuset-modify, compact-memory, irq-affinity mask). */
export function seedHookArgv(hostCpus: string, vmCpus: string): string[] {
  return [
    'drop-caches',
    ...['cpuset-modify', '--cpus', hostCpus, '/system.slice'],
    ...['cpuset-modify', '--cpus', hostCpus, '/user.slice'],
    'compact-memory',
    ...['irq-affinity', 'mask', vmCpus],
  ];
}
