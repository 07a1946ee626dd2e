/**
 * The guest half of `npm run demo -- --systemd`: runs INSIDE the throw-away QEMU guest of mode `systemd` (the
 * host's own systemd as PID 1, cgroup v2, Linux 6.12; libvirt startable), as one node process that calls the CLI
 * in-process on the guest's real kernel and reports each step as an event line (events.ts) for demo.ts to render.
 * It shows: isolate restricting systemd's units through systemd (AllowedCPUs=), a `systemctl daemon-reload` that
 * does not undo it, release giving back the exact state; then a tiny libvirt domain started and stopped with the
 * hook `vfio-isolate libvirt hook install` wrote: the hook fired, the host was isolated while the VM ran (also
 * across a daemon-reload), its vCPUs were isolated partitions, and the state after the stop equals the one before.
 * Refuses to run anywhere else.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../src/cli/run.ts';
import { COMMANDS } from '../src/cli/table.ts';
import { CpuSet } from '../src/cpus/cpuset.ts';
import { guestMode } from '../test/vm/guest/guest-env.ts';
import {
  checkThreads,
  defineDomain,
  hookLines,
  virsh,
  waitRunning,
  waitShutOff,
} from '../test/vm/guest/libvirt-domain.ts';
import { readOr, topLevelUnits, unrestrictedCgroups, waitFor } from '../test/vm/guest/systemd-env.ts';
import { diffSnapshots, takeSnapshot, type Snapshot } from '../test/vm/snapshot.ts';
import { encodeEvent, type DemoEvent } from './events.ts';
import { chunkArgv, figuresFromStatus, summariseChanges } from './summary.ts';

const VM = '4-5';
const VM_CPUS = CpuSet.parseList(VM);
const DOMAIN = 'demo-vm';
const UNITS = ['init.scope', 'system.slice', 'user.slice'];
const t0 = Date.now();
let failures = 0;

const emit = (e: DemoEvent): void => void process.stdout.write(encodeEvent(e));
const say = (text: string): void => emit({ type: 'say', text });
const section = (title: string): void => emit({ type: 'section', title });

function check(name: string, ok: boolean, detail = ''): boolean {
  if (!ok) failures++;
  emit({ type: 'check', name, ok, detail });
  return ok;
}

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

const COMMAND_NAMES = new Set(COMMANDS.map((c) => c.name));

async function capture(argv: string[], colour: boolean): Promise<RunResult & { seconds: number }> {
  let stdout = '';
  let stderr = '';
  const start = Date.now();
  const env: NodeJS.ProcessEnv = { ...process.env, VFIO_ISOLATE_LOCK_WAIT_MS: '10000' };
  delete env.VFIO_ISOLATE_ROOT;
  delete env.NO_COLOR;
  env.TERM = colour ? 'xterm-256color' : 'dumb';
  const code = await runCli(argv, {
    table: COMMANDS,
    env,
    streams: { out: (s) => void (stdout += s), err: (s) => void (stderr += s), isTTY: colour },
  });
  return { code, stdout, stderr, seconds: (Date.now() - start) / 1000 };
}

/** vfio-isolate ARGV in-process, shown. */
async function tool(argv: string[], colour: boolean): Promise<RunResult> {
  const r = await capture(argv, colour);
  emit({ type: 'command', argv, chunks: chunkArgv(argv, COMMAND_NAMES), ...r });
  return r;
}

/** Another program (systemctl, virsh, journalctl), shown like the tool's commands. */
function shell(program: string, args: string[], show = true): RunResult {
  const start = Date.now();
  let r: RunResult;
  try {
    r = { code: 0, stdout: execFileSync(program, args, { encoding: 'utf8', timeout: 180_000 }), stderr: '' };
  } catch (e) {
    const x = e as { status?: number; stdout?: string; stderr?: string };
    r = { code: x.status ?? 1, stdout: x.stdout ?? '', stderr: x.stderr ?? String(e) };
  }
  if (show)
    emit({
      type: 'command',
      program,
      argv: args,
      chunks: [args],
      ...r,
      seconds: (Date.now() - start) / 1000,
    });
  return r;
}

function exitDetail(r: RunResult): string {
  if (r.code === 0) return '';
  // eslint-disable-next-line no-control-regex
  const first = (r.stderr.trim().split('\n')[0] ?? '').replace(/\x1b\[[0-9;]*m/g, '');
  return `exit ${r.code}${first ? `: ${first.slice(0, 160)}` : ''}`;
}

/** systemd's AllowedCPUs= of the host's top-level units, as `systemctl show` prints them. */
function allowedCpus(show = true): Record<string, string> {
  const r = shell('systemctl', ['show', '-p', 'Id,AllowedCPUs', ...UNITS], show);
  const out: Record<string, string> = {};
  for (const block of r.stdout.trim().split(/\n\n+/)) {
    const id = /^Id=(.*)$/m.exec(block)?.[1];
    if (id) out[id] = /^AllowedCPUs=(.*)$/m.exec(block)?.[1] ?? '';
  }
  return out;
}

/** `status --json VM`: the leak figures (shown in the summary), plus the top-level cgroups that still reach VM. */
async function leakFigures(label: string): Promise<{ total: number; lines: string[]; open: string[] }> {
  const json = await capture(['status', '--json', `C${VM}`], false);
  const open = unrestrictedCgroups(VM_CPUS);
  try {
    const s = figuresFromStatus(json.stdout);
    emit({ type: 'leaks', label, figures: s.figures });
    return { total: s.figures.total, lines: s.leakLines, open };
  } catch (e) {
    check(`status --json reads (${label})`, false, `exit ${json.code}: ${(e as Error).message}`);
    return { total: -1, lines: [], open };
  }
}

function checkIsolated(when: string, f: { total: number; lines: string[]; open: string[] }): void {
  check(
    `${when}: 0 movable leaks onto ${VM}, and no host cgroup may use ${VM}`,
    f.total === 0 && f.open.length === 0,
    [...f.lines.slice(0, 5), ...f.open].join('; '),
  );
}

function snapshot(units: string[]): Snapshot {
  return takeSnapshot('/', { units });
}

function checkEqual(what: string, before: Snapshot, lines: string[]): void {
  check(
    `${what}, the snapshot equals the one before (cgroups, IRQs, masks, every thread's affinity, AllowedCPUs/AllowedMemoryNodes of ${before.units ? Object.keys(before.units).length : 0} units)`,
    lines.length === 0,
    lines.slice(0, 8).join('; ') + (lines.length > 8 ? `; +${lines.length - 8} more` : ''),
  );
}

async function settled(before: Snapshot, units: string[]): Promise<string[]> {
  let diff: string[] = [];
  try {
    await waitFor(
      'the state to settle',
      () => {
        diff = diffSnapshots(before, snapshot(units));
        return diff.length === 0 ? true : undefined;
      },
      60_000,
      2000,
    );
  } catch {
    // the remaining differences are the result
  }
  return diff;
}

async function main(): Promise<number> {
  if (guestMode() !== 'systemd') {
    process.stderr.write(
      'guest-systemd: refusing to run: this is not the vfio-isolate systemd test guest. It changes cgroups, ' +
        'systemd units, IRQs and thread affinities of the machine it runs on; run `npm run demo -- --systemd`.\n',
    );
    return 2;
  }
  const colour = process.env.VFIO_DEMO_COLOUR === '1';
  const cli = join(process.cwd(), 'dist', 'vfio-isolate.mjs');
  const version = shell('systemctl', ['--version'], false).stdout.split('\n')[0] ?? 'systemd';

  // 1 ------------------------------------------------------------------------------------------------------------
  section('systemd is PID 1');
  say(
    `In the guest: Linux ${release()}, CPUs ${readOr('/sys/devices/system/cpu/online')}, and this machine's own ` +
      `${version} as PID 1, managing the cgroup v2 tree (the root's cgroup.subtree_control: ` +
      `"${readOr('/sys/fs/cgroup/cgroup.subtree_control')}"; systemd enables cpuset only while a unit needs it). ` +
      `The VM CPUs are ${VM} (one core and its SMT sibling). systemd is the single writer of the tree: cpuset ` +
      'files written behind its back vanish on its next daemon-reload, which every package upgrade runs. So ' +
      "vfio-isolate restricts systemd's units through systemd, runtime only.",
  );
  const allowedBefore = allowedCpus();

  // 2 ------------------------------------------------------------------------------------------------------------
  section(`isolate C${VM}`);
  const units = topLevelUnits([...UNITS, 'machine.slice']);
  const snapA = snapshot(units);
  const iso = await tool(['isolate', `C${VM}`], colour);
  check('isolate succeeds', iso.code === 0, exitDetail(iso));
  const snapB = snapshot(units);
  const lines = diffSnapshots(snapA, snapB);
  emit({ type: 'changes', title: 'What changed', summary: summariseChanges(lines), lines });
  const allowedIso = allowedCpus();
  check(
    `systemd itself restricts ${UNITS.join(', ')} (AllowedCPUs= is the host's CPUs)`,
    UNITS.every((u) => {
      const v = allowedIso[u] ?? '';
      return v !== '' && !CpuSet.parseList(v.replace(/ /g, ',')).overlaps(VM_CPUS);
    }),
    UNITS.map((u) => `${u}: ${allowedIso[u] || '(all)'}`).join(', '),
  );
  checkIsolated('after isolate', await leakFigures('after isolate'));

  // 3 ------------------------------------------------------------------------------------------------------------
  section('systemctl daemon-reload');
  say(
    "A daemon-reload re-realizes systemd's whole cgroup tree. cpuset files written behind systemd's back (as " +
      "0.5.2's cpuset-modify wrote them) vanish here; unit properties stay, because they are systemd's own.",
  );
  const reload = shell('systemctl', ['daemon-reload']);
  check('daemon-reload succeeds', reload.code === 0, exitDetail(reload));
  const allowedReload = allowedCpus();
  check(
    'AllowedCPUs= of every unit is unchanged',
    UNITS.every((u) => allowedReload[u] === allowedIso[u]),
    UNITS.map((u) => `${u}: ${allowedReload[u] || '(all)'}`).join(', '),
  );
  checkIsolated('after daemon-reload', await leakFigures('after daemon-reload'));
  const rel = await tool(['release'], colour);
  check('release succeeds', rel.code === 0, exitDetail(rel));
  checkEqual('after release', snapA, await settled(snapA, units));
  check(
    "systemd's AllowedCPUs= are what they were",
    UNITS.every((u) => allowedCpus(false)[u] === allowedBefore[u]),
  );

  // 4 ------------------------------------------------------------------------------------------------------------
  section('A libvirt domain with the hook');
  say(
    `A tiny libvirt domain: TCG, 2 vCPUs, 64 MiB, no disk, no network (it idles in its firmware). Its profile asks ` +
      `for the VM CPUs ${VM} and for isolated partitions; its <cputune> comes from vfio-isolate libvirt cputune, ` +
      `its hook from vfio-isolate libvirt hook install: "prepare" isolates, "started" makes the vCPUs isolated ` +
      'partitions, "release" undoes it all.',
  );
  const { profile, pin } = await defineDomain(DOMAIN, `C${VM}`, '[isolate]\npartition = true\n');
  emit({
    type: 'command',
    program: 'cat',
    argv: [profile],
    chunks: [[profile]],
    code: 0,
    stdout: readFileSync(profile, 'utf8'),
    stderr: '',
    seconds: 0,
  });
  if (!existsSync(cli)) check(`the built CLI ${cli} exists (the hook runs it)`, false);
  const inst = shell(process.execPath, [cli, 'libvirt', 'hook', 'install', DOMAIN, '--profile', profile]);
  check('libvirt hook install succeeds', inst.code === 0, exitDetail(inst));
  say('libvirtd reads its hooks when it starts: restart it.');
  shell('systemctl', ['restart', 'libvirtd']);
  const unitsVm = topLevelUnits([...UNITS, 'machine.slice']);
  const snapC = snapshot(unitsVm);
  const hooksBefore = hookLines().length;

  const start = shell('virsh', ['-c', 'qemu:///system', 'start', DOMAIN]);
  check('virsh start succeeds', start.code === 0, exitDetail(start));
  await waitRunning(DOMAIN);
  // journald may take a moment to show the last line
  let fired: string[] = [];
  await waitFor(
    'the started hook in the journal',
    () => {
      fired = hookLines().slice(hooksBefore);
      return fired.some((l) => /started begin/.test(l)) ? true : undefined;
    },
    20_000,
  ).catch(() => undefined);
  say(`The hook's syslog lines (journalctl -t vfio-isolate):\n${fired.join('\n')}`);
  check(
    'the hook fired at prepare (isolate) and started (partition)',
    fired.some((l) => /prepare begin: vfio-isolate isolate/.test(l)) &&
      fired.some((l) => /started begin: vfio-isolate partition/.test(l)) &&
      !fired.some((l) => /exited with status/.test(l)),
    fired.slice(-4).join('; '),
  );
  await tool(['status', `C${VM}`], colour);
  checkIsolated('while the VM runs', await leakFigures('while the VM runs'));
  const isolated = readOr('/sys/fs/cgroup/cpuset.cpus.isolated');
  check(
    `the kernel isolates the vCPUs' CPUs (cpuset.cpus.isolated = ${VM})`,
    isolated !== '' && CpuSet.parseList(isolated).equals(VM_CPUS),
    `cpuset.cpus.isolated: "${isolated}"`,
  );
  const threads = checkThreads(DOMAIN, pin);
  check(
    `each of ${threads.vcpu} vCPU and ${threads.emulator} emulator threads runs only where the XML pins it`,
    threads.wrong.length === 0,
    threads.wrong.join('; '),
  );
  shell('systemctl', ['daemon-reload']);
  checkIsolated(
    'after a daemon-reload while the VM runs',
    await leakFigures('VM running, after daemon-reload'),
  );
  check(
    'the partitions survive the daemon-reload',
    readOr('/sys/fs/cgroup/cpuset.cpus.isolated') === isolated,
    `cpuset.cpus.isolated: "${readOr('/sys/fs/cgroup/cpuset.cpus.isolated')}"`,
  );
  const destroy = shell('virsh', ['-c', 'qemu:///system', 'destroy', DOMAIN]);
  check('virsh destroy succeeds', destroy.code === 0, exitDetail(destroy));
  await waitShutOff(DOMAIN);
  const diff = await settled(snapC, unitsVm);
  const released = hookLines().slice(hooksBefore);
  check(
    'the hook released at the stop',
    released.some((l) => /release end: vfio-isolate release/.test(l)),
    released.slice(-2).join('; '),
  );
  checkEqual('after the stop', snapC, diff);
  virsh('undefine', DOMAIN);

  const ok = failures === 0;
  emit({ type: 'end', ok, seconds: (Date.now() - t0) / 1000 });
  return ok ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`guest-systemd: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    emit({ type: 'check', name: 'the demo runs to its end', ok: false, detail: String(e) });
    emit({ type: 'end', ok: false, seconds: (Date.now() - t0) / 1000 });
    process.exitCode = 1;
  },
);
