/**
 * A command's usage line, the one format that `--help`, usage errors and the man page's synopsis share:
 * `vfio-isolate [GLOBAL-OPTIONS] FULL NAME {SUB1|SUB2} [OPTIONS] ARG [OPTIONAL-ARG]`, where the subcommands, `[OPTIONS]`
 * and the arguments appear only for a command that has them.
 */
import type { CommandSpec } from './spec.ts';

/** How the words are set: names as typed (bold in the man page), placeholders (italic in the man page). */
export interface UsageStyle {
  name(text: string): string;
  meta(text: string): string;
}

const PLAIN: UsageStyle = { name: (s) => s, meta: (s) => s };

export function usageLine(spec: CommandSpec, full: string, style: UsageStyle = PLAIN): string {
  const words = [style.name('vfio-isolate'), `[${style.meta('GLOBAL-OPTIONS')}]`, style.name(full)];
  const subs = spec.subcommands?.filter((s) => !s.hidden) ?? [];
  if (subs.length) words.push(`{${subs.map((s) => style.name(s.name)).join('|')}}`);
  if (spec.options.length) words.push(`[${style.meta('OPTIONS')}]`);
  for (const a of spec.args) words.push(a.required ? style.meta(a.name) : `[${style.meta(a.name)}]`);
  return words.join(' ');
}
