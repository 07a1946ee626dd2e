/**
 * measure: the /proc parsers on fixture text from several machines, the pure analysis, the command on fake trees
 * whose counters change between reads (SimFs .sim-seq-*), and the real probe's clean stop on SIGINT.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import * as v from 'valibot';
import { CpuSet } from '../../src/cpus/cpuset.ts';
import {
  irqNameOf,
  parseInterrupts,
  parseProcStat,
  parseSoftirqs,
  parseThreadRun,
  type Counters,
  type TaskRuns,
} from '../../src/kernel/proc-counters.ts';
import { runProbe, type ProbeRunner } from '../../src/kernel/probe.ts';
import { Kernel } from '../../src/kernel/kernel.ts';
import { acquireLock } from '../../src/kernel/lock.ts';
import { runCli } from '../../src/cli/run.ts';
import { COMMANDS } from '../../src/cli/table.ts';
import { analyse } from '../../src/measure/analysis.ts';
import { IsolateResultJson, MeasureJson } from '../../src/report/json-schema.ts';
import { findLeaks, type StatusModel } from '../../src/report/status-model.ts';
import { buildFixture } from '../fixtures/build.ts';
import { cli, type CliResult } from '../support/cli.ts';
import { simKernel, simProbe } from '../support/sim.ts';
import { treeHash } from '../support/tree.ts';

const FIX = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/proc');
const fx = (name: string): string => readFileSync(join(FIX, name), 'utf8');

describe('measure: /proc/interrupts parser', () => {
  it('an 8-CPU guest: numbered IRQs by handler name, per-CPU sources, ERR/MIS without columns', () => {
    const t = parseInterrupts(fx('interrupts-guest-8cpu.txt'));
    assert.deepEqual(t.cpus, [0, 1, 2, 3, 4, 5, 6, 7]);
    const by = new Map(t.sources.map((s) => [s.label, s]));
    assert.equal(by.get('0')!.name, 'timer');
    assert.equal(by.get('26')!.name, 'virtio0-requests.0');
    assert.equal(by.get('26')!.perCpu.get(5), 1234);
    assert.equal(by.get('LOC')!.name, 'Local timer interrupts');
    assert.equal(by.get('LOC')!.perCpu.get(7), 8001);
    assert.equal(by.get('ERR')!.perCpu.size, 0);
    assert.equal(by.get('MIS')!.perCpu.size, 0);
  });

  it('a hybrid laptop with offline CPUs: columns follow the header, a short row keeps no counts', () => {
    const t = parseInterrupts(fx('interrupts-hybrid-offline.txt'));
    assert.deepEqual(t.cpus, [0, 2, 3, 16, 17]);
    const by = new Map(t.sources.map((s) => [s.label, s]));
    assert.equal(by.get('128')!.perCpu.get(3), 56789);
    assert.equal(by.get('140')!.name, 'nvme0q5');
    assert.equal(by.get('140')!.perCpu.get(17), 7);
    assert.equal(by.get('141')!.name, 'snd_hda_intel:card0, i915');
    assert.equal(by.get('150')!.perCpu.size, 0, 'a row with fewer counts than CPUs is not spread over CPUs');
    assert.equal(by.get('LOC')!.perCpu.get(16), 22222);
  });

  it('ARM: Level/Edge trigger words, IPIn sources, an IRQ without a handler name', () => {
    const t = parseInterrupts(fx('interrupts-arm.txt'));
    const by = new Map(t.sources.map((s) => [s.label, s]));
    assert.equal(by.get('11')!.name, 'arch_timer');
    assert.equal(by.get('40')!.name, '');
    assert.equal(by.get('IPI0')!.perCpu.get(3), 704);
    assert.equal(irqNameOf('IO-APIC 9-fasteoi acpi'), 'acpi');
  });

  it('256 CPUs', () => {
    const n = 256;
    const head = '     ' + Array.from({ length: n }, (_, i) => `CPU${i}`.padStart(11)).join('') + '\n';
    const row =
      'LOC:' +
      Array.from({ length: n }, (_, i) => String(i * 3).padStart(11)).join('') +
      '   Local timer interrupts\n';
    const t = parseInterrupts(head + row);
    assert.equal(t.cpus.length, 256);
    assert.equal(t.sources[0]!.perCpu.get(255), 765);
  });
});

describe('measure: /proc/softirqs, /proc/stat, per-thread stat and schedstat', () => {
  it('softirqs by name and CPU', () => {
    const s = parseSoftirqs(fx('softirqs-guest.txt'));
    assert.equal(s.get('RCU')!.get(7), 700);
    assert.equal(s.get('NET_RX')!.get(0), 12);
    assert.equal(s.size, 10);
  });

  it('/proc/stat: per-CPU lines, the total left out, missing columns (old kernels) undefined', () => {
    const n = parseProcStat(fx('stat-new.txt'));
    assert.deepEqual([...n.keys()], [0, 1]);
    assert.equal(n.get(1)!.softirq, 10);
    assert.equal(n.get(1)!.guestNice, 0);
    const o = parseProcStat(fx('stat-old-2.6.txt'));
    assert.deepEqual([...o.keys()], [0, 3]);
    assert.equal(o.get(3)!.iowait, 3);
    assert.equal(o.get(3)!.steal, undefined);
  });

  it('thread run time: schedstat ns when readable, else utime+stime ticks; comm with spaces and ")"', () => {
    const fields = Array.from({ length: 50 }, () => '0');
    fields[14 - 3] = '7';
    fields[15 - 3] = '3';
    fields[22 - 3] = '555';
    fields[39 - 3] = '5';
    const stat = `4242 (CPU 1/TCG) x) ${fields.join(' ')}`;
    const r = parseThreadRun(stat, '123456789 1000 12\n')!;
    assert.equal(r.comm, 'CPU 1/TCG) x');
    assert.equal(r.cpu, 5);
    assert.equal(r.runNs, 123456789);
    assert.equal(r.start, 555);
    assert.equal(parseThreadRun(stat)!.runNs, 100_000_000);
    assert.equal(parseThreadRun('garbage'), undefined);
  });
});

// ---------------------------------------------------------------------------------------------------------------

function emptyModel(online: string): StatusModel {
  const cpus = CpuSet.parseList(online);
  return {
    kernel: '6.12',
    possible: cpus,
    present: cpus,
    online: cpus,
    siblings: new Map(),
    boot: { cmdline: {} },
    tasks: [
      {
        pid: 300,
        comm: 'stress',
        kind: 'user',
        threads: [{ tid: 300, allowed: cpus }],
        cgroup: '/user.slice',
        vm: false,
      },
      {
        pid: 40,
        comm: 'ksoftirqd/5',
        kind: 'pinned',
        threads: [{ tid: 40, allowed: CpuSet.parseList('5') }],
        vm: false,
      },
      {
        pid: 900,
        comm: 'qemu-system-x86',
        kind: 'user',
        threads: [{ tid: 901, allowed: cpus }],
        cgroup: '/machine.slice/x',
        vm: true,
      },
    ],
    irqs: [{ irq: 26, names: ['eth0'], affinity: cpus, writable: true }],
    workqueues: [],
    governors: new Map(),
    hooks: [],
    knobs: { wakeupLatency: new Map() },
    reservations: [],
    notVisible: [],
  };
}

function runs(
  at: number,
  list: [pid: number, tid: number, comm: string, cpu: number, ms: number][],
): TaskRuns {
  return {
    at,
    noSchedstat: 0,
    threads: new Map(
      list.map(([pid, tid, comm, cpu, ms]) => [
        tid,
        { pid, run: { tid, comm, cpu, runNs: ms * 1e6, start: 1 } },
      ]),
    ),
  };
}

describe('measure: analysis', () => {
  const model = emptyModel('0-7');
  const cpus = CpuSet.parseList('4-7');
  const before: Counters = {
    at: 0,
    notRead: [],
    interrupts: parseInterrupts(
      '  CPU4 CPU5\n 26: 10 0 PCI-MSI 1-edge eth0\nLOC: 100 100 Local timer interrupts\n',
    ),
    softirqs: parseSoftirqs('  CPU4 CPU5\nTIMER: 5 5\n'),
  };
  const after: Counters = {
    at: 2000,
    notRead: [],
    interrupts: parseInterrupts(
      '  CPU4 CPU5\n 26: 10 400 PCI-MSI 1-edge eth0\nLOC: 102 2100 Local timer interrupts\n',
    ),
    softirqs: parseSoftirqs('  CPU4 CPU5\nTIMER: 5 905\n'),
  };
  const r = analyse({
    mode: 'passive',
    cpus,
    why: 'as given',
    before,
    after,
    runs: [
      runs(0, [
        [300, 300, 'stress', 0, 0],
        [40, 40, 'ksoftirqd/5', 5, 0],
        [900, 901, 'CPU 0/TCG', 6, 0],
        [1, 1, 'self', 4, 0],
        [301, 301, 'bash', 2, 0],
      ]),
      runs(2000, [
        [300, 300, 'stress', 5, 1500],
        [40, 40, 'ksoftirqd/5', 5, 2],
        [900, 901, 'CPU 0/TCG', 6, 1900],
        [1, 1, 'self', 4, 900],
        [301, 301, 'bash', 2, 700],
      ]),
    ],
    model,
    leaks: findLeaks(model, cpus),
    vms: [],
    budgets: { maxIrqsPerS: 500, maxNoiseUs: 1000 },
    interrupted: false,
    self: 1,
    notRead: [],
  });

  it('per-CPU rates over the window, the noise on the CPU where it happened', () => {
    const c5 = r.perCpu.find((l) => l.cpu === 5)!;
    const c4 = r.perCpu.find((l) => l.cpu === 4)!;
    assert.equal(c5.irqsPerSecond, (400 + 2000) / 2);
    assert.equal(c4.irqsPerSecond, 1);
    assert.equal(c5.softirqsPerSecond, 450);
    assert.equal(c5.hostUsPerSecond, ((1500 + 2) * 1000) / 2);
    assert.equal(c4.hostUsPerSecond, 0, 'our own threads are left out');
    assert.equal(
      r.threads.find((t) => t.pid === 301),
      undefined,
      'a thread on a host CPU is not listed',
    );
  });

  it("attribution: a leak with status's fix, a per-CPU kernel thread expected, the VM's own", () => {
    const stress = r.threads.find((t) => t.pid === 300)!;
    assert.equal(stress.verdict, 'leak');
    assert.match(stress.note, /^task 300 \(stress\) may run on 4-7: move it with "vfio-isolate isolate"/);
    assert.equal(r.threads.find((t) => t.pid === 40)!.verdict, 'expected');
    assert.equal(r.threads.find((t) => t.pid === 900)!.verdict, 'vm');
    const eth = r.sources.find((s) => s.label === '26')!;
    assert.equal(eth.verdict, 'leak');
    assert.match(eth.note, /^IRQ 26 \(eth0\) may fire on 4-7: move it with/);
    assert.equal(r.sources[0]!.label, '26', 'leaks first');
    assert.equal(r.sources.find((s) => s.label === 'LOC')!.verdict, 'expected');
  });

  it('budgets: over on the worst CPU, exit-worthy', () => {
    assert.deepEqual(
      r.budgets.map((b) => [b.name, b.worst?.cpu, b.ok]),
      [
        ['max-noise-us', 5, false],
        ['max-irqs-per-s', 5, false],
      ],
    );
    assert.equal(r.overBudget, true);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// The command on fake trees

/** Writes the contents a file of the fake tree has from its read number `n` on (SimFs .sim-seq-NAME). */
function later(root: string, sys: string, n: number, text: string): void {
  const slash = sys.lastIndexOf('/');
  const dir = join(root, sys.slice(0, slash), `.sim-seq-${sys.slice(slash + 1)}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, String(n)), text);
}

/** The stat line of a thread with run time grown by `ms` and its last CPU set. */
function grownStat(text: string, ms: number, cpu: number): string {
  const close = text.lastIndexOf(')');
  const f = text
    .slice(close + 2)
    .trim()
    .split(/\s+/);
  f[14 - 3] = String(Number(f[14 - 3]) + ms / 10);
  f[39 - 3] = String(cpu);
  return `${text.slice(0, close + 2)}${f.join(' ')}\n`;
}

/** More interrupts on `cpu` for IRQ `label`'s row of /proc/interrupts. */
function moreInterrupts(text: string, label: string, cpu: number, n: number): string {
  const lines = text.split('\n');
  const cols = lines[0]!.trim().split(/\s+/);
  const col = cols.indexOf(`CPU${cpu}`);
  return lines
    .map((l) => {
      const m = new RegExp(`^(\\s*${label}:)(.*)$`).exec(l);
      if (!m) return l;
      let i = -1;
      return m[1] + m[2]!.replace(/\d+/g, (d) => (++i === col ? String(Number(d) + n) : d));
    })
    .join('\n');
}

/**
 * The reads of the command, in order: /proc/interrupts once for status's model (counts and names), then before
 * and after the window (read 2 is the last); a thread's task/TID/stat at the start and at the end (read 1).
 */
const LAST_INTERRUPTS_READ = 2;
const LAST_STAT_READ = 1;

function noisyTree(opts: { vcpu?: boolean; comm?: string; vmName?: string; affinity?: string } = {}): {
  root: string;
  pid: number;
} {
  const pid = 3000;
  const root = buildFixture('intel-6c12t', {
    extraProcs: [
      {
        pid,
        comm: opts.comm ?? 'stress-ng',
        cmdline: ['stress-ng', '--cpu', '1'],
        cgroup: '/user.slice',
        ...(opts.affinity !== undefined ? { affinity: opts.affinity } : {}),
      },
      ...(opts.vcpu
        ? [
            {
              pid: 3100,
              comm: 'qemu-system-x86',
              cmdline: ['qemu-system-x86_64', '-name', `guest=${opts.vmName ?? 'win11'},debug-threads=on`],
              cgroup: '/machine.slice/machine-qemu.scope',
              uid: 0,
              threads: ['qemu-system-x86', 'CPU 0/KVM'],
              affinity: '4',
            },
          ]
        : []),
    ],
  });
  const stat = readFileSync(join(root, `proc/${pid}/task/${pid}/stat`), 'utf8');
  later(root, `/proc/${pid}/task/${pid}/stat`, LAST_STAT_READ, grownStat(stat, 400, 5));
  const ints = readFileSync(join(root, 'proc/interrupts'), 'utf8');
  const irq = /^\s*(\d+):.*\s(\S+)$/m.exec(ints.split('\n').filter((l) => /PCI-MSI/.test(l))[0] ?? '');
  later(
    root,
    '/proc/interrupts',
    LAST_INTERRUPTS_READ,
    moreInterrupts(moreInterrupts(ints, 'LOC', 4, 250), irq?.[1] ?? '0', 5, 900),
  );
  return { root, pid };
}

describe('measure: the command on a fake machine', () => {
  it('passive: names the noisy task on its CPU as a leak with its fix, the IRQ by name, exit 0 without budgets', async () => {
    const { root, pid } = noisyTree();
    const r = await cli(root, ['measure', '--mode', 'passive', '--seconds', '0.3', 'C4-5']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /CPUs 4-5 \(as given\), passive mode/);
    assert.match(
      r.stdout,
      new RegExp(
        `pid ${pid} \\(stress-ng\\)\\s+400 ms\\s+on 5\\s+LEAK: task ${pid} \\(stress-ng\\) may run on 4-5: move it with "vfio-isolate isolate"`,
      ),
    );
    assert.match(r.stdout, /IRQ \d+\s+.+?\s+[\d.]+\s+5:900\s+LEAK: IRQ \d+ \(.*\) may fire on 4-5/);
    assert.match(r.stdout, /LOC\s+[\d.]+\s+4:250\s+expected: the scheduler tick/);
    assert.match(r.stdout, /could not read: \/proc\/softirqs \(missing\); \/proc\/stat \(missing\)/);
  });

  it('--json validates against the schema; budgets over → exit 1', async () => {
    const { root, pid } = noisyTree();
    const r = await cli(root, [
      '--json',
      'measure',
      '--mode',
      'passive',
      '--seconds',
      '0.3',
      '--max-irqs-per-s',
      '10',
      'C4-5',
    ]);
    assert.equal(r.code, 1, r.stderr);
    const j = v.parse(MeasureJson, JSON.parse(r.stdout));
    assert.equal(j.budgets[0]!.name, 'max-irqs-per-s');
    assert.equal(j.budgets[0]!.worstCpu, 5);
    assert.equal(j.overBudget, true);
    const t = j.threads.find((x) => x.pid === pid)!;
    assert.equal(t.verdict, 'leak');
    assert.deepEqual(Object.keys(t.perCpuMs), ['5']);
  });

  it('within budget → exit 0', async () => {
    const { root } = noisyTree();
    const r = await cli(root, [
      'measure',
      '--mode',
      'passive',
      '--seconds',
      '0.3',
      '--max-irqs-per-s',
      '1000000',
      'C4-5',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /verdict: within budget/);
  });

  it('probe: refused (exit 2, naming the VM) where vCPU threads are; passive is the default there', async () => {
    const { root } = noisyTree({ vcpu: true });
    const p = await cli(root, ['measure', '--mode', 'probe', '--seconds', '0.2', 'C4-5'], {
      VFIO_ISOLATE_PROBE: 'quiet',
    });
    assert.equal(p.code, 2);
    assert.match(p.stderr, /vCPU threads of win11 \(QEMU pid 3100\)/);
    const d = await cli(root, ['measure', '--seconds', '0.2', 'C4-5']);
    assert.equal(d.code, 0, d.stderr);
    assert.match(d.stdout, /passive mode/);
    assert.match(d.stdout, /VM running there: win11/);
  });

  it('probe: the noisy CPU stands out (max gap, noise %, histogram); --max-gap-us over → exit 1', async () => {
    const { root } = noisyTree();
    const r = await cli(root, ['--json', 'measure', '--seconds', '0.3', '--max-gap-us', '1000', 'C4-5'], {
      VFIO_ISOLATE_PROBE: 'noisy:5',
    });
    assert.equal(r.code, 1, r.stderr);
    const j = v.parse(MeasureJson, JSON.parse(r.stdout));
    assert.equal(j.mode, 'probe');
    const c5 = j.perCpu.find((c) => c.cpu === 5)!.probe!;
    const c4 = j.perCpu.find((c) => c.cpu === 4)!.probe!;
    assert.equal(c5.maxGapUs, 5000);
    assert.equal(c5.noisePercent, 20);
    assert.ok(c4.noisePercent < 0.01);
    assert.deepEqual(
      j.budgets.map((b) => [b.worstCpu, b.ok]),
      [[5, false]],
    );
    assert.deepEqual(j.histogramBuckets, ['<10us', '<100us', '<1ms', '<10ms', '>=10ms']);
  });

  it('bad input: CPUs outside the machine, a window of 0 s or over an hour, a bad budget → exit 2', async () => {
    const root = buildFixture('intel-6c12t');
    const prof = join(mkdtempSync(join(tmpdir(), 'vi-mprof-')), 'vm.toml');
    writeFileSync(prof, 'domain = "vm"\nvm_cpus = "C4-5"\n[measure]\nafter_start = 1\n', { mode: 0o644 });
    for (const argv of [
      ['measure', 'C12'],
      ['measure', '--seconds', '0', 'C4'],
      ['measure', '--seconds', '3601', 'C4'],
      ['measure', '--seconds', 'x', 'C4'],
      ['measure', '--max-noise-us', '-3', 'C4'],
      ['measure', '--mode', 'active', 'C4'],
      ['measure'],
      // decimal numbers only (Number() would take these)
      ['measure', '--seconds', '0x10', 'C4'],
      ['measure', '--seconds', '1e1', 'C4'],
      ['measure', '--max-gap-us', ' 5', 'C4'],
      ['-n', 'isolate', '--measure', '0x2', 'C4-5'],
      // --after-start takes its window and mode from the profile; other ones are refused, not ignored
      ['measure', '--profile', 'P', '--after-start', '--seconds', '2'],
      ['measure', '--profile', 'P', '--after-start', '--mode', 'probe'],
    ]) {
      const r = await cli(
        root,
        argv.map((a) => (a === 'P' ? prof : a)),
      );
      assert.equal(r.code, 2, `${argv.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^vfio-isolate: /m);
    }
  });

  it("without CPUS: the active isolation's VM CPUs (isolcpus)", async () => {
    const root = buildFixture('intel-6c12t', { isolcpus: '4-5' });
    const r = await cli(root, ['measure', '--mode', 'passive', '--seconds', '0.2']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /CPUs 4-5 \(the active isolation's VM CPUs\)/);
  });
});

describe('measure: the real probe (own worker threads only, on CPU 0 of this machine)', () => {
  it('the window starts once every worker is pinned: onStart once, then the full window', async () => {
    let starts = 0;
    let at = 0;
    const r = await runProbe({
      cpus: [0],
      seconds: 1,
      thresholdNs: 5000,
      onStart: () => {
        starts++;
        at = performance.now();
      },
    });
    const after = performance.now() - at;
    assert.equal(starts, 1);
    assert.equal(r.cpus[0]!.error, undefined);
    assert.ok(after >= 995, `the window ran ${Math.round(after)} ms after onStart`);
    assert.ok(r.cpus[0]!.windowNs >= 1e9 && r.cpus[0]!.windowNs < 1.5e9, String(r.cpus[0]!.windowNs));
  });

  it('SIGINT stops every worker at once, with the figures so far, and leaves no thread behind', async () => {
    const threads = (): number => readdirSync('/proc/thread-self/..').length;
    const n0 = threads();
    const start = performance.now();
    const p = runProbe({ cpus: [0], seconds: 30, thresholdNs: 5000 });
    await new Promise((r) => setTimeout(r, 2500));
    assert.ok(threads() > n0, 'a worker thread runs');
    process.emit('SIGINT', 'SIGINT');
    const r = await p;
    assert.equal(r.interrupted, true);
    assert.ok(performance.now() - start < 5000, 'stopped long before the 30 s window');
    assert.equal(r.cpus[0]!.error, undefined);
    assert.ok(r.cpus[0]!.loops > 0, 'partial figures kept');
    await new Promise((res) => setTimeout(res, 200));
    assert.equal(threads(), n0, 'no worker thread left');
    assert.equal(process.listenerCount('SIGINT'), 0, 'its SIGINT handler removed');
  });
});

/** The host cpuset isolate creates on this v1 fixture: its CPUs, "(none)" before it exists. */
function hostSlice(root: string): string {
  const f = join(root, 'sys/fs/cgroup/cpuset/host.slice/cpuset.cpus');
  return existsSync(f) ? readFileSync(f, 'utf8').trim() : '(none)';
}

/** A probe that records, at each call, what the tree looked like then, and answers like `simProbe(specs[i])`. */
function recordingProbe(
  root: string,
  specs: (string | undefined)[],
): { probe: ProbeRunner; calls: { journal: boolean; hostSlice: string }[] } {
  const calls: { journal: boolean; hostSlice: string }[] = [];
  const probe: ProbeRunner = (opts) => {
    calls.push({
      journal: existsSync(join(root, 'run/vfio-isolate/isolate.journal')),
      hostSlice: hostSlice(root),
    });
    return simProbe(specs[Math.min(calls.length - 1, specs.length - 1)])(opts);
  };
  return { probe, calls };
}

async function isolateWith(root: string, probe: ProbeRunner, argv: string[]): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const sim = simKernel(root);
  const code = await runCli(argv, {
    table: COMMANDS,
    env: { VFIO_ISOLATE_ROOT: root, VFIO_ISOLATE_LOCK_WAIT_MS: '2000' },
    kernel: () =>
      new Kernel(sim.fs, {
        systemctl: '',
        irqbalance: '/nonexistent/irqbalance',
        euid: 0,
        probe,
      }),
    streams: { out: (s) => void (stdout += s), err: (s) => void (stderr += s), isTTY: false },
  });
  return { code, stdout, stderr };
}

describe('isolate --measure N: a probe before any change and after the changes are journalled', () => {
  it('the "before" probe sees the tree unchanged and no journal, the "after" one the isolation applied', async () => {
    const { root } = noisyTree();
    const rec = recordingProbe(root, ['noisy:5', 'quiet']);
    const r = await isolateWith(root, rec.probe, ['isolate', '--measure', '0.3', 'C4-5']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(rec.calls, [
      { journal: false, hostSlice: '(none)' },
      { journal: true, hostSlice: '0-3,6-11' },
    ]);
    assert.match(r.stdout, /^Probing CPUs 4-5 for 0\.3 s before the isolation\.\.\.\n/);
    assert.match(r.stdout, /Isolated CPUs 4-5 for the VM/);
    assert.match(r.stdout, /Measured CPUs 4-5 before and after \(probe,/);
    assert.match(r.stdout, /\n5\s+.*5000 -> 8\.0\s+20\.00 -> 0\.00\n/);
    assert.match(r.stdout, /\nafter: no host thread ran there\n$/);
  });

  it('--json: measureBefore and measureAfter, each a measure document, in the one isolate document', async () => {
    const { root } = noisyTree();
    const rec = recordingProbe(root, ['noisy:5', 'quiet']);
    const r = await isolateWith(root, rec.probe, ['--json', 'isolate', '--measure', '0.3', 'C4-5']);
    assert.equal(r.code, 0, r.stderr);
    const j = v.parse(IsolateResultJson, JSON.parse(r.stdout));
    const noise = (m: MeasureJson | undefined): number | undefined =>
      m?.perCpu.find((c) => c.cpu === 5)?.probe?.noisePercent;
    assert.equal(j.measureBefore?.mode, 'probe');
    assert.equal(noise(j.measureBefore), 20);
    assert.ok(noise(j.measureAfter)! < 0.01, JSON.stringify(j.measureAfter?.perCpu));
  });

  it('refused (exit 2, naming the VM) where vCPU threads run: no probe, no journal, nothing changed', async () => {
    const { root } = noisyTree({ vcpu: true });
    const hash = treeHash(root);
    const rec = recordingProbe(root, ['quiet']);
    const r = await isolateWith(root, rec.probe, ['isolate', '--measure', '1', 'C4-5']);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /isolate --measure: CPUs 4-5 run the vCPU threads of win11 \(QEMU pid 3100\)/);
    assert.equal(rec.calls.length, 0);
    assert.equal(treeHash(root), hash);
  });

  it('a dry run probes nothing and says so; bad windows are usage errors', async () => {
    const { root } = noisyTree();
    const rec = recordingProbe(root, ['quiet']);
    const r = await isolateWith(root, rec.probe, ['-n', 'isolate', '--measure', '2', 'C4-5']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /dry run: --measure 2 measures nothing/);
    assert.equal(rec.calls.length, 0);
    for (const bad of ['0', '3601', 'x', '']) {
      const b = await isolateWith(root, rec.probe, ['isolate', '--measure', bad, 'C4-5']);
      assert.equal(b.code, 2, `--measure "${bad}": ${b.stderr}`);
    }
    assert.equal(rec.calls.length, 0);
  });

  it('a probe that can no longer pin itself after the isolation gives the counters, a warning, and exit 0', async () => {
    const { root } = noisyTree();
    // the second call answers like a fake tree without a probe: every worker failed to pin itself
    const rec = recordingProbe(root, ['noisy:5', undefined]);
    const r = await isolateWith(root, rec.probe, ['--json', 'isolate', '--measure', '0.3', 'C4-5']);
    assert.equal(r.code, 0, r.stderr);
    const j = v.parse(IsolateResultJson, JSON.parse(r.stdout));
    assert.equal(j.ok, true);
    assert.equal(j.measureAfter?.mode, 'passive');
    assert.ok(j.measureAfter?.notRead.some((n) => n.startsWith('the probe (no probe on a fake tree)')));
  });
});

describe('isolate --measure N holds no lock while it probes', () => {
  it('another run (a libvirt hook of another VM) can take the lock during the "before" and the "after" probe', async () => {
    const { root } = noisyTree();
    const free: boolean[] = [];
    const sim = simKernel(root);
    const probe: ProbeRunner = (opts) => {
      try {
        acquireLock(new Kernel(sim.fs, { systemctl: '', euid: 0 }), 0).release();
        free.push(true);
      } catch {
        free.push(false);
      }
      return simProbe('quiet')(opts);
    };
    const r = await isolateWith(root, probe, ['isolate', '--measure', '0.3', 'C4-5']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(free, [true, true], 'the lock was free during both probes');
    assert.match(r.stdout, /Measured CPUs 4-5 before and after/);
  });
});

describe('isolate --measure N: when a probe itself fails', () => {
  it('a "before" probe that throws: a clear one-line error naming the probe, nothing changed, no journal, lock free', async () => {
    const { root } = noisyTree();
    const hash = treeHash(root);
    const r = await isolateWith(root, () => Promise.reject(new Error('worker died')), [
      'isolate',
      '--measure',
      '0.3',
      'C4-5',
    ]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^vfio-isolate: isolate --measure: the probe failed: worker died\n/);
    assert.equal(treeHash(root), hash);
    assert.equal(existsSync(join(root, 'run/vfio-isolate/isolate.journal')), false);
    const again = await isolateWith(root, simProbe('quiet'), ['isolate', 'C4-5']);
    assert.equal(again.code, 0, again.stderr);
  });

  it('a "before" probe that can pin no worker: exit 1 naming isolate --measure, a hint that fits isolate, nothing changed', async () => {
    const { root } = noisyTree();
    const hash = treeHash(root);
    const r = await isolateWith(root, simProbe(undefined), ['isolate', '--measure', '0.3', 'C4-5']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^vfio-isolate: isolate --measure: the probe could not run on CPUs 4-5: /);
    assert.match(
      r.stderr,
      /\nhint: measure them with vfio-isolate measure --mode passive, or run it without --measure\n$/,
    );
    assert.equal(treeHash(root), hash);
  });

  it('SIGINT during the real "before" probe: exit 1, nothing changed, no journal, no worker or handler left', async () => {
    const { root } = noisyTree();
    const hash = treeHash(root);
    const threads = (): number => readdirSync('/proc/thread-self/..').length;
    const n0 = threads();
    // the real probe, on CPU 0 of this machine (the fixture's CPUs 4-5 need not exist here), relabelled
    const probe: ProbeRunner = async (o) => {
      const r = await runProbe({ ...o, cpus: [0] });
      return { ...r, cpus: o.cpus.map((cpu) => ({ ...r.cpus[0]!, cpu })) };
    };
    const p = isolateWith(root, probe, ['isolate', '--measure', '30', 'C4-5']);
    await new Promise((res) => setTimeout(res, 2500));
    assert.ok(threads() > n0, 'a worker thread runs');
    process.emit('SIGINT', 'SIGINT');
    const r = await p;
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /interrupted while measuring before the isolation: nothing was changed/);
    assert.equal(treeHash(root), hash);
    assert.equal(existsSync(join(root, 'run/vfio-isolate/isolate.journal')), false);
    await new Promise((res) => setTimeout(res, 200));
    assert.equal(threads(), n0, 'no worker thread left');
    assert.equal(process.listenerCount('SIGINT'), 0, 'no SIGINT handler left');
  });

  it('an "after" probe that throws: --json still has measureBefore, the isolation stays, exit 0 with a warning', async () => {
    const { root } = noisyTree();
    let n = 0;
    const probe: ProbeRunner = (o) =>
      ++n === 1 ? simProbe('noisy:5')(o) : Promise.reject(new Error('worker died'));
    const r = await isolateWith(root, probe, ['--json', 'isolate', '--measure', '0.3', 'C4-5']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /warning: the measurement after the isolation failed: .*worker died/);
    const j = v.parse(IsolateResultJson, JSON.parse(r.stdout));
    assert.equal(j.ok, true);
    assert.equal(j.measureBefore?.mode, 'probe');
    assert.equal(j.measureAfter, undefined);
    assert.equal(hostSlice(root), '0-3,6-11');
  });
});

/** A profile file for the fake 6-core machine: VM CPUs 4-5 and the given [measure] table. */
function measureProfile(table: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'vi-measure-profile-'));
  const f = join(dir, 'win11.toml');
  writeFileSync(f, `domain = "win11"\nvm_cpus = "C4-5"\n\n[measure]\n${table}`);
  return f;
}

describe('measure --summary: one line, whatever the threads are called', () => {
  it('a thread name with a newline or an escape sequence is shown escaped: the line stays one syslog line', async () => {
    // any user can name a thread so (prctl PR_SET_NAME): it must not forge a second line in the hook's syslog
    const { root, pid } = noisyTree({ comm: 'x\nwin11: ok\x1b[2J' });
    const r = await cli(root, ['measure', '--summary', '--mode', 'passive', '--seconds', '0.3', 'C4-5']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.split('\n').length, 2, JSON.stringify(r.stdout));
    assert.ok(r.stdout.includes(`pid ${pid} (x\\nwin11: ok\\x1b[2J) 400 ms`), JSON.stringify(r.stdout));
  });

  it('the full report: a note quoting the thread name is escaped like the name column', async () => {
    // its affinity (as read) leaves out the CPUs it ran on: the note is measure's own, not status's leak line
    const { root, pid } = noisyTree({ comm: 'x\x1b[2J\u009b31mEVIL\u2028', affinity: '0-3' });
    const r = await cli(root, ['measure', '--mode', 'passive', '--seconds', '0.3', 'C4-5']);
    const lines = r.stdout.split('\n').filter((l) => l.includes(String(pid)));
    assert.ok(lines.length > 0, r.stdout);
    // eslint-disable-next-line no-control-regex
    assert.doesNotMatch(r.stdout, /[\x00-\x09\x0b-\x1f\u007f-\u009f\u2028\u2029]/);
    assert.ok(
      lines.some((l) => /: task 3000 \(x\\x1b\[2J\\x9b31mEVIL\\u2028\)/.test(l)),
      JSON.stringify(lines),
    );
  });

  it('a VM named with a newline: the refusal stays one line (the name escaped)', async () => {
    const { root } = noisyTree({ vcpu: true, vmName: 'evil\nvfio-isolate: fine' });
    const r = await cli(root, ['measure', '--mode', 'probe', '--seconds', '0.3', 'C4-5']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      /^vfio-isolate: measure: CPUs 4-5 run the vCPU threads of evil\\nvfio-isolate: fine \(QEMU pid 3100\)/,
    );
    assert.equal(r.stderr.split('\n').length, 3, JSON.stringify(r.stderr));
  });
});

describe('measure --profile: the profile CPUs and its [measure] table', () => {
  it("measures the profile's vm_cpus with its window, mode and budgets; an option given wins", async () => {
    const { root } = noisyTree();
    const prof = measureProfile('seconds = 0.3\nmode = "passive"\nmax_irqs_per_s = 10\n');
    const r = await cli(root, ['--json', 'measure', '--profile', prof]);
    assert.equal(r.code, 1, r.stderr);
    const j = v.parse(MeasureJson, JSON.parse(r.stdout));
    assert.equal(j.cpus, '4-5');
    assert.equal(j.why, 'vm_cpus of win11.toml');
    assert.equal(j.mode, 'passive');
    assert.deepEqual(
      j.budgets.map((b) => [b.name, b.limit, b.ok]),
      [['max-irqs-per-s', 10, false]],
    );
    const over = await cli(root, ['--json', 'measure', '--profile', prof, '--max-irqs-per-s', '1000000']);
    assert.equal(over.code, 0, over.stderr);
    assert.equal(v.parse(MeasureJson, JSON.parse(over.stdout)).budgets[0]!.limit, 1000000);
  });

  it('--after-start (the libvirt hook): nothing without after_start; with it, passive and one summary line', async () => {
    const { root, pid } = noisyTree();
    const none = await cli(root, [
      'measure',
      '--profile',
      measureProfile('max_irqs_per_s = 10\n'),
      '--after-start',
    ]);
    assert.equal(none.code, 0, none.stderr);
    assert.equal(none.stdout + none.stderr, '');
    const prof = measureProfile('after_start = 0.3\nmode = "probe"\nmax_irqs_per_s = 10\n');
    const r = await cli(root, ['measure', '--profile', prof, '--after-start'], {
      VFIO_ISOLATE_PROBE: 'quiet',
    });
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stdout.split('\n').length, 2, r.stdout);
    assert.match(
      r.stdout,
      new RegExp(
        `^measure CPUs 4-5, passive, 0\\.\\d s; worst CPU 5: [\\d.]+ irq/s, [\\d.]+ host us/s; leaks: pid ${pid} \\(stress-ng\\) 400 ms, IRQ \\d+ .*; OVER BUDGET: max-irqs-per-s 10 \\([\\d.]+ on CPU 5\\)\\n$`,
      ),
    );
    const alone = await cli(root, ['measure', '--after-start', 'C4-5']);
    assert.equal(alone.code, 2);
    assert.match(alone.stderr, /--after-start needs --profile/);
  });
});
