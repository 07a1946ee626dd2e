/** TOML profiles: parsing, validation messages, CPU strings checked against the machine, isolate options. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { topologyFromSpec } from '../../src/cpus/topology-model.ts';
import { RuntimeFailure, UsageError } from '../../src/errors.ts';
import { loadProfile, parseProfile, profileToIsolateOptions } from '../../src/profile.ts';
import { buildFixture } from '../fixtures/build.ts';
import { cli } from '../support/cli.ts';

/** A 5950X: 16 cores, siblings n and n+16, two L3 domains. */
const R5950X = topologyFromSpec({ cpus: 32, smtOffset: 16, l3: ['0-7,16-23', '8-15,24-31'] });
const TR = topologyFromSpec({ cpus: 24, smtOffset: 12, nodes: ['0-5,12-17', '6-11,18-23'] });

const FULL = `domain = "win11"
vm_cpus = "L1"
emulator_cpus = "C7,23"

[isolate]
irqs = true
kthreads = true
workqueues = true
governor = "performance"
drop_caches = true
compact_memory = true
stop_irqbalance = false
partition = false
`;

function usage(f: () => unknown, re: RegExp): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof UsageError, `expected a UsageError, got ${String(e)}`);
    assert.equal(e.exitCode, 2);
    assert.match(e.message, re);
    return true;
  });
}

describe('parseProfile', () => {
  it('reads the example profile', () => {
    const p = parseProfile(FULL, R5950X, '/etc/vfio-isolate/win11.toml');
    assert.equal(p.domain, 'win11');
    assert.equal(p.vmCpus.toList(), '8-15,24-31');
    assert.equal(p.hostCpus.toList(), '0-7,16-23');
    assert.equal(p.emulatorCpus?.toList(), '7,23');
    assert.equal(p.vmSpec, 'L1');
    assert.deepEqual(p.warnings, []);
  });

  it('turns into the isolate options', () => {
    const o = profileToIsolateOptions(parseProfile(FULL, R5950X));
    assert.equal(o.vmCpus.toList(), '8-15,24-31');
    assert.equal(o.hostCpus.toList(), '0-7,16-23');
    assert.equal(o.vmCgroup, undefined);
    assert.deepEqual(o.steps, {
      cgroups: true,
      irqs: true,
      kthreads: true,
      workqueues: true,
      governor: 'performance',
      dropCaches: true,
      compactMemory: true,
      stopIrqbalance: false,
      partition: false,
    });
  });

  it('defaults are those of the isolate command', () => {
    const o = profileToIsolateOptions(parseProfile('vm_cpus = "C8-15,24-31"\n', R5950X));
    assert.deepEqual(o.steps, {
      cgroups: true,
      irqs: true,
      kthreads: true,
      workqueues: true,
      dropCaches: false,
      compactMemory: false,
      stopIrqbalance: false,
      partition: false,
    });
  });

  it('host_cpus instead of vm_cpus: the VM gets the other online CPUs', () => {
    const p = parseProfile('host_cpus = "N0"\n', TR);
    assert.equal(p.vmCpus.toList(), '6-11,18-23');
    assert.equal(p.hostSpec, 'N0');
    assert.equal(p.vmSpec, undefined);
  });

  it('governor = false, stat_interval, vm_cgroup and [cputune]', () => {
    const p = parseProfile(
      'vm_cpus = "S8-15"\n[isolate]\ngovernor = false\nstat_interval = 10\nvm_cgroup = "/machine.slice/vms"\n[cputune]\niothreads = 2\nsched = "rr"\niothread_sched = "fifo"\niothread_priority = 98\n',
      R5950X,
    );
    assert.equal(p.vmCpus.toList(), '8-15,24-31');
    assert.equal(p.isolate.steps.governor, undefined);
    assert.equal(p.isolate.steps.statInterval, 10);
    assert.deepEqual(p.isolate.vmCgroup, ['machine.slice', 'vms']);
    assert.deepEqual(p.cputune, {
      iothreads: 2,
      vcpuSched: { policy: 'rr', priority: 1 },
      iothreadSched: { policy: 'fifo', priority: 98 },
    });
  });

  it('names an unknown key, and where it is', () => {
    usage(
      () => parseProfile('vm_cpus = "L1"\nvm_cpu = "L1"\n', R5950X, '/x/win11.toml'),
      /^win11\.toml: unknown key "vm_cpu"$/,
    );
    usage(
      () => parseProfile('vm_cpus = "L1"\n[isolate]\nirq = true\n', R5950X),
      /unknown key "irq" in \[isolate\]/,
    );
    usage(
      () => parseProfile('vm_cpus = "L1"\n[cputune]\nprio = 1\n', R5950X),
      /unknown key "prio" in \[cputune\]/,
    );
    usage(() => parseProfile('vm_cpus = "L1"\n[extra]\nx = 1\n', R5950X), /unknown key "extra"/);
    const hint = (text: string): string | undefined => {
      try {
        parseProfile(text, R5950X);
      } catch (e) {
        return (e as UsageError).hint;
      }
      return undefined;
    };
    assert.equal(hint('vm_cpus = "L1"\n[isolate]\nirq = true\n'), 'did you mean "irqs"?');
    assert.match(
      hint('vm_cpus = "L1"\n[isolate]\nxyzzy = true\n') ?? '',
      /^known keys in \[isolate\]: cgroups, irqs, kthreads/,
    );
  });

  it('names a key with a value of the wrong type', () => {
    usage(
      () => parseProfile('vm_cpus = "L1"\n[isolate]\nirqs = "yes"\n', R5950X),
      /isolate\.irqs must be true or false/,
    );
    usage(() => parseProfile('vm_cpus = 8\n', R5950X), /vm_cpus must be a CPU set string/);
    usage(
      () => parseProfile('vm_cpus = "L1"\n[isolate]\ngovernor = "Perf ormance"\n', R5950X),
      /isolate\.governor must be a governor name/,
    );
    usage(
      () => parseProfile('vm_cpus = "L1"\n[cputune]\nsched = "deadline"\n', R5950X),
      /cputune\.sched must be "fifo" or "rr"/,
    );
    usage(
      () => parseProfile('vm_cpus = "L1"\n[cputune]\nsched = "rr"\npriority = 100\n', R5950X),
      /cputune\.priority must be at most 99/,
    );
    usage(
      () => parseProfile('vm_cpus = "L1"\n[cputune]\npriority = 2\n', R5950X),
      /cputune\.priority needs cputune\.sched/,
    );
    usage(() => parseProfile('domain = "my vm"\nvm_cpus = "L1"\n', R5950X), /domain is not a domain name/);
  });

  it('checks CPU strings against the machine, naming the key', () => {
    usage(() => parseProfile('vm_cpus = "C8-40"\n', R5950X, '/p/a.toml'), /vm_cpus in a\.toml/);
    usage(() => parseProfile('vm_cpus = "L2"\n', R5950X), /vm_cpus in profile/);
    usage(() => parseProfile('vm_cpus = "L1"\nemulator_cpus = "C99"\n', R5950X), /emulator_cpus in profile/);
    usage(() => parseProfile('vm_cpus = "N1"\n', R5950X), /vm_cpus/);
    assert.equal(parseProfile('vm_cpus = "N1"\n', TR).vmCpus.toList(), '6-11,18-23');
  });

  it('refuses a split that leaves the host or the VM nothing, or names both sides', () => {
    usage(() => parseProfile('vm_cpus = "C0-31"\n', R5950X), /leaves none for the host/);
    usage(() => parseProfile('host_cpus = "C0-31"\n', R5950X), /leaves no CPU for the VM/);
    usage(() => parseProfile('vm_cpus = "L1"\nhost_cpus = "L0"\n', R5950X), /not both/);
    usage(() => parseProfile('domain = "x"\n', R5950X), /set vm_cpus/);
  });

  it('reports TOML syntax errors with line and column', () => {
    usage(() => parseProfile('vm_cpus = \n', R5950X, '/p/bad.toml'), /^bad\.toml:1:\d+: not valid TOML/);
  });
});

describe('loadProfile', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vi-profile-'));

  it('reads a file', () => {
    const f = path.join(dir, 'win11.toml');
    fs.writeFileSync(f, FULL);
    const p = loadProfile(f, R5950X);
    assert.equal(p.path, f);
    assert.equal(p.vmCpus.toList(), '8-15,24-31');
  });

  it('a missing file is a runtime failure (exit 1)', () => {
    assert.throws(
      () => loadProfile(path.join(dir, 'nope.toml'), R5950X),
      (e: unknown) => e instanceof RuntimeFailure && e.exitCode === 1 && /does not exist/.test(e.message),
    );
  });

  it('a directory or a huge file is refused', () => {
    assert.throws(() => loadProfile(dir, R5950X), UsageError);
    const big = path.join(dir, 'big.toml');
    fs.writeFileSync(big, '#'.repeat(70 * 1024));
    assert.throws(() => loadProfile(big, R5950X), /larger than/);
  });
});

describe('isolate --profile', () => {
  it('plans the steps the profile asks for', async () => {
    const root = buildFixture('ryzen-5950x');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vi-profile-'));
    const f = path.join(dir, 'win11.toml');
    fs.writeFileSync(f, 'vm_cpus = "L1"\n[isolate]\ngovernor = "performance"\nstop_irqbalance = true\n');
    const r = await cli(root, ['-n', 'isolate', '--profile', f]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /restrict 3 top-level cgroups to CPUs 0-7,16-23/);
    assert.match(r.stdout, /stop irqbalance/);
    assert.match(r.stdout, /set governor performance on CPUs 8-15,24-31/);
  });

  it('an unknown key is a usage error before any change', async () => {
    const root = buildFixture('ryzen-5950x');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vi-profile-'));
    const f = path.join(dir, 'win11.toml');
    fs.writeFileSync(f, 'vm_cpus = "L1"\n[isolate]\ngovernr = "performance"\n');
    const r = await cli(root, ['isolate', '--profile', f]);
    assert.equal(r.code, 2);
    assert.equal(
      r.stderr,
      'vfio-isolate: win11.toml: unknown key "governr" in [isolate]\nhint: did you mean "governor"?\n',
    );
  });
});

describe('profile [measure] table', () => {
  it('reads the window, mode, budgets and after_start; absent table: no measure options', () => {
    const p = parseProfile(
      `${FULL}\n[measure]\nseconds = 2.5\nmode = "probe"\nmax_noise_us = 100\nmax_irqs_per_s = 50\nmax_gap_us = 20\nafter_start = 30\n`,
      R5950X,
    );
    assert.deepEqual(p.measure, {
      seconds: 2.5,
      mode: 'probe',
      maxNoiseUs: 100,
      maxIrqsPerS: 50,
      maxGapUs: 20,
      afterStart: 30,
    });
    assert.equal(parseProfile(FULL, R5950X).measure, undefined);
    assert.deepEqual(parseProfile(`${FULL}\n[measure]\n`, R5950X).measure, {});
  });

  it('refuses bad values and unknown keys, naming them', () => {
    usage(
      () => parseProfile(`${FULL}\n[measure]\nafter_start = 0\n`, R5950X),
      /measure\.after_start must be more than 0/,
    );
    usage(
      () => parseProfile(`${FULL}\n[measure]\nseconds = 3601\n`, R5950X),
      /measure\.seconds must be at most 3600/,
    );
    usage(
      () => parseProfile(`${FULL}\n[measure]\nmode = "active"\n`, R5950X),
      /measure\.mode must be "passive" or "probe"/,
    );
    usage(
      () => parseProfile(`${FULL}\n[measure]\nmax_noise_us = -1\n`, R5950X),
      /measure\.max_noise_us must be at least 0/,
    );
    usage(
      () => parseProfile(`${FULL}\n[measure]\nmax_irqs_per_s = "5"\n`, R5950X),
      /measure\.max_irqs_per_s must be a number/,
    );
    assert.throws(
      () => parseProfile(`${FULL}\n[measure]\nmax-noise-us = 5\n`, R5950X),
      (e: UsageError) =>
        /unknown key "max-noise-us" in \[measure\]/.test(e.message) && /max_noise_us/.test(e.hint ?? ''),
    );
  });

  it('a table name given a plain value is a key of the wrong type, not an unknown key', () => {
    for (const table of ['measure', 'isolate', 'cputune']) {
      assert.throws(
        () => parseProfile(`vm_cpus = "L1"\n${table} = 1\n`, R5950X, '/x/win11.toml'),
        (e: UsageError) =>
          e instanceof UsageError &&
          e.message === `win11.toml: ${table} must be a table ([${table}])` &&
          e.hint === undefined,
        table,
      );
    }
  });
});
