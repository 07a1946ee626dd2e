/**
 * A tiny libvirt domain for the systemd guest (mode `systemd`): type qemu (TCG), 64 MiB, no disk, no network, so it
 * idles in its firmware; its <cputune> comes from `vfio-isolate libvirt cputune`. Shared by the guest tests
 * (systemd-libvirt, systemd-partition) and the demo's systemd mode. Every helper runs only inside that guest.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CpuSet } from '../../../src/cpus/cpuset.ts';
import { cli } from './cli.ts';
import { allowedOf, readOr, run, systemctl, waitFor } from './systemd-env.ts';

export const virsh = (...args: string[]): string => run('virsh', ['-c', 'qemu:///system', ...args], 180_000);

export const pidFile = (domain: string): string => `/run/libvirt/qemu/${domain}.pid`;

export interface Pinning {
  vcpus: Map<number, CpuSet>;
  emulator: CpuSet;
}

export function parsePinning(xml: string): Pinning {
  const vcpus = new Map<number, CpuSet>();
  for (const m of xml.matchAll(/<vcpupin vcpu='(\d+)' cpuset='([^']+)'\/>/g))
    vcpus.set(Number(m[1]), CpuSet.parseList(m[2]!));
  const emu = /<emulatorpin cpuset='([^']+)'\/>/.exec(xml)?.[1];
  assert.ok(emu && vcpus.size > 0, `cputune XML without pins:\n${xml}`);
  return { vcpus, emulator: CpuSet.parseList(emu) };
}

export function domainXml(domain: string, cputune: string): string {
  // host-passthrough needs KVM: under TCG a plain <cpu> with the same topology.
  const tune = cputune.replace(/<cpu mode='host-passthrough'>/, '<cpu>');
  return `<domain type='qemu'>
  <name>${domain}</name>
  <memory unit='MiB'>64</memory>
${tune
  .trim()
  .split('\n')
  .map((l) => `  ${l}`)
  .join('\n')}
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>
`;
}

/**
 * Start libvirtd (and virtlogd, which it starts on first use anyway: up before any baseline snapshot, as on a
 * host), write the profile /etc/vfio-isolate/DOMAIN.toml (domain, vm_cpus and `extra` lines), and define the domain
 * with the <cputune> `libvirt cputune --profile` prints. Returns the profile's path and the pins.
 */
export async function defineDomain(
  domain: string,
  vmCpus: string,
  extra = '',
): Promise<{ profile: string; pin: Pinning }> {
  systemctl('start', 'libvirtd');
  systemctl('start', 'virtlogd');
  mkdirSync('/etc/vfio-isolate', { recursive: true, mode: 0o755 });
  const profile = `/etc/vfio-isolate/${domain}.toml`;
  writeFileSync(profile, `domain = "${domain}"\nvm_cpus = "${vmCpus}"\n${extra}`, { mode: 0o644 });
  const tune = await cli(['libvirt', 'cputune', '--profile', profile, '--iothreads', '0']);
  assert.equal(tune.code, 0, tune.stderr);
  const xmlFile = join(mkdtempSync(join(tmpdir(), 'vi-libvirt-')), `${domain}.xml`);
  writeFileSync(xmlFile, domainXml(domain, tune.stdout));
  virsh('define', xmlFile);
  return { profile, pin: parsePinning(tune.stdout) };
}

export async function waitRunning(domain: string): Promise<void> {
  await waitFor('the domain to run', () =>
    virsh('domstate', domain).trim() === 'running' && existsSync(pidFile(domain)) ? true : undefined,
  );
}

export async function waitShutOff(domain: string): Promise<void> {
  await waitFor('the domain to shut off', () =>
    virsh('domstate', domain).trim() === 'shut off' ? true : undefined,
  );
}

/** Every thread of the running QEMU with its allowed CPUs; `wrong` lists threads not where the XML pins them. */
export function checkThreads(
  domain: string,
  pin: Pinning,
): { vcpu: number; emulator: number; wrong: string[] } {
  const pid = Number(readOr(pidFile(domain)));
  assert.ok(pid > 0, `no pid in ${pidFile(domain)}`);
  const wrong: string[] = [];
  let vcpu = 0;
  let emulator = 0;
  for (const tid of run('ls', [`/proc/${pid}/task`])
    .split(/\s+/)
    .filter(Boolean)
    .map(Number)) {
    const comm = readOr(`/proc/${pid}/task/${tid}/comm`);
    const allowed = allowedOf(pid, tid);
    if (!allowed) continue; // exited meanwhile
    const m = /^CPU (\d+)\/TCG$/.exec(comm);
    const want = m ? pin.vcpus.get(Number(m[1])) : pin.emulator;
    if (m) vcpu++;
    else emulator++;
    if (!want || !allowed.equals(want))
      wrong.push(`${tid} (${comm}) may run on ${allowed.toList()}, pinned to ${want?.toList() ?? 'nothing'}`);
  }
  return { vcpu, emulator, wrong };
}

/** The syslog lines of the vfio-isolate hooks (journalctl -t vfio-isolate). */
export function hookLines(): string[] {
  return run('journalctl', ['-t', 'vfio-isolate', '-o', 'cat', '--no-pager']).split('\n').filter(Boolean);
}
