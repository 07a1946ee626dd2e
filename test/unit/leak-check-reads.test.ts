/**
 * Issue 17: isolate's closing leak check reads of the cgroup tree only what its verdict uses: the partitions on
 * cgroup v2 (an invalid one is warned about), below cgroups whose subtree_control enables cpuset; nothing on v1.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { CpuSet } from '../../src/cpus/cpuset.ts';
import { readStatusModel } from '../../src/commands/status-collect.ts';
import { Kernel } from '../../src/kernel/kernel.ts';
import { findLeaks } from '../../src/report/status-model.ts';
import { buildFixture } from '../fixtures/build.ts';
import { SimFs } from '../support/simfs.ts';

/** Records the cgroup files read (below the mount) and the cgroup directories listed. */
class CgroupReads extends SimFs {
  constructor(
    root: string,
    readonly mount: string,
  ) {
    super(root);
  }
  files: string[] = [];
  override read(p: string): string {
    if (p.startsWith(`${this.mount}/`)) this.files.push(p.slice(this.mount.length));
    return super.read(p);
  }
}

const VM = CpuSet.parseList('8-15');

describe('isolate’s leak check: of the cgroups only their partitions', () => {
  it('cgroup v1 (intel-6c12t): no cgroup file read', () => {
    const root = buildFixture('intel-6c12t');
    const fsx = new CgroupReads(root, '/sys/fs/cgroup/cpuset');
    const model = readStatusModel(new Kernel(fsx), { leaksOn: CpuSet.parseList('2-5') });
    assert.equal(model.cgroups?.version, 1);
    assert.deepEqual(fsx.files, []);
  });

  it('cgroup v2 (ryzen-5950x): subtree_control and partitions only; an invalid partition is still warned about', () => {
    const root = buildFixture('ryzen-5950x');
    const cg = path.join(root, 'sys/fs/cgroup');
    // a cpuset child of machine.slice whose partition the kernel made invalid
    fs.writeFileSync(path.join(cg, 'machine.slice/cgroup.subtree_control'), 'cpuset\n');
    fs.mkdirSync(path.join(cg, 'machine.slice/vm.scope'));
    fs.writeFileSync(
      path.join(cg, 'machine.slice/vm.scope/cpuset.cpus.partition'),
      'isolated invalid (Cpu list in cpuset.cpus not exclusive)\n',
    );
    const fsx = new CgroupReads(root, '/sys/fs/cgroup');
    const model = readStatusModel(new Kernel(fsx), { leaksOn: VM });
    const other = fsx.files.filter((f) => !/\/(cgroup\.subtree_control|cpuset\.cpus\.partition)$/.test(f));
    assert.deepEqual(
      other.filter((f) => f !== '/cgroup.controllers' && f !== '/cpuset.cpus.isolated'),
      [],
      'no tasks, CPU or memory lists, flags',
    );
    const report = findLeaks(model, VM);
    assert.ok(
      report.warnings.some((w) => w.kind === 'partition' && w.id === '/machine.slice/vm.scope'),
      JSON.stringify(report.warnings),
    );
  });
});
