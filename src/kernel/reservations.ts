/**
 * The registry of active isolations ("reservations"): /run/vfio-isolate/reservations.json, one entry per isolate
 * journal with the VM CPUs it reserved and the steps it asked for. The host set is all online CPUs minus the union
 * of the reservations; isolate and release re-apply it. The file is root's (checked with distrust() before it is
 * believed), replaced atomically (write a temporary file, fsync, rename, fsync the directory), and belongs to one
 * boot: a registry of an earlier boot is ignored (a reboot reset everything it described).
 */
import { fsyncDir } from './fsync.ts';
import type { Stats } from 'node:fs';
import * as path from 'node:path';
import * as v from 'valibot';
import { CpuSet } from '../cpus/cpuset.ts';
import { CannotRead, UsageError } from '../errors.ts';
import type { Kernel } from './kernel.ts';
import { P } from './paths.ts';
import { distrust, distrustText } from './trust.ts';

const fs = process.getBuiltinModule('node:fs');

export const REGISTRY_FORMAT = 'vfio-isolate-reservations';
export const REGISTRY_VERSION = 1;
const MAX_REGISTRY_BYTES = 1024 * 1024;

const CpuListText = v.pipe(v.string(), v.maxLength(4096), v.regex(/^\d+(-\d+)?(,\d+(-\d+)?)*$/));

export const ReservationSchema = v.strictObject({
  /** The journal of this isolation (absolute path, as the tool opened it). */
  journal: v.pipe(v.string(), v.startsWith('/'), v.maxLength(4096)),
  /** The VM CPUs (kernel list). */
  vm: CpuListText,
  /** The VM cgroup, as isolate --vm-cgroup names it ("machine.slice"). */
  vmCgroup: v.pipe(
    v.string(),
    v.maxLength(4096),
    v.check((s) => !s.split('/').includes('..'), 'no ..'),
  ),
  /** Which host-wide steps this isolation asked for. */
  steps: v.strictObject({
    cgroups: v.boolean(),
    kthreads: v.boolean(),
    workqueues: v.boolean(),
    irqs: v.boolean(),
    stopIrqbalance: v.boolean(),
    irqbalanceBan: v.boolean(),
    statInterval: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(999999))),
    /** The soft-lockup watchdog off the VM CPUs (watchdog_cpumask is one file for every VM). */
    watchdog: v.optional(v.boolean()),
  }),
  /** When it was made (ISO time). */
  at: v.pipe(v.string(), v.maxLength(64)),
});
export type Reservation = v.InferOutput<typeof ReservationSchema>;

const RegistrySchema = v.strictObject({
  format: v.literal(REGISTRY_FORMAT),
  version: v.literal(REGISTRY_VERSION),
  bootId: v.pipe(v.string(), v.maxLength(128)),
  reservations: v.pipe(v.array(ReservationSchema), v.maxLength(4096)),
});

export interface Registry {
  /** Host path of the registry file. */
  file: string;
  /** Reservations of this boot (empty when there is no registry, or one of an earlier boot). */
  reservations: Reservation[];
  /** A registry file of an earlier boot was found (and is ignored). */
  staleBoot: boolean;
}

/** Host paths of the registry and of the host journal (under a fake root in tests). */
export function registryPath(k: Kernel): string {
  return k.hostPath(P.reservations);
}
export function hostJournalPath(k: Kernel): string {
  return k.hostPath(P.hostJournal);
}

/**
 * Read the registry. Missing → no reservations. A file that root did not write alone, or that is not a registry,
 * is refused (exit 2) naming the file: `vfio-isolate reset` removes it.
 */
export function readRegistry(k: Kernel): Registry {
  const file = registryPath(k);
  let st: Stats | undefined;
  try {
    // missing: answered without an exception (the common case; a thrown ENOENT costs far more under emulation)
    st = fs.lstatSync(file, { throwIfNoEntry: false });
  } catch (e) {
    // anything but "not there" (EACCES without root, ENOTDIR) is not "no reservations": said, not passed over
    throw new CannotRead('reservation registry', file, (e as NodeJS.ErrnoException).code ?? 'EIO');
  }
  if (!st) return { file, reservations: [], staleBoot: false };
  const fix = 'remove it (vfio-isolate reset does, after putting the CPUs back)';
  if (!st.isFile()) throw new UsageError(`reservation registry ${file} is not a regular file`, fix);
  const bad = distrust(file, { allowSticky: true });
  if (bad) throw new UsageError(`reservation registry ${file}: ${distrustText(bad)}`, fix);
  if (st.size > MAX_REGISTRY_BYTES)
    throw new UsageError(`reservation registry ${file} is too large (${st.size} bytes)`, fix);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    // removed since the lstat (the last release, racing a status or dry run that takes no lock): none
    if (code === 'ENOENT') return { file, reservations: [], staleBoot: false };
    // EACCES without root: said as such, not taken for a file that is no registry
    throw new CannotRead('reservation registry', file, code);
  }
  let parsed: v.InferOutput<typeof RegistrySchema>;
  try {
    parsed = v.parse(RegistrySchema, JSON.parse(text));
  } catch (e) {
    const why = e instanceof v.ValiError ? (e.issues[0]?.message ?? 'invalid') : 'not JSON';
    throw new UsageError(`reservation registry ${file} is not valid (${why})`, fix);
  }
  if (parsed.bootId !== k.bootId()) return { file, reservations: [], staleBoot: true };
  const possible = k.possibleCpus;
  for (const r of parsed.reservations) {
    if (!CpuSet.parseList(r.vm).minus(possible).isEmpty)
      throw new UsageError(`reservation registry ${file}: CPUs ${r.vm} are not all possible CPUs`, fix);
  }
  return { file, reservations: parsed.reservations, staleBoot: false };
}

/** Replace the registry atomically; an empty list removes the file. */
export function writeRegistry(k: Kernel, reservations: readonly Reservation[]): void {
  const file = registryPath(k);
  const dir = path.dirname(file);
  if (reservations.length === 0) {
    try {
      fs.unlinkSync(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    fsyncDir(dir);
    return;
  }
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const body = {
    format: REGISTRY_FORMAT,
    version: REGISTRY_VERSION,
    bootId: k.bootId(),
    reservations,
  };
  const tmp = `${file}.tmp.${process.pid}`;
  try {
    fs.unlinkSync(tmp);
  } catch {
    /* not there */
  }
  const fd = fs.openSync(
    tmp,
    fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW,
    0o600,
  );
  try {
    fs.writeSync(fd, JSON.stringify(body, null, 2) + '\n');
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  fsyncDir(dir);
}
