/**
 * parseStat: the fields of /proc/PID/stat the tool uses, by their positions in proc(5), on this machine's own
 * /proc/self/stat (read only) and on crafted lines (a comm with spaces and parentheses, a line that ends early).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { test } from 'node:test';
import { parseStat, statusField } from '../../src/kernel/procs.ts';

/** Field n of proc(5) (1-based), by a split that knows nothing of the kernel's spacing. */
function field(text: string, n: number): string {
  if (n === 1) return text.slice(0, text.indexOf(' ('));
  if (n === 2) return text.slice(text.indexOf('(') + 1, text.lastIndexOf(')'));
  return text
    .slice(text.lastIndexOf(')') + 1)
    .trim()
    .split(/\s+/)[n - 3]!;
}

test('this process: pid, comm, state, ppid, flags, start time, CPU, rt priority and policy at their positions', () => {
  const text = fs.readFileSync('/proc/self/stat', 'utf8');
  const s = parseStat(text);
  assert.ok(s);
  assert.equal(s.pid, process.pid);
  assert.equal(s.ppid, process.ppid);
  assert.equal(s.comm, fs.readFileSync('/proc/self/comm', 'utf8').trimEnd());
  assert.equal(s.state, field(text, 3));
  const at = { flags: 9, start: 22, processor: 39, rtPriority: 40, policy: 41 } as const;
  for (const [k, n] of Object.entries(at)) assert.equal(s[k as keyof typeof at], Number(field(text, n)), k);
  assert.ok(s.start > 0);
});

test('a comm with spaces and parentheses ends at the last ")"; fields after it are counted from there', () => {
  const after = Array.from({ length: 50 }, (_, i) => String(i + 4)); // fields 4..53 hold their own position
  const s = parseStat(`42 (a) b (c)) R ${after.join(' ')}\n`);
  assert.deepEqual(s, {
    pid: 42,
    comm: 'a) b (c)',
    state: 'R',
    ppid: 4,
    flags: 9,
    start: 22,
    processor: 39,
    rtPriority: 40,
    policy: 41,
  });
});

test('a line that ends early: the fields it has, 0 for the rest; no ")" is no stat', () => {
  const s = parseStat('7 (x) Z 1\n');
  assert.equal(s?.state, 'Z');
  assert.equal(s?.ppid, 1);
  assert.equal(s?.start, 0);
  assert.equal(parseStat('7 (x) Z\n')?.state, 'Z');
  assert.equal(parseStat('7 (x Z 1'), undefined);
});

test('statusField: a field of /proc/self/status as its own line says, the first line too; none for a missing one', () => {
  const text = fs.readFileSync('/proc/self/status', 'utf8');
  for (const name of ['Name', 'Cpus_allowed_list', 'Tgid', 'Uid', 'Mems_allowed_list'])
    assert.equal(
      statusField(text, name),
      new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(text)?.[1]?.trim(),
      name,
    );
  assert.equal(statusField(text, 'Tgid'), String(process.pid));
  assert.equal(statusField(text, 'Cpus_allowed'.slice(0, 5)), undefined, 'a prefix of a name is no field');
  assert.equal(statusField(text, 'NoSuchField'), undefined);
  assert.equal(
    statusField('Name:\tx\nCpus_allowed_list:\t0-3', 'Cpus_allowed_list'),
    '0-3',
    'the last line, no newline',
  );
  assert.equal(statusField('XName:\ty\n', 'Name'), undefined);
});
