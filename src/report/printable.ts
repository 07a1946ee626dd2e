/**
 * Text another user may have chosen (a thread's comm, an IRQ handler, a VM name, a file name in a directory others
 * may write) as text for a terminal or a log: control characters (C0, DEL, C1) and the Unicode line and paragraph
 * separators escaped (`\n`, `\t`, `\xHH`, `\uHHHH`), so that it can neither send an escape sequence (U+009B is
 * CSI) nor start a line of its own. Pure.
 */
export function printable(name: string): string {
  // eslint-disable-next-line no-control-regex
  return name.replace(/[\x00-\x1f\x7f-\x9f\u2028\u2029]/g, (c) => {
    const code = c.charCodeAt(0);
    if (c === '\n') return '\\n';
    if (c === '\t') return '\\t';
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16)}`;
  });
}
