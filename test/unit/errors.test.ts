/**
 * explainErrno: an errno of a kernel file in words a user understands; anything else (a module that failed to load,
 * a bug) keeps its own message instead of a made-up "I/O error from the kernel" with no file named.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RuntimeFailure } from '../../src/errors.ts';
import { explainErrno } from '../../src/kernel/errors.ts';
import { ErrnoError } from '../../src/kernel/fs.ts';

describe('explainErrno', () => {
  it('an errno of a kernel file names the file', () => {
    const e = new ErrnoError('EIO', 'write', '/sys/fs/cgroup/x/cpuset.cpus');
    assert.equal(explainErrno(e).message, '/sys/fs/cgroup/x/cpuset.cpus: I/O error from the kernel');
    assert.match(
      explainErrno(new ErrnoError('EACCES', 'open', '/proc/irq/3/smp_affinity_list')).message,
      /^permission denied: cannot open \/proc\/irq\/3/,
    );
  });

  it('a module that cannot be loaded says so (its message, its code), not "I/O error from the kernel"', () => {
    const e = Object.assign(
      new Error("Cannot find module 'koffi'\nRequire stack:\n- /opt/x/dist/chunks/a.mjs"),
      {
        code: 'MODULE_NOT_FOUND',
      },
    );
    const r = explainErrno(e);
    assert.ok(r instanceof RuntimeFailure);
    assert.equal(r.message, "Cannot find module 'koffi' (MODULE_NOT_FOUND)");
    assert.match(r.hint ?? '', /--debug/);
  });

  it('a plain error keeps its message; an errno without a path names no empty subject', () => {
    assert.equal(explainErrno(new Error('boom')).message, 'boom');
    const noPath = Object.assign(new Error('x'), { code: 'EIO' });
    assert.equal(explainErrno(noPath).message, 'a kernel file: I/O error from the kernel');
  });
});
