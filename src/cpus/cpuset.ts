/**
 * An immutable set of small non-negative integers (CPU numbers, NUMA node numbers), kept sorted.
 * Pure: no I/O. Formatting follows the kernel's list form (`0-3,8`) and hex mask form (`ff,ffffffff`).
 */
export class CpuSet {
  private readonly items: readonly number[];

  private constructor(sortedUnique: readonly number[]) {
    this.items = sortedUnique;
  }

  static readonly EMPTY = new CpuSet([]);

  static of(values: Iterable<number>): CpuSet {
    const arr = [...values];
    // values already ascending without repeats (a parsed kernel list, a mask read bit by bit) are kept as they
    // are; others are deduplicated and sorted
    let ascending = true;
    for (let i = 0; i < arr.length; i++) {
      const v = arr[i]!;
      if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`not a CPU number: ${v}`);
      if (i > 0 && v <= arr[i - 1]!) ascending = false;
    }
    return new CpuSet(ascending ? arr : [...new Set(arr)].sort((a, b) => a - b));
  }

  static range(from: number, to: number): CpuSet {
    const out: number[] = [];
    for (let i = from; i <= to; i++) out.push(i);
    return CpuSet.of(out);
  }

  /**
   * Parse the kernel's list form as found in sysfs/cgroupfs/procfs files (`0-3,8-11`, `0-7:2/4` not used by
   * sysfs output). Whitespace around the value (the trailing newline) is ignored; an all-whitespace value is the
   * empty set. Throws SyntaxError on anything else.
   */
  static parseList(text: string): CpuSet {
    const s = text.trim();
    if (s === '') return CpuSet.EMPTY;
    const out: number[] = [];
    for (const part of s.split(',')) {
      const m = /^(\d+)(?:-(\d+))?$/.exec(part);
      if (!m) throw new SyntaxError(`not a CPU list: ${JSON.stringify(text)}`);
      const a = Number(m[1]);
      const b = m[2] === undefined ? a : Number(m[2]);
      if (b < a) throw new SyntaxError(`reversed range ${part} in ${JSON.stringify(text)}`);
      if (b - a > 1 << 20) throw new SyntaxError(`range too large: ${part}`);
      for (let i = a; i <= b; i++) out.push(i);
    }
    return CpuSet.of(out);
  }

  /**
   * Parse the kernel's hex mask form (`smp_affinity`, workqueue `cpumask`): comma-separated 32-bit groups, most
   * significant first; groups may be shorter than 8 digits; upper or lower case. Whitespace trimmed.
   */
  static parseMask(text: string): CpuSet {
    const s = text.trim();
    if (s === '') return CpuSet.EMPTY;
    const groups = s.split(',');
    const out: number[] = [];
    groups.forEach((g, idx) => {
      if (!/^[0-9a-fA-F]{1,8}$/.test(g)) throw new SyntaxError(`not a CPU mask: ${JSON.stringify(text)}`);
      const word = parseInt(g, 16);
      const base = (groups.length - 1 - idx) * 32;
      for (let bit = 0; bit < 32; bit++) if ((word >>> bit) & 1) out.push(base + bit);
    });
    return CpuSet.of(out);
  }

  get size(): number {
    return this.items.length;
  }
  get isEmpty(): boolean {
    return this.items.length === 0;
  }
  get first(): number | undefined {
    return this.items[0];
  }
  get last(): number | undefined {
    return this.items[this.items.length - 1];
  }

  has(v: number): boolean {
    // binary search
    let lo = 0;
    let hi = this.items.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const x = this.items[mid]!;
      if (x === v) return true;
      if (x < v) lo = mid + 1;
      else hi = mid - 1;
    }
    return false;
  }

  toArray(): number[] {
    return [...this.items];
  }
  [Symbol.iterator](): Iterator<number> {
    return this.items[Symbol.iterator]();
  }

  union(other: CpuSet): CpuSet {
    return CpuSet.of([...this.items, ...other.items]);
  }
  intersect(other: CpuSet): CpuSet {
    return new CpuSet(this.items.filter((v) => other.has(v)));
  }
  minus(other: CpuSet): CpuSet {
    return new CpuSet(this.items.filter((v) => !other.has(v)));
  }
  equals(other: CpuSet): boolean {
    return this.items.length === other.items.length && this.items.every((v, i) => other.items[i] === v);
  }
  isSubsetOf(other: CpuSet): boolean {
    return this.items.every((v) => other.has(v));
  }
  overlaps(other: CpuSet): boolean {
    return this.items.some((v) => other.has(v));
  }

  /** Kernel list form: sorted, runs collapsed to `a-b`, comma-joined; empty set -> "". */
  toList(): string {
    const parts: string[] = [];
    let i = 0;
    while (i < this.items.length) {
      const start = this.items[i]!;
      let end = start;
      while (i + 1 < this.items.length && this.items[i + 1] === end + 1) {
        i++;
        end++;
      }
      parts.push(start === end ? `${start}` : `${start}-${end}`);
      i++;
    }
    return parts.join(',');
  }

  /**
   * Kernel hex mask form for a machine with `nrCpus` possible CPU ids: 32-bit groups, most significant first,
   * the first group only as wide as needed (`ffff` on 16 CPUs), like /proc/irq/N/smp_affinity.
   */
  toMask(nrCpus: number): string {
    const n = Math.max(nrCpus, (this.last ?? -1) + 1, 1);
    const nGroups = Math.ceil(n / 32);
    const groups: string[] = [];
    for (let g = nGroups - 1; g >= 0; g--) {
      let word = 0;
      for (let bit = 0; bit < 32; bit++) if (this.has(g * 32 + bit)) word |= 1 << bit;
      const width = g === nGroups - 1 ? Math.ceil((n - g * 32) / 4) : 8;
      groups.push((word >>> 0).toString(16).padStart(width, '0'));
    }
    return groups.join(',');
  }

  toString(): string {
    return this.toList();
  }
}
