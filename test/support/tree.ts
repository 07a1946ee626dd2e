/** Helpers for fixture trees: read a system path, hash the whole tree, count simulated writes. */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export function sysRead(root: string, p: string): string {
  return fs.readFileSync(path.join(root, p), 'utf8').trim();
}
export function sysWrite(root: string, p: string, value: string): void {
  fs.writeFileSync(path.join(root, p), value);
}
export function sysExists(root: string, p: string): boolean {
  return fs.existsSync(path.join(root, p));
}

/** The first `n` IRQs of a fixture tree that have both affinity files and take writes (no `.sim-refuse`). */
export function writableIrqs(root: string, n: number): string[] {
  return fs
    .readdirSync(path.join(root, 'proc/irq'))
    .filter(
      (d) =>
        /^\d+$/.test(d) &&
        fs.existsSync(path.join(root, `proc/irq/${d}/smp_affinity_list`)) &&
        !fs.existsSync(path.join(root, `proc/irq/${d}/.sim-refuse`)),
    )
    .slice(0, n);
}

/** A hash of every file (path, content, symlink target) under root, except the simulator's write log and /run. */
export function treeHash(root: string): string {
  const h = createHash('sha256');
  const walk = (dir: string): void => {
    for (const e of fs
      .readdirSync(dir, { withFileTypes: true })
      .sort((a, b) => a.name.localeCompare(b.name))) {
      const full = path.join(dir, e.name);
      const rel = path.relative(root, full);
      if (skip(rel)) continue;
      if (e.isSymbolicLink()) h.update(`L ${rel} ${fs.readlinkSync(full)}\n`);
      else if (e.isDirectory()) {
        h.update(`D ${rel}\n`);
        walk(full);
      } else h.update(`F ${rel} ${fs.readFileSync(full, 'utf8')}\n`);
    }
  };
  walk(root);
  return h.digest('hex');
}

/**
 * Member lists are compared as sets; /proc/PID/stat field 39 ("processor": the CPU the task last ran on) is the kernel's to change, as on a real
 * machine; it is blanked so that tree comparisons see only state the tool owns.
 */
/**
 * Not compared: the simulator's log, the tool's own /run files, where the kernel routes IRQs (its choice), and the
 * one-way triggers drop_caches/compact_memory (actions, not state: nothing to restore).
 */
function skip(rel: string): boolean {
  return (
    rel === '.sim-log' ||
    // simulator bookkeeping (e.g. the mask a thread asked for, which a real kernel also keeps after restore)
    path.basename(rel).startsWith('.sim-user-affinity') ||
    rel === 'run' ||
    rel.startsWith('run/') ||
    /^proc\/irq\/\d+\/effective_affinity/.test(rel) ||
    rel === 'proc/sys/vm/drop_caches' ||
    rel === 'proc/sys/vm/compact_memory'
  );
}

function normalise(rel: string, text: string): string {
  // The kernel lists cgroup members in no particular order.
  if (/(^|\/)(tasks|cgroup\.procs)$/.test(rel))
    return text
      .split('\n')
      .filter(Boolean)
      .sort((a, b) => Number(a) - Number(b))
      .join('\n');
  if (!/^proc\/\d+\/(task\/\d+\/)?stat$/.test(rel)) return text;
  const close = text.lastIndexOf(')');
  const fields = text.slice(close + 2).split(' ');
  fields[36] = '*'; // field 39 = index 39 - 3
  return text.slice(0, close + 2) + fields.join(' ');
}

/** A snapshot (path → content) of the tree, for readable diffs in assertion messages. */
export function treeFiles(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, e.name);
      const rel = path.relative(root, full);
      if (skip(rel)) continue;
      if (e.isSymbolicLink()) out.set(rel, `-> ${fs.readlinkSync(full)}`);
      else if (e.isDirectory()) {
        out.set(rel + '/', '');
        walk(full);
      } else out.set(rel, normalise(rel, fs.readFileSync(full, 'utf8')));
    }
  };
  walk(root);
  return out;
}

/**
 * Differences between two trees. One kind is not a difference: a v2 `cpuset.cpus`/`cpuset.mems` that was ""
 * ("inherit") and now holds exactly what it inherits (its own `.effective`). The kernel refuses (ENOSPC) to set a
 * cgroup with tasks back to "", so restore writes the inherited value instead — the same CPUs, explicit.
 */
export function diffTrees(a: Map<string, string>, b: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [k, v] of a)
    if (!b.has(k)) out.push(`- ${k}`);
    else if (b.get(k) !== v && !inheritEquivalent(k, v, b))
      out.push(`~ ${k}: ${JSON.stringify(v.slice(0, 80))} → ${JSON.stringify(b.get(k)!.slice(0, 80))}`);
  for (const k of b.keys()) if (!a.has(k)) out.push(`+ ${k}`);
  return out;
}

function inheritEquivalent(file: string, before: string, after: Map<string, string>): boolean {
  if (!/^sys\/fs\/cgroup\/.+\/cpuset\.(cpus|mems)$/.test(file) || before.trim() !== '') return false;
  const effective = after.get(`${file}.effective`);
  return effective !== undefined && effective.trim() !== '' && effective.trim() === after.get(file)!.trim();
}

export function simWrites(root: string): string[] {
  const f = path.join(root, '.sim-log');
  return fs.existsSync(f) ? fs.readFileSync(f, 'utf8').split('\n').filter(Boolean) : [];
}
