/**
 * A JSON document for standard output: JSON.stringify(value, null, 2) and a line end, with DEL, the C1 control
 * characters and U+2028/U+2029 written as \u escapes. JSON.stringify escapes only U+0000–U+001F, so a string another
 * user chose (a file or thread name) could otherwise send a terminal showing the document a control sequence. The
 * document parses to the same value. Pure.
 */
export function jsonDocument(value: unknown): string {
  return (
    JSON.stringify(value, null, 2).replace(
      /[\u007f-\u009f\u2028\u2029]/g,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
    ) + '\n'
  );
}
