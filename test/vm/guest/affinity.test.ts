/**
 * Issue 21, item 1 on a real kernel: a task pinned by its user inside a non-root cgroup, moved to another cgroup
 * with move-tasks and restored, is back in its cgroup with its mask. On 6.1 the kernel's attach replaces the mask
 * (checked, so the test proves the journal did the work); on 6.2+ the kernel keeps it and nothing is journalled.
 * Runs inside the test guest only.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { loadSched } from '../../../src/kernel/sched.ts';
import { cli } from './cli.ts';
import { guestMode, notInGuest } from './guest-env.ts';

const mode = guestMode();
const v1 = mode === 'v1-hybrid';
const CG = v1 ? '/sys/fs/cgroup/cpuset' : '/sys/fs/cgroup';
const FILE = v1 ? 'tasks' : 'cgroup.procs';
const undoFile = () => join(mkdtempSync(join(tmpdir(), 'vi-guest-')), 'undo');
const read = (p: string) => readFileSync(p, 'utf8').trim();
const ids = (p: string) => read(p).split('\n').filter(Boolean);

function allowed(tid: number): string {
  return /^Cpus_allowed_list:\s*(.*)$/m.exec(read(`/proc/${tid}/status`))![1]!.trim();
}
function release(): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(read('/proc/sys/kernel/osrelease'))!;
  return [Number(m[1]), Number(m[2])];
}

/** /a.slice and /b.slice with every CPU; returns the journal that removes them. */
async function createSlices(): Promise<string> {
  const undo = undoFile();
  const r = await cli([
    '-u',
    undo,
    'cpuset-create',
    '--cpus',
    'C0-7',
    '/a.slice',
    'cpuset-create',
    '--cpus',
    'C0-7',
    '/b.slice',
  ]);
  assert.equal(r.code, 0, r.stderr);
  return undo;
}

describe(`thread masks across move-tasks and restore (${mode ?? 'host'})`, { skip: notInGuest() }, () => {
  const children: ChildProcess[] = [];
  after(() => {
    for (const c of children) c.kill('SIGKILL');
  });

  test('a task pinned to 0-1 in /a.slice, moved to /b.slice and restored, is in /a.slice on 0-1', async () => {
    const setupUndo = await createSlices();
    const child = spawn('sleep', ['600'], { stdio: 'ignore' });
    children.push(child);
    const pid = child.pid!;
    try {
      writeFileSync(`${CG}/a.slice/${FILE}`, String(pid));
      loadSched().setAffinity(pid, [0, 1]);
      assert.equal(allowed(pid), '0-1');

      const undo = undoFile();
      const r = await cli(['-u', undo, 'move-tasks', '/a.slice', '/b.slice']);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(ids(`${CG}/b.slice/${FILE}`), [String(pid)]);
      const [maj, min] = release();
      const resets = maj < 6 || (maj === 6 && min < 2);
      const kinds = read(undo)
        .split('\n')
        .map((l) => (JSON.parse(l) as { rec?: { kind: string } }).rec?.kind)
        .filter(Boolean);
      if (resets) {
        assert.equal(allowed(pid), '0-7', `${maj}.${min}: the attach replaced the mask`);
        assert.deepEqual(kinds, ['affinity', 'tasks']);
      } else {
        assert.equal(allowed(pid), '0-1', `${maj}.${min}: the attach kept the user mask`);
        assert.deepEqual(kinds, ['tasks']);
      }
      const rr = await cli(['restore', undo]);
      assert.equal(rr.code, 0, rr.stderr);
      assert.deepEqual(ids(`${CG}/a.slice/${FILE}`), [String(pid)]);
      assert.equal(allowed(pid), '0-1');
    } finally {
      child.kill('SIGKILL');
      await new Promise((res) => child.once('exit', res));
      const rs = await cli(['restore', setupUndo]);
      assert.equal(rs.code, 0, rs.stderr);
    }
  });

  // Issue 17: on cgroup v2 before 6.2 the threads behind the moved processes come from the source's cgroup.threads
  test('a process of three threads, two pinned, moved from /a.slice and restored: every thread has its mask', async () => {
    const setupUndo = await createSlices();
    const script = [
      'import sys, threading, time',
      'tids = []',
      'ev = threading.Event()',
      'def run():',
      '    tids.append(threading.get_native_id())',
      '    ev.wait()',
      'for _ in range(2): threading.Thread(target=run, daemon=True).start()',
      'while len(tids) < 2: time.sleep(0.01)',
      "print(' '.join(map(str, sorted(tids))), flush=True)",
      'sys.stdin.read()',
    ].join('\n');
    const child = spawn('python3', ['-c', script], { stdio: ['pipe', 'pipe', 'ignore'] });
    children.push(child);
    const pid = child.pid!;
    try {
      const line = await new Promise<string>((res) =>
        child.stdout!.once('data', (b: Buffer) => res(String(b))),
      );
      const [t1, t2] = line.trim().split(' ').map(Number) as [number, number];
      // v1's tasks file takes threads one by one; v2's cgroup.procs moves the whole process
      for (const id of v1 ? [pid, t1, t2] : [pid]) writeFileSync(`${CG}/a.slice/${FILE}`, String(id));
      loadSched().setAffinity(t1, [1]);
      loadSched().setAffinity(t2, [2, 3]);
      const before = [pid, t1, t2].map(allowed);
      assert.deepEqual(before.slice(1), ['1', '2-3']);

      const undo = undoFile();
      const r = await cli(['-u', undo, 'move-tasks', '/a.slice', '/b.slice']);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(ids(`${CG}/b.slice/${FILE}`).includes(String(pid)));
      const [maj, min] = release();
      if (maj < 6 || (maj === 6 && min < 2))
        assert.notEqual(allowed(t1), '1', `${maj}.${min}: the attach replaced the mask`);
      const rr = await cli(['restore', undo]);
      assert.equal(rr.code, 0, rr.stderr);
      assert.ok(ids(`${CG}/a.slice/${FILE}`).includes(String(pid)));
      assert.deepEqual([pid, t1, t2].map(allowed), before);
    } finally {
      child.kill('SIGKILL');
      await new Promise((res) => child.once('exit', res));
      const rs = await cli(['restore', setupUndo]);
      assert.equal(rs.code, 0, rs.stderr);
    }
  });
});
