/**
 * Undo records: what the journal stores, one per step, written before the step changes anything.
 * Each kind has its own schema (valibot); restore validates every record before it writes anything.
 */
import * as v from 'valibot';
import { UNIT_LIST_RE, UNIT_NAME_RE } from '../kernel/systemd.ts';

/** Bounds of what a record may hold: a path's and a value's length, a CPU list's, a write record's files, an id. */
const MAX_PATH = 4096;
const MAX_VALUE = 8192;
const MAX_LIST = 4096;
const MAX_FILES = 100000;
const MAX_ID = 4194304;
const CPU_LIST_TEXT = /^[0-9,-]*$/;

const SystemPath = v.pipe(v.string(), v.maxLength(MAX_PATH), v.startsWith('/'));
const Id = v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(MAX_ID));
const Ticks = v.pipe(v.number(), v.integer(), v.minValue(0));
const ShortValue = v.pipe(v.string(), v.maxLength(MAX_VALUE));

const AS_IS = v.unknown();

/**
 * `schema` (an array), with the arrays the tool writes by the thousand checked first in plain JavaScript: an array
 * within the schema's length bounds whose every item `accepts` (only items of the exact shape the tool writes,
 * which `schema` accepts and gives back unchanged) passes as it is; anything else goes to `schema`, which judges it
 * and words the issue. valibot runs several functions per item: for a record of 10,000 tasks, 7 ms on this host
 * against 1.4 ms for the JSON parse itself.
 */
function fastArray<S extends v.GenericSchema>(
  schema: S,
  /** One item of the shape the tool writes. */
  accepts: (item: unknown) => boolean,
  /** The array's length bounds (the schema's own). */
  length: { min?: number; max: number },
): S {
  const min = length.min ?? 0;
  return v.lazy((input) =>
    Array.isArray(input) && input.length >= min && input.length <= length.max && all(input, accepts)
      ? AS_IS
      : schema,
  ) as unknown as S;
}

/** Every index of `a` holds an item `ok` accepts (a hole is an undefined item, as valibot reads it). */
function all(a: unknown[], ok: (item: unknown) => boolean): boolean {
  for (let i = 0; i < a.length; i++) if (!ok(a[i])) return false;
  return true;
}

const isId = (x: unknown): boolean => typeof x === 'number' && Number.isInteger(x) && x >= 1 && x <= MAX_ID;
const isTicks = (x: unknown): boolean => typeof x === 'number' && Number.isInteger(x) && x >= 0;
const isShort = (x: unknown): boolean => typeof x === 'string' && x.length <= MAX_VALUE;
const isCpuListText = (x: unknown): boolean =>
  typeof x === 'string' && x.length <= MAX_LIST && CPU_LIST_TEXT.test(x);
/** `a` is an array of exactly `n` items. */
const tupleOf = (a: unknown, n: number): a is unknown[] => Array.isArray(a) && a.length === n;

/**
 * One file of a write record: [path, value before] or (since 0.6) [path, value before, value this run wrote]. One
 * tuple with an optional third value reads both forms (the transform gives the two-value form back its length): a
 * union of the two tuples cost about ten times as much per file.
 */
const WrittenFile = v.pipe(
  v.strictTuple([SystemPath, ShortValue, v.optional(ShortValue)]),
  v.transform((f): [string, string] | [string, string, string] =>
    f[2] === undefined ? [f[0], f[1]] : [f[0], f[1], f[2]],
  ),
);

/**
 * Files written, each with the value it had before and the value this run wrote, which restore compares with what
 * the file holds now: a file someone else changed since is a conflict, left alone (unless --force).
 */
export const WrittenFiles = v.pipe(v.array(WrittenFile), v.minLength(1), v.maxLength(MAX_FILES));
export const WriteRecord = v.strictObject({
  kind: v.literal('write'),
  files: fastArray(
    WrittenFiles,
    (f) =>
      Array.isArray(f) &&
      (f.length === 2 || (f.length === 3 && isShort(f[2]))) &&
      typeof f[0] === 'string' &&
      f[0].length <= MAX_PATH &&
      f[0].startsWith('/') &&
      isShort(f[1]),
    { min: 1, max: MAX_FILES },
  ),
});
/** A cgroup the tool created (undo: move leftover tasks to the parent, rmdir). */
export const MkdirRecord = v.strictObject({ kind: v.literal('mkdir'), path: SystemPath });
/** A cgroup the tool removed, with its settings (undo: recreate it, write them back). */
export const RmdirRecord = v.strictObject({
  kind: v.literal('rmdir'),
  path: SystemPath,
  settings: v.pipe(
    v.array(v.tuple([v.pipe(v.string(), v.regex(/^cpuset\.[a-z_.]+$/)), ShortValue])),
    v.maxLength(16),
  ),
});
/** A controller the tool enabled in `path/cgroup.subtree_control` (undo: disable it). */
export const ControllerRecord = v.strictObject({
  kind: v.literal('controller'),
  path: SystemPath,
  controller: v.literal('cpuset'),
});
export const TaskIds = v.pipe(v.array(v.tuple([Id, Ticks])), v.maxLength(MAX_ID));
export const Pids = v.pipe(v.array(Id), v.maxLength(MAX_ID));
/** Tasks moved from one cgroup to another: [id, start time]; undo moves those still in `to` back. */
export const TasksRecord = v.strictObject({
  kind: v.literal('tasks'),
  from: SystemPath,
  to: SystemPath,
  file: v.picklist(['tasks', 'cgroup.procs']),
  ids: fastArray(TaskIds, (t) => tupleOf(t, 2) && isId(t[0]) && isTicks(t[1]), { max: MAX_ID }),
  /**
   * Tasks listed without reading each one's start time (a source other than the root, which holds no kernel
   * threads): the same task on restore is the one with this pid that started no later than `listedAt` (clock
   * ticks since boot when the list was read) - a reused pid starts after the original was listed.
   */
  pids: v.optional(fastArray(Pids, isId, { max: MAX_ID })),
  listedAt: v.optional(Ticks),
});
const CpuListText = v.pipe(v.string(), v.regex(CPU_LIST_TEXT), v.maxLength(MAX_LIST));
/**
 * Thread affinities changed: `tasks` [tid, start time, old CPU list]; `listed` [tid, old CPU list] for threads whose
 * start time was not read (kernel threads moved out of a cpuset): the same thread on restore is the one with this
 * tid that started no later than `listedAt` (clock ticks since boot when it was listed), as in TasksRecord.
 */
export const AffinityTasks = v.pipe(v.array(v.tuple([Id, Ticks, CpuListText])), v.maxLength(MAX_ID));
export const AffinityListed = v.pipe(v.array(v.tuple([Id, CpuListText])), v.maxLength(MAX_ID));
export const AffinityRecord = v.strictObject({
  kind: v.literal('affinity'),
  tasks: fastArray(
    AffinityTasks,
    (t) => tupleOf(t, 3) && isId(t[0]) && isTicks(t[1]) && isCpuListText(t[2]),
    { max: MAX_ID },
  ),
  listed: v.optional(
    fastArray(AffinityListed, (t) => tupleOf(t, 2) && isId(t[0]) && isCpuListText(t[1]), { max: MAX_ID }),
  ),
  listedAt: v.optional(Ticks),
});
/**
 * Scheduling policies changed: [tid, start time, old policy, old priority]; `to` is the policy and priority this run
 * set (SCHED_FIFO or SCHED_RR, 1..99): restore puts the old one back only on a thread that still has it.
 */
export const SchedRecord = v.strictObject({
  kind: v.literal('sched'),
  tasks: v.pipe(
    v.array(
      v.tuple([
        Id,
        Ticks,
        v.picklist([0, 1, 2, 3, 5]),
        v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(99)),
      ]),
    ),
    v.maxLength(4194304),
  ),
  to: v.tuple([v.picklist([1, 2]), v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(99))]),
});
/** A service the tool stopped (only irqbalance); undo starts it again. */
export const ServiceRecord = v.strictObject({
  kind: v.literal('service'),
  name: v.literal('irqbalance'),
  how: v.picklist(['systemd', 'signal']),
});

/**
 * CPUs banned from irqbalance by a runtime-only drop-in under /run (gone at reboot): `cpus` the list this run set
 * (null: this run removed the ban, as reset does), `old` the list before (null: there was no drop-in). Undo writes `old` back or removes the
 * drop-in, then restarts irqbalance. Both are CPU lists, never free text.
 */
export const IrqbalanceBanRecord = v.strictObject({
  kind: v.literal('irqbalance-ban'),
  cpus: v.nullable(v.pipe(v.string(), v.regex(/^[0-9,-]+$/), v.maxLength(4096))),
  old: v.nullable(v.pipe(v.string(), v.regex(/^[0-9,-]+$/), v.maxLength(4096))),
});

/**
 * Runtime properties of a systemd unit set through systemd (`systemctl set-property --runtime`): for each property
 * changed, [value before, value applied]. Undo sets the value before again through systemd; `status` compares the
 * applied value with what systemd shows now (drift), and `reapply` sets it again.
 */
const UnitList = v.pipe(v.string(), v.maxLength(4096), v.regex(UNIT_LIST_RE));
export const UnitRecord = v.strictObject({
  kind: v.literal('unit'),
  unit: v.pipe(v.string(), v.maxLength(256), v.regex(UNIT_NAME_RE)),
  allowedCpus: v.optional(v.tuple([UnitList, UnitList])),
  allowedMemoryNodes: v.optional(v.tuple([UnitList, UnitList])),
});
export type UnitRecord = v.InferOutput<typeof UnitRecord>;

/**
 * A variant that goes straight to the option whose discriminator (a literal) the input names. valibot's `variant`
 * tries the options' discriminators in turn and builds an issue (message and all) for each one that does not
 * match: most of the time a journal's parse took. The variant itself reads an input whose discriminator no
 * option has (its message names every value expected). Same output, same issues.
 */
export function byDiscriminator<T extends v.GenericSchema>(
  key: string,
  options: readonly { entries: Record<string, unknown> }[],
  variant: T,
): v.LazySchema<T> {
  const byValue = new Map<unknown, T>();
  for (const o of options) {
    // each option names itself by a literal of its own (else a lookup could pick another than variant would)
    const d = o.entries[key] as { type?: string; literal?: unknown } | undefined;
    if (d?.type !== 'literal' || byValue.has(d.literal))
      throw new TypeError(`byDiscriminator: every option needs a literal ${key} of its own`);
    byValue.set(d.literal, o as unknown as T);
  }
  return v.lazy((input) =>
    input !== null && typeof input === 'object' && Object.hasOwn(input, key)
      ? (byValue.get((input as Record<string, unknown>)[key]) ?? variant)
      : variant,
  );
}

/** Every kind of undo record, each named by its literal `kind`. */
export const UNDO_RECORDS = [
  UnitRecord,
  IrqbalanceBanRecord,
  WriteRecord,
  MkdirRecord,
  RmdirRecord,
  ControllerRecord,
  TasksRecord,
  AffinityRecord,
  SchedRecord,
  ServiceRecord,
] as const;
export const UndoRecord = byDiscriminator('kind', UNDO_RECORDS, v.variant('kind', UNDO_RECORDS));
export type UndoRecord = v.InferOutput<typeof UndoRecord>;

export const JOURNAL_FORMAT = 'vfio-isolate-journal';
export const JOURNAL_VERSION = 1;

export const HeaderLine = v.strictObject({
  t: v.literal('header'),
  format: v.literal(JOURNAL_FORMAT),
  version: v.literal(JOURNAL_VERSION),
  tool: v.pipe(v.string(), v.maxLength(64)),
  bootId: v.pipe(v.string(), v.maxLength(64)),
  created: v.pipe(v.string(), v.maxLength(64)),
});
export const RunLine = v.strictObject({
  t: v.literal('run'),
  run: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(1_000_000)),
  at: v.pipe(v.string(), v.maxLength(64)),
  argv: v.pipe(v.array(v.pipe(v.string(), v.maxLength(4096))), v.maxLength(1000)),
});
export const RecLine = v.strictObject({
  t: v.literal('rec'),
  run: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(1_000_000)),
  rec: UndoRecord,
});
export const RollbackLine = v.strictObject({
  t: v.literal('rollback'),
  run: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(1_000_000)),
});
export const RestoredLine = v.strictObject({
  t: v.literal('restored'),
  at: v.pipe(v.string(), v.maxLength(64)),
  forced: v.optional(v.boolean()),
});
const BODY_LINES = [RunLine, RecLine, RollbackLine, RestoredLine] as const;
export const BodyLine = byDiscriminator('t', BODY_LINES, v.variant('t', BODY_LINES));
export type HeaderLine = v.InferOutput<typeof HeaderLine>;
export type BodyLine = v.InferOutput<typeof BodyLine>;
