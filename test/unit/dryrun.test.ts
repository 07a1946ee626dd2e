/**
 * --dry-run changes nothing: for every command that writes, the whole fixture tree (every file's content, mode
 * and mtime, every symlink, the simulator's write log, /run) hashes the same before and after, and the plan is
 * printed. The JSON form of each plan is checked against the schema.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import * as v from 'valibot';
import type { CommandSpec } from '../../src/cli/spec.ts';
import { COMMANDS } from '../../src/cli/table.ts';
import { PlanJson } from '../../src/report/json-schema.ts';
import { buildFixture, type MachineName } from '../fixtures/build.ts';
import { cli, cli as runCli } from '../support/cli.ts';
import { LOG_FILE } from '../support/fake-systemctl.ts';
import { fakeSystemd } from '../support/systemd.ts';
import { asInstalled } from '../support/hook-install.ts';

/** Everything under root, including mtimes (a rewrite with the same content still counts) and the write log. */
function fullHash(root: string): string {
  const h = createHash('sha256');
  const walk = (dir: string): void => {
    for (const name of fs.readdirSync(dir).sort()) {
      const full = path.join(dir, name);
      const rel = path.relative(root, full);
      // the fake systemctl's own call log (a dry run may ask systemd; the calls are checked below)
      if (rel === LOG_FILE) continue;
      const st = fs.lstatSync(full, { bigint: true });
      h.update(`${rel} ${st.mode} ${st.mtimeNs}\n`);
      if (st.isSymbolicLink()) h.update(`-> ${fs.readlinkSync(full)}\n`);
      else if (st.isDirectory()) walk(full);
      else h.update(fs.readFileSync(full));
    }
  };
  walk(root);
  return h.digest('hex');
}

function fileHash(file: string): string {
  return createHash('sha256')
    .update(fs.readFileSync(file))
    .update(String(fs.statSync(file, { bigint: true }).mtimeNs))
    .digest('hex');
}

const tmpFile = (name: string): string => path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vi-dry-')), name);

interface Case {
  /** The command this case covers (full name). */
  covers: string;
  machine: MachineName;
  /** Real commands run first to set the scene (e.g. make a journal to restore). `J` is replaced by a journal path. */
  setup?: string[][];
  argv: string[];
  /** Extra files outside the tree that must not change either. */
  outside?: string[];
  /** Run with a fake systemd managing the tree; `lift` units lose their AllowedCPUs= after setup (drift). */
  systemd?: { lift?: string[] };
}

const CASES: Case[] = [
  {
    covers: 'cpuset-create',
    machine: 'ryzen-5950x',
    argv: ['cpuset-create', '--cpus', 'C0-7', '--mems', 'N0', '/host.slice'],
  },
  {
    covers: 'cpuset-create',
    machine: 'intel-6c12t',
    argv: ['cpuset-create', '--cpus', 'C0,6', '--mems', 'N0', '-ce', '/host'],
  },
  {
    covers: 'cpuset-modify',
    machine: 'ryzen-5950x',
    argv: ['cpuset-modify', '--cpus', 'C0-7,16-23', '/system.slice'],
  },
  {
    covers: 'cpuset-modify',
    machine: 'v2-nocpuset',
    argv: ['cpuset-modify', '--cpus', 'C0,4', '/system.slice'],
  },
  {
    covers: 'cpuset-modify',
    machine: 'tr-1920x',
    setup: [['cpuset-create', '--cpus', 'C0-5', '--mems', 'N0', '/host']],
    argv: ['cpuset-modify', '--cpus', 'C0-2', '-nlb', '/host'],
  },
  {
    covers: 'cpuset-delete',
    machine: 'ryzen-5950x',
    setup: [['cpuset-create', '--cpus', 'C0-3', '/scratch.slice']],
    argv: ['cpuset-delete', '/scratch.slice'],
  },
  {
    covers: 'cpuset-delete',
    machine: 'intel-6c12t',
    setup: [['cpuset-create', '--cpus', 'C0', '--mems', 'N0', '/scratch']],
    argv: ['cpuset-delete', '/scratch'],
  },
  { covers: 'move-tasks', machine: 'ryzen-5950x', argv: ['move-tasks', '/user.slice', '/system.slice'] },
  {
    covers: 'move-tasks',
    machine: 'intel-6c12t',
    argv: ['cpuset-create', '--cpus', 'C0,6', '--mems', 'N0', '/host', 'move-tasks', '/', '/host'],
  },
  { covers: 'irq-affinity', machine: 'ryzen-5950x', argv: ['irq-affinity', 'mask', 'C8-15,24-31'] },
  { covers: 'irq-affinity', machine: 'tr-1920x', argv: ['irq-affinity', 'add', 'N1'] },
  { covers: 'cpu-governor', machine: 'ryzen-5950x', argv: ['cpu-governor', 'performance', 'C8-15,24-31'] },
  { covers: 'cpu-governor', machine: 'server-2s', argv: ['cpu-governor', 'powersave', 'N1'] },
  { covers: 'drop-caches', machine: 'hybrid-v1v2', argv: ['drop-caches'] },
  { covers: 'compact-memory', machine: 'hybrid-v1v2', argv: ['compact-memory'] },
  {
    covers: 'restore',
    machine: 'ryzen-5950x',
    setup: [['-u', 'J', 'cpuset-modify', '--cpus', 'C0-7', '/system.slice', 'irq-affinity', 'mask', 'C8-15']],
    argv: ['restore', 'J'],
    outside: ['J'],
  },
  {
    covers: 'restore',
    machine: 'intel-6c12t',
    setup: [
      ['-u', 'J', 'cpuset-create', '--cpus', 'C0,6', '--mems', 'N0', '/host', 'move-tasks', '/', '/host'],
    ],
    argv: ['restore', 'J'],
    outside: ['J'],
  },
  { covers: 'isolate', machine: 'ryzen-5950x', argv: ['isolate', 'L1'] },
  { covers: 'isolate', machine: 'intel-6c12t', argv: ['isolate', 'C1-5,7-11'] },
  {
    covers: 'release',
    machine: 'ryzen-5950x',
    setup: [['-u', 'J', 'isolate', 'L1']],
    argv: ['-u', 'J', 'release'],
    outside: ['J'],
  },
  { covers: 'reset', machine: 'tr-1920x', argv: ['reset'] },
  { covers: 'pin-qemu', machine: 'ryzen-5950x', argv: ['pin-qemu', '2400'] },
  {
    covers: 'partition',
    machine: 'ryzen-5950x',
    // libvirt's layout of the running win10 VM: vCPU cgroups pinned to 8 and 9, the emulator on 7
    setup: [
      [
        'cpuset-create',
        '/machine.slice/machine-qemu\\x2d1\\x2dwin10.scope/libvirt',
        'cpuset-create',
        '--cpus',
        'C7',
        '/machine.slice/machine-qemu\\x2d1\\x2dwin10.scope/libvirt/emulator',
        'cpuset-create',
        '--cpus',
        'C8',
        '/machine.slice/machine-qemu\\x2d1\\x2dwin10.scope/libvirt/vcpu0',
        'cpuset-create',
        '--cpus',
        'C9',
        '/machine.slice/machine-qemu\\x2d1\\x2dwin10.scope/libvirt/vcpu1',
      ],
    ],
    argv: ['partition', 'win10'],
  },
  {
    covers: 'reapply',
    machine: 'v2-nocpuset',
    systemd: { lift: ['system.slice'] },
    setup: [['-u', 'J', 'isolate', 'C4-7']],
    // the unit restrictions of isolate are in the host journal, reapply's default
    argv: ['reapply'],
    outside: ['J'],
  },
  // libvirt hook install/uninstall are report commands: their dry run prints what it would write, as text
  {
    covers: 'libvirt hook install',
    machine: 'ryzen-5950x',
    argv: ['libvirt', 'hook', 'install', 'win10', '--profile', 'P'],
    outside: ['P'],
  },
  {
    covers: 'libvirt hook uninstall',
    machine: 'ryzen-5950x',
    setup: [['libvirt', 'hook', 'install', 'win10', '--profile', 'P']],
    argv: ['libvirt', 'hook', 'uninstall', 'win10'],
    outside: ['P'],
  },
];

function writingCommands(cmds: readonly CommandSpec[], prefix = ''): string[] {
  return cmds.flatMap((c) =>
    c.subcommands
      ? writingCommands(c.subcommands, `${prefix}${c.name} `)
      : c.writes
        ? [`${prefix}${c.name}`]
        : [],
  );
}

describe('--dry-run changes nothing', () => {
  it('every command that writes has a case here', () => {
    const covered = new Set(CASES.map((c) => c.covers));
    assert.deepEqual(
      writingCommands(COMMANDS).filter((n) => !covered.has(n)),
      [],
    );
  });

  for (const c of CASES) {
    const label = `${c.machine}: ${c.argv.join(' ')}`;
    // libvirt hook install refuses a tool others could change (this file in a checkout under /tmp): run as installed
    const as = c.covers.startsWith('libvirt') ? asInstalled : <T>(f: () => Promise<T>) => f();
    it(label, () =>
      as(async () => {
        const root = buildFixture(c.machine, { irqbalance: false });
        const sd = c.systemd ? fakeSystemd(root) : undefined;
        const cli = (r: string, argv: string[]) => runCli(r, argv, sd?.env);
        const journal = tmpFile('undo.journal');
        const profile = tmpFile('win10.toml');
        fs.writeFileSync(profile, 'domain = "win10"\nvm_cpus = "L1"\n');
        const files: Record<string, string> = { J: journal, P: profile };
        const sub = (argv: string[]): string[] => argv.map((a) => files[a] ?? a);
        for (const s of c.setup ?? []) {
          const r = await cli(root, sub(s));
          assert.equal(r.code, 0, `setup ${s.join(' ')}: ${r.stderr}`);
        }
        for (const unit of c.systemd?.lift ?? [])
          sd!.run('set-property', '--runtime', '--', unit, 'AllowedCPUs=');
        const setsOf = (f: { calls(): string[] }): number =>
          f.calls().filter((l) => l.includes('set-property')).length;
        const setsBefore = sd ? setsOf(sd) : 0;
        const outside = sub(c.outside ?? []);
        const libvirt = c.covers.startsWith('libvirt');
        const before = fullHash(root);
        const outBefore = outside.map(fileHash);
        for (const flag of libvirt ? [['-n'], ['--dry-run']] : [['-n'], ['--dry-run'], ['-n', '--json']]) {
          const r = await cli(root, [...flag, ...sub(c.argv)]);
          assert.equal(r.code, 0, `${flag.join(' ')} ${label}: ${r.stderr}`);
          if (libvirt) {
            assert.match(r.stdout, /^Would (write|replace|remove) /);
          } else if (flag.includes('--json')) {
            const parsed = v.safeParse(PlanJson, JSON.parse(r.stdout));
            assert.ok(parsed.success, JSON.stringify(parsed.issues?.slice(0, 3)));
            assert.ok(parsed.output.steps.length > 0, 'the plan has steps');
          } else {
            assert.match(r.stdout, /^Plan \(dry run: nothing was changed\), \d+ steps?:$/m);
          }
          assert.equal(fullHash(root), before, `${flag.join(' ')} ${label} changed the tree`);
          if (sd) assert.equal(setsOf(sd), setsBefore, `${flag.join(' ')} ${label}: systemd was only asked`);
          assert.deepEqual(
            outside.map(fileHash),
            outBefore,
            `${flag.join(' ')} ${label} changed the journal`,
          );
        }
      }),
    );
  }

  it('without --dry-run the same command does change the tree (the hash sees it)', async () => {
    const root = buildFixture('ryzen-5950x', { irqbalance: false });
    const before = fullHash(root);
    const r = await cli(root, ['irq-affinity', 'mask', 'C8-15,24-31']);
    assert.equal(r.code, 0, r.stderr);
    assert.notEqual(fullHash(root), before);
  });
});
