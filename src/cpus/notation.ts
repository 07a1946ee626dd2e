/**
 * The CPU / NUMA set notation of the command line and the profiles. Pure: everything it needs to know about the
 * machine comes in a CpuTopology.
 *
 * 0.5.2 forms, with their exact meaning: `C<list>`, `N<list>`, and `C`/`N` + mask groups of exactly 8 lowercase hex
 * digits, most significant group first (at the start of the value any 8 lowercase hex digits are a mask group, so
 * `C12345678` is the mask 0x12345678). Extensions, each with its own prefix: `0x<hex>`, `L<list>`, `P<list>`,
 * `S<list>`, and `+` between selectors. See README.md, "CPU notation".
 */
import { CpuSet } from './cpuset.ts';
import type { CpuTopology } from './topology-model.ts';

/** A malformed or impossible CPU/node value: a usage error (the CLI exits 2). */
export class NotationError extends Error {
  override readonly name = 'NotationError';
  readonly exitCode = 2;
  /** The value as given (trailing whitespace stripped). */
  readonly value: string;

  constructor(message: string, value: string) {
    super(message);
    this.value = value;
  }
}

export interface NotationOptions {
  /** Where the value came from, for messages: `--cpus`, `irq-affinity`, `cpus in profile.toml`. */
  what?: string;
}

export interface CpuSpecResult {
  cpus: CpuSet;
  /** Things worth telling the user that do not make the value invalid (offline CPUs). */
  warnings: string[];
}

export interface NodeSpecResult {
  nodes: CpuSet;
  warnings: string[];
}

export const NOTATION_HELP = `CPU sets (--cpus, irq-affinity, cpu-governor, isolate, profiles):
  C0-3,8              CPUs 0 to 3 and 8 (no spaces, no leading zeros)
  Cffffffff,0000000f  mask of 8-digit lowercase hex groups, most significant first (C12345678 is a mask)
  0xff,ffffffff       hex mask of any width, any case, commas optional (as in /proc/irq/*/smp_affinity)
  N0-1                the CPUs of NUMA nodes 0 and 1
  L1                  the CPUs of L3 cache domain 1 (domains numbered 0.. by their lowest CPU)
  P0                  the CPUs of package (socket) 0
  S8-11               CPUs 8 to 11 and their SMT siblings
  L1+C7               selectors joined with "+" add up
NUMA node sets (--mems): N0, N0-1. Prefixes are case-sensitive. CPUs must be present; offline CPUs are
accepted with a warning.`;

/** Kernel list form (`0-3,8`); the empty set is "". */
export function formatCpuList(set: CpuSet): string {
  return set.toList();
}

/** The notation for a set of CPUs (`C0-3,8`); the empty set gives `C`, which does not parse back. */
export function formatNotation(set: CpuSet): string {
  return 'C' + set.toList();
}

// ---------------------------------------------------------------------------------------------------------------

type Kind = 'C' | 'N' | 'L' | 'P' | 'S';
type Range = readonly [number, number];

const EXPECTED: Record<Kind, string> = {
  C: 'a CPU list like C0-3,8 or a hex mask',
  N: 'a NUMA node list like N0 or N0-1',
  L: 'an L3 cache domain list like L0 or L0-1',
  P: 'a package list like P0 or P0-1',
  S: 'a CPU list like S0-3',
};

/** Numbers stay exact up to 15 digits; ranges are never expanded before they are validated. */
const MAX_DIGITS = 15;

interface Ctx {
  /** The value with trailing whitespace stripped. */
  value: string;
  /** `--cpus: ` or ''. */
  prefix: string;
  /** `CPU set` or `NUMA node set`. */
  setName: string;
}

function quote(s: string): string {
  return JSON.stringify(s.length > 64 ? s.slice(0, 60) + '...' : s);
}

/** A syntax error: `invalid CPU set "<value>": <detail>`. */
function invalid(ctx: Ctx, detail: string): never {
  throw new NotationError(`${ctx.prefix}invalid ${ctx.setName} ${quote(ctx.value)}: ${detail}`, ctx.value);
}

/** Any other error, already phrased. */
function fail(ctx: Ctx, message: string): never {
  throw new NotationError(`${ctx.prefix}${message}`, ctx.value);
}

function mergeRanges(ranges: readonly Range[]): Range[] {
  const sorted = [...ranges].sort((x, y) => x[0] - y[0]);
  const out: [number, number][] = [];
  for (const [a, b] of sorted) {
    const last = out[out.length - 1];
    if (last && a <= last[1] + 1) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

/** List form of merged ranges; long lists are cut after `max` entries so that a message stays one short line. */
function formatRanges(ranges: readonly Range[], max = 8): string {
  const shown = ranges.slice(0, max).map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`));
  return shown.join(',') + (ranges.length > max ? ',...' : '');
}

function countRanges(ranges: readonly Range[]): number {
  return ranges.reduce((n, [a, b]) => n + (b - a + 1), 0);
}

function runsOf(set: CpuSet): Range[] {
  const out: [number, number][] = [];
  for (const v of set) {
    const last = out[out.length - 1];
    if (last && v === last[1] + 1) last[1] = v;
    else out.push([v, v]);
  }
  return out;
}

/** The parts of `ranges` not in `domain`, merged (never expands a range: `0-4000000000` costs nothing). */
function missingFrom(ranges: readonly Range[], domain: CpuSet): Range[] {
  const merged = mergeRanges(ranges);
  const items = domain.toArray();
  const out: Range[] = [];
  let i = 0;
  for (const [a, b] of merged) {
    let next = a;
    while (i < items.length && items[i]! < a) i++;
    while (i < items.length && items[i]! <= b) {
      const x = items[i]!;
      if (x > next) out.push([next, x - 1]);
      next = x + 1;
      i++;
    }
    if (next <= b) out.push([next, b]);
  }
  return out;
}

function expand(ranges: readonly Range[]): CpuSet {
  const out: number[] = [];
  for (const [a, b] of mergeRanges(ranges)) for (let v = a; v <= b; v++) out.push(v);
  return CpuSet.of(out);
}

// ---------------------------------------------------------------------------------------------------------------
// Syntax

const HEX8_LOWER = /^[0-9a-f]{8}$/;
const HEX8_ANY = /^[0-9a-fA-F]{8}$/;

function commaProblem(parts: readonly string[], i: number): string {
  if (parts.length === 1) return 'the list is empty';
  if (i === 0) return 'leading comma';
  if (i === parts.length - 1) return 'trailing comma';
  return 'empty entry between two commas';
}

/** The 0.5.2 mask form after `C`/`N`: groups of exactly 8 lowercase hex digits, most significant first. */
function parseGroupMask(kind: Kind, body: string, ctx: Ctx): Range[] {
  const groups = body.split(',');
  groups.forEach((g, i) => {
    if (g === '') invalid(ctx, commaProblem(groups, i));
    if (HEX8_LOWER.test(g)) return;
    if (HEX8_ANY.test(g)) invalid(ctx, upperCaseAdvice(kind, body));
    const other = kind === 'C' ? '; write 0x<hex> for a mask of any width' : '';
    invalid(
      ctx,
      `mask group ${quote(g)} is not 8 lowercase hex digits (as in ${kind}000000ff,ffffffff)${other}`,
    );
  });
  return runsOf(CpuSet.parseMask(body));
}

function upperCaseAdvice(kind: Kind, body: string): string {
  const lower = `${kind}${body.toLowerCase()}`;
  if (kind === 'C') return `hex digits after "C" must be lowercase; write 0x${body} or ${lower}`;
  return `hex digits after "${kind}" must be lowercase; write ${lower}`;
}

/** `<list>`: entry ("," entry)*, entry := NUMBER | NUMBER "-" NUMBER, NUMBER := "0" | [1-9][0-9]*. */
function parseList(kind: Kind, body: string, ctx: Ctx): Range[] {
  const parts = body.split(',');
  const out: Range[] = [];
  parts.forEach((p, i) => {
    if (p === '') invalid(ctx, commaProblem(parts, i));
    const m = /^(\d+)(?:-(\d+))?$/.exec(p);
    if (!m) {
      if (/^[\d-]+$/.test(p))
        invalid(ctx, `malformed range ${quote(p)}: expected a number or a range like 0-3`);
      let detail = `expected ${EXPECTED[kind]}`;
      if (kind === 'C' && /^[0-9a-fA-F]+(,[0-9a-fA-F]+)*$/.test(body)) {
        detail += `; a mask after "C" is groups of exactly 8 lowercase hex digits, write 0x${body} for any width`;
      }
      invalid(ctx, detail);
    }
    const nums = [m[1]!, m[2]].filter((n): n is string => n !== undefined);
    for (const n of nums) {
      if (n.length > 1 && n.startsWith('0')) {
        invalid(ctx, `number ${n} has a leading zero (write ${n.replace(/^0+(?=\d)/, '')})`);
      }
      if (n.length > MAX_DIGITS) invalid(ctx, `number ${quote(n)} is too large`);
    }
    const a = Number(nums[0]);
    const b = nums.length > 1 ? Number(nums[1]) : a;
    if (b < a) invalid(ctx, `range ${a}-${b} is reversed (write ${b}-${a})`);
    out.push([a, b]);
  });
  return out;
}

/** The ids named after a `C`/`N`/`L`/`P`/`S` prefix, as ranges (unvalidated). */
function parseBody(kind: Kind, body: string, ctx: Ctx): Range[] {
  if (body === '') invalid(ctx, `empty list after "${kind}": expected ${EXPECTED[kind]}`);
  if (/\s/.test(body)) invalid(ctx, 'whitespace is not allowed inside the value');
  if (kind === 'C' || kind === 'N') {
    if (/^[0-9a-f]{8}/.test(body)) return parseGroupMask(kind, body, ctx);
    if (/^[0-9a-fA-F]{8}(,|$)/.test(body)) invalid(ctx, upperCaseAdvice(kind, body));
  }
  return parseList(kind, body, ctx);
}

/** `0x<hex>`: any width, any case; commas split 32-bit groups (each at most 8 digits), most significant first. */
function parseHexMask(sel: string, ctx: Ctx): Range[] {
  const body = sel.slice(2);
  if (body === '') invalid(ctx, `empty mask after "${sel}": expected hex digits like 0xff or 0xff,ffffffff`);
  const groups = body.split(',');
  groups.forEach((g, i) => {
    if (g === '') invalid(ctx, commaProblem(groups, i));
    if (!/^[0-9a-fA-F]+$/.test(g)) {
      invalid(ctx, `${quote(sel)} is not a hex mask: expected hex digits like 0xff or 0xff,ffffffff`);
    }
    if (groups.length > 1 && g.length > 8) invalid(ctx, `mask group ${quote(g)} has more than 8 hex digits`);
  });
  let text = body;
  if (groups.length === 1) {
    const chunks: string[] = [];
    for (let end = body.length; end > 0; end -= 8) chunks.unshift(body.slice(Math.max(0, end - 8), end));
    text = chunks.join(',');
  }
  return runsOf(CpuSet.parseMask(text));
}

/** Split on `+`; no selector may be empty. */
function splitSelectors(value: string, ctx: Ctx): string[] {
  const sels = value.split('+');
  sels.forEach((s, i) => {
    if (s !== '') return;
    if (i === 0) invalid(ctx, 'nothing before "+"');
    if (i === sels.length - 1) invalid(ctx, 'nothing after "+"');
    invalid(ctx, 'nothing between two "+"');
  });
  return sels;
}

/** Strip trailing whitespace (as 0.5.2 did); reject an empty value and leading whitespace. */
function prepare(raw: string, ctx: Omit<Ctx, 'value'>, emptyMessage: string): Ctx {
  if (typeof raw !== 'string') {
    // a profile value of the wrong type that slipped past its schema
    throw new NotationError(`${ctx.prefix}expected a string like "C0-3,8", got ${typeof raw}`, String(raw));
  }
  const value = raw.trimEnd();
  const c: Ctx = { ...ctx, value };
  if (value === '') fail(c, emptyMessage);
  if (value !== value.trimStart()) invalid({ ...c, value: raw }, 'leading whitespace is not allowed');
  return c;
}

/** Whether `sel` is syntactically a valid C or 0x selector (used only to suggest a fix). */
function parsesAsCpuSelector(sel: string, ctx: Ctx): boolean {
  try {
    if (sel.startsWith('0x')) parseHexMask(sel, ctx);
    else parseBody('C', sel.slice(1), ctx);
    return true;
  } catch (e) {
    if (e instanceof NotationError) return false;
    throw e;
  }
}

function withSelector(sels: readonly string[], i: number, replacement: string): string {
  return sels.map((s, j) => (j === i ? replacement : s)).join('+');
}

// ---------------------------------------------------------------------------------------------------------------
// Validation against the machine

function requireExisting(
  ranges: readonly Range[],
  domain: CpuSet,
  ctx: Ctx,
  noun: [string, string],
  listing: string,
): void {
  const missing = missingFrom(ranges, domain);
  if (missing.length === 0) return;
  const many = countRanges(missing) > 1;
  fail(
    ctx,
    `${many ? noun[1] : noun[0]} ${formatRanges(missing)} in ${quote(ctx.value)} ` +
      `${many ? 'do' : 'does'} not exist on this machine (${listing})`,
  );
}

function presentListing(topo: CpuTopology): string {
  return topo.present.isEmpty ? 'no CPU is present' : `present: ${topo.present.toList()}`;
}

function nodeIds(topo: CpuTopology): CpuSet {
  return CpuSet.of(topo.nodes.keys());
}

function nodeListing(topo: CpuTopology): string {
  return topo.nodes.size === 0 ? 'it reports no NUMA nodes' : `nodes: ${nodeIds(topo).toList()}`;
}

/** `ranges` expanded, once every CPU in them is present. */
function requireCpus(ranges: readonly Range[], topo: CpuTopology, ctx: Ctx): CpuSet {
  // online CPUs are present (the kernel's invariant): present is read only when some CPU named is not online
  if (missingFrom(ranges, topo.online).length > 0)
    requireExisting(ranges, topo.present, ctx, ['CPU', 'CPUs'], presentListing(topo));
  return expand(ranges);
}

function requireNodes(ranges: readonly Range[], topo: CpuTopology, ctx: Ctx): CpuSet {
  requireExisting(ranges, nodeIds(topo), ctx, ['NUMA node', 'NUMA nodes'], nodeListing(topo));
  return expand(ranges);
}

function cpusOfSelector(sel: string, kind: Kind | '0x', topo: CpuTopology, ctx: Ctx): CpuSet {
  if (kind === '0x') return requireCpus(parseHexMask(sel, ctx), topo, ctx);
  const ranges = parseBody(kind, sel.slice(1), ctx);
  switch (kind) {
    case 'C':
      return requireCpus(ranges, topo, ctx);
    case 'S': {
      const listed = requireCpus(ranges, topo, ctx);
      const out = listed.toArray();
      for (const c of listed) out.push(...(topo.siblings.get(c) ?? CpuSet.EMPTY));
      return CpuSet.of(out);
    }
    case 'N': {
      const nodes = requireNodes(ranges, topo, ctx);
      const cpuless = [...nodes].filter(
        (n) => (topo.nodes.get(n) ?? CpuSet.EMPTY).overlaps(topo.present) === false,
      );
      if (cpuless.length > 0) {
        const many = cpuless.length > 1;
        fail(
          ctx,
          `NUMA ${many ? 'nodes' : 'node'} ${CpuSet.of(cpuless).toList()} in ${quote(ctx.value)} ` +
            `${many ? 'have' : 'has'} no CPUs (memory only); ${many ? 'they' : 'it'} can be used with --mems, ` +
            'not as a CPU set',
        );
      }
      let out = CpuSet.EMPTY;
      for (const n of nodes) out = out.union(topo.nodes.get(n)!);
      return out;
    }
    case 'L': {
      const domains = topo.l3.length === 0 ? CpuSet.EMPTY : CpuSet.range(0, topo.l3.length - 1);
      const listing =
        topo.l3.length === 0 ? 'it reports no L3 cache' : `L3 domains: ${domains.toList()}, see "topology"`;
      requireExisting(ranges, domains, ctx, ['L3 cache domain', 'L3 cache domains'], listing);
      let out = CpuSet.EMPTY;
      for (const i of expand(ranges)) out = out.union(topo.l3[i]!);
      return out;
    }
    case 'P': {
      const ids = CpuSet.of(topo.packages.keys());
      const listing = ids.isEmpty ? 'it reports no packages' : `packages: ${ids.toList()}`;
      requireExisting(ranges, ids, ctx, ['package', 'packages'], listing);
      let out = CpuSet.EMPTY;
      for (const p of expand(ranges)) out = out.union(topo.packages.get(p)!);
      return out;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Entry points

/**
 * Parse a value for a CPU slot (`--cpus`, `irq-affinity`, `cpu-governor`, `isolate`, `cpus =` in profiles).
 * Every CPU must be present; offline CPUs are kept and reported in `warnings`. Throws NotationError.
 */
export function parseCpuSpec(value: string, topo: CpuTopology, opts: NotationOptions = {}): CpuSpecResult {
  const base = { prefix: opts.what ? `${opts.what}: ` : '', setName: 'CPU set' };
  const ctx = prepare(
    value,
    base,
    `the CPU set is empty: expected a CPU list like C0-3,8, a hex mask, or N0, L1, P0, S0 (joined with "+")`,
  );
  const sels = splitSelectors(ctx.value, ctx);
  let cpus = CpuSet.EMPTY;
  sels.forEach((sel, i) => {
    let kind: Kind | '0x';
    const c = sel[0]!;
    if (/^0[xX]/.test(sel)) kind = '0x';
    else if ('CNLPS'.includes(c)) kind = c as Kind;
    else if ('cnlps'.includes(c)) {
      const fixed = withSelector(sels, i, c.toUpperCase() + sel.slice(1));
      invalid(ctx, `prefixes are case-sensitive; did you mean ${quote(fixed)}?`);
    } else if (/^\d/.test(sel)) {
      const guess = ['C' + sel, '0x' + sel].find((g) => parsesAsCpuSelector(g, ctx));
      const hint = guess ? `; did you mean ${quote(withSelector(sels, i, guess))}?` : '';
      invalid(ctx, `a CPU set starts with C, N, L, P, S or 0x${hint}`);
    } else {
      invalid(
        ctx,
        `expected a CPU list like C0-3,8 or a hex mask (a selector starts with C, N, L, P, S or 0x)`,
      );
    }
    const selected = cpusOfSelector(sel, kind, topo, ctx);
    // a CPU list or mask holds only present CPUs (requireCpus); the other selectors take sets of the topology's
    const got = kind === 'C' || kind === '0x' ? selected : selected.intersect(topo.present);
    if (got.isEmpty) invalid(ctx, sels.length === 1 ? 'selects no CPU' : `${quote(sel)} selects no CPU`);
    cpus = cpus.union(got);
  });

  const warnings: string[] = [];
  const offline = cpus.minus(topo.online);
  if (!offline.isEmpty) {
    const many = offline.size > 1;
    warnings.push(
      `${ctx.prefix}${many ? 'CPUs' : 'CPU'} ${offline.toList()} in ${quote(ctx.value)} ` +
        `${many ? 'are' : 'is'} present but offline`,
    );
  }
  return { cpus, warnings };
}

/** Parse a value for a NUMA node slot (`--mems`, `mems =` in profiles): only `N<list>`. Throws NotationError. */
export function parseNodeSpec(value: string, topo: CpuTopology, opts: NotationOptions = {}): NodeSpecResult {
  const what = opts.what ?? '--mems';
  const takes = `${JSON.stringify(what)} takes NUMA nodes like N0 or N0-1`;
  const base = { prefix: opts.what ? `${opts.what}: ` : '', setName: 'NUMA node set' };
  const ctx = prepare(value, base, `${takes}; the value is empty`);
  const sels = splitSelectors(ctx.value, ctx);
  let nodes = CpuSet.EMPTY;
  sels.forEach((sel, i) => {
    if (sel[0] === 'n') {
      const fixed = withSelector(sels, i, 'N' + sel.slice(1));
      throw new NotationError(
        `${takes}; prefixes are case-sensitive, did you mean ${quote(fixed)}?`,
        ctx.value,
      );
    }
    if (sel[0] !== 'N') throw new NotationError(`${takes}, not ${quote(ctx.value)}`, ctx.value);
    const got = requireNodes(parseBody('N', sel.slice(1), ctx), topo, ctx);
    if (got.isEmpty)
      invalid(ctx, sels.length === 1 ? 'selects no NUMA node' : `${quote(sel)} selects no NUMA node`);
    nodes = nodes.union(got);
  });
  return { nodes, warnings: [] };
}
