/**
 * Tiny text tables for the human reports: columns padded to their widest cell, ANSI colour codes ignored when
 * measuring. Pure: returns strings.
 */

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;

/** Display width of a cell: characters without ANSI colour codes. */
export function visibleWidth(s: string): number {
  return [...s.replace(ANSI, '')].length;
}

export type Align = 'left' | 'right';

export interface TableOptions {
  /** Per column; default left. */
  align?: Align[];
  /** Put before every line (default ''). */
  indent?: string;
  /** Spaces between columns (default 2). */
  gap?: number;
  /** A header row, printed first (dimmed when `colour`). */
  header?: string[];
  colour?: boolean;
}

function pad(s: string, width: number, align: Align): string {
  const fill = ' '.repeat(Math.max(0, width - visibleWidth(s)));
  return align === 'right' ? fill + s : s + fill;
}

/**
 * Lay out rows as aligned columns; every line ends with "\n", trailing spaces are trimmed. A cell may hold several
 * lines ("\n"): the row then takes as many lines, the other cells stay on its first line.
 */
export function table(rows: readonly (readonly string[])[], opts: TableOptions = {}): string {
  const all = opts.header ? [opts.header, ...rows] : [...rows];
  if (all.length === 0) return '';
  const ncol = Math.max(...all.map((r) => r.length));
  const cellLines = (r: readonly string[], c: number): string[] => (r[c] ?? '').split('\n');
  const widths = Array.from({ length: ncol }, (_, c) =>
    Math.max(0, ...all.flatMap((r) => cellLines(r, c).map(visibleWidth))),
  );
  const gap = ' '.repeat(opts.gap ?? 2);
  const indent = opts.indent ?? '';
  const render = (r: readonly string[]): string => {
    const height = Math.max(1, ...widths.map((_, c) => cellLines(r, c).length));
    let out = '';
    for (let l = 0; l < height; l++) {
      const cells = widths.map((w, c) => pad(cellLines(r, c)[l] ?? '', w, opts.align?.[c] ?? 'left'));
      out += (indent + cells.join(gap)).trimEnd() + '\n';
    }
    return out;
  };
  let out = '';
  if (opts.header)
    out += opts.colour ? paint(true).dim(render(opts.header).trimEnd()) + '\n' : render(opts.header);
  for (const r of rows) out += render(r);
  return out;
}

export interface Paint {
  bold(s: string): string;
  dim(s: string): string;
  red(s: string): string;
  green(s: string): string;
  yellow(s: string): string;
  cyan(s: string): string;
}

/** Colour helpers that do nothing unless `on` (ctx.colour: a TTY without NO_COLOR). */
export function paint(on: boolean): Paint {
  const wrap =
    (code: string) =>
    (s: string): string =>
      on && s !== '' ? `\x1b[${code}m${s}\x1b[0m` : s;
  return {
    bold: wrap('1'),
    dim: wrap('2'),
    red: wrap('31'),
    green: wrap('32'),
    yellow: wrap('33'),
    cyan: wrap('36'),
  };
}

/** Wrap words into lines no wider than `width` (long core lists); returns the lines joined with "\n". */
export function wrapWords(words: readonly string[], width: number): string {
  const lines: string[] = [];
  let cur = '';
  for (const w of words) {
    if (cur !== '' && visibleWidth(cur) + 1 + visibleWidth(w) > width) {
      lines.push(cur);
      cur = w;
    } else cur = cur === '' ? w : `${cur} ${w}`;
  }
  if (cur !== '' || lines.length === 0) lines.push(cur);
  return lines.join('\n');
}

/** "1 CPU", "2 CPUs". */
export function plural(n: number, word: string, many = `${word}s`): string {
  return `${n} ${n === 1 ? word : many}`;
}
