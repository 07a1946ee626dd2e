/**
 * Hints that name CPUs come from the machine's own topology (never the 5950X's C8-15,24-31 on a 12-CPU machine),
 * and `--profile NAME` finds /etc/vfio-isolate/NAME.toml (under the fixture's root).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { CpuSet } from '../../src/cpus/cpuset.ts';
import { profileFile } from '../../src/profile.ts';
import { buildFixture, removeFixture, type MachineName } from '../fixtures/build.ts';
import { asInstalled } from '../support/hook-install.ts';
import { cli } from '../support/cli.ts';

/** The VM side of each machine's suggested split: the last NUMA node, else L1..., else all but core 0. */
const EXPECTED: [MachineName, string][] = [
  ['ryzen-5950x', 'C8-15,24-31'], // 2 L3 domains: L1
  ['tr-1920x', 'C6-11,18-23'], // 2 NUMA nodes: N1
  ['intel-6c12t', 'C1-5,7-11'], // 6 cores, one L3: the host keeps core 0 (CPUs 0,6)
  ['server-2s', 'C16-31,48-63'], // 2 sockets, 2 nodes: N1
  ['hybrid-v1v2', 'C1-3,5-7'], // 4 cores
  ['guest-l3-ids', 'C4-7'], // 2 L3 domains by shared_cpu_list, although every CPU has its own index3/id
];

const roots: string[] = [];
after(() => roots.forEach(removeFixture));
function machine(name: MachineName): string {
  const root = buildFixture(name);
  roots.push(root);
  return root;
}
async function suggestedVm(root: string): Promise<CpuSet> {
  const r = await cli(root, ['topology', '--json']);
  assert.equal(r.code, 0, r.stderr);
  return CpuSet.parseList(
    (JSON.parse(r.stdout) as { suggestion: { host: string; vm: string } }).suggestion.vm,
  );
}

describe('hints name CPUs of this machine', () => {
  for (const [name, vm] of EXPECTED) {
    it(`${name}: "isolate" without CPUs suggests ${vm}, the VM side of topology's split`, async () => {
      const root = machine(name);
      const r = await cli(root, ['-n', 'isolate']);
      assert.equal(r.code, 2, r.stdout);
      const hint = /^hint: e\.g\. vfio-isolate isolate (C[\d,-]+), the split/m.exec(r.stderr);
      assert.ok(hint, r.stderr);
      assert.equal(hint[1], vm);
      assert.ok(
        CpuSet.parseList(vm.slice(1)).equals(await suggestedVm(root)),
        'the same split topology shows',
      );
      // and the suggestion works as given: it plans
      const plan = await cli(root, ['-n', 'isolate', hint[1]!]);
      assert.equal(plan.code, 0, plan.stderr);
    });

    it(`${name}: a profile without vm_cpus suggests vm_cpus = "${vm}"`, async () => {
      const root = machine(name);
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vi-hint-'));
      const f = path.join(dir, 'vm.toml');
      fs.writeFileSync(f, '[isolate]\ngovernor = "performance"\n');
      const r = await cli(root, ['-n', 'isolate', '--profile', f]);
      fs.rmSync(dir, { recursive: true, force: true });
      assert.equal(r.code, 2, r.stdout);
      assert.ok(r.stderr.includes(`hint: e.g. vm_cpus = "${vm}", the split`), r.stderr);
    });
  }

  it('no machine but the 5950X is offered the 5950X split', async () => {
    for (const [name] of EXPECTED.filter(([n]) => n !== 'ryzen-5950x')) {
      const r = await cli(machine(name), ['-n', 'isolate']);
      assert.ok(!r.stderr.includes('C8-15,24-31'), `${name}: ${r.stderr}`);
    }
  });
});

describe('--profile NAME: /etc/vfio-isolate/NAME.toml', () => {
  it('profileFile: a bare name (with or without .toml) is looked up, a path with a slash is taken as it is', () => {
    const host = (p: string): string => `/fake${p}`;
    assert.equal(profileFile('win11', host), '/fake/etc/vfio-isolate/win11.toml');
    assert.equal(profileFile('win11.toml', host), '/fake/etc/vfio-isolate/win11.toml');
    assert.equal(profileFile('./win11.toml', host), './win11.toml');
    assert.equal(profileFile('/srv/vm/win11.toml', host), '/srv/vm/win11.toml');
    assert.equal(profileFile('vms/win11', host), 'vms/win11');
  });

  it('isolate --profile win11 reads the fixture root /etc/vfio-isolate/win11.toml', async () => {
    const root = machine('ryzen-5950x');
    fs.mkdirSync(path.join(root, 'etc/vfio-isolate'), { recursive: true });
    fs.writeFileSync(
      path.join(root, 'etc/vfio-isolate/win11.toml'),
      'vm_cpus = "L1"\n[isolate]\ngovernor = "performance"\n',
    );
    for (const name of ['win11', 'win11.toml']) {
      const r = await cli(root, ['-n', 'isolate', '--profile', name]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /set governor performance on CPUs 8-15,24-31/);
    }
    const cputune = await cli(root, ['libvirt', 'cputune', '--profile', 'win11']);
    assert.equal(cputune.code, 0, cputune.stderr);
    assert.match(cputune.stdout, /<vcpupin vcpu='0' cpuset='8'\/>/);
  });

  it('a missing profile names the file it looked for', async () => {
    const root = machine('intel-6c12t');
    const r = await cli(root, ['-n', 'isolate', '--profile', 'nosuchvm']);
    assert.equal(r.code, 1, r.stdout);
    assert.ok(r.stderr.includes(path.join(root, 'etc/vfio-isolate/nosuchvm.toml')), r.stderr);
  });

  it('libvirt hook install DOMAIN --profile NAME puts the looked-up path into the hook', async () => {
    const root = machine('ryzen-5950x');
    fs.mkdirSync(path.join(root, 'etc/vfio-isolate'), { recursive: true });
    fs.writeFileSync(path.join(root, 'etc/vfio-isolate/win11.toml'), 'domain = "win11"\nvm_cpus = "L1"\n');
    // as a root-owned install runs it (hook install refuses a tool others could change, e.g. a checkout under /tmp)
    const r = await asInstalled(() =>
      cli(root, ['-n', 'libvirt', 'hook', 'install', 'win11', '--profile', 'win11']),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.ok(
      r.stdout.includes(`# vfio-isolate-hook-profile: ${path.join(root, 'etc/vfio-isolate/win11.toml')}\n`),
      r.stdout,
    );
  });
});
