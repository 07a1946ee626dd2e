/**
 * Text another user may have chosen (a thread's comm, an IRQ handler, a VM name, a file name in a directory others
 * may write) as text for a terminal or a log: control characters escaped (`\n`, `\t`, `\xHH`), so that it can
 * neither send an escape sequence nor start a line of its own. Pure.
 */
export function printable(name: string): string {
  // eslint-disable-next-line no-control-regex
  return name.replace(/[\x00-\x1f\x7f]/g, (c) =>
    c === '\n' ? '\\n' : c === '\t' ? '\\t' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
}
