/** Help text generated from the command table (the man page and completions use the same table). */
import { GLOBAL_OPTIONS } from './parse.ts';
import type { CommandSpec, OptionSpec } from './spec.ts';
import { usageLine } from './usage.ts';

export function optionLabel(o: OptionSpec): string {
  const names = [...(o.short ?? []), `--${o.long}`].join(', ');
  return o.type === 'string' ? `${names} ${o.valueName ?? 'VALUE'}` : names;
}

function table(rows: [string, string][], indent = 2): string {
  const w = Math.min(30, Math.max(...rows.map(([a]) => a.length)) + 2);
  return rows
    .map(
      ([a, b]) =>
        `${' '.repeat(indent)}${a.length >= w ? `${a}\n${' '.repeat(indent + w)}` : a.padEnd(w)}${b}`,
    )
    .join('\n');
}

export function mainHelp(cmds: readonly CommandSpec[], version: string): string {
  const shown = cmds.filter((c) => !c.hidden);
  // Plain code-unit order: localeCompare would load ICU's collator (~40 ms of start-up) for ASCII names.
  const compat = shown
    .filter((c) => c.compat)
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const others = shown.filter((c) => !c.compat);
  return [
    `vfio-isolate ${version} - partition CPUs, memory nodes and interrupts between the host and VMs`,
    '',
    'Usage: vfio-isolate [OPTIONS] COMMAND1 [ARGS]... [COMMAND2 [ARGS]...]...',
    '',
    'Commands run in the order given; all are planned first, then applied. If one fails, the changes',
    'already made are undone.',
    '',
    'Options:',
    table(GLOBAL_OPTIONS.map((o) => [optionLabel(o), o.help])),
    '',
    'Commands (vfio-isolate 0.5.2):',
    table(compat.map((c) => [c.name, c.summary])),
    '',
    'More commands:',
    table(others.map((c) => [c.name, c.summary])),
    '',
    'CPU notation: C0-3,8  N0  L1  P0  S8-11  0xff  (see "vfio-isolate help cpus")',
    'Run "vfio-isolate help COMMAND" or "vfio-isolate COMMAND --help" for a command.',
    'Exit status: 0 success, 1 failure (nothing left half-done), 2 usage error (nothing changed).',
    '',
  ].join('\n');
}

export function commandHelp(spec: CommandSpec, full: string): string {
  const parts = [`Usage: ${usageLine(spec, full)}`, '', `  ${spec.summary}.`];
  if (spec.description) parts.push('', wrap(spec.description, 78, '  '));
  if (spec.subcommands) {
    parts.push('', 'Subcommands:', table(spec.subcommands.map((s) => [s.name, s.summary])));
  }
  if (spec.args.length) {
    parts.push(
      '',
      'Arguments:',
      table(spec.args.map((a) => [a.name, a.help + (a.choices ? ` (${a.choices.join('|')})` : '')])),
    );
  }
  if (spec.options.length)
    parts.push('', 'Options:', table(spec.options.map((o) => [optionLabel(o), o.help])));
  if (spec.examples?.length) parts.push('', 'Examples:', ...spec.examples.map((e) => `  ${e}`));
  parts.push('');
  return parts.join('\n');
}

export function wrap(text: string, width: number, indent = ''): string {
  const words = text.split(/\s+/);
  const lines: string[] = [];
  let line = '';
  for (const w of words) {
    if ((indent + line + ' ' + w).length > width && line) {
      lines.push(indent + line);
      line = w;
    } else line = line ? `${line} ${w}` : w;
  }
  if (line) lines.push(indent + line);
  return lines.join('\n');
}
