/**
 * Misuse: each case runs the CLI on a fixture tree and asserts the exact error line, the exact hint line (or that
 * there is none), the exit code (2 usage, 1 runtime state), an empty stdout, and that nothing changed: the tree
 * hashes the same and the simulator logged no write, mkdir or rmdir.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { COMMANDS } from '../../src/cli/table.ts';
import { buildFixture, removeFixture, type MachineName } from '../fixtures/build.ts';
import { cli } from '../support/cli.ts';
import { simWrites, treeHash } from '../support/tree.ts';

interface Case {
  what: string;
  /** `{TMP}` is a scratch directory outside the tree. */
  argv: string[];
  code: 1 | 2;
  /** The error line, without the "vfio-isolate: " prefix. */
  message: string;
  /** The hint line, without "hint: "; absent = no hint line. */
  hint?: string;
  /** Files (under {TMP}) that must not exist afterwards (journals never created). */
  absent?: string[];
}

const ryzenCases: Case[] = [
  {
    what: 'unknown option',
    argv: ['cpuset-modify', '--bogus', '/system.slice'],
    code: 2,
    message: 'cpuset-modify: unknown option --bogus',
    hint: 'options of cpuset-modify: --cpus, --mems, --cpu-exclusive, --no-cpu-exclusive, --mem-exclusive, --no-mem-exclusive, --mem-migrate, --no-mem-migrate, --sched-load-balance, --no-sched-load-balance',
  },
  {
    what: 'option of another command',
    argv: ['cpuset-delete', '--cpus', 'C0', '/system.slice'],
    code: 2,
    message: 'cpuset-delete: unknown option --cpus',
    hint: '--cpus is an option of cpuset-create',
  },
  {
    what: 'option of a command that takes none',
    argv: ['drop-caches', '--cpus', 'C0'],
    code: 2,
    message: 'drop-caches: unknown option --cpus',
    hint: '--cpus is an option of cpuset-create',
  },
  {
    what: 'missing option value at the end',
    argv: ['cpuset-modify', '--cpus'],
    code: 2,
    message: 'cpuset-modify: option --cpus needs a value (CPUS)',
    hint: 'usage: vfio-isolate [GLOBAL-OPTIONS] cpuset-modify [OPTIONS] NAME',
  },
  {
    what: 'missing option value before another option',
    argv: ['cpuset-modify', '--cpus', '--mems', 'N0', '/system.slice'],
    code: 2,
    message: 'cpuset-modify: option --cpus needs a value (CPUS)',
    hint: 'usage: vfio-isolate [GLOBAL-OPTIONS] cpuset-modify [OPTIONS] NAME',
  },
  {
    what: 'empty option value',
    argv: ['cpuset-modify', '--cpus', '', '/system.slice'],
    code: 2,
    message: 'cpuset-modify: option --cpus needs a value, got an empty string',
    hint: 'usage: vfio-isolate [GLOBAL-OPTIONS] cpuset-modify [OPTIONS] NAME',
  },
  {
    what: 'governor the CPUs do not offer',
    argv: ['cpu-governor', 'turbo', 'C0'],
    code: 2,
    message: 'cpu-governor: governor "turbo" is not available for CPUs 0',
    hint: 'available: conservative ondemand userspace powersave performance schedutil',
  },
  {
    what: 'not a governor name at all',
    argv: ['cpu-governor', 'Perf!', 'C1'],
    code: 2,
    message: 'cpu-governor: "Perf!" is not a governor name',
  },
  {
    what: 'typo in a command',
    argv: ['cpuset-modfy', '--cpus', 'C0', '/system.slice'],
    code: 2,
    message: 'unknown command "cpuset-modfy"',
    hint: 'did you mean cpuset-modify?',
  },
  {
    what: 'typo in a chained command',
    argv: ['drop-caches', 'compact-memry'],
    code: 2,
    message: 'unknown command "compact-memry"',
    hint: 'did you mean compact-memory?',
  },
  {
    what: 'unknown command with nothing near',
    argv: ['frobnicate'],
    code: 2,
    message: 'unknown command "frobnicate"',
    hint: 'see vfio-isolate --help',
  },
  {
    what: 'one argument too many',
    argv: ['cpuset-modify', '--cpus', 'C0', '/system.slice', 'extra'],
    code: 2,
    message: 'cpuset-modify takes only NAME, and "extra" is not a command',
    hint: 'usage: vfio-isolate [GLOBAL-OPTIONS] cpuset-modify [OPTIONS] NAME',
  },
  {
    what: 'an argument to a command that takes none',
    argv: ['drop-caches', 'extra'],
    code: 2,
    message: 'drop-caches takes no arguments, and "extra" is not a command',
    hint: 'usage: vfio-isolate [GLOBAL-OPTIONS] drop-caches',
  },
  {
    what: 'reversed range',
    argv: ['cpuset-modify', '--cpus', 'C5-2', '/system.slice'],
    code: 2,
    message: '--cpus: invalid CPU set "C5-2": range 5-2 is reversed (write 2-5)',
    hint: 'see "vfio-isolate help cpus" for the notation',
  },
  {
    what: 'prefix alone',
    argv: ['cpuset-modify', '--cpus', 'C', '/system.slice'],
    code: 2,
    message:
      '--cpus: invalid CPU set "C": empty list after "C": expected a CPU list like C0-3,8 or a hex mask',
    hint: 'see "vfio-isolate help cpus" for the notation',
  },
  {
    what: 'garbage after the prefix',
    argv: ['cpuset-modify', '--cpus', 'Cx', '/system.slice'],
    code: 2,
    message: '--cpus: invalid CPU set "Cx": expected a CPU list like C0-3,8 or a hex mask',
    hint: 'see "vfio-isolate help cpus" for the notation',
  },
  {
    what: 'no prefix',
    argv: ['cpuset-modify', '--cpus', '0-3', '/system.slice'],
    code: 2,
    message: '--cpus: invalid CPU set "0-3": a CPU set starts with C, N, L, P, S or 0x; did you mean "C0-3"?',
    hint: 'see "vfio-isolate help cpus" for the notation',
  },
  {
    what: 'lower-case prefix',
    argv: ['cpuset-modify', '--cpus', 'c0-3', '/system.slice'],
    code: 2,
    message: '--cpus: invalid CPU set "c0-3": prefixes are case-sensitive; did you mean "C0-3"?',
    hint: 'see "vfio-isolate help cpus" for the notation',
  },
  {
    what: 'leading zero',
    argv: ['cpuset-modify', '--cpus', 'C01', '/system.slice'],
    code: 2,
    message: '--cpus: invalid CPU set "C01": number 01 has a leading zero (write 1)',
    hint: 'see "vfio-isolate help cpus" for the notation',
  },
  {
    what: 'CPU beyond the machine',
    argv: ['cpuset-modify', '--cpus', 'C0-63', '/system.slice'],
    code: 2,
    message: '--cpus: CPUs 32-63 in "C0-63" do not exist on this machine (present: 0-31)',
    hint: 'see "vfio-isolate help cpus" for the notation',
  },
  {
    what: 'L3 domain beyond the machine',
    argv: ['irq-affinity', 'mask', 'L7'],
    code: 2,
    message:
      'irq-affinity: L3 cache domain 7 in "L7" does not exist on this machine (L3 domains: 0-1, see "topology")',
    hint: 'see "vfio-isolate help cpus" for the notation',
  },
  {
    what: 'memory node beyond the machine',
    argv: ['cpuset-modify', '--mems', 'N5', '/system.slice'],
    code: 2,
    message: '--mems: NUMA node 5 in "N5" does not exist on this machine (nodes: 0)',
    hint: 'NUMA nodes are written N0 or N0-1',
  },
  {
    what: '.. in a cgroup path',
    argv: ['cpuset-modify', '--cpus', 'C0', '/../etc'],
    code: 2,
    message: 'invalid cgroup path "/../etc": ".." is not allowed',
    hint: 'name cgroups from the hierarchy root, e.g. /system.slice',
  },
  {
    what: 'modify a cgroup that does not exist',
    argv: ['cpuset-modify', '--cpus', 'C0', '/nonexistent.slice'],
    code: 1,
    message: 'cpuset-modify: cgroup /nonexistent.slice does not exist',
    hint: 'create it first with cpuset-create, or check the name with: vfio-isolate status',
  },
  {
    what: 'delete a cgroup that does not exist',
    argv: ['cpuset-delete', '/nonexistent.slice'],
    code: 1,
    message: 'cpuset-delete: cgroup /nonexistent.slice does not exist',
    hint: 'create it first with cpuset-create, or check the name with: vfio-isolate status',
  },
  {
    what: 'move to a cgroup that nothing earlier in the chain creates',
    argv: ['-u', '{TMP}/journal', 'move-tasks', '/', '/host.slice'],
    code: 1,
    message: 'move-tasks: cgroup /host.slice does not exist',
    hint: 'create it first with cpuset-create, or check the name with: vfio-isolate status',
    absent: ['journal'],
  },
  {
    what: 'create a cgroup that exists',
    argv: ['cpuset-create', '/system.slice'],
    code: 1,
    message: 'cpuset-create: cgroup /system.slice already exists',
    hint: 'use cpuset-modify to change it',
  },
  {
    what: 'create the root',
    argv: ['cpuset-create', '/'],
    code: 2,
    message: 'cpuset-create: the root cgroup always exists',
    hint: 'name a new cgroup, e.g. /host.slice',
  },
  {
    what: "change the root's CPUs",
    argv: ['cpuset-modify', '--cpus', 'C0', '/'],
    code: 2,
    message: "cpuset-modify: the root cgroup's cpuset cannot be changed",
    hint: 'restrict the child cgroups instead (e.g. /system.slice)',
  },
  {
    what: 'delete the root',
    argv: ['cpuset-delete', '/'],
    code: 2,
    message: 'cpuset-delete: the root cgroup cannot be deleted',
  },
  {
    what: 'move tasks to where they are',
    argv: ['move-tasks', '/', '/'],
    code: 2,
    message: 'move-tasks: FROM and TO are the same cgroup (/)',
  },
  {
    what: 'missing argument',
    argv: ['move-tasks', '/'],
    code: 2,
    message: 'move-tasks: missing TO',
    hint: 'usage: vfio-isolate [GLOBAL-OPTIONS] move-tasks FROM TO',
  },
  {
    what: 'missing argument, the next command found instead',
    argv: ['cpu-governor', 'performance', 'cpuset-modify', '--cpus', 'C0', '/system.slice'],
    code: 2,
    message: 'cpu-governor: missing CPUS (found command "cpuset-modify" instead)',
    hint: 'usage: vfio-isolate [GLOBAL-OPTIONS] cpu-governor GOVERNOR CPUS',
  },
  {
    what: 'global option after a command',
    argv: ['cpuset-modify', '-v', '--cpus', 'C0', '/system.slice'],
    code: 2,
    message: 'cpuset-modify: unknown option -v',
    hint: '-v is a global option: put it before the first command',
  },
  {
    what: 'global long option after a command',
    argv: ['compact-memory', '--force'],
    code: 2,
    message: 'compact-memory: unknown option --force',
    hint: '--force is a global option: put it before the first command',
  },
  {
    what: 'unknown global option',
    argv: ['-x', 'drop-caches'],
    code: 2,
    message: 'unknown option -x',
    hint: 'see vfio-isolate --help',
  },
  {
    what: 'global option without its value',
    argv: ['-u'],
    code: 2,
    message: 'option -u needs a value (FILE)',
  },
  {
    what: 'value given to a flag',
    argv: ['--verbose=yes', 'drop-caches'],
    code: 2,
    message: 'option --verbose takes no value',
  },
  {
    what: '-ce and -nce together',
    argv: ['cpuset-modify', '-ce', '-nce', '/system.slice'],
    code: 2,
    message: 'cpuset-modify: -nce/--no-cpu-exclusive contradicts -ce/--cpu-exclusive',
    hint: 'give only one of them',
  },
  {
    what: 'irq-affinity unmask',
    argv: ['irq-affinity', 'unmask', 'C0'],
    code: 2,
    message: 'irq-affinity: OPERATION must be one of mask, add, not "unmask"',
    hint: 'usage: vfio-isolate [GLOBAL-OPTIONS] irq-affinity OPERATION CPUS',
  },
  {
    what: 'mask every CPU from interrupts',
    argv: ['irq-affinity', 'mask', 'C0-31'],
    code: 2,
    message: 'irq-affinity: masking CPUs 0-31 would leave no online CPU for interrupts',
  },
  {
    what: 'restore of a missing file',
    argv: ['restore', '{TMP}/no-such-undo-file'],
    code: 1,
    message: 'journal {TMP}/no-such-undo-file does not exist',
    hint: 'check the path given to restore / -u',
  },
  {
    what: 'restore of a 0.5.2 pickle',
    argv: ['restore', '{TMP}/undo.pickle'],
    code: 2,
    message: '{TMP}/undo.pickle is not a vfio-isolate journal',
    hint: 'this looks like an undo file of the Python vfio-isolate 0.5.2 (a pickle), which is never read here: restore it with 0.5.2 itself (pip) or undo its changes by hand, then delete the file',
  },
  {
    what: '-u naming a 0.5.2 pickle',
    argv: ['-u', '{TMP}/undo.pickle', 'drop-caches'],
    code: 2,
    message: '{TMP}/undo.pickle is not a vfio-isolate journal',
    hint: 'this looks like an undo file of the Python vfio-isolate 0.5.2 (a pickle), which is never read here: restore it with 0.5.2 itself (pip) or undo its changes by hand, then delete the file',
  },
  {
    what: 'a usage error with -u creates no journal',
    argv: ['-u', '{TMP}/journal', 'drop-caches', 'cpuset-modify', '--cpus', 'C5-2', '/system.slice'],
    code: 2,
    message: '--cpus: invalid CPU set "C5-2": range 5-2 is reversed (write 2-5)',
    hint: 'see "vfio-isolate help cpus" for the notation',
    absent: ['journal'],
  },
  {
    what: 'isolate without CPUs',
    argv: ['isolate'],
    code: 2,
    message: 'isolate: which CPUs should the VM get?',
    hint: 'e.g. vfio-isolate isolate C8-15,24-31, the split vfio-isolate topology suggests for this machine',
  },
  {
    what: 'isolate with CPU 0',
    argv: ['isolate', 'C0-7'],
    code: 2,
    message: 'isolate: CPU 0 would go to the VM; the host usually needs it (timers, boot CPU duties)',
    hint: 'leave CPU 0 to the host, or use --force',
  },
  {
    what: 'isolate with every CPU',
    argv: ['isolate', 'C0-31'],
    code: 2,
    message: 'isolate: the VM would get every online CPU, leaving none for the host',
    hint: 'keep at least one core for the host',
  },
  {
    what: 'isolate with both VMCPUS and --host',
    argv: ['isolate', '--host', 'C0-7', 'C8-15'],
    code: 2,
    message: 'isolate: give either VMCPUS or --host, not both',
  },
  {
    what: 'help for a command that does not exist',
    argv: ['help', 'nosuchcommand'],
    code: 2,
    message: 'no help for "nosuchcommand": unknown command',
    hint: 'see vfio-isolate --help',
  },
  {
    what: 'status chained with another command',
    argv: ['status', 'drop-caches'],
    code: 2,
    message: 'status cannot be chained with other commands',
    hint: 'run it on its own: vfio-isolate status ...',
  },
  {
    what: 'another command chained with status',
    argv: ['drop-caches', 'status'],
    code: 2,
    message: 'status cannot be chained with other commands',
    hint: 'run it on its own: vfio-isolate status ...',
  },
  {
    what: 'completion for an unknown shell',
    argv: ['completion', 'tcsh'],
    code: 2,
    message: 'completion: SHELL must be one of bash, zsh, fish, not "tcsh"',
    hint: 'usage: vfio-isolate [GLOBAL-OPTIONS] completion SHELL',
  },
  {
    what: 'a command that needs a subcommand',
    argv: ['libvirt'],
    code: 2,
    message: 'libvirt needs a subcommand (cputune, hook)',
    hint: 'usage: vfio-isolate [GLOBAL-OPTIONS] libvirt {cputune|hook}',
  },
  {
    what: 'typo in a subcommand',
    argv: ['libvirt', 'hok'],
    code: 2,
    message: 'unknown subcommand "hok" of libvirt',
    hint: 'did you mean libvirt hook?',
  },
];

const otherCases: [MachineName, Case][] = [
  [
    'intel-6c12t',
    {
      what: 'governor the CPUs do not offer (intel_pstate)',
      argv: ['cpu-governor', 'ondemand', 'C2-5,8-11'],
      code: 2,
      message: 'cpu-governor: governor "ondemand" is not available for CPUs 2',
      hint: 'available: performance powersave',
    },
  ],
  [
    'intel-6c12t',
    {
      what: 'modify a cpuset that does not exist (v1)',
      argv: ['cpuset-modify', '--cpus', 'C0-1,6-7', '/host.slice'],
      code: 1,
      message: 'cpuset-modify: cgroup /host.slice does not exist',
      hint: 'create it first with cpuset-create',
    },
  ],
  [
    'tr-1920x',
    {
      what: 'NUMA node beyond the machine',
      argv: ['cpuset-create', '--cpus', 'N2', '--mems', 'N0', '/host.slice'],
      code: 2,
      message: '--cpus: NUMA node 2 in "N2" does not exist on this machine (nodes: 0-1)',
      hint: 'see "vfio-isolate help cpus" for the notation',
    },
  ],
];

/** A 0.5.2 undo file: a pickled empty list (protocol 4). */
const PICKLE = Buffer.from([0x80, 0x04, 0x95, 0x04, 0, 0, 0, 0, 0, 0, 0, 0x5d, 0x94, 0x2e]);

function runCases(machine: MachineName, cases: Case[]): void {
  let root = '';
  let tmp = '';
  let hash = '';
  before(() => {
    root = buildFixture(machine);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vi-misuse-'));
    fs.writeFileSync(path.join(tmp, 'undo.pickle'), PICKLE);
    hash = treeHash(root);
  });
  after(() => {
    removeFixture(root);
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  for (const c of cases) {
    it(`${c.what}: vfio-isolate ${c.argv.map((a) => (a === '' ? '""' : a)).join(' ')}`, async () => {
      const sub = (s: string): string => s.replaceAll('{TMP}', tmp);
      const r = await cli(root, c.argv.map(sub));
      const want =
        `vfio-isolate: ${sub(c.message)}\n` + (c.hint !== undefined ? `hint: ${sub(c.hint)}\n` : '');
      assert.equal(r.stderr, want);
      assert.equal(r.code, c.code);
      assert.equal(r.stdout, '');
      assert.deepEqual(simWrites(root), [], 'no write, mkdir or rmdir was attempted');
      assert.equal(treeHash(root), hash, 'the tree is unchanged');
      assert.deepEqual(fs.readFileSync(path.join(tmp, 'undo.pickle')), PICKLE, 'the pickle is left alone');
      for (const f of c.absent ?? []) assert.ok(!fs.existsSync(path.join(tmp, f)), `${f} was not created`);
    });
  }
}

describe('misuse on ryzen-5950x (cgroup v2)', () => runCases('ryzen-5950x', ryzenCases));
for (const machine of [...new Set(otherCases.map(([m]) => m))]) {
  describe(`misuse on ${machine}`, () =>
    runCases(
      machine,
      otherCases.filter(([m]) => m === machine).map(([, c]) => c),
    ));
}

describe('misuse cases cover the table', () => {
  it('at least 30 cases, and every compatible command has one', () => {
    const all = [...ryzenCases, ...otherCases.map(([, c]) => c)];
    assert.ok(all.length >= 30, `${all.length} cases`);
    const named = new Set(all.flatMap((c) => c.argv));
    for (const cmd of COMMANDS.filter((c) => c.compat))
      assert.ok(named.has(cmd.name), `a misuse case for ${cmd.name}`);
  });
});
