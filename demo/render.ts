/**
 * Renders the guest's events (events.ts) as a narrated terminal transcript: sections, narration wrapped to the
 * width, the tool's own output indented under each command, aligned tables, checks. Colour only when asked
 * (demo.ts decides: a TTY without NO_COLOR). Pure apart from `write`.
 */
import { paint, plural, table, visibleWidth, wrapWords, type Paint } from '../src/report/table.ts';
import type { DemoEvent, LeakFigures, ProcessPlacement } from './events.ts';

export interface RenderOptions {
  colour: boolean;
  /** Text width for narration and command lines. */
  width: number;
  write: (s: string) => void;
}

const INDENT = '    ';

function shellWord(s: string): string {
  return /^[A-Za-z0-9_./,:=+@%-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

function trimBlock(s: string): string[] {
  const lines = s.replace(/\s+$/, '').split('\n');
  return lines.length === 1 && lines[0] === '' ? [] : lines;
}

export function describeFigures(f: LeakFigures): string {
  return (
    `${plural(f.total, 'movable leak')} (${plural(f.tasks, 'host task')}, ${plural(f.kthreads, 'kernel thread')}, ` +
    `${plural(f.irqs, 'IRQ')}, ${plural(f.masks, 'mask')}); expected to stay: ` +
    `${plural(f.pinnedKthreads, 'kernel-pinned thread')}, ${plural(f.managedIrqs, 'kernel-managed IRQ')}`
  );
}

export function formatSeconds(s: number): string {
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - m * 60)} s`;
}

/** "0,2,5-7" from [0,2,5,6,7]. */
export function cpuRanges(cpus: readonly number[]): string {
  const out: string[] = [];
  for (let i = 0; i < cpus.length;) {
    let j = i;
    while (j + 1 < cpus.length && cpus[j + 1] === cpus[j]! + 1) j++;
    out.push(j > i + 1 ? `${cpus[i]}-${cpus[j]}` : j === i + 1 ? `${cpus[i]},${cpus[j]}` : `${cpus[i]}`);
    i = j + 1;
  }
  return out.join(',') || '-';
}

export class TextRenderer {
  private readonly p: Paint;
  private sectionNo = 0;

  constructor(private readonly opts: RenderOptions) {
    this.p = paint(opts.colour);
  }

  line(s = ''): void {
    this.opts.write(s + '\n');
  }

  /** Narration, wrapped; `first` starts the first line, `hang` the others (default: as wide as `first`). */
  say(text: string, first = '', hang = ' '.repeat(visibleWidth(first))): void {
    const width = Math.max(40, this.opts.width - visibleWidth(first));
    wrapWords(text.split(/\s+/).filter(Boolean), width)
      .split('\n')
      .forEach((l, i) => this.line((i === 0 ? first : hang) + l));
  }

  heading(title: string): void {
    const head = `── ${title} `;
    this.line();
    this.line(this.p.bold(head + '─'.repeat(Math.max(3, this.opts.width - visibleWidth(head)))));
  }

  /** A line of guest output that is not an event (passed through). */
  raw(line: string, stream: 'stdout' | 'stderr'): void {
    this.line(stream === 'stderr' ? this.p.yellow(`guest: ${line}`) : this.p.dim(`guest: ${line}`));
  }

  event(e: DemoEvent): void {
    const p = this.p;
    switch (e.type) {
      case 'start':
        this.say(
          `In the guest: Linux ${e.kernel}, CPUs ${e.cpus}, ${e.cgroups}. ${e.busy.length} busy host processes ` +
            `(pids ${e.busy.join(', ')}) spin in ${e.busyCgroup}.`,
        );
        return;
      case 'section':
        this.heading(`${++this.sectionNo}. ${e.title}`);
        return;
      case 'say':
        this.line();
        this.say(e.text);
        return;
      case 'command':
        this.command(e);
        return;
      case 'changes': {
        this.line();
        this.line(p.bold(e.title) + p.dim(`: ${plural(e.lines.length, 'change')}`));
        if (e.summary.length === 0) this.line(`${INDENT}(nothing)`);
        for (const s of e.summary) this.say(s, `${INDENT}- `);
        return;
      }
      case 'placement':
        this.placement(e.title, e.vmCpus, e.seconds, e.procs);
        return;
      case 'leaks':
        this.line();
        this.say(`${p.bold(`Leak figure, ${e.label}:`)} ${describeFigures(e.figures)}`);
        return;
      case 'check': {
        const detail = e.detail ? (e.ok ? p.dim(` (${e.detail})`) : ` (${e.detail})`) : '';
        this.say(`${e.name}${detail}`, e.ok ? `  ${p.green('✓')} ` : `  ${p.red('✗ FAILED:')} `, '    ');
        return;
      }
      case 'end':
        return;
    }
  }

  private command(e: Extract<DemoEvent, { type: 'command' }>): void {
    const p = this.p;
    const words = e.chunks.map((c) => c.map(shellWord).join(' '));
    const program = e.program ?? 'vfio-isolate';
    const oneLine = `$ ${program} ${words.join(' ')}`;
    const status = `exit ${e.code} · ${formatSeconds(e.seconds)}`;
    const lines =
      visibleWidth(oneLine) + 2 + status.length <= this.opts.width || words.length < 2
        ? [oneLine]
        : [
            `$ ${program} ${words[0]} \\`,
            ...words.slice(1).map((w, i, a) => `    ${w}${i < a.length - 1 ? ' \\' : ''}`),
          ];
    this.line();
    lines.forEach((l, i) => {
      if (i < lines.length - 1) {
        this.line(p.bold(p.cyan(l)));
        return;
      }
      const gap = Math.max(2, this.opts.width - visibleWidth(l) - status.length);
      this.line(p.bold(p.cyan(l)) + ' '.repeat(gap) + p.dim(status));
    });
    for (const l of trimBlock(e.stdout)) this.line(INDENT + l);
    for (const l of trimBlock(e.stderr)) this.line(INDENT + p.dim(l));
  }

  private placement(title: string, vm: string, seconds: number, procs: ProcessPlacement[]): void {
    this.line();
    this.line(
      `${this.p.bold(title)} ${this.p.dim(`(/proc/PID/stat field 39, sampled for ${formatSeconds(seconds)})`)}:`,
    );
    const rows = procs.map((q) => {
      const share = q.samples ? Math.round((100 * q.onVm) / q.samples) : 0;
      const onVm = `${share}%`;
      return [
        String(q.pid),
        String(q.samples),
        cpuRanges(q.cpus),
        q.onVm > 0 ? this.p.yellow(onVm) : this.p.green(onVm),
        q.allowed,
      ];
    });
    this.opts.write(
      table(rows, {
        header: ['PID', 'SAMPLES', 'RAN ON CPUS', `ON ${vm}`, 'MAY RUN ON'],
        align: ['right', 'right', 'left', 'right', 'left'],
        indent: INDENT,
        colour: this.opts.colour,
      }),
    );
  }

  /** The closing table: leak figures per stage and the checks. */
  summary(figures: { label: string; figures: LeakFigures }[], checks: { ok: boolean; name: string }[]): void {
    const p = this.p;
    this.heading('Summary');
    if (figures.length) {
      const rows = figures.map(({ label, figures: f }) => [
        label,
        String(f.tasks),
        String(f.kthreads),
        String(f.irqs),
        String(f.masks),
        f.total === 0 ? p.green(String(f.total)) : String(f.total),
        `${plural(f.pinnedKthreads, 'thread')}, ${plural(f.managedIrqs, 'IRQ')}`,
      ]);
      this.opts.write(
        table(rows, {
          header: [
            'MOVABLE LEAKS',
            'TASKS',
            'KTHREADS',
            'IRQS',
            'MASKS',
            'TOTAL',
            'KERNEL-PINNED (EXPECTED)',
          ],
          align: ['left', 'right', 'right', 'right', 'right', 'right', 'left'],
          indent: '',
          colour: this.opts.colour,
        }),
      );
    }
    const failed = checks.filter((c) => !c.ok);
    this.line();
    if (failed.length === 0) this.line(p.green(`All ${checks.length} checks passed.`));
    else {
      this.line(p.red(`${failed.length} of ${checks.length} checks FAILED:`));
      for (const c of failed) this.say(c.name, '  ✗ ');
    }
  }
}
